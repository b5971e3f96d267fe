"""evaluate.calibrate_by: a threshold per part family that has enough validation pairs to show the target (the
rule of model/statistics.py), the global one for the rest."""

import numpy as np
import pandas as pd
import pytest

from tao_siamese_oi.model.calibration import calibrate, calibrate_groups, row_thresholds
from tao_siamese_oi.model.statistics import pairs_to_show


def _family(rng, num_pass: int, num_fail: int, shift: float):
    scores = np.concatenate([rng.normal(1.0 + shift, 0.1, num_pass), rng.normal(2.0 + shift, 0.1, num_fail)])
    return scores, np.r_[np.zeros(num_pass), np.ones(num_fail)]


def test_a_family_with_enough_pass_pairs_gets_its_own_threshold_the_others_the_global_one():
    rng = np.random.default_rng(0)
    needed = pairs_to_show(1.0)
    assert needed == 368  # 1 % FPR: fewer PASS pairs cannot show it even with none flagged
    resistor = _family(rng, needed, 40, 0.0)
    ic = _family(rng, 500, 40, 0.5)  # an IC's good parts score higher: one threshold would flag them
    capacitor = _family(rng, needed - 1, 40, 0.2)  # one PASS pair short
    scores = np.concatenate([resistor[0], ic[0], capacitor[0]])
    labels = np.concatenate([resistor[1], ic[1], capacitor[1]])
    groups = ["R"] * len(resistor[0]) + ["U"] * len(ic[0]) + ["C"] * len(capacitor[0])
    by_group = calibrate_groups(scores, labels, groups, "component_type", target_fpr=1.0)
    assert by_group["column"] == "component_type" and by_group["needed"] == {"num_pass": 368}
    assert set(by_group["thresholds"]) == {"R", "U"}
    assert by_group["global_for"] == {"C": {"num_pass": 367, "num_fail": 40}}
    assert by_group["thresholds"]["U"] == calibrate(*ic, target_fpr=1.0)  # calibrated on its own pairs alone
    assert by_group["thresholds"]["U"]["threshold"] > by_group["thresholds"]["R"]["threshold"]
    by_recall = calibrate_groups(scores, labels, groups, "component_type", target_recall=95.0)
    assert by_recall["needed"] == {"num_fail": pairs_to_show(5.0)} and by_recall["thresholds"] == {}  # 40 < 72


def test_each_row_is_decided_by_its_familys_threshold_and_unknown_ones_by_the_global():
    calibration = {
        "threshold": 1.5,
        "by_group": {"column": "component_type", "thresholds": {"R": {"threshold": 1.2}, "U": {"threshold": 1.9}}},
    }
    frame = pd.DataFrame({"component_type": ["R", "U", "C", "R"]})
    assert row_thresholds(frame, calibration, 1.5).tolist() == [1.2, 1.9, 1.5, 1.2]
    assert row_thresholds(frame.rename(columns={"component_type": "x"}), calibration, 1.5) == 1.5  # column absent
    assert row_thresholds(frame, {"threshold": 1.5}, 1.5) == 1.5  # calibrated without groups


@pytest.mark.parametrize("threshold", [1.0, np.array([0.5, 1.5, 0.5, 1.5])])
def test_metrics_take_one_threshold_or_one_per_row(threshold):
    from tao_siamese_oi.model.metrics import threshold_metrics

    m = threshold_metrics([0.8, 1.2, 0.9, 1.6], [0, 0, 1, 1], threshold)
    flagged = np.array([0.8, 1.2, 0.9, 1.6]) > threshold
    assert m["fpr"] == 100.0 * flagged[:2].sum() / 2 and m["recall"] == 100.0 * flagged[2:].sum() / 2
