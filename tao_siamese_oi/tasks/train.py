"""train: fit a Siamese model on the train split, validate, write TAO-named checkpoints."""

import dataclasses
import logging
from pathlib import Path

import lightning as L
from lightning.pytorch.loggers import CSVLogger, Logger, TensorBoardLogger

from tao_siamese_oi.artifacts.checkpoint import check_model_file, epochs_done, model_state, read_checkpoint
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.datamodule import PairDataModule
from tao_siamese_oi.engine.callbacks import (
    AtomicCheckpointIO,
    ThroughputAndStatus,
    ValidateLastEpoch,
    best_checkpoint_callback,
    epoch_metrics,
    monitored_metric,
    tao_checkpoint_callbacks,
)
from tao_siamese_oi.engine.distributed import trainer_devices
from tao_siamese_oi.engine.module import SiameseModule
from tao_siamese_oi.engine.tracking import finish_tracking, wandb_logger
from tao_siamese_oi.errors import ConfigError, DataError
from tao_siamese_oi.model.metrics import CALIBRATED_LOGGED, CALIBRATED_PREFIX, EPOCH_METRICS
from tao_siamese_oi.model_files import CHECKPOINT_EXT, LATEST_CHECKPOINT
from tao_siamese_oi.tasks.common import measurability
from tao_siamese_oi.tasks.lifecycle import tracked_task
from tao_siamese_oi.utils.progress import bars_wanted
from tao_siamese_oi.utils.status import RUNNING

log = logging.getLogger("tao_siamese_oi")


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    """Checkpoints of another training that this one would replace: none when it continues the training of
    this folder (its latest checkpoint, or train.resume_training_checkpoint_path naming that file)."""
    latest = out / LATEST_CHECKPOINT
    explicit = cfg.train.resume_training_checkpoint_path
    if latest.is_file() and (not explicit or Path(explicit).resolve() == latest.resolve()):
        return []
    return sorted(out.glob(f"*{CHECKPOINT_EXT}"))


def preflight(cfg: ExperimentConfig) -> None:
    if not cfg.dataset.validation_dataset.csv_path:
        log.warning("dataset.validation_dataset is not set: training without validation.")
    check_monitor(cfg)
    pretrained = cfg.train.pretrained_model_path
    if pretrained:
        read_checkpoint(check_model_file(pretrained, "train.pretrained_model_path"), cfg.encryption_key)
    # the checkpoint a run resumes from was read (safely) by already_finished, which runs first
    datamodule = PairDataModule(cfg.dataset, seed=cfg.train.seed)
    for split, key in (("train", "train_dataset"), ("validation", "validation_dataset")):
        if getattr(cfg.dataset, key).csv_path:
            datamodule.dataset(split)
    check_calibrate_by(cfg, datamodule)


def monitorable(has_validation: bool) -> list[str]:
    """The metrics train.checkpointer.monitor may name: what SiameseModule logs each epoch."""
    names = [f"train_{name}" for name in EPOCH_METRICS]
    if has_validation:
        names += [f"val_{name}" for name in EPOCH_METRICS]
        names += [f"val_{CALIBRATED_PREFIX}{name}" for name in CALIBRATED_LOGGED]
    return names


def check_calibrate_by(cfg: ExperimentConfig, datamodule: PairDataModule) -> None:
    """evaluate.calibrate_by names a column of the validation CSV (the pairs the thresholds are calibrated on),
    read by the preflight's ``datamodule``."""
    column = cfg.evaluate.calibrate_by
    if not column:
        return
    if not cfg.dataset.validation_dataset.csv_path:
        raise ConfigError(
            f"evaluate.calibrate_by={column} calibrates on the validation set, and dataset.validation_dataset is "
            "not set; set it, or remove evaluate.calibrate_by"
        )
    table = datamodule.dataset("validation").table
    if column not in table.frame.columns:
        raise DataError(
            f"pair CSV {table.csv_path} has no column {column} (evaluate.calibrate_by); its columns: "
            f"{', '.join(table.frame.columns)}"
        )


def check_monitor(cfg: ExperimentConfig) -> None:
    if not cfg.train.checkpointer.enable_topk:
        return
    monitor = monitored_metric(cfg.train.checkpointer)
    allowed = monitorable(bool(cfg.dataset.validation_dataset.csv_path))
    if monitor in allowed:
        return
    if monitor in monitorable(has_validation=True):
        why = "is a validation metric and dataset.validation_dataset is not set"
    else:
        why = "is not a metric this training logs"
    raise ConfigError(f"train.checkpointer.monitor: '{monitor}' {why}; choose one of {', '.join(allowed)}")


def already_finished(cfg: ExperimentConfig) -> dict | None:
    """The result of a training that has run all its epochs in this folder: rerunning it changes nothing."""
    out = Path(cfg.train.results_dir)
    resume = resume_checkpoint(cfg, out)
    done = epochs_done(resume, cfg.encryption_key) if resume else 0
    if not resume or done < cfg.train.num_epochs:
        return None
    log.info(
        "Training already finished (%d of %d epochs) in %s; nothing to do. Raise train.num_epochs to continue "
        "or use another results_dir.",
        done,
        cfg.train.num_epochs,
        out,
    )
    return {"epochs": done, "checkpoint": resume, "already_finished": True}


@tracked_task("train", outputs=outputs, preflight=preflight, finished=already_finished)
def run(cfg: ExperimentConfig, out: Path, status) -> dict | None:
    resume = resume_checkpoint(cfg, out)
    done = epochs_done(resume, cfg.encryption_key) if resume else 0
    if cfg.train.seed >= 0:
        L.seed_everything(cfg.train.seed, workers=True, verbose=False)

    has_validation = bool(cfg.dataset.validation_dataset.csv_path)
    datamodule = PairDataModule(cfg.dataset, seed=cfg.train.seed)
    datamodule.dataset("train")  # checked by preflight (remembered), not when the loaders first need them
    if has_validation:
        datamodule.dataset("validation")
    module = build_module(cfg)
    column = cfg.evaluate.calibrate_by
    if column and has_validation:
        frame = datamodule.dataset("validation").table.frame
        module.calibration_groups = (column, frame[column].astype(str).to_numpy(dtype=object))
    throughput = ThroughputAndStatus(status)
    loggers = training_loggers(cfg, out)
    trainer = build_trainer(cfg.train, out, throughput, has_validation, cfg.encryption_key, loggers=loggers)
    if resume:
        log.info("Resuming training from checkpoint: %s (%d of %d epochs done)", resume, done, cfg.train.num_epochs)
        status.write(RUNNING, f"Resuming training from checkpoint: {resume}")
    failed = True
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume)
        failed = False
    finally:
        finish_tracking(loggers, failed)
    if not trainer.is_global_zero:
        return None

    metrics = {k: round(v, 6) for k, v in epoch_metrics(trainer).items()}
    result = {
        "epochs": trainer.current_epoch,
        "processes": trainer.world_size,
        "train_pairs_per_second": round(throughput.pairs_per_second, 1),
        **metrics,
        "checkpoint": str(out / LATEST_CHECKPOINT),
        "calibration": module.calibration,
    }
    log_calibration(module.calibration)
    log_group_calibration((module.calibration or {}).get("by_group"))
    if module.calibration is not None:
        for line in measurability(cfg, module.calibration, "the validation set"):
            log.warning(line)
    log.info(
        "Trained %d epochs at %.1f pairs/s; latest checkpoint %s",
        result["epochs"],
        throughput.pairs_per_second,
        result["checkpoint"],
    )
    if cfg.encryption_key:
        log.info(TAO_CANNOT_READ)
    return result


# TAO's shipped spec sets encryption_key: nvidia_tao; TAO reads its own format (NVIDIA's eff), not ours.
TAO_CANNOT_READ = (
    "The checkpoints are encrypted (encryption_key) in this project's format, which TAO's tools cannot read; for "
    "TAO, export a plain ONNX file with export.encrypt=false (docs/coming_from_tao.md)"
)


def log_calibration(calibration: dict | None) -> None:
    if calibration is None:
        log.warning(
            "No decision threshold was calibrated (no validation set, or it lacks the class the target needs); "
            "evaluate and inference will use model.margin unless evaluate/inference.threshold is set."
        )
        return
    target = (
        f"recall >= {calibration['target_recall']:g} %"
        if "target_recall" in calibration
        else f"FPR <= {calibration['target_fpr']:g} %"
    )
    log.info(
        "Decision threshold %.4f calibrated on the validation set for %s: FPR %s, recall %s (stored in the "
        "checkpoint).",
        calibration["threshold"],
        target,
        _percent(calibration["fpr"]),
        _percent(calibration["recall"]),
    )


def log_group_calibration(by_group: dict | None) -> None:
    if not by_group:
        return
    own = ", ".join(f"{value} {entry['threshold']:.4f}" for value, entry in by_group["thresholds"].items())
    ((counted, needed),) = by_group["needed"].items()
    rest = ", ".join(f"{value} ({counts[counted]})" for value, counts in by_group["global_for"].items())
    log.info(
        "Per-%s thresholds: %s%s",
        by_group["column"],
        own or "none",
        f"; the global one for {rest}: fewer than {needed} {counted.split('_')[1].upper()} validation pairs each"
        if rest
        else "",
    )


def _percent(value) -> str:
    return "n/a" if value is None else f"{value:.2f} %"


def build_module(cfg: ExperimentConfig) -> SiameseModule:
    module = SiameseModule.from_config(cfg, optim=dataclasses.asdict(cfg.train.optim))
    if cfg.train.pretrained_model_path:
        checkpoint = read_checkpoint(cfg.train.pretrained_model_path, cfg.encryption_key)  # builtin: names too
        module.model.load_state_dict(model_state(checkpoint))
    return module


def build_trainer(
    train_cfg,
    out: Path,
    throughput: ThroughputAndStatus,
    has_validation: bool,
    encryption_key: str | None = None,
    loggers: list | None = None,
) -> L.Trainer:
    checkpoints = tao_checkpoint_callbacks(out, train_cfg.checkpoint_interval, train_cfg.keep_checkpoints)
    best = best_checkpoint_callback(train_cfg.checkpointer, out)
    if best is not None:
        checkpoints = [best, *(checkpoints[1:] if train_cfg.checkpointer.replace_periodic else checkpoints)]
    return L.Trainer(
        **trainer_devices(train_cfg, "train"),
        use_distributed_sampler=False,  # PairDataModule shards every split itself (see EpochSeededSampler)
        max_epochs=train_cfg.num_epochs,
        default_root_dir=out,
        logger=loggers,
        plugins=[AtomicCheckpointIO(encryption_key)],
        callbacks=[
            *checkpoints,
            throughput,
            ValidateLastEpoch(),
        ],
        check_val_every_n_epoch=train_cfg.validation_interval,
        limit_val_batches=None if has_validation else 0,
        num_sanity_val_steps=0,
        gradient_clip_val=train_cfg.clip_grad_norm or None,
        deterministic=train_cfg.cudnn.deterministic,
        benchmark=train_cfg.cudnn.benchmark,
        log_every_n_steps=1,
        enable_progress_bar=bars_wanted(),
        enable_model_summary=False,
    )


def training_loggers(cfg: ExperimentConfig, out: Path) -> list:
    """Epoch metrics as CSV always (lightning_logs/), as TensorBoard scalars (tensorboard/) and to W&B when
    enabled. Lightning writes the TensorBoard files with tensorboardX (a small dependency) when tensorboard is
    absent."""
    loggers: list[Logger] = [CSVLogger(out, name="lightning_logs")]
    if cfg.train.tensorboard.enabled:
        loggers.append(TensorBoardLogger(out, name="tensorboard", default_hp_metric=False))
    if cfg.wandb.enable:
        loggers += wandb_logger(cfg, out)
    return loggers


def resume_checkpoint(cfg: ExperimentConfig, out: Path) -> str | None:
    """train.resume_training_checkpoint_path, else the latest checkpoint already in the results dir."""
    if cfg.train.resume_training_checkpoint_path:
        return str(check_model_file(cfg.train.resume_training_checkpoint_path, "train.resume_training_checkpoint_path"))
    latest = out / LATEST_CHECKPOINT
    return str(latest) if latest.is_file() else None
