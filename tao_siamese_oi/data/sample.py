"""A small synthetic PCB-component dataset in TAO's layout, so every shipped spec runs without user data.

Each component type is drawn on a board background under 4 lightings (each light tints and shades the scene
differently, as real AOI lights do). Goldens are clean renders, one per component per design; PASS inputs are
the same part with a 1 px placement jitter, brightness drift and sensor noise; FAIL inputs carry one defect:
a missing body, a shifted body, or a solder bridge between the pads.
"""

from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

LIGHTS = {
    "LowAngleLight": (0.55, (0.9, 0.8, 0.6)),
    "SolderLight": (0.9, (1.0, 0.9, 0.7)),
    "UniformLight": (1.0, (1.0, 1.0, 1.0)),
    "WhiteLight": (1.1, (0.95, 1.0, 1.05)),
}
DEFECTS = ("missing", "shifted", "bridge")
COMPONENTS = ("R", "C", "U")
# Any other light name gets one of these looks, by its position in the light list.
OTHER_LOOKS = [(0.7, (1.0, 0.85, 0.85)), (1.2, (0.9, 0.95, 1.1)), (0.8, (0.85, 1.05, 0.9))]
SLOTS_PER_BOARD = 8
SPLITS = {"train": (120, 40), "val": (30, 12), "test": (30, 12)}  # (PASS, FAIL) pairs per split


def _kind(slot: int) -> str:
    return COMPONENTS[slot % len(COMPONENTS)]


def _designator(slot: int) -> str:
    return f"{_kind(slot)}{slot + 1}"


def _draw_component(kind: str, size: int, defect: str | None, offset: tuple[int, int]) -> Image.Image:
    img = Image.new("RGB", (size, size), (24, 80, 40))  # solder-mask green
    d = ImageDraw.Draw(img)
    c = size // 2
    pad_w, pad_h = size // 6, size // 4
    for sx in (-1, 1):  # copper pads stay where the board has them
        x0 = c + sx * size // 4 - pad_w // 2
        d.rectangle([x0, c - pad_h // 2, x0 + pad_w, c + pad_h // 2], fill=(200, 170, 90))
    if defect == "bridge":
        d.rectangle([c - size // 4, c + pad_h // 2 - 2, c + size // 4, c + pad_h // 2 + 1], fill=(215, 215, 210))
    if defect == "missing":
        return img
    dx, dy = offset
    if defect == "shifted":
        dx, dy = dx + size // 6, dy + size // 8
    body = {
        "R": (size // 3, size // 6, (30, 30, 30)),
        "C": (size // 3, size // 5, (170, 120, 60)),
        "U": (size // 2 - 2, size // 3, (45, 45, 50)),
    }[kind]
    half_w, half_h, colour = body
    d.rectangle([c - half_w + dx, c - half_h + dy, c + half_w + dx, c + half_h + dy], fill=colour)
    if kind == "U":
        d.ellipse(
            [c - half_w + dx + 2, c - half_h + dy + 2, c - half_w + dx + 5, c - half_h + dy + 5],
            fill=(120, 120, 120),
        )
    return img


def _file_name(designator: str, light: str | None, image_ext: str) -> str:
    return f"{designator}_{light}{image_ext}" if light else f"{designator}{image_ext}"


def _light(img: Image.Image, light: str | None, position: int, rng, noise: float) -> Image.Image:
    gain, tint = (LIGHTS.get(light) if light else None) or OTHER_LOOKS[position % len(OTHER_LOOKS)]
    arr = np.asarray(img, dtype=np.float32) * gain * np.asarray(tint, dtype=np.float32)
    ramp = np.linspace(0.85, 1.15, arr.shape[1], dtype=np.float32)[None, :, None]  # light comes from one side
    arr = arr * (ramp if light == "LowAngleLight" else 1.0)
    arr += rng.normal(0, noise, arr.shape)
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8))


def make_sample_dataset(
    out_dir, size: int = 40, seed: int = 0, splits: dict | None = None, lights=None, image_ext: str = ".jpg"
) -> dict:
    """Write images and train/val/test/infer pair CSVs under ``out_dir``; return the CSV paths.

    ``lights``: light suffixes in order (default TAO's four); ``[None]`` writes one unsuffixed image per side.
    """
    lights = list(lights or LIGHTS)
    out = Path(out_dir)
    rng = np.random.default_rng(seed)
    images = out / "images"
    for slot in range(SLOTS_PER_BOARD):  # one golden per component of the design
        for position, light in enumerate(lights):
            path = images / "golden" / _file_name(_designator(slot), light, image_ext)
            path.parent.mkdir(parents=True, exist_ok=True)
            _light(_draw_component(_kind(slot), size, None, (0, 0)), light, position, rng, 0.0).save(path, quality=95)
    csvs = {}
    for split, (num_pass, num_fail) in (splits or SPLITS).items():
        rows = []
        labels = ["PASS"] * num_pass + [DEFECTS[i % len(DEFECTS)] for i in range(num_fail)]
        for i in rng.permutation(len(labels)):
            label = labels[i]
            slot = i % SLOTS_PER_BOARD
            board = f"{split}_board{i // SLOTS_PER_BOARD:03d}"
            dx, dy = (int(v) for v in rng.integers(-1, 2, size=2))
            offset = (dx, dy)
            defect = None if label == "PASS" else label
            gain = float(rng.uniform(0.95, 1.05))
            part = _draw_component(_kind(slot), size, defect, offset)
            for position, light in enumerate(lights):
                path = images / board / _file_name(_designator(slot), light, image_ext)
                path.parent.mkdir(parents=True, exist_ok=True)
                lit = _light(part, light, position, rng, 4.0)
                Image.fromarray(np.clip(np.asarray(lit) * gain, 0, 255).astype(np.uint8)).save(path, quality=95)
            rows.append(
                {
                    "input_path": board,
                    "golden_path": "golden",
                    "object_name": _designator(slot),
                    "label": label,
                    "defect_type": "" if label == "PASS" else label,
                    "component_type": _kind(slot),  # a part family, for evaluate.calibrate_by
                }
            )
        csvs[split] = out / f"{split}.csv"
        pd.DataFrame(rows).to_csv(csvs[split], index=False)
    if "test" in csvs:
        csvs["infer"] = csvs["test"]
    return csvs
