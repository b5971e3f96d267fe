"""The drift rule (model/drift.py): quiet on scores like the calibration set's good parts, a warning on a shifted
set, per group where the model has per-group thresholds."""

import numpy as np
import pandas as pd
import pytest

from tao_siamese_oi.model.calibration import calibrate, pass_profile
from tao_siamese_oi.model.drift import MIN_ROWS, drift_warnings, shifted


def good_parts(n: int, seed: int, shift: float = 0.0, scale: float = 1.0) -> np.ndarray:
    return np.random.default_rng(seed).gamma(4.0, 0.1, n) * scale + shift  # distances: positive, skewed


def test_quiet_on_the_calibration_distribution_over_many_runs():
    profile = pass_profile(good_parts(2000, 0))
    fired = [shifted(good_parts(n, seed), profile, pass_rows=True) for seed in range(1, 101) for n in (50, 400)]
    assert [f for f in fired if f] == []


@pytest.mark.parametrize(
    "run, why",
    [
        (dict(shift=0.2), "median score"),  # a new design whose good parts all score higher
        (dict(scale=0.5), "median score"),  # or all lower: the threshold is then needlessly loose
    ],
)
def test_a_shifted_set_is_named(run, why):
    profile = pass_profile(good_parts(2000, 0))
    reason = shifted(good_parts(400, 1, **run), profile, pass_rows=True)
    assert reason is not None and reason.startswith(why)


def test_a_heavier_tail_of_good_parts_is_caught_on_labelled_rows():
    """The median can stay while the upper tail, where the threshold sits, grows: a share test at the q90."""
    profile = pass_profile(good_parts(2000, 0))
    rng = np.random.default_rng(5)
    run = good_parts(400, 1)
    run[rng.choice(400, 60, replace=False)] += 0.4  # 15 % of the good parts score high: 25 % above the q90
    assert shifted(run, profile, pass_rows=True).endswith("where 10 % would")
    assert shifted(run, profile, pass_rows=False) is None  # unlabelled: defects could be that tail


def test_too_few_rows_or_no_usable_profile_say_nothing():
    profile = pass_profile(good_parts(2000, 0))
    assert shifted(good_parts(MIN_ROWS - 1, 1, shift=1.0), profile, pass_rows=True) is None
    for damaged in ({**profile, "q25": "low"}, {**profile, "q75": float("nan")}, [1, 2], None):
        assert shifted(good_parts(400, 1, shift=1.0), damaged, pass_rows=True) is None


def test_warnings_name_the_group_that_drifted():
    scores = np.concatenate([good_parts(300, 1), good_parts(300, 2, shift=0.3)])
    frame = pd.DataFrame({"design": ["A"] * 300 + ["B"] * 300})
    labels = np.zeros(600, dtype=bool)
    calibration = calibrate(good_parts(1000, 0), np.zeros(1000, bool), 1.0)
    calibration["by_group"] = {
        "column": "design",
        "thresholds": {"A": calibrate(good_parts(1000, 3), np.zeros(1000, bool), 1.0)},
    }
    lines = drift_warnings(frame, scores, labels, True, calibration, "inference on x.csv")
    assert len(lines) == 1 and lines[0].startswith("inference on x.csv, design without a threshold of its own: ")
    assert "optical_inspection calibrate" in lines[0]
    frame["design"] = "A"  # all rows with A's threshold: B's rows now pull A's median up
    assert drift_warnings(frame, scores, labels, True, calibration, "x")[0].startswith("x, design=A: ")
    assert drift_warnings(frame, scores, labels, True, None, "x") == []  # a spec threshold: nothing to compare
