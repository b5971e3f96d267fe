"""inference: score the infer split; write inference.csv = the input CSV + siamese_score + decision, same rows,
same order."""

import json
import logging
from pathlib import Path

import numpy as np

from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.model.drift import drift_warnings
from tao_siamese_oi.tasks.common import (
    HEATMAPS_FILE,
    check_scoring_inputs,
    score_split,
    write_heatmaps,
)
from tao_siamese_oi.tasks.lifecycle import tracked_task
from tao_siamese_oi.tasks.provenance import provenance
from tao_siamese_oi.utils.files import atomic_write, atomic_write_text

log = logging.getLogger("tao_siamese_oi")


INFERENCE_CSV = "inference.csv"
INFERENCE_METADATA = "inference.json"


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    return [out / INFERENCE_CSV, out / INFERENCE_METADATA, out / HEATMAPS_FILE]


def preflight(cfg: ExperimentConfig) -> None:
    check_scoring_inputs(cfg, "inference", "infer")


@tracked_task("inference", outputs=outputs, preflight=preflight)
def run(cfg: ExperimentConfig, out: Path, status) -> dict | None:
    scored = score_split(cfg, "inference", "infer")
    dataset, scores, scorer, speed = scored.dataset, scored.scores, scored.scorer, scored.pairs_per_second
    if scores is None:  # another DDP process: the main one writes the results
        return None
    threshold, source = scorer.threshold, scorer.threshold_source
    frame = dataset.table.frame.copy()
    frame["siamese_score"] = scores
    thresholds = scorer.row_thresholds(frame)
    frame["decision"] = np.where(scores > thresholds, "FAIL", "PASS")
    table = dataset.table
    decided_by = scorer.calibration if source == "calibrated" else None
    drift = drift_warnings(frame, scores, table.labels, table.labelled, decided_by, f"inference on {table.csv_path}")
    for line in drift:
        log.warning(line)
    maps = write_heatmaps(frame, scored, out)
    path = atomic_write(out / INFERENCE_CSV, lambda tmp: frame.to_csv(tmp, index=False))
    flagged = int((scores > thresholds).sum())
    log.info(
        "Scored %d pairs at %.1f pairs/s, %d FAIL at threshold %.4f (%s); wrote %s",
        len(frame),
        speed,
        flagged,
        threshold,
        source,
        path,
    )
    result = {
        "num_pairs": len(frame),
        "pairs_per_second": round(speed, 1),
        "num_fail_decisions": flagged,
        "threshold": threshold,
        "threshold_source": source,
        "inference_csv": str(path),
        "heatmaps": str(maps) if maps else None,
        "drift": drift,
        "provenance": provenance(cfg, out, scorer.model_file, dataset.table.csv_path),
    }
    # inference.csv's metadata, beside it (a CSV has no place for it): what produced it, how it was decided.
    atomic_write_text(out / INFERENCE_METADATA, json.dumps(result, indent=2) + "\n")
    return result
