"""evaluate's PNG plots: ROC curve with the operating point, score histograms per class with the threshold,
and recall per defect type. matplotlib is imported here only, with its file-only backend."""

import functools
import logging
from pathlib import Path

import numpy as np

from tao_siamese_oi.utils.files import atomic_write

log = logging.getLogger("tao_siamese_oi")


def _save_png(figure, path: str) -> None:
    figure.savefig(path, format="png", dpi=110)


PLOT_NAMES = ("score_histogram.png", "roc.png", "defect_recall.png")


def write_plots(out: Path, scores, labels, metrics: dict) -> list[Path]:
    """``metrics`` as evaluate writes them: at the decision threshold, with ``at_margin`` for the loss margin."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    labels = np.asarray(labels).astype(bool)
    margin = metrics["at_margin"]["threshold"]
    written = []
    figures = {"score_histogram.png": _histogram(plt, scores, labels, metrics["threshold"], margin)}
    if metrics["auroc"] is not None:  # both classes present: fpr and recall are defined
        figures["roc.png"] = _roc(plt, scores, labels, metrics)
    if metrics.get("by_defect_type"):
        figures["defect_recall.png"] = _defect_recall(plt, metrics)
    for name, figure in figures.items():
        written.append(atomic_write(out / name, functools.partial(_save_png, figure)))
        plt.close(figure)
    for name in set(PLOT_NAMES) - set(figures):  # an earlier run's plot this data cannot have (overwrite=true)
        (out / name).unlink(missing_ok=True)
    return written


def roc_points(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    """(FPR %, recall %) at every distinct threshold, from 'nothing flagged' to 'everything flagged'."""
    import torch
    from torchmetrics.functional.classification import binary_roc

    fpr, tpr, _ = binary_roc(torch.as_tensor(scores, dtype=torch.float64), torch.as_tensor(labels, dtype=torch.long))
    return 100 * fpr.numpy(), 100 * tpr.numpy()


def _roc(plt, scores, labels, metrics):
    fpr, recall = roc_points(scores, labels)
    figure, (full, zoom) = plt.subplots(1, 2, figsize=(11, 4.5))
    operating = metrics["fpr"], metrics["recall"]
    at_margin = metrics["at_margin"]["fpr"], metrics["at_margin"]["recall"]
    margin = metrics["at_margin"]["threshold"]
    for axes, limit in ((full, 100.0), (zoom, 5.0)):
        axes.step(fpr, recall, where="post", color="tab:blue", label=f"ROC (AUROC {metrics['auroc']:.4f})")
        # The margin as a large open square under the threshold's filled dot: both stay visible where they meet.
        axes.plot(
            *at_margin,
            "s",
            color="tab:gray",
            markersize=12,
            markerfacecolor="none",
            markeredgewidth=2,
            label=f"margin {margin:g}",
            zorder=3,
        )
        axes.plot(
            *operating, "o", color="tab:red", markersize=6, label=f"threshold {metrics['threshold']:.3f}", zorder=4
        )
        axes.set_xlim(-limit * 0.02, limit)
        axes.set_ylim(-2, 102)
        axes.set_xlabel("false-positive rate over PASS pairs (%)")
        axes.set_ylabel("recall over FAIL pairs (%)")
        axes.grid(alpha=0.3)
    full.set_title("ROC")
    zoom.set_title("ROC, FPR <= 5 %")
    zoom.legend(loc="lower right")
    figure.tight_layout()
    return figure


def _histogram(plt, scores, labels, threshold, margin):
    scores = np.asarray(scores, dtype=np.float64)
    figure, axes = plt.subplots(figsize=(8, 4.5))
    bins = np.linspace(scores.min(), scores.max(), 60) if scores.size and scores.max() > scores.min() else 10
    for mask, name, color in ((~labels, "PASS", "tab:green"), (labels, "FAIL", "tab:red")):
        if mask.any():
            axes.hist(scores[mask], bins=bins, alpha=0.6, color=color, label=f"{name} ({int(mask.sum())})")
    axes.axvline(threshold, color="black", label=f"threshold {threshold:.3f}")
    axes.axvline(margin, color="gray", linestyle="--", label=f"margin {margin:g}")
    axes.set_yscale("log")
    axes.set_xlabel("distance to the golden (siamese_score)")
    axes.set_ylabel("pairs")
    axes.set_title("Scores per class")
    axes.legend()
    figure.tight_layout()
    return figure


def _defect_recall(plt, metrics):
    table = metrics["by_defect_type"]
    names = list(table)
    recalls = [table[n]["recall"] for n in names]
    figure, axes = plt.subplots(figsize=(max(6, 0.9 * len(names) + 2), 4.5))
    bars = axes.bar(names, recalls, color="tab:orange")
    for bar, name in zip(bars, names):
        axes.annotate(
            f"n={table[name]['num_pairs']}",
            (bar.get_x() + bar.get_width() / 2, bar.get_height()),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    axes.set_ylim(0, 105)
    axes.set_ylabel(f"recall at threshold {metrics['threshold']:.3f} (%)")
    axes.set_title("Defects caught per type")
    axes.tick_params(axis="x", rotation=30)
    figure.tight_layout()
    return figure
