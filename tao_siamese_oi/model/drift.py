"""When a stored threshold is out of its depth: a run's scores of good parts compared with the calibration set's.

A threshold calibrated for 1 % FPR is the 99th percentile of the calibration set's PASS scores; on a new board
design the good parts may score higher, and the threshold then flags more of them than asked for. The
calibration record keeps its PASS scores' quantiles (``pass_scores``: q25, q50, q75, q90, q99; model/calibration.py)
and every evaluate and inference run compares its own scores with them, per group when the model has per-group
thresholds:

- the scores compared: the run's PASS rows when the CSV is labelled; all rows when it is not (defects are a
  minority of a line's parts and move the median little);
- **the rule**: at least :data:`MIN_ROWS` rows, and their median lies outside the calibration set's middle half
  (below its q25 or above its q75), or, on labelled PASS rows, more of them score above the calibration q90 than
  a binomial test at 0.1 % allows for the expected 10 %. Without drift the first happens with a probability under
  1e-4 at 50 rows (a median's spread is about 1.25 sigma / sqrt(n) against the 0.67 sigma to a quartile).

A shifted group gets one warning line per run, naming it and what to do (re-calibrate on its good parts:
``optical_inspection calibrate``).
"""

import numpy as np
from scipy.stats import binom

MIN_ROWS = 50
TAIL_QUANTILE, TAIL_SHARE = "q90", 0.10
SIGNIFICANCE = 0.001


def shifted(scores, profile: dict | None, pass_rows: bool) -> str | None:
    """Why ``scores`` do not look like the calibration set's PASS scores (``profile``), or None when they do or
    when there are too few to tell."""
    scores = np.asarray(scores, dtype=np.float64)
    needed = ("q25", "q75", TAIL_QUANTILE)
    if not isinstance(profile, dict) or scores.size < MIN_ROWS or not all(_finite(profile.get(q)) for q in needed):
        return None  # too few rows, or no usable profile (an older model, a damaged record): nothing to compare
    median = float(np.median(scores))
    if not profile["q25"] <= median <= profile["q75"]:
        return (
            f"median score {median:.4f} against {profile['q25']:.4f}-{profile['q75']:.4f} for the middle half of the "
            "calibration set's good parts"
        )
    if pass_rows:
        above = int((scores > profile[TAIL_QUANTILE]).sum())
        if binom.sf(above - 1, scores.size, TAIL_SHARE) < SIGNIFICANCE:
            return (
                f"{100 * above / scores.size:.1f} % of the good parts score above the calibration set's 90th "
                f"percentile ({profile[TAIL_QUANTILE]:.4f}), where 10 % would"
            )
    return None


def _finite(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and np.isfinite(value)


def drift_warnings(frame, scores, labels, labelled: bool, calibration: dict | None, where: str) -> list[str]:
    """One line per group (or for the whole run) whose scores have drifted from the calibration set's."""
    if not calibration:
        return []
    scores = np.asarray(scores, dtype=np.float64)
    compared = ~np.asarray(labels).astype(bool) if labelled else np.ones(scores.size, dtype=bool)
    by_group = calibration.get("by_group") or {}
    column, own = by_group.get("column"), by_group.get("thresholds") or {}
    checks = []  # (name, rows, profile)
    if column and own and column in frame.columns:
        values = frame[column].astype(str).to_numpy()
        for value, entry in own.items():
            checks.append((f"{column}={value}", values == value, entry.get("pass_scores")))
        rest = ~np.isin(values, list(own))
        checks.append((f"{column} without a threshold of its own", rest, calibration.get("pass_scores")))
    else:
        checks.append(("all rows", np.ones(scores.size, dtype=bool), calibration.get("pass_scores")))
    lines = []
    for name, rows, profile in checks:
        reason = shifted(scores[rows & compared], profile, labelled)
        if reason:
            lines.append(
                f"{where}, {name}: the scores differ from those the threshold was calibrated on ({reason}); the "
                "threshold may not hold its target here. Re-calibrate on this design's good parts: "
                "optical_inspection calibrate (docs/unseen_designs.md)"
            )
    return lines
