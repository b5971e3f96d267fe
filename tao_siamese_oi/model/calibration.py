"""Decision thresholds picked for an operating point: the most defects caught at a false-alarm budget, or the
fewest false alarms at a catch rate. A pair is FAIL when its distance is strictly above the threshold.

Both searches work on sorted scores (no loop over candidate thresholds). The threshold is put midway between
the last score the target allows and the next score in the set, so the calibration data's decisions are
exactly those counted, with as much room on either side as that data allows.
"""

import math

import numpy as np

DEFAULT_TARGET_FPR = 1.0  # percent of PASS pairs flagged


def threshold_for_fpr(scores, labels, target_fpr: float) -> float | None:
    """The lowest threshold (highest recall) flagging at most ``target_fpr`` % of the PASS pairs; None without
    PASS pairs."""
    scores, labels = _arrays(scores, labels)
    passes = np.sort(scores[~labels])[::-1]
    if passes.size == 0:
        return None
    allowed = math.floor(target_fpr / 100.0 * passes.size + 1e-9)  # PASS pairs that may be flagged
    if allowed >= passes.size:
        return float(np.nextafter(scores.min(), -np.inf))  # every pair may be flagged
    last_kept = passes[allowed]  # the highest-scored PASS pair that must stay PASS
    above = scores[scores > last_kept]
    return float((last_kept + above.min()) / 2) if above.size else float(last_kept)


def threshold_for_recall(scores, labels, target_recall: float) -> float | None:
    """The highest threshold (fewest false alarms) flagging at least ``target_recall`` % of the FAIL pairs; None
    without FAIL pairs."""
    scores, labels = _arrays(scores, labels)
    fails = np.sort(scores[labels])[::-1]
    if fails.size == 0:
        return None
    needed = math.ceil(target_recall / 100.0 * fails.size - 1e-9)
    if needed <= 0:
        return float(scores.max())  # nothing needs flagging
    last_caught = fails[min(needed, fails.size) - 1]  # the lowest-scored FAIL pair that must be caught
    below = scores[scores < last_caught]
    return float((below.max() + last_caught) / 2) if below.size else float(np.nextafter(last_caught, -np.inf))


def calibrate(scores, labels, target_fpr: float | None = None, target_recall: float | None = None) -> dict | None:
    """The threshold for ``target_recall`` if given, else for ``target_fpr`` (default 1 %), with the FPR and
    recall it achieves on these scores; None when the data lacks the class the target is about."""
    scores, labels = _arrays(scores, labels)
    if target_recall is not None:
        target = {"target_recall": float(target_recall)}
        threshold = threshold_for_recall(scores, labels, target_recall)
    else:
        target_fpr = DEFAULT_TARGET_FPR if target_fpr is None else target_fpr
        target = {"target_fpr": float(target_fpr)}
        threshold = threshold_for_fpr(scores, labels, target_fpr)
    if threshold is None:
        return None
    flagged = scores > threshold
    num_pass, num_fail = int((~labels).sum()), int(labels.sum())
    return {
        "threshold": threshold,
        **target,
        "fpr": 100.0 * int((flagged & ~labels).sum()) / num_pass if num_pass else None,
        "recall": 100.0 * int((flagged & labels).sum()) / num_fail if num_fail else None,
        "num_pass": num_pass,
        "num_fail": num_fail,
        "pass_scores": pass_profile(scores[~labels]),
    }


PROFILE_QUANTILES = (25, 50, 75, 90, 99)


def pass_profile(pass_scores) -> dict | None:
    """The calibration set's PASS scores in a few quantiles (q25 ... q99, and how many): what a later run's scores
    are compared with to say when the threshold is out of its depth (model/drift.py)."""
    pass_scores = np.asarray(pass_scores, dtype=np.float64)
    if pass_scores.size == 0:
        return None
    values = np.percentile(pass_scores, PROFILE_QUANTILES)
    return {"n": int(pass_scores.size), **{f"q{q}": float(v) for q, v in zip(PROFILE_QUANTILES, values)}}


def _arrays(scores, labels) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(scores, dtype=np.float64), np.asarray(labels).astype(bool)


def calibrate_groups(
    scores, labels, groups, column: str, target_fpr: float | None = None, target_recall: float | None = None
) -> dict:
    """A threshold per value of ``groups`` (one per pair) that has enough pairs to show the target, calibrated as
    :func:`calibrate` does on its pairs alone; the others keep the global threshold. "Enough" is the rule of
    model/statistics.py: the target class's pairs must be at least the fewest that can show the target rate at
    all (a 1 % FPR: 368 PASS pairs), else the group's own threshold would be noise."""
    from tao_siamese_oi.model.statistics import pairs_to_show

    scores, labels = _arrays(scores, labels)
    groups = np.asarray(groups, dtype=object).astype(str)
    if target_recall is not None:
        needed, counted = pairs_to_show(100.0 - target_recall), "num_fail"
    else:
        needed, counted = pairs_to_show(DEFAULT_TARGET_FPR if target_fpr is None else target_fpr), "num_pass"
    thresholds, too_small = {}, {}
    for value in sorted(set(groups.tolist())):  # plain str keys: a checkpoint holds no numpy objects
        mine = groups == value
        own = calibrate(scores[mine], labels[mine], target_fpr, target_recall)
        counts = {"num_pass": int((~labels[mine]).sum()), "num_fail": int(labels[mine].sum())}
        if own is not None and counts[counted] >= needed:
            thresholds[value] = own
        else:
            too_small[value] = counts
    return {"column": column, "needed": {counted: needed}, "thresholds": thresholds, "global_for": too_small}


def group_thresholds(calibration: dict | None) -> tuple[str | None, dict[str, float]]:
    """(the column, {value: its own threshold}) of a model calibrated per group; (None, {}) otherwise."""
    by_group = (calibration or {}).get("by_group") or {}
    own = {value: float(entry["threshold"]) for value, entry in by_group.get("thresholds", {}).items()}
    return (by_group["column"] if own else None), own


def row_thresholds(frame, calibration: dict | None, threshold: float):
    """Each row's decision threshold: its group's (``calibration["by_group"]``) where the row's value has one, else
    ``threshold``; a plain float when the model has no per-group thresholds."""
    column, own = group_thresholds(calibration)
    if column is None or column not in frame.columns:
        return threshold
    return frame[column].astype(str).map(own).fillna(threshold).to_numpy(dtype=np.float64)
