"""``indomer.calibrate.metrics``: the operating points on hand-computed cases (scikit-learn's
``roc_curve`` as the reference) and single-linkage components."""

from __future__ import annotations

import math

import numpy as np
import pytest

from indomer.calibrate.metrics import (
    components,
    equal_error,
    operating_points,
    rates,
    threshold_at_miss,
)

# --------------------------------------------------------------------------- operating points

SAME = [0.9, 0.8, 0.7, 0.6]
DIFF = [0.75, 0.5, 0.4, 0.3, 0.2]


def test_rates_threshold_at_miss_and_split_safe_by_hand() -> None:
    s, d = np.array(SAME), np.array(DIFF)
    assert rates(s, d, 0.7) == (0.25, 0.2)  # 0.6 missed; 0.75 merged
    assert rates(s, d, 0.6) == (0.0, 0.2)
    # largest threshold whose miss rate is <= target: floor(target * 4) + 1-th smallest
    assert [threshold_at_miss(SAME, r) for r in (0, 0.01, 0.25, 0.3, 0.5, 0.75, 1)] == [
        0.6, 0.6, 0.7, 0.7, 0.8, 0.9, 0.9]
    # EER: scanning down, at 0.7 (miss 0.25, merge 0.2) then 0.6 (0, 0.2): crosses at 0.2
    assert equal_error(SAME, DIFF) == pytest.approx((0.2, 0.6))
    # a crossing on a false-merge step: miss stays 0.5 while merge goes 0 -> 1
    assert equal_error([0.9, 0.1], [0.5]) == pytest.approx((0.5, 0.5))
    points = operating_points(SAME, DIFF, margin=0.05)
    assert points["eer"] == {"rate": 0.2, "threshold": 0.6, "miss_rate": 0.0,
                             "false_merge_rate": 0.2}
    assert [(p["target_miss_rate"], p["threshold"], p["miss_rate"], p["false_merge_rate"])
            for p in points["at_miss_rate"]] == [
        (0.0, 0.6, 0.0, 0.2), (0.01, 0.6, 0.0, 0.2), (0.05, 0.6, 0.0, 0.2),
        (0.1, 0.6, 0.0, 0.2)]
    assert points["split_safe"] == {"margin": 0.05, "threshold": 0.55, "miss_rate": 0.0,
                                    "false_merge_rate": 0.2}
    # 0.25 below the smallest same-person score: 0.75, 0.5 and 0.4 are merged
    wide = operating_points(SAME, DIFF, margin=0.25)["split_safe"]
    assert (wide["threshold"], wide["false_merge_rate"]) == (0.35, 0.6)


def test_operating_points_match_sklearn_roc_curve() -> None:
    from sklearn.metrics import roc_curve

    rng = np.random.default_rng(7)
    for _ in range(20):
        same = rng.normal(0.85, 0.06, rng.integers(3, 40))
        diff = rng.normal(0.65, 0.08, rng.integers(10, 300))
        y = np.r_[np.ones(same.size), np.zeros(diff.size)]
        fpr, tpr, thr = roc_curve(y, np.r_[same, diff], drop_intermediate=False)
        fnr = 1 - tpr
        ours = np.array([rates(same, diff, t) for t in thr[1:]])
        np.testing.assert_allclose(ours, np.c_[fnr[1:], fpr[1:]], rtol=0, atol=1e-12)
        # continuous scores: the curve moves one rate at a time, so the interpolated EER is
        # the smallest max(miss, false merge) over its points, and its threshold the first
        # point where false merge reaches miss
        eer, at = equal_error(same, diff)
        assert eer == pytest.approx(np.min(np.maximum(fnr, fpr)), abs=1e-12)
        assert at == thr[np.argmax(fpr >= fnr)]
        for target in (0.0, 0.05, 0.1):
            t = threshold_at_miss(same, target)
            assert rates(same, diff, t)[0] <= target
            assert rates(same, diff, np.nextafter(t, 2))[0] > target  # the largest


def test_components_single_linkage() -> None:
    angles = np.radians([0, 20, 40, 100, 185])  # 0-20-40 chain at cos 20°; 100, 185 alone
    x = np.c_[np.cos(angles), np.sin(angles)]
    assert components(x, math.cos(math.radians(25))) == [0, 0, 0, 1, 2]
    assert components(x, math.cos(math.radians(15))) == [0, 1, 2, 3, 4]
    assert components(x, math.cos(math.radians(80))) == [0, 0, 0, 0, 1]
    assert components(np.zeros((0, 2)), 0.5) == []
