"""Exported models and engines, and the sidecar beside each (``<model>.json``): input layout, light order,
preprocessing, the decision threshold and its calibration record. ONNX files are read as protobuf (no code
runs), decrypted when encrypted; foreign or broken files are one-line errors.
"""

import json
import math
from pathlib import Path
from typing import TypedDict

from tao_siamese_oi.artifacts.checkpoint import CalibrationRecord
from tao_siamese_oi.artifacts.crypto import decrypt
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.errors import CheckpointError

SIDECAR_FORMAT = "tao_siamese_oi export sidecar v1"


class SidecarRecord(TypedDict, total=False):
    """``<model>.json`` beside an export (and an engine built from it): what a deployment needs besides the
    model. ``engine`` is added beside an engine."""

    format: str
    inputs: dict[str, str]
    outputs: dict[str, str]
    input_shape: list
    lights: list
    concat_type: str
    grid_map: dict | None
    image_height: int
    image_width: int
    image_ext: str
    preprocessing: dict
    score: str
    decision: str
    threshold: float
    threshold_source: str  # "spec", "calibrated" or "margin"
    calibration: CalibrationRecord | None
    margin: float
    encrypted: bool
    engine: dict
    heatmap: dict | None  # the geometry of cell_distances (model/heatmap.py), when the graph has that output
    provenance: dict


def encrypted_export(cfg: ExperimentConfig) -> bool:
    """Whether export writes the ONNX file encrypted: with encryption_key, unless export.encrypt is false."""
    return bool(cfg.encryption_key) and cfg.export.encrypt


def sidecar_path(model_file) -> Path:
    """The deployment sidecar beside an exported model or an engine built from it: ``<model>.json``."""
    from tao_siamese_oi.model_files import sidecar_name

    path = Path(model_file)
    return path.with_name(sidecar_name(path.name))


def read_model_bytes(path, encryption_key: str | None) -> bytes:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found; run export (or gen_trt_engine) first, or fix the path")
    return decrypt(path.read_bytes(), encryption_key, path)  # plain files come back as they are


def read_siamese_onnx(path, encryption_key: str | None):
    """``read_onnx`` of a Siamese export: inputs input_1, input_2 and output output_1, or a one-line error."""
    model = read_onnx(path, encryption_key)
    names = [i.name for i in model.graph.input]
    outputs = [o.name for o in model.graph.output]
    if names[:2] != ["input_1", "input_2"] or "output_1" not in outputs:
        raise CheckpointError(
            f"{path} is not a tao_siamese_oi / TAO SiameseOI export (inputs {names}, outputs {outputs}; expected "
            "input_1, input_2 -> output_1, output_2); export the checkpoint with optical_inspection export"
        )
    return model


def read_onnx(path, encryption_key: str | None):
    """The ONNX model in ``path`` (decrypted); protobuf parsing runs no code, foreign bytes are one line."""
    import onnx

    try:
        model = onnx.load_from_string(read_model_bytes(path, encryption_key))
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds for foreign bytes
        raise CheckpointError(
            f"{path} is not an ONNX file ({type(exc).__name__}); give the .onnx file written by export"
        ) from None
    # Weights in external files would be read from wherever their location points (relative: the current
    # folder), and onnxruntime refuses them from memory with a raw error: one file, or a one-line refusal.
    external = [t.name for t in model.graph.initializer if t.data_location == onnx.TensorProto.EXTERNAL]
    if external:
        raise CheckpointError(
            f"{path} keeps {len(external)} weight(s) in external data files ({external[0]}, ...); give a single-file "
            "ONNX model (optical_inspection export writes one)"
        )
    return model


def read_sidecar(model_file) -> SidecarRecord | None:
    """The export sidecar beside a model file (None when there is none); a broken one is a one-line error."""
    sidecar = sidecar_path(model_file)
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text())
        threshold = data.get("threshold", 0.0) if isinstance(data, dict) else None
        if not isinstance(threshold, (int, float)) or isinstance(threshold, bool) or not math.isfinite(threshold):
            raise ValueError("not a sidecar object with a finite threshold")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"sidecar {sidecar} is not a valid export sidecar ({str(exc).splitlines()[0]}); restore the file "
            f"export wrote beside {Path(model_file).name}, or export again"
        ) from None
    return SidecarRecord(**data)


def sidecar_calibration(model_file) -> CalibrationRecord | None:
    """The decision threshold of the sidecar beside an ONNX file or engine (<model>.json) as a calibration
    record; None without a sidecar or when the export itself fell back to the margin."""

    return calibration_in(read_sidecar(model_file), model_file)


def calibration_in(data: SidecarRecord | None, model_file) -> CalibrationRecord | None:
    """:func:`sidecar_calibration` of a sidecar already read."""
    from tao_siamese_oi.artifacts.checkpoint import checked_calibration

    if data is None or data.get("threshold_source") not in ("calibrated", "spec"):
        return None
    record = {**(data.get("calibration") or {}), "threshold": data["threshold"]}
    return checked_calibration(record, f"sidecar {sidecar_path(model_file)}")


def check_sidecar_fits(sidecar: SidecarRecord | None, cfg: ExperimentConfig, model_file) -> None:
    """The spec must feed the model as the export did: the same lights in order, image size, layout and
    normalisation; a difference is a one-line error (exit 4) naming the spec key to set."""
    from tao_siamese_oi.artifacts.preprocessing import check_preprocessing

    if sidecar is None:
        return
    recorded = {**sidecar, **{k: (sidecar.get("preprocessing") or {}).get(k) for k in ("mean", "std")}}
    fix = f"as the export did (its sidecar {sidecar_path(model_file).name} says how)"
    check_preprocessing(recorded, cfg.dataset, model_file, "exported", fix)


def deployment_sidecar(
    cfg: ExperimentConfig,
    shape,
    dynamic: bool,
    decision: tuple[float, str],
    calibration: dict | None,
    heatmap: dict | None = None,
) -> SidecarRecord:
    """What a deployment needs besides the ONNX file: input layout, light order, preprocessing and decision; with
    ``heatmap`` (the geometry of a ``cell_distances`` output the graph has), that output and how to read it."""
    from tao_siamese_oi.artifacts.preprocessing import preprocessing_record
    from tao_siamese_oi.data.align import alignment_record

    threshold, source = decision
    data = cfg.dataset
    record = preprocessing_record(data)
    return {
        "format": SIDECAR_FORMAT,
        "inputs": {"input_1": "input (component under test)", "input_2": "golden (defect-free reference)"},
        "outputs": {
            "output_1": "embedding of input_1",
            "output_2": "embedding of input_2",
            **(
                {"distance": "the score (Euclidean distance)", "decision": "1 = FAIL (distance > threshold), 0 = PASS"}
                if cfg.export.include_decision
                else {}
            ),
            **({"cell_distances": "distance per grid cell (see heatmap)"} if heatmap else {}),
        },
        "input_shape": ["batch" if dynamic else cfg.export.batch_size, *shape],
        "lights": record["lights"],
        "concat_type": record["concat_type"],
        "grid_map": record["grid_map"],
        "image_height": record["image_height"],
        "image_width": record["image_width"],
        "image_ext": data.image_ext,
        "preprocessing": {
            "decode": "RGB, each light resized bilinearly to image_height x image_width, then concatenated",
            "normalise": "(pixel / 255 - mean) / std per channel, channels first",
            "mean": record["mean"],
            "std": record["std"],
            # Before normalising, the input is registered to its golden (tao_siamese_oi/data/align.py); null: not.
            "alignment": alignment_record(data),
        },
        "score": "Euclidean distance between output_1 and output_2",
        "decision": "FAIL when score > threshold",
        "threshold": threshold,
        "threshold_source": source,
        "calibration": calibration,  # type: ignore[typeddict-item]  # a CalibrationRecord
        "margin": cfg.model.margin,
        "encrypted": encrypted_export(cfg),
        "heatmap": heatmap,
    }
