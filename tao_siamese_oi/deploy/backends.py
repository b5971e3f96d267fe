"""Embedding backends for deployment scoring: the PyTorch checkpoint, the exported ONNX file through
onnxruntime, or a TensorRT engine. Each turns a normalised float32 batch (B, 3, H, W) into embeddings (B, E);
the Scorer (deploy/scorer.py) does the rest, identically for all three.
"""

import numpy as np

from tao_siamese_oi.artifacts.exported import read_model_bytes, read_siamese_onnx


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
