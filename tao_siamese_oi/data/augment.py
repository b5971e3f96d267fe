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


class InputSideAugmenter:
    """Training changes of the input alone, the golden untouched, each off unless configured: a smooth bend
    (``input_warp``) and a translation (``input_shift``: the misregistration a new design's crops show), a 1 px
    erosion or dilation (``input_line_width``: another etch), a brightness/contrast change (``input_intensity``:
    another camera gain). Labels are kept: a good part so changed is still good, and a defect stays in the crop.
    None of them beat registration on new designs (docs/unseen_designs.md); they stay as options."""

    def __init__(self, aug_cfg):
        self.max_shift = aug_cfg.input_shift
        self.intensity = aug_cfg.input_intensity
        self.line_width = aug_cfg.input_line_width
        self.warp = aug_cfg.input_warp

    @property
    def active(self) -> bool:
        return self.max_shift > 0 or self.intensity > 0 or self.line_width > 0 or self.warp > 0

    def apply(self, views: list[np.ndarray], rng: np.random.Generator) -> None:
        """Change the input's light views (C, H, W uint8) in place, every light alike."""
        dy, dx = (int(v) for v in rng.integers(-self.max_shift, self.max_shift + 1, 2)) if self.max_shift else (0, 0)
        gain = float(rng.uniform(1 - self.intensity, 1 + self.intensity)) if self.intensity else 1.0
        contrast = float(rng.uniform(1 - self.intensity, 1 + self.intensity)) if self.intensity else 1.0
        morphology = None
        if self.line_width and rng.random() < self.line_width:
            morphology = np.maximum if rng.random() < 0.5 else np.minimum  # dilate or erode bright tracks
        field = smooth_field(views[0].shape[-2:], self.warp, rng) if self.warp else None
        for view in views:
            if field is not None:
                view[...] = warped(view, field)
            if dy or dx:
                view[...] = shifted_edge(view, dy, dx)
            if morphology is not None:
                view[...] = neighbourhood(view, morphology)
            if gain != 1.0 or contrast != 1.0:
                mean = float(view.mean())
                view[...] = np.clip((view.astype(np.float32) - mean) * contrast + mean * gain, 0, 255).round()


WARP_KNOTS = 4  # control points per side of the displacement field: bends over a quarter of the crop


def smooth_field(shape: tuple[int, int], amplitude: float, rng: np.random.Generator) -> np.ndarray:
    """(2, H, W) displacements (dy, dx) in px, each within +- ``amplitude``: random values on a coarse grid of
    knots, interpolated bilinearly, so neighbouring pixels move together (a board that stretches, not noise)."""
    knots = rng.uniform(-amplitude, amplitude, (2, WARP_KNOTS, WARP_KNOTS)).astype(np.float32)
    height, width = shape
    ys = np.linspace(0, WARP_KNOTS - 1, height, dtype=np.float32)
    xs = np.linspace(0, WARP_KNOTS - 1, width, dtype=np.float32)
    return _bilinear(knots, ys[:, None] + 0 * xs[None, :], xs[None, :] + 0 * ys[:, None])


def warped(chw: np.ndarray, field: np.ndarray) -> np.ndarray:
    """out[y, x] = chw[y + dy(y, x), x + dx(y, x)], bilinear, clamped at the edges; uint8."""
    height, width = chw.shape[-2:]
    ys = np.arange(height, dtype=np.float32)[:, None] + field[0]
    xs = np.arange(width, dtype=np.float32)[None, :] + field[1]
    return np.clip(_bilinear(chw.astype(np.float32), ys, xs).round(), 0, 255).astype(np.uint8)


def _bilinear(values: np.ndarray, ys: np.ndarray, xs: np.ndarray) -> np.ndarray:
    """values (C, h, w) sampled at float coordinates (ys, xs) of one shape, clamped into the array."""
    height, width = values.shape[-2:]
    ys = np.clip(ys, 0, height - 1)
    xs = np.clip(xs, 0, width - 1)
    y0 = np.minimum(np.floor(ys).astype(np.int64), height - 2) if height > 1 else np.zeros(ys.shape, np.int64)
    x0 = np.minimum(np.floor(xs).astype(np.int64), width - 2) if width > 1 else np.zeros(xs.shape, np.int64)
    wy, wx = ys - y0, xs - x0
    y1, x1 = np.minimum(y0 + 1, height - 1), np.minimum(x0 + 1, width - 1)
    top = values[:, y0, x0] * (1 - wx) + values[:, y0, x1] * wx
    bottom = values[:, y1, x0] * (1 - wx) + values[:, y1, x1] * wx
    return top * (1 - wy) + bottom * wy


def neighbourhood(chw: np.ndarray, reduce) -> np.ndarray:
    """``reduce`` (np.maximum: dilation, np.minimum: erosion) over each pixel's 3 x 3 neighbourhood."""
    height, width = chw.shape[-2:]
    padded = np.pad(chw, ((0, 0), (1, 1), (1, 1)), mode="edge")
    out = padded[:, 1 : height + 1, 1 : width + 1].copy()
    for dy in range(3):
        for dx in range(3):
            reduce(out, padded[:, dy : dy + height, dx : dx + width], out=out)
    return out


def shifted_edge(chw: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """out[y, x] = chw[y + dy, x + dx]; the uncovered strip repeats the nearest edge pixels."""
    height, width = chw.shape[-2:]
    pad = ((0, 0), (max(-dy, 0), max(dy, 0)), (max(-dx, 0), max(dx, 0)))
    padded = np.pad(chw, pad, mode="edge")
    top, left = max(dy, 0), max(dx, 0)
    return padded[:, top : top + height, left : left + width]
