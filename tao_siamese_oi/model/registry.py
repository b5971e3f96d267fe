"""The model registry: every model type's name, aliases and backbone, stated once (no torch here).

The schema takes model.model_type's and model.model_backbone's choices from it; networks.py registers one
builder per name. Registering a name twice warns (the later builder wins, as with timm's registry).
"""

import warnings
from collections.abc import Callable
from dataclasses import dataclass

from tao_siamese_oi.errors import ConfigError


@dataclass(frozen=True)
class ModelType:
    name: str
    backbone: str  # what model.model_backbone may say for it
    aliases: tuple[str, ...] = ()
    spatial: bool = False  # its embedding is a grid of cells (embedding_grid): a per-cell map exists


MODEL_TYPES = {
    t.name: t
    for t in (
        ModelType("Siamese_Grid", "grid", spatial=True),
        ModelType("Siamese_3", "custom"),
        ModelType("Siamese_1", "custom", aliases=("Siamese",)),  # TAO calls the v1 head "Siamese"
    )
}
ALIASES = {alias: t.name for t in MODEL_TYPES.values() for alias in t.aliases}
MODEL_TYPE_CHOICES = [*MODEL_TYPES, *ALIASES]
BACKBONE_CHOICES = sorted({t.backbone for t in MODEL_TYPES.values()})

_BUILDERS: dict[str, Callable] = {}


def canonical(name: str) -> str:
    return ALIASES.get(name, name)


def embedding_grid(input_shape) -> tuple[int, int]:
    """Siamese_Grid's cells: 4 x 4 per square; one light 4 x 4, four lights stacked (linear) 16 x 4, a 2 x 2 grid
    of lights 4 x 4 ..."""
    _, height, width = input_shape
    if height >= width:
        return 4 * max(1, round(height / width)), 4
    return 4, 4 * max(1, round(width / height))


def spatial_grid(model_type: str, input_shape) -> tuple[int, int] | None:
    """(rows, cols) of a model's cell grid for an input shape; None for a model without one."""
    declared = MODEL_TYPES.get(canonical(model_type))
    return embedding_grid(input_shape) if declared is not None and declared.spatial else None


def register_model(name: str):
    """Decorator: ``builder(input_shape=, embedding_size=)`` builds the model type ``name``."""
    if name not in MODEL_TYPES:
        raise ValueError(f"model type '{name}' is not declared in registry.MODEL_TYPES; declare it there first")

    def wrap(builder):
        if name in _BUILDERS and _BUILDERS[name] is not builder:
            warnings.warn(
                f"model type '{name}' is registered twice; the later builder replaces the first", stacklevel=2
            )
        _BUILDERS[name] = builder
        return builder

    return wrap


def builder(name: str) -> Callable:
    key = canonical(name)
    if key not in _BUILDERS:
        raise ConfigError(f"model.model_type '{name}' is unknown; choose one of {', '.join(sorted(_BUILDERS))}")
    return _BUILDERS[key]


def available_models() -> list[str]:
    return sorted(_BUILDERS)


def check_backbone(model_type: str, backbone: str | None) -> None:
    """model.model_backbone names the model type's tower; a mismatch is a spec mistake, said in one line."""
    declared = MODEL_TYPES.get(canonical(model_type))
    if backbone is not None and declared is not None and backbone != declared.backbone:
        raise ConfigError(
            f"model.model_backbone '{backbone}' does not go with model.model_type '{model_type}' (its backbone is "
            f"'{declared.backbone}'); remove model_backbone or set model_type to "
            + " / ".join(t.name for t in MODEL_TYPES.values() if t.backbone == backbone)
        )
