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
import hashlib
import json
from pathlib import Path

import numpy as np

MAX_CACHED_GOLDENS = 4096
# A request's image is a component crop: a larger one is refused from its header, before its pixels are decoded
# (an 8192 x 8192 16-bit PNG of 130 KB would take 10 s and 1.3 GB).
MAX_UPLOAD_PIXELS = 2048 * 2048


def predictor(model_dir: Path):
    from tao_siamese_oi.config import load_config
    from tao_siamese_oi.data.transforms import concat_lights
    from tao_siamese_oi.deploy.scorer import Scorer

    cfg = load_config(Path(model_dir) / "spec.yaml")  # the model job's spec (its key comes from the environment)
    # The model as evaluate and inference score it: the same Scorer, deciding at its calibrated threshold.
    scorer = Scorer.from_file(cfg, "pytorch", job_model(cfg), max_cached_goldens=MAX_CACHED_GOLDENS)
    layout, group_column = scorer.layout, scorer.group_column

    def side(encoded: list[bytes], first: int) -> np.ndarray:
        return concat_lights([_decode(d, layout, i) for i, d in enumerate(encoded, start=first)], layout)

    def predict(request: dict) -> dict:
        encoded = _images(request, 2 * len(layout.lights))
        lights = len(layout.lights)
        golden_key = hashlib.sha256(b"".join(encoded[lights:])).hexdigest()
        golden = side(encoded[lights:], lights) if scorer.needs_golden(golden_key) else None
        group = request.get(group_column) if group_column else None
        return scorer.score_pair(side(encoded[:lights], 0), golden, golden_key, group)

    return predict


def job_model(cfg) -> Path:
    """The model a finished job leaves: a calibrate job's re-calibrated copy, else the training's latest
    checkpoint (a train job's, or the one a calibrate job's spec names)."""
    from tao_siamese_oi.artifacts.checkpoint import calibrated_checkpoint
    from tao_siamese_oi.model_files import LATEST_CHECKPOINT

    calibrated = calibrated_checkpoint(cfg, Path(cfg.calibrate.results_dir))
    return calibrated if calibrated.is_file() else Path(cfg.train.results_dir) / LATEST_CHECKPOINT


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
