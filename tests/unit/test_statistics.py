"""Exact binomial intervals against values computed by hand, and the smallest set that can show a target rate."""

import math

import numpy as np
import pytest

from tao_siamese_oi.model.metrics import inspection_metrics
from tao_siamese_oi.model.statistics import clopper_pearson, pairs_to_show, rate, too_few


def test_clopper_pearson_by_hand():
    # No event in n: the upper end solves (1 - p)^n = 0.025; all n: the lower end solves p^n = 0.025.
    assert clopper_pearson(0, 30) == pytest.approx([0.0, 100 * (1 - 0.025 ** (1 / 30))])
    assert clopper_pearson(30, 30) == pytest.approx([100 * 0.025 ** (1 / 30), 100.0])
    # 1 of 2: P(X >= 1 | p) = 1 - (1 - p)^2 = 0.025 and P(X <= 1 | p) = 1 - p^2 = 0.025.
    assert clopper_pearson(1, 2) == pytest.approx([100 * (1 - math.sqrt(0.975)), 100 * math.sqrt(0.975)])
    assert clopper_pearson(3, 0) is None
    assert rate(3, 300) == {"count": 3, "of": 300, "percent": 1.0, "ci95_percent": clopper_pearson(3, 300)}


def test_the_pairs_needed_to_show_a_rate():
    assert pairs_to_show(1.0) == 368  # (1 - 0.01)^368 < 0.025 <= (1 - 0.01)^367
    assert (1 - 0.01) ** 368 < 0.025 <= (1 - 0.01) ** 367
    assert pairs_to_show(0.1) == 3688
    line = too_few(30, 1.0, "FPR", "PASS", "the validation set")
    assert line == (
        "the validation set has 30 PASS pairs: too few to show an FPR of 1 % (at least 368 are needed even with "
        "none wrong); treat its FPR as a rough estimate"
    )
    assert too_few(368, 1.0, "FPR", "PASS", "x") is None


def test_every_rate_in_the_metrics_carries_its_count_and_interval():
    scores = np.array([0.1, 0.2, 0.3, 0.9, 0.6, 0.95, 0.4])
    labels = np.array([0, 0, 0, 0, 1, 1, 1], bool)
    metrics = inspection_metrics(scores, labels, threshold=0.5)
    assert metrics["units"] == "percent"
    rates = metrics["rates"]
    assert rates["fpr"]["count"] == 1 and rates["fpr"]["of"] == 4 and rates["fpr"]["percent"] == metrics["fpr"]
    assert rates["recall"] == rate(2, 3) and rates["precision"] == rate(2, 3)
    low, high = rates["fpr"]["ci95_percent"]
    assert low < metrics["fpr"] < high
    assert rates["recall_at_fpr"]["1"]["percent"] == metrics["recall_at_fpr"]["1"]
