"""What the tasks share: required keys, checkpoint loading, decision thresholds, scoring a split."""

import logging
import time
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from tao_siamese_oi.artifacts.checkpoint import check_model_file, load_network, read_fitting_checkpoint
from tao_siamese_oi.config import require
from tao_siamese_oi.config.schema import ExperimentConfig, ExportConfig, ScoringConfig
from tao_siamese_oi.engine.distributed import trainer_devices
from tao_siamese_oi.errors import CheckpointError, ConfigError, DataError
from tao_siamese_oi.model.statistics import too_few
from tao_siamese_oi.utils.progress import bars_wanted

if TYPE_CHECKING:
    from tao_siamese_oi.data.dataset import PairDataset
    from tao_siamese_oi.model.heatmap import HeatmapGeometry

log = logging.getLogger("tao_siamese_oi")

MODEL_FILE_KEYS = {"pytorch": "checkpoint", "onnxruntime": "onnx_file", "tensorrt": "trt_engine"}
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


def load_module(cfg: ExperimentConfig, path):
    """The Lightning module of the spec's model with a checkpoint's weights (multi-process scoring)."""
    from tao_siamese_oi.engine.module import SiameseModule

    network, calibration = load_network(cfg, path)
    module = SiameseModule.from_config(cfg)
    module.model = network
    module.calibration = calibration
    return module.eval()


def decision_threshold(
    task_cfg: ScoringConfig | ExportConfig, margin: float, calibration: dict | None
) -> tuple[float, str]:
    """(threshold, where it came from): the task's explicit threshold, else the one calibrated on the validation
    set at training time (stored in the checkpoint), else model.margin (TAO's rule)."""
    if task_cfg.threshold is not None:
        return float(task_cfg.threshold), "spec"
    if calibration:
        return float(calibration["threshold"]), "calibrated"
    log.warning(
        "The model came with no calibrated threshold (trained without validation, or by TAO; an ONNX file without "
        "its sidecar): deciding at model.margin = %s. Set the task's threshold to choose one (strict_threshold: "
        "refuse such a model).",
        margin,
    )
    return float(margin), "margin"


def row_decision_thresholds(frame, calibration: dict | None, threshold: float, source: str):
    """Each row's threshold for evaluate and inference: per group when the calibrated threshold decides and the
    model was calibrated per group (evaluate.calibrate_by), else ``threshold`` (an explicit one decides all)."""
    from tao_siamese_oi.model.calibration import row_thresholds

    return row_thresholds(frame, calibration, threshold) if source == "calibrated" else threshold


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
    calibration: dict | None  # stored with the model (checkpoint or export sidecar)
    pairs_per_second: float  # of the scoring loop (data path included, model loading and validation not)
    heatmaps: np.ndarray | None = None  # (rows, cell rows, cell cols) in CSV row order, when asked and possible
    geometry: "HeatmapGeometry | None" = None  # how to read them


def wanted_heatmaps(cfg: ExperimentConfig, task: str) -> "HeatmapGeometry | None":
    """The cell-map geometry when the task writes heatmaps: ``<task>.heatmaps`` true, or null and the model has a
    map. A model without one, asked for it, says so in one line."""
    from tao_siamese_oi.data.transforms import layout_from_config
    from tao_siamese_oi.model.heatmap import heatmap_geometry

    wanted = getattr(cfg, task).heatmaps
    if wanted is False:
        return None
    geometry = heatmap_geometry(cfg.model.model_type, layout_from_config(cfg.dataset))
    if geometry is None and wanted:
        log.info(
            "%s.heatmaps: %s has no cell map (it ends in fully connected layers, so no place in the image is "
            "kept); only Siamese_Grid has one. No heatmaps are written.",
            task,
            cfg.model.model_type,
        )
    return geometry


def score_split(cfg: ExperimentConfig, task: str, split: str) -> SplitScores:
    """Score every row of a split with ``<task>.backend``. One device: the deployment scoring loop (with the
    golden-embedding cache). Several: Lightning DDP
    with the PyTorch checkpoint, each process scoring a share."""
    task_cfg = getattr(cfg, task)
    devices = trainer_devices(task_cfg, task)
    if devices["strategy"] != "ddp":
        return _score_one_process(cfg, task, split, devices)
    if task_cfg.backend != "pytorch":
        raise ConfigError(
            f"{task}.backend={task_cfg.backend} runs in one process; set {task}.num_gpus=1 (and num_nodes=1), "
            "or use the pytorch backend for several devices"
        )
    return _score_distributed(cfg, task, split, devices)


def _score_one_process(cfg: ExperimentConfig, task: str, split: str, devices: dict):
    import torch

    from tao_siamese_oi.data.splits import build_dataset
    from tao_siamese_oi.data.transforms import Normalizer
    from tao_siamese_oi.deploy.backends import build_embedder
    from tao_siamese_oi.deploy.scoring import score_pairs

    task_cfg = getattr(cfg, task)
    device = torch.device("cuda", devices["devices"][0]) if devices["accelerator"] == "gpu" else torch.device("cpu")
    embed, calibration = build_embedder(cfg, task, device)
    dataset = build_dataset(cfg.dataset, split, cfg.train.seed, load_goldens=not task_cfg.golden_cache)
    batch = task_cfg.batch_size if task_cfg.batch_size > 0 else cfg.dataset.batch_size
    normalize = Normalizer.from_config(cfg.dataset)
    geometry = wanted_heatmaps(cfg, task)
    start = time.perf_counter()
    scores, heatmaps = score_pairs(
        dataset, embed, normalize, batch, cfg.dataset.workers, geometry.grid if geometry else None
    )
    speed = len(dataset) / (time.perf_counter() - start)
    return SplitScores(dataset, scores, calibration, speed, heatmaps, geometry)


def _score_distributed(cfg: ExperimentConfig, task: str, split: str, devices: dict):
    from tao_siamese_oi.data.datamodule import PairDataModule
    from tao_siamese_oi.engine.module import ordered_scores

    task_cfg = getattr(cfg, task)
    checkpoint = require(task_cfg.checkpoint, f"{task}.checkpoint", "the .pth file written by train")
    module = load_module(cfg, checkpoint)
    geometry = wanted_heatmaps(cfg, task)
    module.heatmap_grid = geometry.grid if geometry else None
    datamodule = PairDataModule(cfg.dataset, seed=cfg.train.seed, eval_batch_size=task_cfg.batch_size, eval_split=split)
    dataset = datamodule.dataset(split)
    trainer = quiet_trainer(devices)
    start = time.perf_counter()
    trainer.predict(module, datamodule=datamodule, return_predictions=False)
    speed = len(dataset) / (time.perf_counter() - start)
    if not trainer.is_global_zero:
        return SplitScores(dataset, None, module.calibration, speed)
    indices, scores, maps = module.predictions
    heatmaps = None
    if maps is not None:
        heatmaps = np.full((len(dataset), *maps.shape[1:]), np.nan, dtype=np.float32)
        heatmaps[indices] = maps
    ordered = ordered_scores(indices, scores, len(dataset))
    return SplitScores(dataset, ordered, module.calibration, speed, heatmaps, geometry)


def measurability(cfg: ExperimentConfig, counts: dict, where: str) -> list[str]:
    """One line for each operating-point target the set is too small to show (model/statistics.py)."""
    evaluate = cfg.evaluate
    if evaluate.target_recall is not None:
        line = too_few(counts["num_fail"], 100 - evaluate.target_recall, "miss rate", "FAIL", where)
    else:
        line = too_few(counts["num_pass"], evaluate.target_fpr, "FPR", "PASS", where)
    return [line] if line else []


def scored_model_file(cfg: ExperimentConfig, task: str) -> Path:
    """The file the task's backend scores with (checkpoint, ONNX file or engine)."""
    task_cfg = getattr(cfg, task)
    return Path(getattr(task_cfg, MODEL_FILE_KEYS[task_cfg.backend]))


def write_heatmaps(frame, scored: SplitScores, out: Path) -> Path | None:
    """With heatmaps: each row's strongest cell in the frame's hotspot_* columns (its light, and x, y of its centre
    as fractions of that light's image), and every map in heatmaps.npz (``cell_distances``, float16, one per CSV
    row in order; ``geometry``, the JSON that says which cells belong to which light)."""
    import json

    from tao_siamese_oi.utils.files import atomic_write

    heatmaps, geometry = scored.heatmaps, scored.geometry
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
