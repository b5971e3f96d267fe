"""calibrate: a trained model's decision threshold re-calibrated on good parts of a new board design.

A new product has golden and good boards on day one, not labelled defects. This task scores the infer split's
PASS rows (an unlabelled CSV: every row is taken as a good part) with the checkpoint, picks the threshold that
flags at most ``calibrate.target_fpr`` % of them (model/calibration.py), and writes a copy of the checkpoint
that carries it (``calibrate.output_checkpoint``; the given model is never changed) with the interval of its
FPR and the number of pairs it rests on, and ``calibration.json`` beside it. With ``calibrate.calibrate_by`` (a
column such as ``design``) each value with enough PASS pairs gets its own threshold beside the model's other
groups (the per-group machinery of evaluate.calibrate_by); without it the model's global threshold is replaced.
Too few pairs for the target is a one-line error naming how many are needed (model/statistics.py)."""

import copy
import json
import logging
from pathlib import Path

import numpy as np

from tao_siamese_oi.artifacts.checkpoint import calibrated_checkpoint, read_checkpoint, save_checkpoint
from tao_siamese_oi.config.schema import ExperimentConfig
from tao_siamese_oi.errors import ConfigError, DataError
from tao_siamese_oi.model.calibration import calibrate as calibrate_scores
from tao_siamese_oi.model.statistics import clopper_pearson, pairs_to_show
from tao_siamese_oi.tasks.common import check_scoring_inputs, score_split
from tao_siamese_oi.tasks.lifecycle import tracked_task
from tao_siamese_oi.tasks.provenance import provenance
from tao_siamese_oi.utils.files import atomic_write_text

log = logging.getLogger("tao_siamese_oi")

RECORD_NAME = "calibration.json"


def outputs(cfg: ExperimentConfig, out: Path) -> list[Path]:
    return [calibrated_checkpoint(cfg, out), out / RECORD_NAME]


def preflight(cfg: ExperimentConfig) -> None:
    if cfg.calibrate.backend != "pytorch":
        raise ConfigError("calibrate.backend must be pytorch: calibrate writes a checkpoint carrying the threshold")
    given = Path(cfg.calibrate.checkpoint or "")
    if given.is_file() and calibrated_checkpoint(cfg, Path(cfg.calibrate.results_dir)).resolve() == given.resolve():
        raise ConfigError("calibrate.output_checkpoint is calibrate.checkpoint; the given model is never changed")
    check_scoring_inputs(cfg, "calibrate", "infer")
    from tao_siamese_oi.data.splits import build_dataset

    # refused before anything is written: a model whose groups cannot take these, too few good parts
    existing = read_checkpoint(str(cfg.calibrate.checkpoint), cfg.encryption_key).get("calibration")
    _check_mergeable(existing, cfg.calibrate.calibrate_by)
    table = build_dataset(cfg.dataset, "infer", cfg.train.seed).table
    _groups(table.frame, cfg.calibrate.calibrate_by, _good(table), pairs_to_show(cfg.calibrate.target_fpr),
            table.csv_path, quiet=True)  # fmt: skip


@tracked_task("calibrate", outputs=outputs, preflight=preflight, elsewhere="calibrate.output_checkpoint")
def run(cfg: ExperimentConfig, out: Path, status) -> dict | None:
    task = cfg.calibrate
    scored = score_split(cfg, "calibrate", "infer")
    if scored.scores is None:  # another DDP process: the main one writes the results
        return None
    table = scored.dataset.table
    good = _good(table)
    if table.labelled and not good.all():
        log.info("%s: %d rows are labelled defects; calibrating on its %d PASS rows", table.csv_path,
                 int((~good).sum()), int(good.sum()))  # fmt: skip
    needed = pairs_to_show(task.target_fpr)
    groups = _groups(table.frame, task.calibrate_by, good, needed, table.csv_path)
    records = {}
    for name, rows in groups.items():
        scores = scored.scores[rows]
        record = calibrate_scores(scores, np.zeros(scores.size, dtype=bool), task.target_fpr)
        assert record is not None  # PASS pairs present
        flagged = int((scores > record["threshold"]).sum())
        records[name] = {
            **{k: v for k, v in record.items() if k not in ("recall", "num_fail")},
            "fpr_ci95": clopper_pearson(flagged, scores.size),
            "split": "pass_only",
            "data_csv": str(table.csv_path),
        }
    checkpoint = copy.copy(read_checkpoint(str(task.checkpoint), cfg.encryption_key))
    checkpoint["calibration"] = calibration = _merged(checkpoint.get("calibration"), records, task, needed)
    target = calibrated_checkpoint(cfg, out)
    target.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(checkpoint, target, cfg.encryption_key)
    result = {
        "checkpoint": str(target),
        "calibrated_from": str(task.checkpoint),
        "target_fpr": task.target_fpr,
        "pass_pairs_needed": needed,
        "thresholds": records,
        "provenance": provenance(cfg, out, task.checkpoint, table.csv_path),
    }
    atomic_write_text(out / RECORD_NAME, json.dumps({**result, "calibration": calibration}, indent=2) + "\n")
    for name, record in records.items():
        low, high = record["fpr_ci95"]
        log.info(
            "%s: threshold %.4f for FPR <= %g %% on %d good parts (FPR here %.2f %%, 95 %% interval %.2f-%.2f %%)",
            name, record["threshold"], task.target_fpr, record["num_pass"], record["fpr"], low, high,
        )  # fmt: skip
    log.info("Wrote %s (the model with its new threshold); evaluate or infer with it", target)
    return result


def _good(table) -> np.ndarray:
    """The rows taken as good parts: the PASS rows of a labelled CSV, every row of an unlabelled one."""
    return ~table.labels.astype(bool) if table.labelled else np.ones(len(table), dtype=bool)


def _groups(
    frame, column: str | None, good: np.ndarray, needed: int, csv_path, quiet: bool = False
) -> dict[str, np.ndarray]:
    """The rows each threshold is calibrated on: all good rows ("global"), or per value of ``column``."""
    if column is None:
        if good.sum() < needed:
            raise DataError(_too_few(csv_path, int(good.sum()), needed))
        return {"global": good}
    if column not in frame.columns:
        raise DataError(f"pair CSV {csv_path} has no column {column} (calibrate.calibrate_by); its columns: "
                        f"{', '.join(frame.columns)}")  # fmt: skip
    values = frame[column].astype(str).to_numpy()
    groups = {value: good & (values == value) for value in sorted(set(values[good].tolist()))}
    enough = {value: rows for value, rows in groups.items() if rows.sum() >= needed}
    for value in sorted(set(groups) - set(enough)) if not quiet else ():
        log.warning("%s=%s: %s", column, value, _too_few(csv_path, int(groups[value].sum()), needed))
    if not enough:
        raise DataError(_too_few(csv_path, max(int(r.sum()) for r in groups.values()), needed, f"any {column}"))
    return enough


def _too_few(csv_path, have: int, needed: int, what: str = "it") -> str:
    return (
        f"{csv_path}: {have} good parts (PASS pairs) for {what}; a threshold for this FPR target needs at least "
        f"{needed} (docs/unseen_designs.md: how many good parts a target needs); add good parts of the design or "
        "raise calibrate.target_fpr"
    )


def _check_mergeable(existing: dict | None, column: str | None) -> None:
    """Per-group thresholds go beside a model's global threshold, and beside its groups of the same column."""
    if column is None:
        return
    calibration = existing or {}
    if "threshold" not in calibration:
        raise ConfigError(
            "the model has no calibrated global threshold (a TAO model, or trained without validation); calibrate "
            "it without calibrate.calibrate_by first"
        )
    by_group = calibration.get("by_group") or {}
    if by_group.get("column") not in (None, column) and by_group.get("thresholds"):
        raise ConfigError(
            f"the model's thresholds are per {by_group['column']}, not per {column}; set "
            f"calibrate.calibrate_by={by_group['column']}, or leave it unset to replace the global threshold"
        )


def _merged(existing: dict | None, records: dict, task, needed: int) -> dict:
    """The model's calibration with the new thresholds: the global one replaced, or per-group ones added to the
    model's groups of the same column."""
    calibration = dict(existing or {})
    if "global" in records:
        kept = {k: v for k, v in calibration.items() if k == "by_group"}
        return {**records["global"], **kept}
    by_group = dict(calibration.get("by_group") or {})
    thresholds = {**(by_group.get("thresholds") or {}), **records}
    global_for = {k: v for k, v in (by_group.get("global_for") or {}).items() if k not in records}
    calibration["by_group"] = {"column": task.calibrate_by, "needed": {"num_pass": needed}, "thresholds": thresholds,
                               "global_for": global_for}  # fmt: skip
    return calibration
