"""Per-group decision thresholds (``evaluate.calibrate_by``) against one global threshold, on DeepPCB-dev with the
board design as the group: does a threshold per group lower the false-alarm rate at the same recall?

    python -m bench.group_thresholds --data DIR/data          # a folder converted by dataset_convert deeppcb

One model, trained on both designs' training boards with ``evaluate.calibrate_by=design`` (its validation boards
calibrate the global threshold and one per design, for FPR <= 1 %); the official test boards scored once, then
decided both ways: per design, and at the global threshold (``evaluate.threshold`` set to it).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.models import cli, convert
from bench.unseen_designs import GRID_SPEC


def with_design(data: Path, folder: Path) -> dict[str, Path]:
    """Each split's CSV with a ``design`` column (the board's group), the column thresholds are calibrated by."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "val", "test"):
        frame = pd.read_csv(data / f"{split}.csv", keep_default_na=False)
        frame["design"] = frame["board"].str.split("/").str[0]
        paths[split] = folder / f"{split}.csv"
        frame.to_csv(paths[split], index=False)
    return paths


def rates(folder: Path) -> dict:
    """FPR and recall overall and per design, from evaluate.csv's decisions."""
    frame = pd.read_csv(folder / "evaluate.csv", keep_default_na=False, dtype={"design": str})  # 00041, not 41
    result = {}
    for name, part in [("all", frame), *frame.groupby("design")]:
        passes, fails = part[part["label"] == "PASS"], part[part["label"] != "PASS"]
        result[name] = {
            "fpr": 100 * float((passes["decision"] == "FAIL").mean()),
            "false_alarms": int((passes["decision"] == "FAIL").sum()),
            "num_pass": len(passes),
            "recall": 100 * float((fails["decision"] == "FAIL").mean()),
            "num_fail": len(fails),
        }
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a folder converted by dataset_convert deeppcb (default: convert)")
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=1234)
    parser.add_argument("--out", help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp).resolve()
        data = Path(args.data).resolve() if args.data else convert(root, max_images=0)
        csvs = with_design(data, root / "splits")
        common = [f"results_dir={root / 'run'}", "evaluate.calibrate_by=design"] + [
            f"dataset.{split}_dataset.{key}={value}"
            for split, csv in (("train", "train"), ("validation", "val"), ("test", "test"))
            for key, value in (("csv_path", csvs[csv]), ("images_dir", data / "images"))
        ]
        train, _ = cli("train", "-e", GRID_SPEC, *common, f"train.num_epochs={args.epochs}", f"train.seed={args.seed}")
        calibration = train["calibration"]
        print(json.dumps(calibration, indent=1), file=sys.stderr)
        checkpoint = f"evaluate.checkpoint={root / 'run' / 'train' / 'oi_model_latest.pth'}"
        results = {}
        for rule, extra in (("per design", []), ("global", [f"evaluate.threshold={calibration['threshold']}"])):
            out = root / "run" / rule.replace(" ", "_")
            cli("evaluate", "-e", GRID_SPEC, *common, checkpoint, f"evaluate.results_dir={out}", *extra)
            results[rule] = rates(out)
    thresholds = {d: round(e["threshold"], 4) for d, e in calibration["by_group"]["thresholds"].items()}
    print(
        f"DeepPCB-dev, Siamese_Grid {args.epochs} epochs, seed {args.seed}; thresholds for FPR <= 1 % on validation: "
        f"global {calibration['threshold']:.4f}, per design {thresholds}; official test boards"
    )
    print("| decision rule | group | FPR % (false alarms / PASS) | recall % (FAIL) |")
    print("|---|---|---|---|")
    for rule, by_group in results.items():
        for group, r in by_group.items():
            print(
                f"| {rule} | {group} | {r['fpr']:.2f} ({r['false_alarms']} / {r['num_pass']}) "
                f"| {r['recall']:.1f} ({r['num_fail']}) |"
            )


if __name__ == "__main__":
    main()
