"""Registration of an input to its golden before they are compared.

Tested and golden crops of one component are often misaligned by a few pixels (DeepPCB: up to ~10 px), and a Siamese
model trained on one board design learns that design's offsets: on a new design it flags the offsets. Removing the
global offset first leaves the model only the differences a defect makes.

The offset is the integer shift with the least squared difference (one for all lights of the crop: they are taken
by one camera at one position), searched within ``max_shift`` px. The input is then moved by it; the strip along
the edge it uncovers takes the golden's pixels, so that strip shows no difference (a defect there, within
``max_shift`` of the edge, is not seen). numpy's FFT: a 64 x 64 pair costs about 0.4 ms.
"""

import numpy as np
from scipy.ndimage import maximum_filter, minimum_filter

from tao_siamese_oi.errors import ConfigError

# A shift is applied only when it removes at least this share of the squared difference: a defect or a blank
# crop does not move the input about for nothing.
MIN_GAIN = 0.1


def estimate_shift(moving: np.ndarray, reference: np.ndarray, max_shift: int) -> tuple[int, int]:
    """(dy, dx) with moving[y, x] ~ reference[y - dy, x - dx], for (H, W) or a stack (N, H, W) of grey images that
    share one offset (lights of one crop: their differences are summed).

    The shift with the least squared difference over the input's centre (``max_shift`` in from every edge, so
    every candidate compares the same pixels), computed for all candidates at once with FFTs; among near ties the
    smallest shift wins, and a crop without structure (blank board) is left where it is. Least squares rather than
    phase correlation: on periodic tracks (a bus of parallel lines) phase correlation whitens the spectrum and
    picks a neighbouring line as often as the right one.
    """
    moving = np.asarray(moving, dtype=np.float32).reshape(-1, *np.shape(moving)[-2:])
    reference = np.asarray(reference, dtype=np.float32).reshape(-1, *np.shape(reference)[-2:])
    height, width = moving.shape[-2:]
    reach = min(max_shift, (height - 1) // 4, (width - 1) // 4)  # the centre keeps at least half of each side
    if reach <= 0:
        return 0, 0
    centre = moving[:, reach : height - reach, reach : width - reach]
    span = 2 * reach + 1
    # cross[o_y, o_x] = sum(centre * reference[o_y : o_y + h, o_x : o_x + w]), offsets 0..2*reach (no wrap-around).
    cross = np.fft.irfft2(
        np.fft.rfft2(reference) * np.conj(np.fft.rfft2(centre, s=(height, width))), s=(height, width)
    )[:, :span, :span]
    energy = _window_sums(reference**2, centre.shape[-2:])[:, :span, :span]
    ssd = (energy - 2 * cross).sum(axis=0) + float((centre**2).sum())  # (span, span) over offsets
    # offset o = reach - d for shift d; a tiny cost per pixel of shift settles near ties towards the smallest shift
    shifts = reach - np.arange(span)
    scale = max(float(ssd[reach, reach]), 1.0)
    ssd = ssd + scale * 1e-3 * (shifts[:, None] ** 2 + shifts[None, :] ** 2)
    best = np.unravel_index(int(np.argmin(ssd)), ssd.shape)
    if ssd[best] >= ssd[reach, reach] * (1 - MIN_GAIN):
        return 0, 0  # no shift explains the input much better than none: keep it
    return int(shifts[best[0]]), int(shifts[best[1]])


def _window_sums(images: np.ndarray, window: tuple[int, int]) -> np.ndarray:
    """Sums of every (h, w) window of each image, indexed by the window's top-left corner (integral images)."""
    h, w = window
    integral = np.pad(images.cumsum(axis=-2, dtype=np.float64).cumsum(axis=-1), ((0, 0), (1, 0), (1, 0)))
    return integral[:, h:, w:] - integral[:, :-h, w:] - integral[:, h:, :-w] + integral[:, :-h, :-w]


def shift_onto(moving: np.ndarray, reference: np.ndarray, dy: int, dx: int, out: np.ndarray | None = None):
    """``moving`` moved by (-dy, -dx) so it lies on ``reference``; the uncovered edge strip is the reference's.
    Works on (..., H, W) arrays; ``out`` may be ``moving`` itself."""
    if out is None:
        out = np.empty_like(moving)
    if dy == 0 and dx == 0:
        if out is not moving:
            out[...] = moving
        return out
    height, width = moving.shape[-2:]
    aligned = reference.copy()
    ys, yd = _spans(dy, height)
    xs, xd = _spans(dx, width)
    aligned[..., yd, xd] = moving[..., ys, xs]
    out[...] = aligned
    return out


def _spans(shift: int, size: int) -> tuple[slice, slice]:
    """Source and destination slices along one axis: aligned[i] = moving[i + shift] where that exists."""
    if shift >= 0:
        return slice(shift, size), slice(0, size - shift)
    return slice(0, size + shift), slice(-shift, size)


def align_to_golden(image_chw: np.ndarray, golden_chw: np.ndarray, blocks, alignment) -> tuple[int, int]:
    """Register the input (3, H, W, uint8, in place) to its golden as ``alignment`` (dataset.alignment) says;
    ``blocks`` maps each to its light views (transforms.light_views). One shift for every light, returned; then,
    with ``tiles`` > 1, each of tiles x tiles parts of the crop is moved again by up to ``tile_shift`` px (boards
    stretch: one offset rarely fits a whole crop); then, with ``tolerance``, what a smaller misfit leaves is
    forgiven (tolerate_misfit)."""
    image_lights, golden_lights = blocks(image_chw), blocks(golden_chw)
    dy, dx = _register(image_lights, golden_lights, alignment.max_shift, alignment.tiles, alignment.tile_shift)
    if alignment.tolerance > 0:
        for view, golden_view in zip(image_lights, golden_lights):  # a light's neighbourhood is its own
            tolerate_misfit(view, golden_view, alignment.tolerance)
    return dy, dx


def tolerate_misfit(image_chw: np.ndarray, golden_chw: np.ndarray, reach: int) -> None:
    """Keep only what of each input pixel lies outside the range of its golden's pixels within ``reach`` px, per
    channel (in place): input := golden + (input - clip(input, that range)).

    The classical AOI tolerance: a track edge up to ``reach`` px off its golden (a stretched board, another track
    width) has a value the golden has nearby, so it leaves no difference, while a speck, a spur or a hole in copper
    has nothing of its brightness near it on the golden and stays whole. Defects no deeper than ``reach`` px along
    an edge are forgiven with the misfit."""
    size = (1, 2 * reach + 1, 2 * reach + 1)
    golden = golden_chw.astype(np.int16)
    low = minimum_filter(golden, size=size, mode="nearest")
    high = maximum_filter(golden, size=size, mode="nearest")
    image = image_chw.astype(np.int16)
    image_chw[...] = golden + image - np.clip(image, low, high)


def _register(image_lights, golden_lights, max_shift: int, tiles: int, tile_shift: int) -> tuple[int, int]:
    grey = np.stack([_grey(view) for view in image_lights])
    grey_golden = np.stack([_grey(view) for view in golden_lights])
    dy, dx = estimate_shift(grey, grey_golden, max_shift)
    if dy or dx:
        for view, golden_view in zip(image_lights, golden_lights):
            view[...] = shift_onto(view, golden_view, dy, dx)
    if tiles > 1 and tile_shift > 0:
        grey = np.stack([_grey(view) for view in image_lights])
        moved = [view.copy() for view in image_lights]  # tiles take their pixels from the globally aligned input
        for rows, cols in _tiles(grey.shape[-2:], tiles):
            ty, tx = estimate_shift(grey[:, rows, cols], grey_golden[:, rows, cols], tile_shift)
            if ty or tx:
                for view, source, golden_view in zip(image_lights, moved, golden_lights):
                    view[:, rows, cols] = _window(source, golden_view, rows, cols, ty, tx)
    return dy, dx


def _grey(chw: np.ndarray) -> np.ndarray:
    """Sum of the channels: the least-squares shift does not depend on the scale."""
    return chw.sum(axis=0, dtype=np.float32)


def _tiles(shape: tuple[int, int], tiles: int) -> list[tuple[slice, slice]]:
    height, width = shape
    ys = [round(i * height / tiles) for i in range(tiles + 1)]
    xs = [round(i * width / tiles) for i in range(tiles + 1)]
    return [(slice(ys[i], ys[i + 1]), slice(xs[j], xs[j + 1])) for i in range(tiles) for j in range(tiles)]


def _window(source: np.ndarray, reference: np.ndarray, rows: slice, cols: slice, dy: int, dx: int) -> np.ndarray:
    """source[..., rows + dy, cols + dx], the reference's pixels where that falls outside the image."""
    height, width = source.shape[-2:]
    out = reference[..., rows, cols].copy()
    y0, y1, x0, x1 = rows.start + dy, rows.stop + dy, cols.start + dx, cols.stop + dx
    cy0, cy1, cx0, cx1 = max(y0, 0), min(y1, height), max(x0, 0), min(x1, width)
    out[..., cy0 - y0 : cy1 - y0, cx0 - x0 : cx1 - x0] = source[..., cy0:cy1, cx0:cx1]
    return out


def alignment_record(dataset_cfg) -> dict | None:
    """What checkpoints and sidecars record of the registration a model was trained with (None: off)."""
    a = dataset_cfg.alignment
    if not a.enable:
        return None
    record = {"max_shift": a.max_shift, "tiles": a.tiles, "tile_shift": a.tile_shift}
    # Recorded only when on: models trained before it existed record three keys and still load.
    return record | {"tolerance": a.tolerance} if a.tolerance else record


def check_alignment(recorded: dict | None, dataset_cfg, model_file) -> None:
    """A model scores pairs prepared as in its training: refuse a spec whose dataset.alignment differs."""
    wanted = alignment_record(dataset_cfg)
    if recorded == wanted:
        return
    if recorded is None:
        fix = "set dataset.alignment.enable=false (or retrain with registration)"
    else:
        fix = "set dataset.alignment.enable=true, " + ", ".join(
            f"dataset.alignment.{k}={v}" for k, v in recorded.items()
        )
    raise ConfigError(
        f"{model_file} was trained {'without registration' if recorded is None else f'with registration {recorded}'}"
        f" but the spec asks for {'none' if wanted is None else wanted}; {fix}"
    )
