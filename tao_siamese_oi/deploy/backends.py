"""Embedding backends for deployment scoring: the PyTorch checkpoint, the exported ONNX file through
onnxruntime, or a TensorRT engine. Each turns a normalised float32 batch (B, 3, H, W) into embeddings (B, E);
the scoring loop (deploy/scoring.py) does the rest, identically for all three.
"""

from pathlib import Path

import numpy as np

from tao_siamese_oi.deploy.onnx_export import sidecar_path
from tao_siamese_oi.errors import CheckpointError, ConfigError
from tao_siamese_oi.utils.crypto import decrypt

BACKENDS = ("pytorch", "onnxruntime", "tensorrt")


class TorchEmbedder:
    def __init__(self, model, device=None):
        import torch

        self.torch = torch
        self.device = device or torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.model = model.to(self.device).eval()

    def __call__(self, images: np.ndarray) -> np.ndarray:
        with self.torch.inference_mode():
            batch = self.torch.from_numpy(images).to(self.device)
            return self.model.embed(batch).float().cpu().numpy()


class OnnxEmbedder:
    """The exported graph cut down to its first branch (input_1 -> output_1): both branches share weights, so
    one branch embeds inputs and goldens alike, and a batch is never run twice."""

    def __init__(self, path, encryption_key: str | None = None):
        import onnx
        import onnxruntime as ort

        model = read_siamese_onnx(path, encryption_key)
        branch = onnx.utils.Extractor(model).extract_model(["input_1"], ["output_1"])
        self.session = ort.InferenceSession(
            branch.SerializeToString(), sess_options=_session_options(ort), providers=_ort_providers(ort)
        )

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.session.run(["output_1"], {"input_1": np.ascontiguousarray(images, dtype=np.float32)})[0]


class TensorRTEmbedder:
    """A serialised TensorRT engine built by gen_trt_engine; the golden branch is fed the same batch (an engine
    keeps both inputs) and only output_1 is read."""

    def __init__(self, path, encryption_key: str | None = None):
        from tao_siamese_oi.deploy.tensorrt_engine import EngineRunner

        self.runner = EngineRunner(read_model_bytes(path, encryption_key))

    def __call__(self, images: np.ndarray) -> np.ndarray:
        return self.runner.run({"input_1": images, "input_2": images})["output_1"]


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
        return onnx.load_from_string(read_model_bytes(path, encryption_key))
    except CheckpointError:
        raise
    except Exception as exc:  # noqa: BLE001 - protobuf raises several kinds for foreign bytes
        raise CheckpointError(
            f"{path} is not an ONNX file ({type(exc).__name__}); give the .onnx file written by export"
        ) from None


def _session_options(ort):
    """As many threads as torch uses, and no spin-waiting: the loader workers share these cores, and ORT's
    default (one spinning thread per core) starves them (measured: slower than the PyTorch backend)."""
    import torch

    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return options


def _ort_providers(ort) -> list[str]:
    available = ort.get_available_providers()
    return [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in available]


def build_embedder(cfg, task: str, device=None):
    """The embedder ``<task>.backend`` names, from ``<task>.checkpoint``, ``.onnx_file`` or ``.trt_engine``."""
    from tao_siamese_oi.tasks.common import load_module, require

    task_cfg = cfg[task]
    if task_cfg.backend == "pytorch":
        module = load_module(cfg, require(task_cfg.checkpoint, f"{task}.checkpoint", "the .pth file written by train"))
        return TorchEmbedder(module.model, device), module.calibration
    if task_cfg.backend == "onnxruntime":
        path = require(task_cfg.onnx_file, f"{task}.onnx_file", "the .onnx file written by export")
        return OnnxEmbedder(path, cfg.encryption_key), sidecar_calibration(path)
    if task_cfg.backend == "tensorrt":
        path = require(task_cfg.trt_engine, f"{task}.trt_engine", "the engine written by gen_trt_engine")
        return TensorRTEmbedder(path, cfg.encryption_key), sidecar_calibration(path)
    raise ConfigError(f"{task}.backend '{task_cfg.backend}' is not one of {', '.join(BACKENDS)}")


def sidecar_calibration(model_file) -> dict | None:
    """The decision threshold of the sidecar beside an ONNX file or engine (<model>.json) as a calibration
    record; None without a sidecar or when the export itself fell back to the margin."""

    data = read_sidecar(model_file)
    if data is None or data.get("threshold_source") not in ("calibrated", "spec"):
        return None
    return {**(data.get("calibration") or {}), "threshold": data["threshold"]}


def read_sidecar(model_file) -> dict | None:
    """The export sidecar beside a model file (None when there is none); a broken one is a one-line error."""
    import json

    sidecar = sidecar_path(model_file)
    if not sidecar.is_file():
        return None
    try:
        data = json.loads(sidecar.read_text())
        if not isinstance(data, dict) or not isinstance(data.get("threshold", 0.0), (int, float)):
            raise ValueError("not a sidecar object")
    except (ValueError, UnicodeDecodeError) as exc:
        raise CheckpointError(
            f"sidecar {sidecar} is not a valid export sidecar ({str(exc).splitlines()[0]}); restore the file "
            f"export wrote beside {Path(model_file).name}, or export again"
        ) from None
    return data
