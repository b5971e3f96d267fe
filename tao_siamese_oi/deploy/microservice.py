"""The inference microservice's predictor (plugin protocol 1.1 ``inference_server``): a finished train or
calibrate job's model (job_model) kept loaded, and each distinct golden embedded once (the golden-embedding cache
stays warm across requests).

A request is ``{"input": [data URIs]}`` (a list, or the JSON text of one, as the TAO Client's
``inference-request --input`` sends it): the input's lights in the spec's light order, then the golden's; with a
model calibrated per group (``evaluate.calibrate_by``), the request may name its group under that column's name
(``{"component_type": "R"}``). The answer is the score (distance to the golden), the decision at the model's
calibrated threshold (the group's, when it has one), whether the golden came from the cache, and, for
Siamese_Grid, the heatmap: the cell distances and the strongest cell (model/heatmap.py). Bad requests raise
ValueError with one line (the microservice answers 400).
"""

import base64
import binascii
import functools
import hashlib
import json
from pathlib import Path

import numpy as np

MAX_CACHED_GOLDENS = 4096
# A request's image is a component crop: a larger one is refused from its header, before its pixels are decoded
# (an 8192 x 8192 16-bit PNG of 130 KB would take 10 s and 1.3 GB).
MAX_UPLOAD_PIXELS = 2048 * 2048


def predictor(model_dir: Path):
    import torch

    from tao_siamese_oi.artifacts.checkpoint import load_network
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.data.align import align_to_golden
    from tao_siamese_oi.data.transforms import Normalizer, concat_lights, layout_from_config, light_views
    from tao_siamese_oi.model.calibration import group_thresholds
    from tao_siamese_oi.model.heatmap import PAIRWISE_EPS, cell_distances, heatmap_geometry

    cfg = load_config(Path(model_dir) / "spec.yaml")  # the model job's spec (its key comes from the environment)
    network, calibration = load_network(cfg, job_model(cfg))
    layout = layout_from_config(cfg.dataset)
    normalize = Normalizer.from_config(cfg.dataset)
    threshold = float(calibration["threshold"]) if calibration else float(cfg.model.margin)
    source = "calibrated" if calibration else "margin"
    group_column, own_thresholds = group_thresholds(calibration)
    geometry = heatmap_geometry(cfg.model.model_type, layout)
    goldens: dict[str, torch.Tensor] = {}

    def side(encoded: list[bytes], first: int) -> np.ndarray:
        return concat_lights([_decode(d, layout, i) for i, d in enumerate(encoded, start=first)], layout)

    def embed(image: np.ndarray) -> torch.Tensor:
        with torch.inference_mode():
            return network.embed(normalize(torch.from_numpy(image[None])))[0]

    alignment = cfg.dataset.alignment if cfg.dataset.alignment.enable else None

    def predict(request: dict) -> dict:
        encoded = _images(request, 2 * len(layout.lights))
        lights = len(layout.lights)
        golden_key = hashlib.sha256(b"".join(encoded[lights:])).hexdigest()
        cached = golden_key in goldens
        # Registration needs the golden's pixels, so with it on the golden is decoded for every request.
        golden = side(encoded[lights:], lights) if alignment or not cached else None
        if golden is not None and not cached:
            if len(goldens) >= MAX_CACHED_GOLDENS:
                goldens.pop(next(iter(goldens)))
            goldens[golden_key] = embed(golden)
        image = side(encoded[:lights], 0)
        if alignment is not None and golden is not None:
            views = functools.partial(light_views, layout=layout)
            align_to_golden(image, golden, views, alignment)
        difference = (embed(image) - goldens[golden_key] + PAIRWISE_EPS).double().numpy()
        distance = float(np.linalg.norm(difference))  # as every other backend: ||input - golden + eps||
        group = request.get(group_column) if group_column else None
        own = own_thresholds.get(str(group)) if group is not None else None
        decided_at = threshold if own is None else own
        answer: dict = {
            "score": distance,
            "decision": "FAIL" if distance > decided_at else "PASS",
            "threshold": decided_at,
            "threshold_source": source if own is None else f"calibrated for {group_column}={group}",
            "golden_cached": cached,
        }
        if geometry is not None:
            cells = cell_distances(difference[None], geometry.grid)[0]
            light, x, y = geometry.hotspot(cells)
            answer["heatmap"] = {
                "cell_distances": np.round(cells, 6).tolist(),
                "hotspot": {"light": light, "x": x, "y": y},
            }
        return answer

    return predict


def job_model(cfg) -> Path:
    """The model a finished job leaves: a calibrate job's re-calibrated copy, else the training's latest
    checkpoint (a train job's, or the one a calibrate job's spec names)."""
    from tao_siamese_oi.artifacts.checkpoint import calibrated_checkpoint

    calibrated = calibrated_checkpoint(cfg, Path(cfg.calibrate.results_dir))
    return calibrated if calibrated.is_file() else Path(cfg.train.results_dir) / "oi_model_latest.pth"


def _images(request: dict, expected: int) -> list[bytes]:
    items = request.get("input")
    if isinstance(items, str):
        try:
            items = json.loads(items)
        except ValueError:
            raise ValueError("input must be a JSON array of image data URIs") from None
    if not isinstance(items, list) or len(items) != expected:
        raise ValueError(
            f"input must list {expected} images: the input's lights, then the golden's, in the spec's order"
        )
    decoded = []
    for index, item in enumerate(items):
        payload = item.split(",", 1)[1] if isinstance(item, str) and item.startswith("data:") else item
        try:
            decoded.append(base64.b64decode(payload, validate=True))
        except (binascii.Error, TypeError, ValueError):
            raise ValueError(f"input[{index}] is not a base64 image (data:image/...;base64,...)") from None
    return decoded


def _decode(data: bytes, layout, index: int) -> np.ndarray:
    from tao_siamese_oi.data.transforms import decode_bytes_resized
    from tao_siamese_oi.errors import DataError

    try:
        return decode_bytes_resized(data, layout.width, layout.height, f"input[{index}]", MAX_UPLOAD_PIXELS)
    except DataError as exc:  # the microservice answers a bad request (400) with this line
        raise ValueError(str(exc)) from None
