"""Inspection metrics from distances and labels, vectorised (no per-sample Python loop).

A pair is called FAIL when its distance is strictly above the threshold. TAO's four numbers are kept
(false_alarm and false_negative are over ALL pairs, as TAO defines them); fpr is over PASS pairs only,
recall over FAIL pairs only: those are the numbers an inspection line is run by.
"""

import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc


def inspection_metrics(scores, labels, threshold: float) -> dict:
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    flagged = scores > threshold
    total, num_fail = len(labels), int(labels.sum())
    num_pass = total - num_fail
    tp = int((flagged & labels).sum())
    tn = int((~flagged & ~labels).sum())
    fp = num_pass - tn
    fn = num_fail - tp
    return {
        "num_pairs": total,
        "num_pass": num_pass,
        "num_fail": num_fail,
        "threshold": float(threshold),
        "total_accuracy": pct(tp + tn, total),
        "defect_accuracy": pct(tp, num_fail),
        "false_alarm": pct(fp, total),
        "false_negative": pct(fn, total),
        # None, not 0, when the class is absent: an evaluation set without FAIL rows reports FPR only.
        "fpr": pct(fp, num_pass) if num_pass else None,
        "recall": pct(tp, num_fail) if num_fail else None,
        "auroc": auroc(scores, labels),
    }


def pct(count: int, total: int) -> float:
    return 100.0 * count / total if total else 0.0


def auroc(scores, labels) -> float | None:
    """Area under the ROC curve; None when one class is absent (it is undefined then)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    return float(binary_auroc(torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(labels, dtype=torch.long)))
