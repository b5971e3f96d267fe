"""evaluate: score the test split with a checkpoint; write metrics.json and evaluate.csv."""

import json
import logging
from pathlib import Path

import numpy as np

from tao_siamese_oi.model.metrics import inspection_metrics
from tao_siamese_oi.tasks.common import score_split, tracked_task
from tao_siamese_oi.utils.files import atomic_write, atomic_write_text

log = logging.getLogger("tao_siamese_oi")


@tracked_task("evaluate")
def run(cfg, out: Path, status) -> dict:
    dataset, scores = score_split(cfg, "evaluate", "test")
    if scores is None:  # another DDP process: the main one writes the results
        return None
    labels = dataset.table.labels
    threshold = cfg.model.margin
    metrics = inspection_metrics(scores, labels, threshold)

    frame = dataset.table.frame.copy()
    frame["siamese_score"] = scores
    frame["decision"] = np.where(scores > threshold, "FAIL", "PASS")
    atomic_write(out / "evaluate.csv", lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")

    log.info(
        "Tot Comp %d Total Accuracy %.2f False Negative %.2f False Alarm %.2f Defect Correctly Captured "
        "%.2f for Margin %s",
        metrics["num_pairs"],
        metrics["total_accuracy"],
        metrics["false_negative"],
        metrics["false_alarm"],
        metrics["defect_accuracy"],
        threshold,
    )
    log.info(
        "FPR over PASS %s, recall over FAIL %s, AUROC %s; wrote %s",
        _shown(metrics["fpr"], "{:.2f} %", "n/a (no PASS rows)"),
        _shown(metrics["recall"], "{:.2f} %", "n/a (no FAIL rows: FPR only)"),
        _shown(metrics["auroc"], "{:.4f}", "n/a (one class only)"),
        out / "metrics.json",
    )
    return metrics


def _shown(value, fmt: str, missing: str) -> str:
    return missing if value is None else fmt.format(value)
