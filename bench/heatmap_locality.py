"""Does the heatmap point at the defect? On DeepPCB's test boards, how often the strongest cell of a FAIL pair's
cell map overlaps the annotated defect box (dataset_convert writes it in the crop's pixels).

    python -m bench.heatmap_locality                                   # the shipped builtin:siamese_grid_deeppcb
    python -m bench.heatmap_locality --data DIR/data --model other=/path/oi_model_latest.pth

Two measures, each beside what chance gives (a cell picked at random): the strongest cell overlaps the box, and it
holds the box's centre. The converter centres FAIL crops on their defect, so a boxed defect covers many of a
64 px crop's 16 cells; the centre measure, and the "middle cell" baseline (always the cell at the crop's centre),
are the stricter tests.
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

from bench.models import cli, convert
from bench.unseen_designs import GRID_SPEC
from tao_siamese_oi.model.heatmap import HeatmapGeometry

BOX = ["box_x1", "box_y1", "box_x2", "box_y2"]


def overlaps(cell: tuple[float, float, float, float], box: np.ndarray) -> bool:
    """A cell (fractions of the crop) and a box (fractions) share any area."""
    return cell[0] < box[2] and box[0] < cell[2] and cell[1] < box[3] and box[1] < cell[3]


def locality(folder: Path) -> dict:
    frame = pd.read_csv(folder / "evaluate.csv", keep_default_na=False)
    with np.load(folder / "heatmaps.npz", allow_pickle=False) as saved:
        maps = saved["cell_distances"].astype(np.float32)
        described = json.loads(str(saved["geometry"]))
    geometry = HeatmapGeometry(tuple(described["grid"]), (None,), 1, 1)  # DeepPCB: one light
    fails = frame.index[frame["label"] != "PASS"]
    rows, cols = maps.shape[1:]
    every_cell = [(a, b) for a in range(rows) for b in range(cols)]
    found: dict[str, list] = {key: [] for key in ("overlap", "centre", "chance_overlap", "chance_centre", "middle")}
    detected = []
    for i in fails:
        row = frame.loc[i]
        box = row[BOX].to_numpy(dtype=float) / float(row["crop_size"])
        centre = ((box[0] + box[2]) / 2, (box[1] + box[3]) / 2)
        r, c = (int(v) for v in np.unravel_index(int(maps[i].argmax()), maps[i].shape))
        found["overlap"].append(overlaps(geometry.cell_box(r, c), box))
        found["centre"].append(holds(geometry.cell_box(r, c), centre))
        found["chance_overlap"].append(np.mean([overlaps(geometry.cell_box(a, b), box) for a, b in every_cell]))
        found["chance_centre"].append(np.mean([holds(geometry.cell_box(a, b), centre) for a, b in every_cell]))
        found["middle"].append(holds(geometry.cell_box(rows // 2, cols // 2), centre))  # crops centre on defects
        detected.append(row["decision"] == "FAIL")
    result = {key: 100 * float(np.mean(values)) for key, values in found.items()}
    return {"fail_pairs": len(fails), "flagged": int(np.sum(detected)), **result}


def offcentre_split(data: Path, root: Path, seed: int = 0) -> Path:
    """The test split's defects again, each in a crop of the same size placed so that its box lands anywhere in
    the crop (the converter centres it); FAIL pairs only. Returns the new test CSV."""
    from PIL import Image

    from bench.deeppcb import deeppcb_root
    from tao_siamese_oi.data.convert_deeppcb import read_list

    rng = np.random.default_rng(seed)
    boards = {f"{b.group}/{b.image_id}": b for b in read_list(deeppcb_root(), "test.txt")}
    frame = pd.read_csv(data / "test.csv", dtype={"object_name": str, "defect_type": str})
    fails = frame[frame["label"] != "PASS"].copy()
    out = root / "offcentre"
    for index, row in fails.iterrows():
        board = boards[row["board"]]
        x1, y1 = row["x"] + int(row["box_x1"]), row["y"] + int(row["box_y1"])
        x2, y2 = row["x"] + int(row["box_x2"]), row["y"] + int(row["box_y2"])
        side = int(row["crop_size"])
        with Image.open(board.tested) as tested:
            width, height = tested.size
        x = int(rng.integers(max(0, x2 - side), min(x1, width - side) + 1))  # the box stays whole in the crop
        y = int(rng.integers(max(0, y2 - side), min(y1, height - side) + 1))
        for path, folder in ((board.tested, "test"), (board.template, "golden")):
            target = out / "images" / row["board"] / folder / f"{row['object_name']}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            with Image.open(path) as image:
                image.convert("L").crop((x, y, x + side, y + side)).save(target)
        fails.loc[index, ["x", "y", *BOX]] = [x, y, x1 - x, y1 - y, x2 - x, y2 - y]
    fails.to_csv(out / "test.csv", index=False)
    return out / "test.csv"


def holds(cell: tuple[float, float, float, float], point: tuple[float, float]) -> bool:
    return cell[0] <= point[0] < cell[2] and cell[1] <= point[1] < cell[3]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a folder converted by dataset_convert deeppcb with box columns")
    parser.add_argument("--model", action="append", default=[], help="NAME=CHECKPOINT (repeatable)")
    parser.add_argument("--out", help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    models = {"builtin:siamese_grid_deeppcb": "builtin:siamese_grid_deeppcb"}
    models.update(dict(item.split("=", 1) for item in args.model))
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp).resolve()
        data = Path(args.data).resolve() if args.data else convert(root, max_images=0)
        if not set(BOX) <= set(pd.read_csv(data / "test.csv", nrows=1).columns):
            raise SystemExit(f"{data}/test.csv has no box columns: convert again with this version")
        offcentre = offcentre_split(data, root)
        rows = {}
        for crops, csv in (("centred", data / "test.csv"), ("off-centre", offcentre)):
            for name, checkpoint in models.items():
                out = root / "runs" / crops / name.replace(":", "_")
                splits = [
                    f"dataset.test_dataset.csv_path={csv}",
                    f"dataset.test_dataset.images_dir={csv.parent / 'images'}",
                ]
                cli("evaluate", "-e", GRID_SPEC, f"results_dir={out}", *splits, f"evaluate.checkpoint={checkpoint}")
                rows[f"{name}, {crops} crops"] = locality(out / "evaluate")
                print(f"{name} {crops}: {json.dumps(rows[f'{name}, {crops} crops'])}", file=sys.stderr, flush=True)
    print("DeepPCB-dev test boards: the strongest cell of each FAIL pair's map against its annotated defect box")
    print(
        "| model | FAIL pairs (flagged) | cell overlaps the box | chance | cell holds the box centre | chance "
        "| the middle cell holds it |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        print(
            f"| {name} | {r['fail_pairs']} ({r['flagged']}) | {r['overlap']:.1f} % | {r['chance_overlap']:.1f} % "
            f"| {r['centre']:.1f} % | {r['chance_centre']:.1f} % | {r['middle']:.1f} % |"
        )


if __name__ == "__main__":
    main()
