"""Operating-point metrics and threshold calibration, against hand-computed values."""

import numpy as np
import pytest

from tao_siamese_oi.model.calibration import calibrate, threshold_for_fpr, threshold_for_recall
from tao_siamese_oi.model.metrics import inspection_metrics

# 5 PASS (0.1, 0.5, 2.5, 0.3, 0.4) and 3 FAIL (3.0 short, 1.0 open, 2.1 short).
SCORES = np.array([0.1, 0.5, 2.5, 3.0, 1.0, 2.1, 0.3, 0.4])
LABELS = np.array([0, 0, 0, 1, 1, 1, 0, 0])
TYPES = ["", "", "", "short", "open", "short", "", ""]


def test_every_metric_by_hand():
    m = inspection_metrics(SCORES, LABELS, threshold=2.0, defect_types=TYPES)
    # At 2.0: 3.0 and 2.1 caught (TP 2), 2.5 flagged (FP 1), 1.0 missed (FN 1).
    assert m["precision"] == pytest.approx(100 * 2 / 3)
    assert m["f1"] == pytest.approx(100 * 4 / 6)  # 2TP / (2TP + FP + FN)
    # Ranked: 3.0 F, 2.5 P, 2.1 F, 1.0 F, ...: AP = (1/1 + 2/3 + 3/4) / 3.
    assert m["average_precision"] == pytest.approx(29 / 36)
    # Any budget under 20 % allows no PASS flagged: threshold between 2.5 and 3.0, one defect of three caught.
    assert m["recall_at_fpr"] == pytest.approx({"0.1": 100 / 3, "0.5": 100 / 3, "1": 100 / 3, "5": 100 / 3})
    # Catching all three needs the threshold below 1.0, which flags the PASS at 2.5: FPR 1/5.
    assert m["fpr_at_full_recall"] == pytest.approx(20.0)
    by_type = m["by_defect_type"]
    assert set(by_type) == {"open", "short"}
    # open: 1.0 beats 4 of 5 PASS; ranked 2.5 P, 1.0 F: AP 1/2; under 20 % FPR (2.5 must stay PASS) nothing caught.
    assert by_type["open"] == {
        "num_pairs": 1,
        "recall": 0.0,
        "auroc": pytest.approx(4 / 5),
        "average_precision": pytest.approx(1 / 2),
        "recall_at_fpr": {"0.1": 0.0, "0.5": 0.0, "1": 0.0, "5": 0.0},
    }
    # short: 3.0 beats 5, 2.1 beats 4 of 5; ranked 3.0 F, 2.5 P, 2.1 F: AP (1 + 2/3) / 2; 3.0 caught at 0 FPR.
    assert by_type["short"] == {
        "num_pairs": 2,
        "recall": 100.0,
        "auroc": pytest.approx(9 / 10),
        "average_precision": pytest.approx(5 / 6),
        "recall_at_fpr": {"0.1": 50.0, "0.5": 50.0, "1": 50.0, "5": 50.0},
    }


def test_all_pass_and_all_fail_sets_report_what_is_defined():
    all_pass = inspection_metrics([0.5, 2.5, 3.0], [0, 0, 0], threshold=2.0)
    assert all_pass["fpr"] == pytest.approx(200 / 3) and all_pass["precision"] == 0.0
    for key in ("recall", "f1", "auroc", "average_precision", "fpr_at_full_recall"):
        assert all_pass[key] is None, key
    assert set(all_pass["recall_at_fpr"].values()) == {None}
    all_fail = inspection_metrics([0.5, 2.5, 3.0], [1, 1, 1], threshold=2.0)
    assert all_fail["recall"] == pytest.approx(200 / 3) and all_fail["precision"] == 100.0
    assert all_fail["f1"] == pytest.approx(80.0)  # 2*2 / (4 + 0 + 1)
    for key in ("fpr", "auroc", "average_precision", "fpr_at_full_recall"):
        assert all_fail[key] is None, key


def test_thresholds_by_hand():
    assert threshold_for_fpr(SCORES, LABELS, 1.0) == pytest.approx(2.75)  # midway 2.5 (last PASS kept) .. 3.0
    assert threshold_for_fpr(SCORES, LABELS, 20.0) == pytest.approx(0.75)  # one PASS may go: midway 0.5 .. 1.0
    assert threshold_for_fpr(SCORES, LABELS, 100.0) < SCORES.min()  # everything may be flagged
    assert threshold_for_recall(SCORES, LABELS, 60.0) == pytest.approx(1.55)  # 2 of 3: midway 1.0 .. 2.1
    assert threshold_for_recall(SCORES, LABELS, 100.0) == pytest.approx(0.75)
    assert threshold_for_fpr(SCORES, np.ones(8), 1.0) is None  # no PASS pairs to measure FPR on
    assert threshold_for_recall(SCORES, np.zeros(8), 90.0) is None


@pytest.mark.parametrize("target_fpr", [0.1, 1.0, 5.0])
def test_calibrated_threshold_meets_an_fpr_target_with_the_most_recall(target_fpr):
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(1.0, 0.4, 2000), rng.normal(2.2, 0.5, 150)]  # validation-like overlap
    labels = np.r_[np.zeros(2000), np.ones(150)].astype(bool)
    result = calibrate(scores, labels, target_fpr=target_fpr)
    assert result["fpr"] <= target_fpr and result["recall"] > 0
    # Maximal: the next lower candidate threshold (just under the highest PASS score kept) breaks the budget.
    kept = scores[~labels][scores[~labels] <= result["threshold"]].max()
    lower = np.nextafter(kept, -np.inf)
    assert 100 * np.mean(scores[~labels] > lower) > target_fpr


def test_calibrated_threshold_meets_a_recall_target_with_the_fewest_false_alarms():
    rng = np.random.default_rng(1)
    scores = np.r_[rng.normal(1.0, 0.4, 2000), rng.normal(2.2, 0.5, 150)]
    labels = np.r_[np.zeros(2000), np.ones(150)].astype(bool)
    result = calibrate(scores, labels, target_recall=95.0)
    assert result["recall"] >= 95.0 and result["target_recall"] == 95.0
    caught = scores[labels][scores[labels] > result["threshold"]].min()
    assert 100 * np.mean(scores[labels] > caught) < 95.0  # raising it past the lowest caught defect misses the target


def test_calibration_without_the_needed_class_is_none():
    assert calibrate([0.1, 0.2], [1, 1], target_fpr=1.0) is None
    assert calibrate([0.1, 0.2], [0, 0], target_recall=90.0) is None


def test_decision_threshold_prefers_the_spec_then_the_calibration_then_the_margin(caplog):
    from tao_siamese_oi.deploy.scorer import decision_threshold

    calibration = {"threshold": 0.8, "target_fpr": 1.0}
    assert decision_threshold(0.5, 2.0, calibration) == (0.5, "spec")
    assert decision_threshold(None, 2.0, calibration) == (0.8, "calibrated")
    assert decision_threshold(None, 2.0, None) == (2.0, "margin")
    assert "no calibrated threshold" in caplog.text  # the fallback is said out loud


def test_roc_shows_the_threshold_and_the_margin_where_they_coincide():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    from tao_siamese_oi.tasks.evaluate_plots import _roc

    scores, labels = np.array([0.1, 0.2, 2.5, 3.0]), np.array([0, 0, 1, 1], bool)
    point = {"fpr": 0.0, "recall": 100.0, "threshold": 2.0}
    metrics = {**point, "auroc": 1.0, "at_margin": dict(point)}  # the calibrated threshold is the margin
    figure = _roc(plt, scores, labels, metrics)
    for axes in figure.axes:
        margin, threshold = (
            next(line for line in axes.lines if line.get_label().startswith(p)) for p in ("margin", "threshold")
        )
        assert list(margin.get_xydata()[0]) == list(threshold.get_xydata()[0])  # the same spot
        assert threshold.get_zorder() > margin.get_zorder()  # the dot on top ...
        assert (
            margin.get_markerfacecolor() == "none" and margin.get_markersize() > threshold.get_markersize()
        )  # ... inside an open square
    plt.close(figure)


def test_outcome_names_each_pair_by_hand():
    from tao_siamese_oi.tasks.evaluate import outcomes

    flagged = np.array([True, True, False, False])
    defect = np.array([True, False, True, False])
    assert outcomes(flagged, defect).tolist() == ["TP", "FP", "FN", "TN"]
