"""ONNX export of the plain Siamese network, checked with onnx.checker and compared with PyTorch.

Inputs ``input_1`` (input image) and ``input_2`` (golden), outputs ``output_1``/``output_2`` (embeddings), as TAO.
With the decision head, two more outputs: ``distance`` (the score) and ``decision`` (1 = FAIL, distance above the
threshold baked into the graph); with the heatmap head (Siamese_Grid), ``cell_distances`` (batch, rows, cols).
A dynamic batch axis names inputs AND outputs (TAO names only the inputs; the exporter's shape inference makes
TAO's outputs dynamic too, under generated names).
"""

import warnings
from pathlib import Path

import numpy as np
import torch

from tao_siamese_oi.model.heatmap import PAIRWISE_EPS
from tao_siamese_oi.model.networks import pair_distance

INPUT_NAMES = ["input_1", "input_2"]
OUTPUT_NAMES = ["output_1", "output_2"]
DECISION_OUTPUTS = ["distance", "decision"]
HEATMAP_OUTPUT = "cell_distances"
PARITY_TOLERANCE = 1e-4


class DeploymentHeads(torch.nn.Module):
    """The network plus what a deployment would otherwise compute after the graph: the score and decision
    (``threshold``), and Siamese_Grid's distance per cell (``grid``: its cell rows and cols; model/heatmap.py)."""

    threshold: torch.Tensor

    def __init__(self, model: torch.nn.Module, threshold: float | None, grid: tuple[int, int] | None):
        super().__init__()
        self.model = model
        self.decision = threshold is not None
        self.register_buffer("threshold", torch.tensor(float(threshold or 0.0)))
        self.grid = grid

    def forward(self, input_1, input_2):
        out_1, out_2 = self.model(input_1, input_2)
        outputs = [out_1, out_2]
        if self.decision:
            distance = pair_distance(out_1, out_2)
            outputs += [distance, (distance > self.threshold).to(torch.int64)]
        if self.grid is not None:
            cells = (out_1 - out_2 + PAIRWISE_EPS).reshape(out_1.shape[0], -1, *self.grid)
            outputs.append(torch.sqrt((cells * cells).sum(dim=1)))
        return tuple(outputs)


def deployment_model(model: torch.nn.Module, threshold: float | None, grid: tuple[int, int] | None):
    """The plain network (TAO's two outputs), or it with the heads asked for."""
    return model if threshold is None and grid is None else DeploymentHeads(model, threshold, grid)


def output_names(model: torch.nn.Module) -> list[str]:
    if not isinstance(model, DeploymentHeads):
        return list(OUTPUT_NAMES)
    return OUTPUT_NAMES + (DECISION_OUTPUTS if model.decision else []) + ([HEATMAP_OUTPUT] if model.grid else [])


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
    """Max absolute difference between PyTorch and onnxruntime on the same inputs, over every numeric output
    (embeddings, distance, cell distances); decisions must agree wherever the distance is not within the tolerance
    of the threshold."""
    device = next(model.parameters()).device
    names = output_names(model)
    with torch.inference_mode():
        expected = [t.cpu().numpy() for t in model(*(x.to(device) for x in inputs))]
    got = onnxruntime_outputs(path, (inputs[0].cpu().numpy(), inputs[1].cpu().numpy()), names)
    numeric = [i for i, name in enumerate(names) if name != "decision"]
    diff = max(float(np.max(np.abs(expected[i].astype(np.float64) - got[i]))) for i in numeric)
    if isinstance(model, DeploymentHeads) and model.decision:
        at = names.index("decision")
        clear = np.abs(expected[at - 1] - float(model.threshold)) > PARITY_TOLERANCE
        if not np.array_equal(expected[at][clear], got[at][clear]):
            return float("inf")
    return diff
