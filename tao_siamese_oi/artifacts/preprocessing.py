"""How a model's inputs are prepared, recorded with the model: in every checkpoint train writes (``preprocessing``)
and in every export sidecar (its top-level layout keys and ``preprocessing``). A model is scored only with a spec
that prepares pairs the same way; a difference is one line naming the spec key to set. Registration has a record of
its own (data/align.py), kept apart because models from before this record carry it alone.
"""

from tao_siamese_oi.config.schema import DatasetConfig
from tao_siamese_oi.errors import CheckpointError

# (record key, the spec key that sets it)
SPEC_KEYS = {
    "lights": "dataset.input_map",
    "concat_type": "dataset.concat_type",
    "grid_map": "dataset.grid_map",
    "image_height": "dataset.image_height",
    "image_width": "dataset.image_width",
    "mean": "dataset.augmentation_config.rgb_input_mean",
    "std": "dataset.augmentation_config.rgb_input_std",
}


def preprocessing_record(data: DatasetConfig) -> dict:
    """The light order, layout, size and normalisation the spec feeds a model with."""
    from tao_siamese_oi.data.transforms import layout_from_config

    aug = data.augmentation_config
    return {
        "lights": list(layout_from_config(data).lights),
        "concat_type": data.concat_type,
        "grid_map": {"x": data.grid_map.x, "y": data.grid_map.y} if data.concat_type == "grid" else None,
        "image_height": data.image_height,
        "image_width": data.image_width,
        "mean": list(aug.rgb_input_mean),
        "std": list(aug.rgb_input_std),
    }


def check_preprocessing(recorded: dict | None, data: DatasetConfig, model_file, made: str, fix: str) -> None:
    """Refuse a spec that would prepare inputs otherwise than ``recorded`` says the model was ``made`` with
    (trained, exported), in one line ending in ``fix`` (how to find the right value). A key the record lacks (an
    older model) is not compared."""
    wanted = preprocessing_record(data)
    for key, spec_key in SPEC_KEYS.items():
        value = (recorded or {}).get(key)
        if value is not None and value != wanted[key]:
            raise CheckpointError(
                f"{model_file} was {made} for {key} {str(value)[:80]} but the spec gives {wanted[key]}; set "
                f"{spec_key} {fix}"
            )
