"""Paired training augmentation: one random draw per pair, applied identically to every light of the input and
of every golden, so the model never sees a difference the augmentation made up.

Fixed against TAO: the colour change fires with ``color_probability`` (TAO: 1 - p); crop and blur fire with their
own probabilities (TAO: always); rotation draws from the whole ``angle_list`` (TAO: its first 3 entries).
Augmentation runs after the resize, on uint8 images; a 90/270-degree turn of a non-square image is resized back.
"""

from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageEnhance, ImageFilter

from tao_siamese_oi.errors import ConfigError


@dataclass(frozen=True)
class AugmentParams:
    hflip: bool = False
    vflip: bool = False
    angle: float = 0.0
    crop: tuple[float, float, float, float] | None = None  # left, top, right, bottom as fractions
    color: tuple[float, float, float, float] | None = None  # brightness, contrast, saturation, hue shift
    blur: float = 0.0

    def apply(self, image: np.ndarray) -> np.ndarray:
        img = Image.fromarray(image)
        size = img.size
        if self.hflip:
            img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        if self.vflip:
            img = img.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        if self.angle:
            img = img.rotate(self.angle, resample=Image.Resampling.BILINEAR, expand=self.angle % 90 == 0)
        if self.crop:
            w, h = img.size
            left, top, right, bottom = self.crop
            img = img.crop((round(left * w), round(top * h), round(right * w), round(bottom * h)))
        if img.size != size:
            img = img.resize(size, Image.Resampling.BILINEAR)
        if self.color:
            img = _color(img, *self.color)
        if self.blur > 0:
            img = img.filter(ImageFilter.GaussianBlur(self.blur))
        return np.asarray(img)


def _color(img: Image.Image, brightness: float, contrast: float, saturation: float, hue: float) -> Image.Image:
    img = ImageEnhance.Brightness(img).enhance(brightness)
    img = ImageEnhance.Contrast(img).enhance(contrast)
    img = ImageEnhance.Color(img).enhance(saturation)
    if hue:
        hsv = np.asarray(img.convert("HSV")).copy()
        hsv[..., 0] = (hsv[..., 0].astype(np.int16) + round(hue * 255)) % 256
        img = Image.fromarray(hsv, "HSV").convert("RGB")
    return img


class PairAugmenter:
    def __init__(self, aug_cfg):
        self.cfg = aug_cfg
        low, high = (list(aug_cfg.crop_scale) + [None, None])[:2]
        if high is None or not 0 < low <= high <= 1:
            raise ConfigError("dataset.augmentation_config.crop_scale must be [min, max] with 0 < min <= max <= 1")
        if aug_cfg.random_rotate.enable and not aug_cfg.random_rotate.angle_list:
            raise ConfigError(
                "dataset.augmentation_config.random_rotate.angle_list is empty; add angles or "
                "set random_rotate.enable=false"
            )

    def draw(self, rng: np.random.Generator) -> AugmentParams:
        cfg = self.cfg
        flip, rotate, color = cfg.random_flip, cfg.random_rotate, cfg.random_color
        params: dict[str, object] = {}
        if flip.enable:
            params["hflip"] = bool(rng.random() < flip.hflip_probability)
            params["vflip"] = bool(rng.random() < flip.vflip_probability)
        if rotate.enable and rng.random() < rotate.rotate_probability:
            params["angle"] = float(rng.choice(list(rotate.angle_list)))
        if cfg.with_random_crop and rng.random() < cfg.crop_probability:
            params["crop"] = _crop_box(rng, *cfg.crop_scale)
        if color.enable and rng.random() < color.color_probability:
            params["color"] = (
                float(rng.uniform(max(0.0, 1 - color.brightness), 1 + color.brightness)),
                float(rng.uniform(max(0.0, 1 - color.contrast), 1 + color.contrast)),
                float(rng.uniform(max(0.0, 1 - color.saturation), 1 + color.saturation)),
                float(rng.uniform(-color.hue, color.hue)),
            )
        if cfg.with_random_blur and rng.random() < cfg.blur_probability:
            params["blur"] = float(rng.uniform(0.0, cfg.blur_max_radius))
        return AugmentParams(**params)  # type: ignore[arg-type]  # each key is one of its fields


def _crop_box(rng: np.random.Generator, low: float, high: float) -> tuple[float, float, float, float]:
    side = float(np.sqrt(rng.uniform(low, high)))  # same fraction of width and height: aspect ratio kept
    left = float(rng.uniform(0, 1 - side))
    top = float(rng.uniform(0, 1 - side))
    return left, top, left + side, top + side
