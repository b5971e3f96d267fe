"""Per-light decode and resize, the concatenation of lights into one image, and normalisation.

One code path for training, evaluation, inference and export parity. Loading stops at uint8 (C, H, W):
decoded with Pillow's JPEG draft mode (the DCT scales down by 2/4/8 while decoding, far cheaper than a full
decode for crops much larger than the target), resized bilinearly, concatenated. :class:`Normalizer` then
turns whole batches into floats on the training device, which keeps the loader workers' output 4x smaller and
the float work vectorised.
"""

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np
from PIL import Image, UnidentifiedImageError

from tao_siamese_oi.data.pairs import image_path, light_order
from tao_siamese_oi.errors import ConfigError, DataError


@dataclass(frozen=True)
class Layout:
    """How N lights of H x W become one (3, rows*H, cols*W) image; linear = one column."""

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
    """Place HWC light images row-major in the grid (linear: stacked along height, TAO's layout); returns CHW."""
    rows = [np.concatenate(images[r * layout.cols : (r + 1) * layout.cols], axis=1) for r in range(layout.rows)]
    return np.ascontiguousarray(np.concatenate(rows, axis=0).transpose(2, 0, 1))


def decode_resized(path, width: int, height: int) -> np.ndarray:
    """One light: decode (JPEG draft mode where it helps), convert to RGB, resize; HWC uint8."""
    try:
        with Image.open(path) as img:
            # JPEG only: let the DCT scale down while decoding, but never below twice the target, so the
            # antialiased resize below still does the final step and the result stays within about one grey
            # level of a full decode (tested); decoding to the target directly drifts by ~10 on sharp edges.
            img.draft("RGB", (2 * width, 2 * height))
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise DataError(f"image {path} not found; check images_dir, the CSV paths and dataset.image_ext") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"image {path} cannot be decoded ({exc}); replace or remove it") from None
    if rgb.size != (width, height):
        rgb = rgb.resize((width, height), Image.BILINEAR)
    return np.asarray(rgb)


class SideLoader:
    """Load one side of a pair (the input or a golden): every light, decoded, resized and concatenated.

    ``cache_size`` > 0 keeps that many decoded light sets (LRU): goldens are shared by many inputs, so each is
    decoded once per worker instead of once per pair. ``augment`` (a callable applied to every light with the
    same parameters) runs on a copy, never on the cached arrays.
    """

    def __init__(self, dataset_cfg, cache_size: int = 0):
        self.layout = layout_from_config(dataset_cfg)
        self.image_ext = dataset_cfg.image_ext
        self.cache_size = cache_size
        self._cache: OrderedDict = OrderedDict()

    def paths(self, images_dir, side_dir: str, stem: str) -> list:
        return [image_path(images_dir, side_dir, stem, light, self.image_ext) for light in self.layout.lights]

    def lights(self, images_dir, side_dir: str, stem: str) -> list[np.ndarray]:
        key = (str(images_dir), side_dir, stem)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        images = [decode_resized(p, self.layout.width, self.layout.height) for p in self.paths(*key)]
        if self.cache_size:
            self._cache[key] = images
            if len(self._cache) > self.cache_size:
                self._cache.popitem(last=False)
        return images

    def load(self, images_dir, side_dir: str, stem: str, augment=None) -> np.ndarray:
        images = self.lights(images_dir, side_dir, stem)
        if augment is not None:
            images = [augment(image) for image in images]
        return concat_lights(images, self.layout)


class Normalizer:
    """uint8 (..., 3, H, W) -> float32 ((x / 255) - mean) / std, for torch tensors or numpy arrays."""

    def __init__(self, mean, std):
        if len(mean) != 3 or len(std) != 3:
            raise ConfigError("dataset.augmentation_config.rgb_input_mean and rgb_input_std need 3 values each")
        if min(std) <= 0:
            raise ConfigError("dataset.augmentation_config.rgb_input_std values must be > 0")
        std = np.asarray(std, dtype=np.float64)
        # One multiply-add per element instead of divide, subtract, divide.
        self.scale = (1.0 / (255.0 * std)).astype(np.float32).reshape(3, 1, 1)
        self.shift = (-np.asarray(mean, dtype=np.float64) / std).astype(np.float32).reshape(3, 1, 1)

    @classmethod
    def from_config(cls, dataset_cfg) -> "Normalizer":
        aug = dataset_cfg.augmentation_config
        return cls(list(aug.rgb_input_mean), list(aug.rgb_input_std))

    def __call__(self, images):
        if isinstance(images, np.ndarray):
            return images.astype(np.float32) * self.scale + self.shift
        import torch

        scale = torch.as_tensor(self.scale, device=images.device)
        shift = torch.as_tensor(self.shift, device=images.device)
        return images.float() * scale + shift
