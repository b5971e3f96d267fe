"""The four TAO splits, each checked and wrapped as a dataset. No Lightning: validate and deployment scoring use
this without it; the Lightning data module (datamodule.py) builds on it."""

from tao_siamese_oi.config.schema import DatasetConfig
from tao_siamese_oi.data.dataset import PairDataset
from tao_siamese_oi.data.validate import validate_split
from tao_siamese_oi.errors import ConfigError

SPLIT_KEYS = {
    "train": "train_dataset",
    "validation": "validation_dataset",
    "test": "test_dataset",
    "infer": "infer_dataset",
}


def build_dataset(dataset_cfg: DatasetConfig, split: str, seed: int = 0, load_goldens: bool = True) -> PairDataset:
    """Validate a split (every problem reported at once) and wrap it as a dataset."""
    key = SPLIT_KEYS[split]
    paths = getattr(dataset_cfg, key)
    if not paths.csv_path:
        raise ConfigError(f"dataset.{key}.csv_path is not set; point it at the {split} pair CSV")
    if not paths.images_dir:
        raise ConfigError(f"dataset.{key}.images_dir is not set; point it at the image root of that CSV")
    table = validate_split(dataset_cfg, key, training=split == "train", seed=max(seed, 0))
    # Training pairs get the augmentations the config turns on; other splits are scored as they are.
    return PairDataset(
        table, paths.images_dir, dataset_cfg, augment=split == "train", seed=max(seed, 0), load_goldens=load_goldens
    )
