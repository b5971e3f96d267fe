"""What the tasks share: required keys, checkpoint loading, decision thresholds, scoring a split."""

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from tao_siamese_oi.artifacts.checkpoint import check_model_file, read_fitting_checkpoint
from tao_siamese_oi.config import require
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.engine.distributed import trainer_devices
from tao_siamese_oi.errors import CheckpointError, ConfigError, DataError
from tao_siamese_oi.model.statistics import too_few
from tao_siamese_oi.utils.progress import bars_wanted

if TYPE_CHECKING:
    from tao_siamese_oi.data.dataset import PairDataset
    from tao_siamese_oi.deploy.scorer import Scorer

log = logging.getLogger("tao_siamese_oi")

HEATMAPS_FILE = "heatmaps.npz"
HOTSPOT_COLUMNS = ("hotspot_light", "hotspot_x", "hotspot_y")
# Columns evaluate.csv and inference.csv add to the input CSV (evaluate keeps a defect_type the CSV has).
WRITTEN_COLUMNS = {
    "evaluate": ("siamese_score", "decision", "outcome", *HOTSPOT_COLUMNS),
    "inference": ("siamese_score", "decision", *HOTSPOT_COLUMNS),
    "calibrate": (),
}


def check_scoring_inputs(cfg: ExperimentConfig, task: str, split: str) -> None:
    """Preflight of evaluate and inference: the backend's model file and the split, before anything is written."""
    from tao_siamese_oi.artifacts.exported import (
        calibration_in,
        check_sidecar_fits,
        read_siamese_onnx,
        read_sidecar,
        sidecar_path,
    )
    from tao_siamese_oi.data.align import check_alignment
    from tao_siamese_oi.data.splits import build_dataset
    from tao_siamese_oi.deploy.scorer import MODEL_FILE_KEYS

    task_cfg = getattr(cfg, task)
    key = MODEL_FILE_KEYS[task_cfg.backend]
    path = check_model_file(
        require(getattr(task_cfg, key), f"{task}.{key}", f"the {key} to score with"), f"{task}.{key}"
    )
    sidecar = read_sidecar(path) if key != "checkpoint" else None
    if key == "checkpoint":
        calibrated = bool(read_fitting_checkpoint(cfg, path).get("calibration"))
    else:
        if key == "onnx_file":
            read_siamese_onnx(path, cfg.encryption_key)
        check_alignment(((sidecar or {}).get("preprocessing") or {}).get("alignment"), cfg.dataset, path)
        check_sidecar_fits(sidecar, cfg, path)
        calibrated = calibration_in(sidecar, path) is not None
    if task_cfg.strict_threshold and task_cfg.threshold is None and not calibrated:
        where = "checkpoint" if key == "checkpoint" else f"sidecar {sidecar_path(path).name}"
        raise CheckpointError(
            f"{path} carries no calibrated threshold (no {where} record: a TAO model, or trained without "
            f"validation) and {task}.strict_threshold is set; set {task}.threshold, or copy the export's sidecar "
            "next to the model"
        )
    table = build_dataset(cfg.dataset, split, cfg.train.seed).table
    clash = [c for c in WRITTEN_COLUMNS[task] if c in table.frame.columns]
    if clash:
        raise DataError(
            f"pair CSV {table.csv_path} already has column(s) {', '.join(clash)}, which {task} writes; rename or "
            "drop them"
        )


def quiet_trainer(devices: dict, **kwargs):
    """A Lightning Trainer for scoring on ``devices`` (see trainer_devices): no logger, no checkpoints, the
    progress bar kept."""
    import lightning as L

    return L.Trainer(
        **devices,
        use_distributed_sampler=False,  # PairDataModule shards evaluation splits itself, keeping row indices
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=bars_wanted(),
        **kwargs,
    )


class SplitScores(NamedTuple):
    dataset: "PairDataset"
    scores: np.ndarray | None  # CSV row order; None in every DDP process but the main one
    scorer: "Scorer"  # the model scored with: its threshold rules, calibration record, layout and cell-map geometry
    pairs_per_second: float  # of the scoring loop (data path included, model loading and validation not)
    heatmaps: np.ndarray | None = None  # (rows, cell rows, cell cols) in CSV row order, when asked and possible


def score_split(cfg: ExperimentConfig, task: str, split: str) -> SplitScores:
    """Score every row of a split with ``<task>.backend``'s model, opened once as a Scorer. One device: the
    Scorer's loop (with the golden-embedding cache). Several: Lightning DDP with the PyTorch checkpoint's
    network, each process scoring a share, decided by the same Scorer."""
    import torch

    from tao_siamese_oi.deploy.scorer import Scorer

    task_cfg = getattr(cfg, task)
    devices = trainer_devices(task_cfg, task)
    distributed = devices["strategy"] == "ddp"
    if distributed and task_cfg.backend != "pytorch":
        raise ConfigError(
            f"{task}.backend={task_cfg.backend} runs in one process; set {task}.num_gpus=1 (and num_nodes=1), "
            "or use the pytorch backend for several devices"
        )
    gpu = devices["accelerator"] == "gpu" and not distributed
    scorer = Scorer.open(cfg, task, torch.device("cuda", devices["devices"][0]) if gpu else torch.device("cpu"))
    heatmaps = wanted_heatmaps(scorer, task_cfg.heatmaps, task, cfg.model.model_type)
    log.info("Scoring the %s split with %s (%s backend)", split, scorer.model_file, task_cfg.backend)
    if distributed:
        return _score_distributed(cfg, scorer, heatmaps, task_cfg.batch_size, split, devices)
    from tao_siamese_oi.data.splits import build_dataset

    dataset = build_dataset(cfg.dataset, split, cfg.train.seed, load_goldens=not task_cfg.golden_cache)
    batch = task_cfg.batch_size if task_cfg.batch_size > 0 else cfg.dataset.batch_size
    start = time.perf_counter()
    scores, maps = scorer.score_dataset(dataset, batch, cfg.dataset.workers, heatmaps)
    return SplitScores(dataset, scores, scorer, len(dataset) / (time.perf_counter() - start), maps)


def wanted_heatmaps(scorer: "Scorer", wanted: bool | None, task: str, model_type: str) -> bool:
    """Whether the task writes heatmaps: ``<task>.heatmaps`` true, or null and the model has a cell map. A model
    without one, asked for it, says so in one line."""
    if wanted and scorer.geometry is None:
        log.info(
            "%s.heatmaps: %s has no cell map (it ends in fully connected layers, so no place in the image is kept); "
            "only Siamese_Grid has one. No heatmaps are written.",
            task,
            model_type,
        )
    return wanted is not False and scorer.geometry is not None


def _score_distributed(cfg: ExperimentConfig, scorer: "Scorer", heatmaps: bool, batch_size: int, split, devices):
    from tao_siamese_oi.data.datamodule import PairDataModule
    from tao_siamese_oi.engine.module import SiameseModule, ordered_scores

    module = SiameseModule.from_config(cfg)
    module.model, module.calibration = scorer.network, scorer.calibration
    module.heatmap_grid = scorer.geometry.grid if heatmaps and scorer.geometry else None
    datamodule = PairDataModule(cfg.dataset, seed=cfg.train.seed, eval_batch_size=batch_size, eval_split=split)
    dataset = datamodule.dataset(split)
    trainer = quiet_trainer(devices)
    start = time.perf_counter()
    trainer.predict(module.eval(), datamodule=datamodule, return_predictions=False)
    speed = len(dataset) / (time.perf_counter() - start)
    if not trainer.is_global_zero:
        return SplitScores(dataset, None, scorer, speed)
    assert module.predictions is not None  # on_predict_epoch_end has gathered every process's
    indices, scores, maps = module.predictions
    ordered_maps = None
    if maps is not None:
        ordered_maps = np.full((len(dataset), *maps.shape[1:]), np.nan, dtype=np.float32)
        ordered_maps[indices] = maps
    return SplitScores(dataset, ordered_scores(indices, scores, len(dataset)), scorer, speed, ordered_maps)


def measurability(cfg: ExperimentConfig, counts: dict, where: str) -> list[str]:
    """One line for each operating-point target the set is too small to show (model/statistics.py)."""
    evaluate = cfg.evaluate
    if evaluate.target_recall is not None:
        line = too_few(counts["num_fail"], 100 - evaluate.target_recall, "miss rate", "FAIL", where)
    else:
        line = too_few(counts["num_pass"], evaluate.target_fpr, "FPR", "PASS", where)
    return [line] if line else []


def write_heatmaps(frame, scored: SplitScores, out: Path) -> Path | None:
    """With heatmaps: each row's strongest cell in the frame's hotspot_* columns (its light, and x, y of its centre
    as fractions of that light's image), and every map in heatmaps.npz (``cell_distances``, float16, one per CSV
    row in order; ``geometry``, the JSON that says which cells belong to which light)."""
    import json

    from tao_siamese_oi.utils.files import atomic_write

    heatmaps, geometry = scored.heatmaps, scored.scorer.geometry
    if heatmaps is None or geometry is None:
        return None
    spots = [geometry.hotspot(heatmap) for heatmap in heatmaps]
    for column, values in zip(HOTSPOT_COLUMNS, zip(*spots)):
        frame[column] = values

    def write(tmp):
        with open(tmp, "wb") as handle:  # a handle: given a name, numpy would append .npz to it
            np.savez_compressed(
                handle,
                cell_distances=heatmaps.astype(np.float16),
                geometry=np.array(json.dumps(geometry.describe())),
            )

    return atomic_write(out / HEATMAPS_FILE, write)
