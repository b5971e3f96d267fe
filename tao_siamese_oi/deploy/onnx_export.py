"""ONNX export of the plain Siamese network, checked with onnx.checker and compared with PyTorch.

Inputs ``input_1`` (input image) and ``input_2`` (golden), outputs ``output_1``/``output_2`` (embeddings), as TAO.
A dynamic batch axis covers inputs AND outputs (TAO marks only the inputs).
"""

import warnings
from pathlib import Path

import numpy as np
import torch

INPUT_NAMES = ["input_1", "input_2"]
OUTPUT_NAMES = ["output_1", "output_2"]
PARITY_TOLERANCE = 1e-4


def export_onnx(
    model: torch.nn.Module,
    example: tuple[torch.Tensor, torch.Tensor],
    path,
    *,
    opset: int,
    dynamic_batch: bool,
    constant_folding: bool,
) -> None:
    names = INPUT_NAMES + OUTPUT_NAMES
    dynamic_axes = {name: {0: "batch"} for name in names} if dynamic_batch else None
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, which needs onnxscript and still
        # handles named dynamic axes less predictably; this small static graph exports cleanly either way.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=INPUT_NAMES,
            output_names=OUTPUT_NAMES,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=constant_folding,
            dynamo=False,
        )


def check_onnx(path) -> None:
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def onnxruntime_outputs(path, inputs: tuple[np.ndarray, np.ndarray]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(OUTPUT_NAMES, dict(zip(INPUT_NAMES, inputs)))


def parity(model: torch.nn.Module, path: Path, inputs: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Max absolute difference between PyTorch and onnxruntime embeddings on the same inputs."""
    device = next(model.parameters()).device
    with torch.inference_mode():
        expected = [t.float().cpu().numpy() for t in model(*(x.to(device) for x in inputs))]
    got = onnxruntime_outputs(path, tuple(x.cpu().numpy() for x in inputs))
    return max(float(np.max(np.abs(e - g))) for e, g in zip(expected, got))
