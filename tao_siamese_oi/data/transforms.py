"""Per-light decode, resize and normalisation, and the concatenation of lights into one tensor.

One code path for training, evaluation, inference and export parity: whatever reads images goes through
:class:`SidePreprocessor`, so a deployed model sees exactly what the trained one saw.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from tao_siamese_oi.data.pairs import image_path, light_order
from tao_siamese_oi.errors import ConfigError, DataError


@dataclass(frozen=True)
class Layout:
    """How N lights of H x W become one (3, rows*H, cols*W) tensor; linear = one column."""

    lights: tuple
    height: int
    width: int
    rows: int
    cols: int

    @property
    def shape(self) -> tuple[int, int, int]:
        return 3, self.rows * self.height, self.cols * self.width


def layout_from_config(dataset_cfg) -> Layout:
    lights = tuple(light_order(dataset_cfg.input_map, dataset_cfg.num_input))
    n = len(lights)
    if dataset_cfg.concat_type == "grid":
        cols, rows = dataset_cfg.grid_map.x, dataset_cfg.grid_map.y
        if cols * rows != n:
            raise ConfigError(
                f"dataset.grid_map x*y = {cols}*{rows} = {cols * rows} but there are {n} lights; "
                "make x*y equal dataset.num_input"
            )
    else:
        cols, rows = 1, n
    return Layout(lights, dataset_cfg.image_height, dataset_cfg.image_width, rows, cols)


def concat_lights(images: list[np.ndarray], layout: Layout) -> np.ndarray:
    """Place CHW light images row-major in the grid (linear: stacked along height, TAO's layout)."""
    rows = [np.concatenate(images[r * layout.cols : (r + 1) * layout.cols], axis=2) for r in range(layout.rows)]
    return np.concatenate(rows, axis=1)


class SidePreprocessor:
    """Load one side (input or golden) of a pair: every light, resized, normalised and concatenated."""

    def __init__(self, dataset_cfg):
        self.layout = layout_from_config(dataset_cfg)
        self.image_ext = dataset_cfg.image_ext
        aug = dataset_cfg.augmentation_config
        if len(aug.rgb_input_mean) != 3 or len(aug.rgb_input_std) != 3:
            raise ConfigError("dataset.augmentation_config.rgb_input_mean and rgb_input_std need 3 values each")
        if min(aug.rgb_input_std) <= 0:
            raise ConfigError("dataset.augmentation_config.rgb_input_std values must be > 0")
        self.mean = np.asarray(aug.rgb_input_mean, dtype=np.float32).reshape(3, 1, 1)
        self.std = np.asarray(aug.rgb_input_std, dtype=np.float32).reshape(3, 1, 1)

    def load(self, images_dir, side_dir: str, object_name: str) -> np.ndarray:
        images = [
            self._load_light(image_path(images_dir, side_dir, object_name, light, self.image_ext))
            for light in self.layout.lights
        ]
        return concat_lights(images, self.layout)

    def _load_light(self, path) -> np.ndarray:
        try:
            with Image.open(path) as img:
                rgb = img.convert("RGB").resize((self.layout.width, self.layout.height), Image.BILINEAR)
        except FileNotFoundError:
            raise DataError(f"image {path} not found; check images_dir, the CSV paths and dataset.image_ext") from None
        except (UnidentifiedImageError, OSError) as exc:
            raise DataError(f"image {path} cannot be decoded ({exc}); replace or remove it") from None
        chw = np.asarray(rgb, dtype=np.float32).transpose(2, 0, 1) / 255.0
        return (chw - self.mean) / self.std
