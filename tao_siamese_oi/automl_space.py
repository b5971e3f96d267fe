"""What the job service's AutoML may change in a training (protocol 1.6 ``automl``), plain data for the plugin
declaration: each parameter's range is stated here, its default and choices come from the schema."""

import dataclasses
from typing import Any

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.model_files import CHECKPOINT_EXT

# (dotted key, value_type, valid_min, valid_max, log scale); categorical ones take the schema's choices
RANGES = (
    ("train.optim.lr", "float", 1e-5, 5e-3, True),
    ("model.margin", "float", 0.5, 4.0, False),
    ("model.embedding_vectors", "int", 2, 16, False),
    ("dataset.fpratio_sampling", "float", 0.05, 2.0, True),
    ("dataset.alignment.tolerance", "int", 0, 2, False),
    ("model.grid_pool", "categorical", None, None, False),
)
# val_auroc: threshold-free, every epoch (train.validation_interval 1), on the training design's held-out boards
METRIC = "val_auroc"


def _field(key: str) -> dataclasses.Field:
    config: Any = ExperimentConfig
    *parents, last = key.split(".")
    for part in parents:
        config = next(f.type for f in dataclasses.fields(config) if f.name == part)
    return next(f for f in dataclasses.fields(config) if f.name == last)


def _default(key: str):
    value = ExperimentConfig()
    for part in key.split("."):
        value = getattr(value, part)
    return value


def _parameter(key: str, kind: str, low, high, log: bool) -> dict:
    declared = {"parameter": key, "value_type": kind, "default_value": _default(key)}
    if kind == "categorical":
        return {**declared, "valid_options": list(_field(key).metadata["choices"])}
    return {**declared, "valid_min": low, "valid_max": high, "log": log}


AUTOML = {
    "metric": METRIC,
    "direction": "maximize",
    "epochs_key": "train.num_epochs",
    "checkpoint_files": [f"train/*{CHECKPOINT_EXT}"],
    "parameters": [_parameter(*item) for item in RANGES],
}
