"""DeepPCB -> pair CSVs: component-sized crops of aligned template (golden) and tested board images.

DeepPCB layout (``<root>/PCBData``): ``groupG/G/NNNNNNNN_temp.jpg`` (template) and ``_test.jpg`` (tested board),
``groupG/G_not/NNNNNNNN.txt`` with one defect per line (``x1 y1 x2 y2 type``, space or comma separated, type 1-6),
and the official ``trainval.txt`` / ``test.txt`` lists of image pairs.

Each defect gives a FAIL crop centred (with a small seeded jitter) on its box, at least ``crop_size`` wide and large
enough to hold the box; ``pass_crops_per_image`` defect-free crops are drawn where no box (plus a margin) is.
Crops of one board image never straddle splits: test = the official test list, validation = a seeded
``val_fraction`` of the trainval images. Crops are written as PNG (lossless), one light, no input_map.
"""

import dataclasses
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image

from tao_siamese_oi.config import require
from tao_siamese_oi.config.schema import DatasetConvertConfig
from tao_siamese_oi.errors import DataError
from tao_siamese_oi.utils.progress import progress

log = logging.getLogger("tao_siamese_oi")

DEFECT_TYPES = {1: "open", 2: "short", 3: "mousebite", 4: "spur", 5: "copper", 6: "pin-hole"}
MARGIN = 4  # px kept between a PASS crop and any defect box
BOX_COLUMNS = ("box_x1", "box_y1", "box_x2", "box_y2")
MAX_TRIES = 200


@dataclass(frozen=True)
class BoardImage:
    group: str
    image_id: str
    template: Path
    tested: Path
    boxes: tuple  # (x1, y1, x2, y2, type)


def read_list(root: Path, name: str) -> list[BoardImage]:
    listing = root / "PCBData" / name
    if not listing.is_file():
        raise DataError(f"{listing} not found; dataset_convert.root_dataset_dir must hold DeepPCB's PCBData/")
    boards = []
    for number, text in enumerate(listing.read_text().splitlines(), start=1):
        if not text.strip():
            continue
        try:
            image_rel, boxes_rel = text.split()
        except ValueError:
            raise DataError(f"{listing} line {number}: expected '<image>.jpg <annotation>.txt'") from None
        stem = root / "PCBData" / image_rel[: -len(".jpg")]
        boards.append(
            BoardImage(
                stem.parent.name,
                stem.name,
                Path(f"{stem}_temp.jpg"),
                Path(f"{stem}_test.jpg"),
                read_boxes(root / "PCBData" / boxes_rel),
            )
        )
    return boards


def read_boxes(path: Path) -> tuple:
    if not path.is_file():
        raise DataError(f"annotation {path} not found")
    boxes = []
    for number, text in enumerate(path.read_text().splitlines(), start=1):
        fields = [f for f in re.split(r"[,\s]+", text.strip()) if f]
        if not fields:
            continue
        if len(fields) != 5 or int(fields[4]) not in DEFECT_TYPES:
            raise DataError(f"annotation {path} line {number}: expected 'x1 y1 x2 y2 type' with type 1-6")
        boxes.append(tuple(int(f) for f in fields))
    return tuple(boxes)


def _fit(center: float, size: int, limit: int) -> int:
    return int(min(max(round(center - size / 2), 0), limit - size))


def defect_crops(board: BoardImage, crop_size: int, width: int, height: int, rng) -> list[tuple]:
    crops = []
    for x1, y1, x2, y2, kind in board.boxes:
        size = min(max(crop_size, x2 - x1 + 2 * MARGIN, y2 - y1 + 2 * MARGIN), width, height)
        slack_x, slack_y = (size - (x2 - x1)) / 2 - MARGIN, (size - (y2 - y1)) / 2 - MARGIN
        cx = (x1 + x2) / 2 + rng.uniform(-1, 1) * max(slack_x, 0) * 0.5
        cy = (y1 + y2) / 2 + rng.uniform(-1, 1) * max(slack_y, 0) * 0.5
        x, y = _fit(cx, size, width), _fit(cy, size, height)
        crops.append((x, y, size, DEFECT_TYPES[kind], (x1 - x, y1 - y, x2 - x, y2 - y)))
    return crops


def pass_crops(board: BoardImage, crop_size: int, count: int, width: int, height: int, rng) -> list[tuple]:
    crops: list[tuple] = []
    for _ in range(MAX_TRIES):
        if len(crops) == count:
            break
        x, y = int(rng.integers(0, width - crop_size + 1)), int(rng.integers(0, height - crop_size + 1))
        clear = all(
            x + crop_size <= bx1 - MARGIN or x >= bx2 + MARGIN or y + crop_size <= by1 - MARGIN or y >= by2 + MARGIN
            for bx1, by1, bx2, by2, _ in board.boxes
        )
        if clear:
            crops.append((x, y, crop_size, "PASS", None))
    return crops


def convert_deeppcb(convert_cfg: DatasetConvertConfig, out_dir: Path) -> dict:
    root = Path(
        require(convert_cfg.root_dataset_dir, "dataset_convert.root_dataset_dir", "the folder holding PCBData/")
    )
    rng = np.random.default_rng(convert_cfg.seed)
    limit = convert_cfg.max_images or None
    trainval = read_list(root, "trainval.txt")[:limit]
    order = rng.permutation(len(trainval))
    num_val = int(round(len(trainval) * convert_cfg.val_fraction))
    splits = {
        "train": [trainval[i] for i in sorted(order[num_val:])],
        "val": [trainval[i] for i in sorted(order[:num_val])],
        "test": read_list(root, "test.txt")[:limit],
    }
    summary: dict[str, dict] = {}
    for split, boards in splits.items():
        boards_shown = progress(boards, len(boards), f"cropping {split} boards", "board")
        rows = [row for board in boards_shown for row in _crop_board(board, convert_cfg, out_dir, rng)]
        frame = pd.DataFrame(rows)
        frame.to_csv(out_dir / f"{split}.csv", index=False)
        summary[split] = {
            "images": len(boards),
            "pairs": len(frame),
            "labels": {k: int(v) for k, v in frame["label"].value_counts().sort_index().items()},
        }
        log.info(
            "%s: %d board images -> %d pairs (%s)",
            split,
            len(boards),
            len(frame),
            ", ".join(f"{k} {v}" for k, v in summary[split]["labels"].items()),
        )
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    return summary


def _crop_board(board: BoardImage, convert_cfg: DatasetConvertConfig, out_dir: Path, rng) -> list[dict]:
    for path in (board.template, board.tested):
        if not path.is_file():
            raise DataError(f"DeepPCB image {path} not found")
    template = Image.open(board.template).convert("L")
    tested = Image.open(board.tested).convert("L")
    if template.size != tested.size:
        raise DataError(f"{board.tested} and {board.template} differ in size; DeepPCB pairs are aligned")
    if convert_cfg.scale != 1.0:
        template, tested, board = _rescaled(template, tested, board, convert_cfg.scale)
    width, height = tested.size
    size = convert_cfg.crop_size
    if size > min(width, height):
        raise DataError(
            f"{board.tested} is {width}x{height} px (dataset_convert.scale={convert_cfg.scale}), smaller than "
            f"dataset_convert.crop_size={size}; lower crop_size or raise scale"
        )
    crops = defect_crops(board, size, width, height, rng)
    crops += pass_crops(board, size, convert_cfg.pass_crops_per_image, width, height, rng)
    base = f"{board.group}/{board.image_id}"
    rows = []
    for number, (x, y, side, label, box) in enumerate(crops):
        name = f"{'d' if label != 'PASS' else 'p'}{number:02d}_x{x}_y{y}"
        for image, folder in ((tested, "test"), (template, "golden")):
            path = out_dir / "images" / base / folder / f"{name}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            image.crop((x, y, x + side, y + side)).save(path)
        rows.append(
            {
                "input_path": f"{base}/test",
                "golden_path": f"{base}/golden",
                "object_name": name,
                "label": label,
                "defect_type": "" if label == "PASS" else label,
                "board": base,
                "x": x,
                "y": y,
                "crop_size": side,
                # The annotated defect box in the crop's pixels (where a heatmap should point); empty for PASS.
                **{key: ("" if box is None else value) for key, value in zip(BOX_COLUMNS, box or (0, 0, 0, 0))},
            }
        )
    return rows


def _rescaled(template: Image.Image, tested: Image.Image, board: BoardImage, scale: float) -> tuple:
    """Both images and the defect boxes resized by ``scale``: the same boards drawn at another pitch and track
    width, which is how a new design differs most (validating on it ranks configurations by what carries over;
    docs/automl.md has the measurement)."""
    size = (round(tested.width * scale), round(tested.height * scale))
    boxes = tuple(
        (*(min(max(round(v * scale), 0), limit) for v, limit in zip(box[:4], (*size, *size))), box[4])
        for box in board.boxes
    )
    resized = (image.resize(size, Image.Resampling.BILINEAR) for image in (template, tested))
    return (*resized, dataclasses.replace(board, boxes=boxes))
