"""evaluate: score the test split with a checkpoint at its decision threshold; write metrics.json, evaluate.csv
and PNG plots (ROC with the operating point, score histograms, recall per defect type)."""

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.model.drift import drift_warnings
from tao_siamese_oi.model.metrics import inspection_metrics, tao_test_kpis, threshold_metrics
from tao_siamese_oi.tasks.common import (
    HEATMAPS_FILE,
    check_scoring_inputs,
    measurability,
    score_split,
    write_heatmaps,
)
from tao_siamese_oi.tasks.evaluate_plots import PLOT_NAMES, write_plots
from tao_siamese_oi.tasks.lifecycle import tracked_task
from tao_siamese_oi.tasks.provenance import provenance
from tao_siamese_oi.tasks.report import REPORT_NAME, write_report
from tao_siamese_oi.utils.files import atomic_write, atomic_write_text

log = logging.getLogger("tao_siamese_oi")


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    return [out / name for name in ("metrics.json", "evaluate.csv", HEATMAPS_FILE, REPORT_NAME, *PLOT_NAMES)]


def outcomes(flagged: np.ndarray, defect: np.ndarray) -> np.ndarray:
    """TP / FP / FN / TN per pair (FAIL is the positive class), so a spreadsheet filter finds the errors."""
    return np.select([flagged & defect, flagged & ~defect, ~flagged & defect], ["TP", "FP", "FN"], "TN")


def preflight(cfg: ExperimentConfig) -> None:
    check_scoring_inputs(cfg, "evaluate", "test")


@tracked_task("evaluate", outputs=outputs, preflight=preflight)
def run(cfg: ExperimentConfig, out: Path, status) -> dict | None:
    scored = score_split(cfg, "evaluate", "test")
    dataset, scores, scorer = scored.dataset, scored.scores, scored.scorer
    if scores is None:  # another DDP process: the main one writes the results
        return None
    labels = dataset.table.labels
    threshold, source, calibration = scorer.threshold, scorer.threshold_source, scorer.calibration
    frame = dataset.table.frame.copy()
    types = defect_types(frame, labels)
    thresholds = scorer.row_thresholds(frame)
    metrics = decision_metrics(inspection_metrics(scores, labels, thresholds, types))
    metrics["threshold"] = threshold  # the global one; per-group ones are in calibration.by_group
    margin = cfg.model.margin
    at_margin = {k: v for k, v in threshold_metrics(scores, labels, margin).items() if not k.startswith("num_")}
    metrics.update(
        **tao_test_kpis(at_margin),  # TAO's KPI names mean TAO's numbers: at model.margin; status.json shows them
        provenance=provenance(cfg, out, scorer.model_file, dataset.table.csv_path),
        threshold_source=source,
        calibration=calibration,
        at_margin=at_margin,
    )

    for line in measurability(cfg, metrics, f"the test split ({dataset.table.csv_path})"):
        log.warning(line)
    metrics["drift"] = drift_warnings(frame, scores, labels, True, calibration if source == "calibrated" else None,
                                      f"evaluate on {dataset.table.csv_path}")  # fmt: skip
    for line in metrics["drift"]:
        log.warning(line)

    frame["siamese_score"] = scores
    flagged = scores > thresholds
    frame["decision"] = np.where(flagged, "FAIL", "PASS")
    frame["outcome"] = outcomes(flagged, np.asarray(labels).astype(bool))
    if "defect_type" not in frame.columns:
        frame["defect_type"] = types
    maps = write_heatmaps(frame, scored, out)
    metrics["heatmaps"] = str(maps) if maps else None
    atomic_write(out / "evaluate.csv", lambda tmp: frame.to_csv(tmp, index=False))
    atomic_write_text(out / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    plots = write_plots(out, scores, labels, metrics)
    if cfg.evaluate.report:
        report = write_report(cfg, out, frame, scores, thresholds, metrics, scored)
        log.info("Wrote %s (%.1f MB)", report, report.stat().st_size / 2**20)

    log.info(  # TAO's line, with TAO's numbers (at the margin)
        "Tot Comp %d Total Accuracy %.2f False Negative %s False Alarm %s Defect Correctly Captured %s for Margin %g",
        metrics["num_pairs"],
        at_margin["total_accuracy"],
        *(_shown(at_margin[key], "{:.2f}", "n/a") for key in ("false_negative", "false_alarm", "defect_accuracy")),
        margin,
    )
    log.info(
        "Decision threshold %.4f (%s): FPR over PASS %s, recall over FAIL %s, accuracy %.2f %%. AUROC %s. "
        "Wrote %s, evaluate.csv, %s",
        threshold,
        source,
        _shown(metrics["fpr"], "{:.2f} %", "n/a (no PASS rows)"),
        _shown(metrics["recall"], "{:.2f} %", "n/a (no FAIL rows: FPR only)"),
        metrics["accuracy"],
        _shown(metrics["auroc"], "{:.4f}", "n/a (one class only)"),
        out / "metrics.json",
        ", ".join(p.name for p in plots),
    )
    return metrics


def decision_metrics(metrics: dict) -> dict:
    """The metrics of the decision (the calibrated or configured threshold) under names of their own: TAO's four
    names (total_accuracy, defect_accuracy, false_alarm, false_negative) are kept for the numbers at the margin,
    as TAO computes them (``at_margin``); at the decision they are ``accuracy``, ``recall``, ``fpr`` and 100 -
    ``recall``."""
    metrics = dict(metrics)
    metrics["accuracy"] = metrics.pop("total_accuracy")
    for tao_name in ("defect_accuracy", "false_alarm", "false_negative"):
        metrics.pop(tao_name)
    return metrics


def defect_types(frame: pd.DataFrame, labels: np.ndarray) -> np.ndarray:
    """Each FAIL pair's defect type: the CSV's ``defect_type`` column when it has one, else its label; PASS
    pairs get an empty string."""
    named = frame["defect_type"] if "defect_type" in frame.columns else frame["label"]
    named = named.where(named.str.strip() != "", frame["label"]).str.strip().to_numpy(dtype=object)
    return np.where(labels.astype(bool), named, "")


def _shown(value, fmt: str, missing: str) -> str:
    return missing if value is None else fmt.format(value)
