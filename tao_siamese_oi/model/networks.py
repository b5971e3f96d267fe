"""Siamese networks and their registry.

Siamese_3 and Siamese_1 reproduce TAO's SiameseOI exactly: a 3-block conv tower without stride or pooling
(1,032 parameters, 7x7 receptive field) flattened into a fully-connected head. The attribute names ``cnn1`` and
``fc1`` follow TAO's state-dict layout so TAO checkpoints can load.
"""

from collections.abc import Callable

import torch
from torch import nn

from tao_siamese_oi.errors import ConfigError

_REGISTRY: dict[str, Callable[..., nn.Module]] = {}
# TAO calls the v1 head "Siamese".
ALIASES = {"Siamese": "Siamese_1"}


def register_model(name: str):
    def wrap(builder):
        _REGISTRY[name] = builder
        return builder

    return wrap


def available_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, *, input_shape: tuple[int, int, int], embedding_size: int) -> nn.Module:
    """Build a registered model for (C, H, W) inputs of one side."""
    key = ALIASES.get(name, name)
    if key not in _REGISTRY:
        raise ConfigError(f"model.model_type '{name}' is unknown; choose one of {', '.join(available_models())}")
    return _REGISTRY[key](input_shape=input_shape, embedding_size=embedding_size)


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
    return nn.functional.pairwise_distance(out_1, out_2, eps=1e-6)
