"""Siamese networks, each registered under its model type (model/registry.py).

Siamese_3 and Siamese_1 reproduce TAO's SiameseOI exactly: a 3-block conv tower without stride or pooling
(1,032 parameters, 7x7 receptive field) flattened into a fully-connected head. The attribute names ``cnn1`` and
``fc1`` follow TAO's state-dict layout so TAO checkpoints can load.
"""

import torch
from torch import nn

from tao_siamese_oi.model.heatmap import PAIRWISE_EPS
from tao_siamese_oi.model.registry import (
    available_models,
    builder,
    check_backbone,
    embedding_grid,
    register_model,
)

__all__ = ["available_models", "check_backbone", "create_model", "pair_distance", "register_model"]


def create_model(
    name: str, *, input_shape: tuple[int, int, int], embedding_size: int, grid_pool: str = "max"
) -> nn.Module:
    """Build a registered model for (C, H, W) inputs of one side (``grid_pool``: Siamese_Grid's cell summary)."""
    if builder(name) is siamese_grid:
        return siamese_grid(input_shape=input_shape, embedding_size=embedding_size, grid_pool=grid_pool)
    return builder(name)(input_shape=input_shape, embedding_size=embedding_size)


def conv_tower() -> nn.Sequential:
    """Three ReflectionPad-Conv3x3-ReLU-BatchNorm blocks, channels 3 -> 4 -> 8 -> 8, full resolution."""
    layers = []
    for cin, cout in [(3, 4), (4, 8), (8, 8)]:
        layers += [
            nn.ReflectionPad2d(1),
            nn.Conv2d(cin, cout, kernel_size=3),
            nn.ReLU(inplace=True),
            nn.BatchNorm2d(cout),
        ]
    return nn.Sequential(*layers)


class SiameseNetwork(nn.Module):
    """Shared tower + head applied to both images; ``forward`` returns the two embeddings."""

    def __init__(self, tower: nn.Module, head: nn.Module):
        super().__init__()
        self.cnn1 = tower
        self.fc1 = head

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc1(torch.flatten(self.cnn1(x), 1))

    def forward(self, input_1: torch.Tensor, input_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(input_1), self.embed(input_2)


def _flat_features(input_shape) -> int:
    _, height, width = input_shape
    return 8 * height * width


@register_model("Siamese_3")
def siamese_3(*, input_shape, embedding_size: int) -> SiameseNetwork:
    """TAO's default: FC 512-ReLU-BN, FC 512-ReLU-BN, FC E. 512*D + 266,248 + 513*E parameters."""
    head = nn.Sequential(
        nn.Linear(_flat_features(input_shape), 512),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Linear(512, 512),
        nn.ReLU(inplace=True),
        nn.BatchNorm1d(512),
        nn.Linear(512, embedding_size),
    )
    return SiameseNetwork(conv_tower(), head)


@register_model("Siamese_1")
def siamese_1(*, input_shape, embedding_size: int) -> SiameseNetwork:
    """TAO's "Siamese": FC 500-ReLU, FC 500-ReLU, FC E, no batch norm. 500*D + 252,032 + 501*E parameters."""
    head = nn.Sequential(
        nn.Linear(_flat_features(input_shape), 500),
        nn.ReLU(inplace=True),
        nn.Linear(500, 500),
        nn.ReLU(inplace=True),
        nn.Linear(500, embedding_size),
    )
    return SiameseNetwork(conv_tower(), head)


def pair_distance(out_1: torch.Tensor, out_2: torch.Tensor) -> torch.Tensor:
    """Euclidean distance per pair, as TAO computes it (pairwise_distance, eps 1e-6)."""
    return nn.functional.pairwise_distance(out_1, out_2, eps=PAIRWISE_EPS)


class GridEmbeddingNetwork(nn.Module):
    """A compact fully-convolutional tower whose feature map is average-pooled onto a fixed grid of cells; the
    embedding is the grid of cell features (cells x E), so the Euclidean distance compares input and golden
    cell by cell (a local defect stands out in its cell instead of being averaged over the whole image).

    No weight depends on the image size (change image_height/width without retraining); stride 8 and cells of
    ~16 px make 1-2 px misregistration between input and golden a small change of each cell's mean.
    """

    def __init__(self, input_shape, embedding_size: int, stem: int = 24, width: int = 48, pool: str = "max"):
        super().__init__()
        self.features = nn.Sequential(
            *_conv_bn(input_shape[0], stem, kernel=4, stride=4, padding=0),  # 4 x 4 patches: stride 4 at once
            *_conv_bn(stem, width, kernel=3, stride=2, padding=1),  # stride 8
            *_conv_bn(width, width, kernel=3, stride=1, padding=1),
            nn.Conv2d(width, embedding_size, kernel_size=1),
        )
        self.pool = GridPool(embedding_grid(input_shape), pool)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward(self, input_1: torch.Tensor, input_2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.embed(input_1), self.embed(input_2)


class GridPool(nn.Module):
    """Pooling onto a fixed grid of cells with torch's adaptive bins, ``max`` or ``avg`` over each cell.

    Max: a defect of a few pixels lights a few feature pixels; averaged over its cell it fades into the
    misregistration noise of a new board design, its maximum does not (measured: bench/unseen_designs.py). Avg is
    the pooling of checkpoints made before (they record none). Both are written without adaptive pooling ops,
    whose ONNX export fails when the grid does not divide the feature map (a 4-light 24 px sample: 12 x 3 onto
    16 x 4): avg as two matrix products, max as a max over each row band, then each column band. The bins
    depend only on the feature-map size, which an export fixes."""

    def __init__(self, grid: tuple[int, int], mode: str = "max"):
        super().__init__()
        self.grid = grid
        self.mode = mode
        self._matrices: dict = {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._max(x) if self.mode == "max" else self._avg(x)

    def _max(self, x: torch.Tensor) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])
        rows = torch.stack([x[..., s:e, :].amax(-2) for s, e in _bin_edges(height, self.grid[0])], -2)
        return torch.stack([rows[..., s:e].amax(-1) for s, e in _bin_edges(width, self.grid[1])], -1)

    def _avg(self, x: torch.Tensor) -> torch.Tensor:
        height, width = int(x.shape[-2]), int(x.shape[-1])
        key = (height, width, x.device, x.dtype)
        if key not in self._matrices:
            self._matrices[key] = (
                _bins(height, self.grid[0]).to(x.device, x.dtype),
                _bins(width, self.grid[1]).to(x.device, x.dtype).t(),
            )
        rows, cols = self._matrices[key]
        return torch.matmul(torch.matmul(rows, x), cols)


def _bin_edges(size: int, cells: int) -> list[tuple[int, int]]:
    """torch's adaptive bins: cell i covers [floor(i*size/cells), ceil((i+1)*size/cells))."""
    return [((i * size) // cells, -(-(i + 1) * size // cells)) for i in range(cells)]


def _bins(size: int, cells: int) -> torch.Tensor:
    """(cells, size): row i averages torch's adaptive bin [floor(i*size/cells), ceil((i+1)*size/cells))."""
    matrix = torch.zeros(cells, size)
    for i, (start, end) in enumerate(_bin_edges(size, cells)):
        matrix[i, start:end] = 1.0 / (end - start)
    return matrix


def _conv_bn(cin: int, cout: int, kernel: int, stride: int, padding: int) -> list[nn.Module]:
    conv = nn.Conv2d(cin, cout, kernel, stride=stride, padding=padding, bias=False)
    return [conv, nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


@register_model("Siamese_Grid")
def siamese_grid(*, input_shape, embedding_size: int, grid_pool: str = "max") -> GridEmbeddingNetwork:
    """This project's default: ~60 k parameters whatever the image size; embedding = 4 x 4 cells x E per square."""
    return GridEmbeddingNetwork(input_shape, embedding_size, pool=grid_pool)


def recorded_grid_pool(checkpoint: dict) -> str:
    """The pooling a Siamese_Grid checkpoint was trained with; those made before it was recorded used avg."""
    return str(checkpoint.get("grid_pool", "avg"))
