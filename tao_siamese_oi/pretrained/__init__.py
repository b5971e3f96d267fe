"""Pretrained models shipped in the package, named ``builtin:<name>`` wherever a spec takes a model file
(``train.pretrained_model_path``, ``evaluate.checkpoint``, ...): the starting point TAO ships as
``optical_inspection:trainable_v1.0``, here small enough to come with the package. How each was made and its
data's licence: README.md beside this file (bench/pretrained.py rebuilds and measures them)."""

from pathlib import Path

from tao_siamese_oi.errors import CheckpointError

PREFIX = "builtin:"
FOLDER = Path(__file__).parent

# name -> (file, what it is)
MODELS = {
    "siamese_grid_deeppcb": (
        "siamese_grid_deeppcb.pth",
        "Siamese_Grid (E=5, max-pooled cells) trained on DeepPCB's two public development designs, one light, "
        "64 x 64 crops, registration on; DeepPCB data: MIT licence",
    ),
}


def is_builtin(value) -> bool:
    return str(value).startswith(PREFIX)


def builtin_path(value) -> Path:
    """The file behind ``builtin:<name>``, or a one-line error naming the models there are."""
    name = str(value)[len(PREFIX) :]
    if name not in MODELS:
        raise CheckpointError(f"no pretrained model '{value}'; choose one of {', '.join(PREFIX + m for m in MODELS)}")
    return FOLDER / MODELS[name][0]
