"""One model, ready to score: the :class:`Scorer`.

evaluate, inference, calibrate, export, multi-process scoring and the inference microservice all score through a
Scorer opened once from one model file (a checkpoint, an ONNX file with its sidecar, a TensorRT engine). It holds
what scoring needs and nothing of the task that asked: the embedding backend, the input layout and normalisation,
the registration, the cell-map geometry, the decision threshold and its per-group rules, and the golden-embedding
cache. The task layer opens it from the spec (``Scorer.open(cfg, task)``); below that no task name or spec is
passed.

Goldens are shared by many inputs (one golden per component per design), so each distinct golden is embedded
once per Scorer and only inputs are embedded per pair. The score is the distance to the nearest golden, computed
as torch's pairwise_distance does (||a - b + 1e-6||), so every backend and the training module agree.
"""

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tao_siamese_oi.config import require
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.data.transforms import Layout, Normalizer, layout_from_config, light_views
from tao_siamese_oi.model.calibration import group_thresholds, row_thresholds
from tao_siamese_oi.model.heatmap import HeatmapGeometry, cell_distances, heatmap_geometry, nearest_golden
from tao_siamese_oi.utils.progress import progress

log = logging.getLogger("tao_siamese_oi")

MODEL_FILE_KEYS = {"pytorch": "checkpoint", "onnxruntime": "onnx_file", "tensorrt": "trt_engine"}


def decision_threshold(explicit: float | None, margin: float, calibration: dict | None) -> tuple[float, str]:
    """(threshold, where it came from): an explicit one (the task's ``threshold``), else the one calibrated with
    the model (at training, or by calibrate), else model.margin (TAO's rule)."""
    if explicit is not None:
        return float(explicit), "spec"
    if calibration:
        return float(calibration["threshold"]), "calibrated"
    log.warning(
        "The model came with no calibrated threshold (trained without validation, or by TAO; an ONNX file without "
        "its sidecar): deciding at model.margin = %s. Set the task's threshold to choose one (strict_threshold: "
        "refuse such a model).",
        margin,
    )
    return float(margin), "margin"


@dataclass(eq=False)
class Scorer:
    embed: Callable[[np.ndarray], np.ndarray]  # normalised float32 (B, 3, H, W) -> embeddings (B, E)
    layout: Layout
    normalize: Normalizer
    alignment: Any  # dataset.alignment when the model registers inputs to goldens, else None
    geometry: HeatmapGeometry | None  # the model's cell map (Siamese_Grid), else None
    calibration: dict | None  # stored with the model (artifacts.checkpoint.CalibrationRecord)
    threshold: float  # the global decision threshold
    threshold_source: str  # "spec", "calibrated" or "margin"
    model_file: Path
    network: Any = None  # the torch network (pytorch backend): multi-process scoring and export use it
    max_cached_goldens: int | None = None  # a long-lived scorer (the microservice) forgets the oldest beyond this
    goldens: dict = field(default_factory=dict)  # golden key -> embedding

    @classmethod
    def open(cls, cfg: ExperimentConfig, task: str, device=None, **kwargs) -> "Scorer":
        """The scorer of ``<task>.backend`` (pytorch when the task has no backend) from its model file, deciding
        at ``<task>.threshold`` when set."""
        task_cfg = getattr(cfg, task)
        backend = getattr(task_cfg, "backend", "pytorch")  # one of these: the schema checks it
        key = MODEL_FILE_KEYS[backend]
        path = require(getattr(task_cfg, key), f"{task}.{key}", f"the {key} to score with")
        return cls.from_file(cfg, backend, path, getattr(task_cfg, "threshold", None), device, **kwargs)

    @classmethod
    def from_file(cls, cfg: ExperimentConfig, backend: str, path, threshold=None, device=None, **kwargs) -> "Scorer":
        """The scorer of one model file of the spec's model, run by ``backend``; ``threshold`` decides every pair
        when given (else the model's calibration, else model.margin)."""
        from tao_siamese_oi.artifacts.exported import sidecar_calibration
        from tao_siamese_oi.deploy.backends import OnnxEmbedder, TensorRTEmbedder, TorchEmbedder

        network = None
        if backend == "pytorch":
            from tao_siamese_oi.artifacts.checkpoint import load_network

            network, calibration = load_network(cfg, path)
            embed: Callable = TorchEmbedder(network, device)
        else:
            embedder = OnnxEmbedder if backend == "onnxruntime" else TensorRTEmbedder
            embed, calibration = embedder(path, cfg.encryption_key), sidecar_calibration(path)
        decision = decision_threshold(threshold, cfg.model.margin, calibration)
        return cls.for_model(cfg, embed, calibration, decision, path, network, **kwargs)

    @classmethod
    def for_model(cls, cfg, embed, calibration, threshold: tuple[float, str], path, network=None, **kwargs):
        """A scorer for an embedding function of the spec's model (the spec says how its inputs are prepared)."""
        layout = layout_from_config(cfg.dataset)
        return cls(
            embed=embed,
            layout=layout,
            normalize=Normalizer.from_config(cfg.dataset),
            alignment=cfg.dataset.alignment if cfg.dataset.alignment.enable else None,
            geometry=heatmap_geometry(cfg.model.model_type, layout),
            calibration=calibration,
            threshold=threshold[0],
            threshold_source=threshold[1],
            model_file=Path(path),
            network=network,
            **kwargs,
        )

    # -- deciding --------------------------------------------------------------------------------------------
    def row_thresholds(self, frame):
        """Each row's threshold: its group's where the calibrated threshold decides and the model was calibrated
        per group (a column of ``frame``), else the global one (an explicit threshold decides every row)."""
        if self.threshold_source != "calibrated":
            return self.threshold
        return row_thresholds(frame, self.calibration, self.threshold)

    def threshold_for(self, group: str | None) -> tuple[float, str]:
        """(threshold, source) for one pair of ``group`` (a value of the calibration's group column, or None)."""
        column, own = self._groups
        if group is not None and str(group) in own:
            return own[str(group)], f"calibrated for {column}={group}"
        return self.threshold, self.threshold_source

    @property
    def group_column(self) -> str | None:
        """The column whose values have thresholds of their own (when the calibrated threshold decides)."""
        return self._groups[0]

    @property
    def _groups(self) -> tuple[str | None, dict[str, float]]:
        return group_thresholds(self.calibration if self.threshold_source == "calibrated" else None)

    # -- scoring ---------------------------------------------------------------------------------------------
    def score_dataset(self, dataset, batch_size: int, workers: int, heatmaps: bool = True):
        """(scores, cell maps or None) in dataset row order. A dataset built with ``load_goldens=False`` is scored
        with the golden cache (each golden loaded and embedded once); otherwise its batches' goldens are embedded
        per pair. Cell maps when asked and the model has them (model/heatmap.py), from the embeddings: any
        backend."""
        from torch.utils.data import DataLoader

        from tao_siamese_oi.data.dataset import pass_batch

        grid = self.geometry.grid if heatmaps and self.geometry else None
        loader = DataLoader(dataset, batch_size=batch_size, num_workers=workers, collate_fn=pass_batch)
        scores = np.full(len(dataset), np.nan)
        maps = np.full((len(dataset), *grid), np.nan, dtype=np.float32) if grid else None
        for images, goldens, _, indices in progress(loader, len(loader), "scoring", "batch"):
            inputs = self.embed(self.normalize(images).numpy())
            if dataset.load_goldens:
                count, num_golden = goldens.shape[:2]
                flat = self.embed(self.normalize(goldens.flatten(0, 1)).numpy())
                references = flat.reshape(count, num_golden, -1)
            else:
                keys = [dataset.golden_keys(i) for i in indices.tolist()]
                distinct = list(dict.fromkeys(k for row in keys for k in row))
                self._embed_goldens(distinct, dataset.load_golden, batch_size)
                references = np.stack([[self.goldens[k] for k in row] for row in keys])
            distances, differences = nearest_golden(inputs, references)
            scores[indices.numpy()] = distances
            if maps is not None and grid is not None:
                maps[indices.numpy()] = cell_distances(differences, grid)
        return scores, maps

    def score_pair(self, image: np.ndarray, golden: np.ndarray | None, golden_key, group: str | None = None) -> dict:
        """One pair (the microservice): ``image`` and ``golden`` are concatenated uint8 (3, H, W) images (the
        golden may be None when ``needs_golden(golden_key)`` is false); the answer has the score, the decision,
        its threshold and where it came from, whether the golden was cached, and the cell map when the model has
        one. ``image`` is registered in place when the model registers."""
        from tao_siamese_oi.data.align import align_to_golden

        cached = golden_key in self.goldens
        if golden is not None:
            self._embed_goldens([golden_key], lambda _: golden, 1)
        if self.alignment is not None and golden is not None:
            align_to_golden(image, golden, lambda chw: light_views(chw, self.layout), self.alignment)
        inputs = self.embed(self.normalize(image[None]))
        distances, differences = nearest_golden(inputs, self.goldens[golden_key][None, None])
        score = float(distances[0])
        threshold, source = self.threshold_for(group)
        answer: dict = {
            "score": score,
            "decision": "FAIL" if score > threshold else "PASS",
            "threshold": threshold,
            "threshold_source": source,
            "golden_cached": cached,
        }
        if self.geometry is not None:
            cells = cell_distances(differences, self.geometry.grid)[0]
            light, x, y = self.geometry.hotspot(cells)
            hotspot = {"light": light, "x": x, "y": y}
            answer["heatmap"] = {"cell_distances": np.round(cells, 6).tolist(), "hotspot": hotspot}
        return answer

    def needs_golden(self, golden_key) -> bool:
        """Whether scoring a pair needs its golden's pixels: registration needs them always, the cache once."""
        return self.alignment is not None or golden_key not in self.goldens

    def _embed_goldens(self, keys: list, load: Callable[[Any], np.ndarray], batch_size: int) -> None:
        missing = [k for k in keys if k not in self.goldens]
        for start in range(0, len(missing), batch_size):
            chunk = missing[start : start + batch_size]
            embedded = self.embed(self.normalize(np.stack([load(k) for k in chunk])))
            for key, embedding in zip(chunk, embedded):
                if self.max_cached_goldens is not None and len(self.goldens) >= self.max_cached_goldens:
                    self.goldens.pop(next(iter(self.goldens)))
                self.goldens[key] = embedding
