"""Model benchmark: the default Siamese_Grid against TAO's Siamese_3, side by side on the same converted dataset,
the same machine and the same epoch budget.

For each model, through the real CLI: train (specs/train_deeppcb.yaml, specs/train_deeppcb_siamese3.yaml),
evaluate (test split, at the threshold calibrated on validation), export (ONNX), inference with the pytorch and
onnxruntime backends (golden cache on). Prints a table and the ratios Siamese_Grid / Siamese_3.

    python -m bench.models                 # DeepPCB-dev converted by dataset_convert, 10 epochs each (~20 min)
    python -m bench.models --quick         # 40 board images, 1 epoch: a few minutes, a smoke check
"""

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from bench.deeppcb import deeppcb_root, missing_reason

SPECS = {"Siamese_Grid": "specs/train_deeppcb.yaml", "Siamese_3": "specs/train_deeppcb_siamese3.yaml"}
# Runs the CLI in this process and reports its peak resident memory (the process holding the model).
WITH_PEAK_RSS = """
import resource, sys
from tao_siamese_oi.entry_points.optical_inspection import main
try:
    main(sys.argv[1:])
finally:
    print("PEAK_RSS_KB", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def cli(*args: str) -> tuple[dict, float]:
    """(the task's JSON result, peak RSS in MB)."""
    out = subprocess.run([sys.executable, "-c", WITH_PEAK_RSS, *args], capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"{' '.join(args[:3])} failed:\n{out.stderr[-3000:]}")
    peak = next(int(line.split()[1]) for line in out.stderr.splitlines() if line.startswith("PEAK_RSS_KB"))
    return json.loads(out.stdout.strip().splitlines()[-1]), peak / 1024


def convert(root: Path, max_images: int, scale: float = 1.0) -> Path:
    """DeepPCB (bench/deeppcb.py says where) converted with the shipped spec into ``root/data`` (boards resized
    by ``scale``: ``root/data_scale<scale>``)."""
    reason = missing_reason()
    if reason:
        raise SystemExit(reason)
    data = root / ("data" if scale == 1.0 else f"data_scale{scale}")
    runs = root if scale == 1.0 else root / f"convert_scale{scale}"  # each conversion's status.json apart
    cli(
        "dataset_convert",
        "-e",
        "specs/dataset_convert_deeppcb.yaml",
        f"dataset_convert.root_dataset_dir={deeppcb_root()}",
        f"results_dir={runs}",
        f"dataset_convert.data_convert_output_dir={data}",
        f"dataset_convert.max_images={max_images}",
        f"dataset_convert.scale={scale}",
    )
    return data


def measure(model: str, data: Path, root: Path, epochs: int) -> dict:
    spec = SPECS[model]
    common = [f"results_dir={root / model}"] + [
        f"dataset.{split}_dataset.{key}={data / value}"
        for split, csv in (("train", "train"), ("validation", "val"), ("test", "test"), ("infer", "test"))
        for key, value in (("csv_path", f"{csv}.csv"), ("images_dir", "images"))
    ]
    checkpoint = root / model / "train" / "oi_model_latest.pth"
    onnx_file = root / model / "export" / "oi_model.onnx"
    train, train_rss = cli("train", "-e", spec, *common, f"train.num_epochs={epochs}")
    metrics, _ = cli("evaluate", "-e", spec, *common, f"evaluate.checkpoint={checkpoint}")
    export, _ = cli("export", "-e", spec, *common, f"export.checkpoint={checkpoint}")
    torch_run, torch_rss = cli("inference", "-e", spec, *common, f"inference.checkpoint={checkpoint}")
    ort_run, ort_rss = cli(
        "inference",
        "-e",
        spec,
        *common,
        "inference.backend=onnxruntime",
        f"inference.onnx_file={onnx_file}",
        f"inference.results_dir={root / model / 'inference_ort'}",
    )
    from tao_siamese_oi.artifacts.checkpoint import load_checkpoint_file

    state = load_checkpoint_file(checkpoint)["state_dict"]
    return {
        "params": sum(v.numel() for k, v in state.items() if k.startswith("model.") and v.is_floating_point()),
        "checkpoint_mb": checkpoint.stat().st_size / 2**20,
        "onnx_mb": onnx_file.stat().st_size / 2**20,
        "train_pairs_s": train["train_pairs_per_second"],
        "infer_torch_pairs_s": torch_run["pairs_per_second"],
        "infer_ort_pairs_s": ort_run["pairs_per_second"],
        "peak_rss_train_mb": train_rss,
        "peak_rss_infer_mb": max(torch_rss, ort_rss),
        "auroc": metrics["auroc"],
        "recall_at_fpr_0.5": metrics["recall_at_fpr"]["0.5"],
        "recall_at_fpr_1": metrics["recall_at_fpr"]["1"],
        "threshold": metrics["threshold"],
        "recall_at_threshold": metrics["recall"],
        "fpr_at_threshold": metrics["fpr"],
        "onnx_max_abs_diff": export["max_abs_diff"],
    }


ROWS = [
    ("parameters", "params", "{:,.0f}"),
    ("checkpoint file (MB)", "checkpoint_mb", "{:.2f}"),
    ("ONNX file (MB)", "onnx_mb", "{:.2f}"),
    ("train pairs/s", "train_pairs_s", "{:.1f}"),
    ("inference pairs/s, pytorch", "infer_torch_pairs_s", "{:.1f}"),
    ("inference pairs/s, onnxruntime + golden cache", "infer_ort_pairs_s", "{:.1f}"),
    ("peak RSS, train (MB)", "peak_rss_train_mb", "{:.0f}"),
    ("peak RSS, inference (MB)", "peak_rss_infer_mb", "{:.0f}"),
    ("test AUROC", "auroc", "{:.5f}"),
    ("test recall at FPR <= 0.5 % (%)", "recall_at_fpr_0.5", "{:.2f}"),
    ("test recall at FPR <= 1 % (%)", "recall_at_fpr_1", "{:.2f}"),
    ("calibrated threshold", "threshold", "{:.4f}"),
    ("test recall at it (%)", "recall_at_threshold", "{:.2f}"),
    ("test FPR at it (%)", "fpr_at_threshold", "{:.2f}"),
]


def table(results: dict) -> str:
    new, old = results["Siamese_Grid"], results["Siamese_3"]
    lines = ["| | Siamese_Grid | Siamese_3 | Grid / Siamese_3 |", "|---|---|---|---|"]
    for label, key, fmt in ROWS:
        ratio = new[key] / old[key] if old[key] else None
        ratio = "-" if ratio is None else f"{ratio:.3g}x" if not 0.1 <= ratio <= 10 else f"{ratio:.4f}x"
        lines.append(f"| {label} | {fmt.format(new[key])} | {fmt.format(old[key])} | {ratio} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--epochs", type=int, default=10, help="epoch budget, the same for both models")
    parser.add_argument("--quick", action="store_true", help="40 board images per list and 1 epoch")
    parser.add_argument("--out", help="keep the runs here (default: a temporary directory)")
    args = parser.parse_args(argv)
    epochs, max_images = (1, 40) if args.quick else (args.epochs, 0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.out or tmp).resolve()
        data = convert(root, max_images)
        results = {model: measure(model, data, root, epochs) for model in SPECS}
    print(f"DeepPCB-dev, {epochs} epoch(s) each, CPU ({sys.platform}), same machine and run")
    print(table(results))
    print(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
