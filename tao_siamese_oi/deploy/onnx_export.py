"""ONNX export of the plain Siamese network, checked with onnx.checker and compared with PyTorch.

Inputs ``input_1`` (input image) and ``input_2`` (golden), outputs ``output_1``/``output_2`` (embeddings), as TAO.
With the decision head, two more outputs: ``distance`` (the score) and ``decision`` (1 = FAIL, distance above the
threshold baked into the graph). A dynamic batch axis covers inputs AND outputs (TAO marks only the inputs).
"""

import warnings
from pathlib import Path

import numpy as np
import torch

from tao_siamese_oi.model.networks import pair_distance

INPUT_NAMES = ["input_1", "input_2"]
OUTPUT_NAMES = ["output_1", "output_2"]
DECISION_OUTPUTS = ["distance", "decision"]
PARITY_TOLERANCE = 1e-4


class WithDecision(torch.nn.Module):
    """The network plus its score and decision, so a deployment needs no code after the graph."""

    threshold: torch.Tensor

    def __init__(self, model: torch.nn.Module, threshold: float):
        super().__init__()
        self.model = model
        self.register_buffer("threshold", torch.tensor(float(threshold)))

    def forward(self, input_1, input_2):
        out_1, out_2 = self.model(input_1, input_2)
        distance = pair_distance(out_1, out_2)
        return out_1, out_2, distance, (distance > self.threshold).to(torch.int64)


def output_names(model: torch.nn.Module) -> list[str]:
    return OUTPUT_NAMES + (DECISION_OUTPUTS if isinstance(model, WithDecision) else [])


def export_onnx(
    model: torch.nn.Module,
    example: tuple[torch.Tensor, torch.Tensor],
    path,
    *,
    opset: int,
    dynamic_batch: bool,
    constant_folding: bool,
) -> None:
    names = INPUT_NAMES + output_names(model)
    dynamic_axes = {name: {0: "batch"} for name in names} if dynamic_batch else None
    with warnings.catch_warnings():
        # The TorchScript exporter is deprecated in favour of torch.export, which needs onnxscript and still
        # handles named dynamic axes less predictably; this small static graph exports cleanly either way.
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.filterwarnings("ignore", message="Constant folding", category=UserWarning)
        # GridPool reads the feature-map size as a Python int: fixed in the export (only the batch is dynamic),
        # and the parity check runs the exported graph on real inputs.
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        torch.onnx.export(
            model,
            example,
            str(path),
            input_names=INPUT_NAMES,
            output_names=output_names(model),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=constant_folding,
            dynamo=False,
        )


def check_onnx(path) -> None:
    import onnx

    onnx.checker.check_model(onnx.load(str(path)), full_check=True)


def onnxruntime_outputs(path, inputs: tuple[np.ndarray, np.ndarray], names: list[str]) -> list[np.ndarray]:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(names, dict(zip(INPUT_NAMES, inputs)))


def parity(model: torch.nn.Module, path: Path, inputs: tuple[torch.Tensor, torch.Tensor]) -> float:
    """Max absolute difference between PyTorch and onnxruntime on the same inputs, over the embeddings and the
    distance; decisions must agree wherever the distance is not within the tolerance of the threshold."""
    device = next(model.parameters()).device
    names = output_names(model)
    with torch.inference_mode():
        expected = [t.cpu().numpy() for t in model(*(x.to(device) for x in inputs))]
    got = onnxruntime_outputs(path, (inputs[0].cpu().numpy(), inputs[1].cpu().numpy()), names)
    diff = max(float(np.max(np.abs(e.astype(np.float64) - g))) for e, g in zip(expected[:3], got[:3]))
    if isinstance(model, WithDecision):
        clear = np.abs(expected[2] - float(model.threshold)) > PARITY_TOLERANCE
        if not np.array_equal(expected[3][clear], got[3][clear]):
            return float("inf")
    return diff
