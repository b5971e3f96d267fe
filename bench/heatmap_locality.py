"""Does the heatmap point at the defect? On DeepPCB's test boards, how often the strongest cell of a FAIL pair's
cell map overlaps the annotated defect box (dataset_convert writes it in the crop's pixels).

    python -m bench.heatmap_locality                                   # the shipped builtin:siamese_grid_deeppcb
    python -m bench.heatmap_locality --data DIR/data --model other=/path/oi_model_latest.pth

Beside each rate, what chance gives: the share of cells that overlap the box (a cell picked at random).
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
    hits, detected_hits, detected, chance = [], [], [], []
    for i in fails:
        row = frame.loc[i]
        box = row[BOX].to_numpy(dtype=float) / float(row["crop_size"])
        r, c = np.unravel_index(int(maps[i].argmax()), maps[i].shape)
        hit = overlaps(geometry.cell_box(int(r), int(c)), box)
        hits.append(hit)
        cells = [overlaps(geometry.cell_box(a, b), box) for a in range(maps.shape[1]) for b in range(maps.shape[2])]
        chance.append(float(np.mean(cells)))
        if row["decision"] == "FAIL":
            detected.append(i)
            detected_hits.append(hit)
    return {
        "fail_pairs": len(fails),
        "overlap_percent": 100 * float(np.mean(hits)),
        "detected": len(detected),
        "overlap_percent_detected": 100 * float(np.mean(detected_hits)) if detected_hits else None,
        "chance_percent": 100 * float(np.mean(chance)),
    }


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
        rows = {}
        for name, checkpoint in models.items():
            out = root / "runs" / name.replace(":", "_")
            splits = [f"dataset.test_dataset.{k}={v}" for k, v in (("csv_path", data / "test.csv"),
                                                                   ("images_dir", data / "images"))]  # fmt: skip
            cli("evaluate", "-e", GRID_SPEC, f"results_dir={out}", *splits, f"evaluate.checkpoint={checkpoint}")
            rows[name] = locality(out / "evaluate")
            print(f"{name}: {json.dumps(rows[name])}", file=sys.stderr, flush=True)
    print("DeepPCB-dev test boards; the strongest cell of each FAIL pair's map against its annotated defect box")
    print("| model | FAIL pairs | strongest cell on the box | of those flagged FAIL | chance |")
    print("|---|---|---|---|---|")
    for name, r in rows.items():
        flagged = "n/a" if r["overlap_percent_detected"] is None else f"{r['overlap_percent_detected']:.1f} %"
        print(
            f"| {name} | {r['fail_pairs']} | {r['overlap_percent']:.1f} % | {flagged} ({r['detected']}) "
            f"| {r['chance_percent']:.1f} % |"
        )


if __name__ == "__main__":
    main()
