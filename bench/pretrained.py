"""The shipped pretrained model (``builtin:siamese_grid_deeppcb``): rebuild it, and measure whether fine-tuning from
a pretrained model beats training from scratch on a small dataset of a new design, same epochs.

    python -m bench.pretrained --data /tmp/ud/base/data            # measure (both directions, seeds 1234 7 99)
    python -m bench.pretrained --data /tmp/ud/base/data --ship      # also rebuild the shipped file

Measurement, per direction A -> B (DeepPCB-dev's two designs): a base model trained on every board of design A;
then, on a random ``--fraction`` of design B's training pairs, one training from scratch and one from the base
model's weights (``train.pretrained_model_path``), the same epochs and seed; both scored on design B's official
test boards, which neither saw. (The shipped file is trained on both designs, so it cannot be measured this way.)
"""

import argparse
import json
import statistics
import sys
import tempfile
from pathlib import Path

import pandas as pd

from bench.models import cli, convert
from bench.unseen_designs import DESIGNS, GRID_SPEC, split_by_design

SHIPPED = Path(__file__).resolve().parents[1] / "tao_siamese_oi" / "pretrained" / "siamese_grid_deeppcb.pth"
KEPT_KEYS = ("state_dict", "epoch", "global_step", "siamese_oi_hparams", "calibration", "alignment", "grid_pool")


def split_args(csvs: dict[str, Path], images: Path) -> list[str]:
    return [
        f"dataset.{split}_dataset.{key}={value}"
        for split, csv in (("train", "train"), ("validation", "val"), ("test", "test"), ("infer", "test"))
        for key, value in (("csv_path", csvs[csv]), ("images_dir", images))
    ]


def train_and_score(csvs, images: Path, out: Path, epochs: int, seed: int, pretrained: str | None = None) -> dict:
    common = [f"results_dir={out}", *split_args(csvs, images)]
    start = [f"train.pretrained_model_path={pretrained}"] if pretrained else []
    cli("train", "-e", GRID_SPEC, *common, *start, f"train.num_epochs={epochs}", f"train.seed={seed}")
    checkpoint = out / "train" / "oi_model_latest.pth"
    metrics, _ = cli("evaluate", "-e", GRID_SPEC, *common, f"evaluate.checkpoint={checkpoint}")
    return {
        "auroc": metrics["auroc"],
        "recall@0.5": metrics["recall_at_fpr"]["0.5"],
        "recall@1": metrics["recall_at_fpr"]["1"],
        "recall@5": metrics["recall_at_fpr"]["5"],
        "achieved_fpr": metrics["fpr"],
        "recall_at_threshold": metrics["recall"],
    }


def small_split(data: Path, design: str, fraction: float, seed: int, folder: Path) -> dict[str, Path]:
    """``fraction`` of one design's training pairs, that design's validation and test boards."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split in ("train", "val", "test"):
        frame = pd.read_csv(data / f"{split}.csv")
        frame = frame[frame["board"].str.split("/").str[0] == design]
        if split == "train":
            frame = frame.sample(frac=fraction, random_state=seed)
        paths[split] = folder / f"{split}.csv"
        frame.to_csv(paths[split], index=False)
    return paths


def ship(data: Path, root: Path, seed: int) -> None:
    """Train the shipped model on both designs with the shipped DeepPCB spec and keep only what a starting point
    needs (weights and the records that say how it was trained; no optimizer state)."""
    import torch

    from tao_siamese_oi.artifacts.checkpoint import read_checkpoint

    csvs = {split: data / f"{split}.csv" for split in ("train", "val", "test")}
    out = root / "ship"
    cli("train", "-e", GRID_SPEC, f"results_dir={out}", *split_args(csvs, data / "images"), f"train.seed={seed}")
    checkpoint = read_checkpoint(out / "train" / "oi_model_latest.pth")
    torch.save({key: checkpoint[key] for key in KEPT_KEYS if key in checkpoint}, SHIPPED)
    print(f"wrote {SHIPPED} ({SHIPPED.stat().st_size / 2**20:.2f} MB)", file=sys.stderr)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", help="a folder converted by bench.unseen_designs (its data/); default: convert")
    parser.add_argument("--fraction", type=float, default=0.1, help="share of the new design's training pairs")
    parser.add_argument("--epochs", type=int, default=5, help="epochs of every training")
    parser.add_argument("--seeds", type=int, nargs="+", default=[1234, 7, 99])
    parser.add_argument("--ship", action="store_true", help="also rebuild the shipped pretrained file")
    parser.add_argument("--out", help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp).resolve()
        data = Path(args.data).resolve() if args.data else convert(root, max_images=0)
        if args.ship:
            ship(data, root, args.seeds[0])
        designs = split_by_design(data, root / "splits")
        rows = {}
        for source, target in (DESIGNS, DESIGNS[::-1]):
            base_out = root / "base" / source
            train_and_score(designs[f"{source}->{target}"], data / "images", base_out, args.epochs, args.seeds[0])
            base = str(base_out / "train" / "oi_model_latest.pth")
            for seed in args.seeds:
                small = small_split(data, target, args.fraction, seed, root / "small" / target / str(seed))
                for mode, start in (("scratch", None), ("fine-tuned", base)):
                    out = root / "runs" / f"{source}_to_{target}" / mode / str(seed)
                    result = train_and_score(small, data / "images", out, args.epochs, seed, start)
                    rows.setdefault((f"{source}->{target}", mode), []).append(result)
                    print(f"{source}->{target} {mode} seed {seed}: {json.dumps(result)}", file=sys.stderr, flush=True)
    boards = pd.read_csv(data / "train.csv")["board"].str.split("/").str[0]
    sizes = ", ".join(f"{t}: {round((boards == t).sum() * args.fraction)} pairs" for t in DESIGNS)
    print(
        f"DeepPCB-dev: {args.fraction:.0%} of the new design's training pairs ({sizes}), {args.epochs} epochs, "
        f"seeds {' '.join(map(str, args.seeds))}; scored on the new design's test boards"
    )
    print("| new design | start | AUROC | recall @0.5 % FPR | @1 % | @5 % | FPR at 1 % target |")
    print("|---|---|---|---|---|---|---|")
    for (direction, mode), results in rows.items():
        m = {key: statistics.fmean(r[key] for r in results) for key in results[0]}
        print(
            f"| {direction} | {mode} | {m['auroc']:.4f} | {m['recall@0.5']:.1f} | {m['recall@1']:.1f} "
            f"| {m['recall@5']:.1f} | {m['achieved_fpr']:.2f} |"
        )
    print(json.dumps({f"{d} {m}": r for (d, m), r in rows.items()}, indent=1))


if __name__ == "__main__":
    main()
