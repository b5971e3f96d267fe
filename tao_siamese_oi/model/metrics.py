"""Inspection metrics from distances and labels, vectorised (no per-sample Python loop).

A pair is called FAIL when its distance is strictly above the threshold. TAO's four numbers are kept with
TAO 7.3's formulas (false_alarm over PASS pairs, false_negative over FAIL pairs; before 7.3 both were over all
pairs); ``FORMULAS`` states each, and metrics.json carries it. All rates are percentages; a rate whose
denominator class is absent is None (undefined), not 0 as TAO writes.
"""

import numpy as np
import torch
from torchmetrics.functional.classification import binary_auroc, binary_average_precision

from tao_siamese_oi.model.calibration import threshold_for_fpr, threshold_for_recall
from tao_siamese_oi.model.statistics import rate

FPR_BUDGETS = (0.1, 0.5, 1.0, 5.0)  # percent: the false-alarm budgets recall is reported at
# Training logs <stage>_<name> per epoch for stage train and val: loss, acc, these; and val_calibrated_<name> for
# the threshold calibrated on validation and the FPR and recall it achieves there.
RATES_LOGGED = ("fpr", "recall", "auroc", "average_precision")
EPOCH_METRICS = ("loss", "acc", *RATES_LOGGED)
CALIBRATED_LOGGED = ("threshold", "fpr", "recall")
CALIBRATED_PREFIX = "calibrated_"
HIGHER_IS_BETTER = {"acc", "recall", "auroc", "average_precision"}


def higher_is_better(logged: str) -> bool:
    """Whether a logged metric (train_recall, val_calibrated_recall ...) is better when higher."""
    name = logged.split("_", 1)[1]
    return name.removeprefix(CALIBRATED_PREFIX) in HIGHER_IS_BETTER


FORMULAS = {
    "accuracy": "(TP + TN) / all pairs, at the decision threshold (evaluate: TAO's four are under at_margin)",
    "total_accuracy": "(TP + TN) / all pairs (TAO)",
    "defect_accuracy": "TP / FAIL pairs (TAO)",
    "false_alarm": "FP / PASS pairs (TAO 7.3 AOIMetrics; TAO before 7.3: FP / all pairs)",
    "false_negative": "FN / FAIL pairs (TAO 7.3 AOIMetrics; TAO before 7.3: FN / all pairs)",
    "fpr": "FP / PASS pairs",
    "recall": "TP / FAIL pairs",
    "precision": "TP / (TP + FP)",
    "f1": "2 TP / (2 TP + FP + FN)",
}
# The KPI names TAO 7.3 writes in status.json after evaluation, and the metric each one is.
TAO_TEST_KPIS = {
    "test_acc": "total_accuracy",
    "test_fpr": "false_alarm",
    "test_fnr": "false_negative",
    "defect_acc": "defect_accuracy",
}


def inspection_metrics(scores, labels, threshold: float, defect_types=None) -> dict:
    """Metrics at ``threshold`` plus threshold-free ones; ``defect_types`` (one name per pair, ignored for
    PASS pairs) adds a breakdown per defect type."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    rates = rates_with_intervals(scores, labels, threshold)
    metrics = {
        "units": "percent",  # every rate; counts and 95 % Clopper-Pearson intervals under "rates"
        "formulas": FORMULAS,
        **threshold_metrics(scores, labels, threshold),
        "rates": rates,
        "auroc": auroc(scores, labels),
        "average_precision": average_precision(scores, labels),
        "recall_at_fpr": {budget: r["percent"] for budget, r in rates["recall_at_fpr"].items()},
        "fpr_at_full_recall": fpr_at(scores, labels, threshold_for_recall(scores, labels, 100.0)),
    }
    if defect_types is not None:
        types = np.asarray(defect_types, dtype=object)
        metrics["by_defect_type"] = by_defect_type(scores, labels, scores > threshold, types)
    return metrics


def threshold_metrics(scores, labels, threshold: float) -> dict:
    """The metrics that depend on the decision threshold: counts, TAO's four, fpr, recall, precision, f1."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels).astype(bool)
    flagged = scores > threshold  # a threshold per row (per-group calibration) works the same
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
        "threshold": float(threshold) if np.ndim(threshold) == 0 else None,
        "total_accuracy": pct(tp + tn, total),
        "defect_accuracy": pct(tp, num_fail) if num_fail else None,
        "false_alarm": pct(fp, num_pass) if num_pass else None,
        "false_negative": pct(fn, num_fail) if num_fail else None,
        "fpr": pct(fp, num_pass) if num_pass else None,
        "recall": pct(tp, num_fail) if num_fail else None,
        "precision": pct(tp, tp + fp) if tp + fp else None,
        "f1": pct(2 * tp, 2 * tp + fp + fn) if num_fail else None,
    }


def tao_test_kpis(metrics: dict) -> dict:
    """The evaluation KPIs under the names TAO 7.3 writes in status.json (its dashboards and tools read them)."""
    return {name: metrics[ours] for name, ours in TAO_TEST_KPIS.items() if metrics[ours] is not None}


def rates_with_intervals(scores, labels, threshold: float) -> dict:
    """FPR, recall and precision at the threshold, and recall at each FPR budget: each with its count, the size
    of its set and an exact 95 % interval (model/statistics.py)."""
    flagged = scores > threshold
    num_fail = int(labels.sum())
    tp, fp = int((flagged & labels).sum()), int((flagged & ~labels).sum())
    return {
        "fpr": rate(fp, len(labels) - num_fail),
        "recall": rate(tp, num_fail),
        "precision": rate(tp, tp + fp),
        "recall_at_fpr": {f"{budget:g}": rate(*caught_at_fpr(scores, labels, budget)) for budget in FPR_BUDGETS},
    }


def caught_at_fpr(scores, labels, budget: float) -> tuple[int, int]:
    """(defects caught, defects) at the lowest threshold whose FPR stays within ``budget`` %; (0, 0) unless both
    classes are present (the rate is undefined then)."""
    if labels.all() or not labels.any():
        return 0, 0
    threshold = threshold_for_fpr(scores, labels, budget)
    return int((scores[labels] > threshold).sum()), int(labels.sum())


def recall_at_fpr(scores, labels, budget: float) -> float | None:
    """Recall at the lowest threshold whose FPR stays within ``budget`` %; None unless both classes are present."""
    caught, num_fail = caught_at_fpr(scores, labels, budget)
    return pct(caught, num_fail) if num_fail else None


def fpr_at(scores, labels, threshold: float | None) -> float | None:
    if threshold is None or labels.all():
        return None
    return pct(int((scores[~labels] > threshold).sum()), int((~labels).sum()))


def by_defect_type(scores, labels, flagged, types) -> dict:
    """Per defect type, against all PASS pairs: its pairs, the share caught at the threshold, AUROC, average
    precision and recall at the FPR budgets."""
    table = {}
    for name in sorted({str(t) for t in types[labels]}):
        mine = labels & (types.astype(str) == name)
        subset = mine | ~labels
        sub_scores, sub_labels = scores[subset], labels[subset]
        table[name] = {
            "num_pairs": int(mine.sum()),
            "recall": pct(int((flagged & mine).sum()), int(mine.sum())),
            "auroc": auroc(sub_scores, sub_labels),
            "average_precision": average_precision(sub_scores, sub_labels),
            "recall_at_fpr": {f"{b:g}": recall_at_fpr(sub_scores, sub_labels, b) for b in FPR_BUDGETS},
        }
    return table


def pct(count: int, total: int) -> float:
    return 100.0 * count / total if total else 0.0


def auroc(scores, labels) -> float | None:
    """Area under the ROC curve; None when one class is absent (it is undefined then)."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    return float(binary_auroc(torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(labels, dtype=torch.long)))


def average_precision(scores, labels) -> float | None:
    """Area under the precision-recall curve (FAIL = positive); None when one class is absent."""
    labels = np.asarray(labels).astype(bool)
    if labels.all() or not labels.any():
        return None
    return float(
        binary_average_precision(
            torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(labels, dtype=torch.long)
        )
    )
