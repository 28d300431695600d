"""What a calibration measures on same-person and different-people cosines (pure numpy): miss
and false-link rates, the equal error point, operating points, and the logistic
score -> probability fit the speakers stage uses."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from indomer.errors import DataError

#: Default margin of the split-safe threshold below the smallest same-person cosine.
MARGIN = 0.05
#: Target miss rates reported (share of same-person pairs left unlinked).
TARGETS = (0.0, 0.01, 0.05, 0.10)
#: Decimals of the figures in the report.
DECIMALS = 6


# --------------------------------------------------------------------------- scores


def _floor(x: float) -> float:
    return math.floor(x * 10 ** DECIMALS + 1e-9) / 10 ** DECIMALS


def _round(x: float) -> float:
    return round(float(x), DECIMALS)


def rates(same: np.ndarray, different: np.ndarray, threshold: float) -> tuple[float, float]:
    """(miss rate, false-merge rate) when pairs at cosine >= ``threshold`` are linked."""
    miss = float(np.mean(same < threshold)) if same.size else 0.0
    merge = float(np.mean(different >= threshold)) if different.size else 0.0
    return miss, merge


def equal_error(same: Sequence[float], different: Sequence[float]) -> tuple[float, float]:
    """(equal-error rate, threshold): see the module docstring for the interpolation."""
    s = np.asarray(same, dtype=np.float64)
    d = np.asarray(different, dtype=np.float64)
    if not s.size or not d.size:
        raise DataError("the equal-error rate needs same-person and different-people pairs")
    # every distinct score, descending, after "above every score" (nothing linked)
    candidates = np.unique(np.concatenate([s, d]))[::-1]
    miss = np.r_[1.0, np.searchsorted(np.sort(s), candidates, side="left") / s.size]
    merge = np.r_[0.0, 1.0 - np.searchsorted(np.sort(d), candidates, side="left") / d.size]
    # the first point where false merges reach misses (at the lowest score: all merged, no miss)
    k = int(np.argmax(merge >= miss))
    gap_before, gap_after = miss[k - 1] - merge[k - 1], merge[k] - miss[k]
    share = gap_before / (gap_before + gap_after) if gap_before + gap_after else 0.0
    return float(merge[k - 1] + share * (merge[k] - merge[k - 1])), float(candidates[k - 1])


def threshold_at_miss(same: Sequence[float], target: float) -> float:
    """The largest threshold whose miss rate on ``same`` is at most ``target``."""
    s = np.sort(np.asarray(same, dtype=np.float64))
    if not s.size:
        raise DataError("a threshold at a miss rate needs same-person pairs")
    allowed = math.floor(target * s.size + 1e-9)
    return float(s[min(allowed, s.size - 1)])


def components(vectors: np.ndarray, threshold: float) -> list[int]:
    """Single linkage at ``threshold``: the component index of each vector (0, 1, ... in order
    of first member), through the identity module's one union-find."""
    from indomer.identity import union_find

    n = len(vectors)
    if not n:
        return []
    iu, ju = np.nonzero(np.triu(vectors @ vectors.T >= threshold, k=1))
    roots = union_find(n, list(zip(iu.tolist(), ju.tolist(), strict=True)))
    labels: dict[int, int] = {}
    return [labels.setdefault(int(r), len(labels)) for r in roots]


def _stats(x: np.ndarray) -> dict:
    if not x.size:
        return {"n": 0}
    return {"n": int(x.size), "min": _round(x.min()), "median": _round(np.median(x)),
            "max": _round(x.max()), "mean": _round(x.mean())}


def operating_points(same: Sequence[float], different: Sequence[float],
                     *, margin: float = MARGIN, targets: Sequence[float] = TARGETS) -> dict:
    """EER, thresholds at target miss rates, and the split-safe threshold (no components)."""
    s = np.asarray(same, dtype=np.float64)
    d = np.asarray(different, dtype=np.float64)
    eer, eer_t = equal_error(s, d)
    eer_t = _floor(eer_t)
    miss, merge = rates(s, d, eer_t)
    out: dict = {"eer": {"rate": _round(eer), "threshold": eer_t, "miss_rate": _round(miss),
                         "false_merge_rate": _round(merge)}}
    rows = []
    for target in targets:
        t = _floor(threshold_at_miss(s, target))
        miss, merge = rates(s, d, t)
        rows.append({"target_miss_rate": target, "threshold": t, "miss_rate": _round(miss),
                     "false_merge_rate": _round(merge)})
    out["at_miss_rate"] = rows
    t = _floor(float(s.min()) - margin)
    miss, merge = rates(s, d, t)
    out["split_safe"] = {"margin": margin, "threshold": t, "miss_rate": _round(miss),
                         "false_merge_rate": _round(merge)}
    return out


def probability_fit(x: np.ndarray, same: Sequence[tuple[float, int, int]],
                    different: Sequence[tuple[float, int, int]]) -> dict:
    """The score -> probability mapping the speakers stage uses (:mod:`indomer.identity`):
    a logistic regression of "one person" on the cohort-normalised cosine (each pair scored
    after subtracting the mean of the other voices), with that score's figures and the mean
    voice that pads a small dataset's cohort."""
    from indomer.identity import MIN_COHORT, cohort_scores, fit_logistic, unit

    score = cohort_scores(x)
    s = np.array([score[i, j] for _, i, j in same])
    d = np.array([score[i, j] for _, i, j in different])
    slope, intercept = fit_logistic(np.concatenate([s, d]),
                                    np.concatenate([np.ones(s.size), np.zeros(d.size)]))
    points = operating_points(s, d, margin=0.0)
    return {
        "score": "cosine after subtracting the mean of the other voices (leave-pair-out cohort)",
        "model": "logistic: logit p = slope * score + intercept",
        "slope": _round(slope),
        "intercept": _round(intercept),
        "prior": _round(s.size / (s.size + d.size)),
        "n_same": int(s.size),
        "n_different": int(d.size),
        "same_person": {**_stats(s), "sd": _round(s.std(ddof=1)) if s.size > 1 else None},
        "different_people": {**_stats(d), "sd": _round(d.std(ddof=1)) if d.size > 1 else None},
        "eer": points["eer"],
        "zero_miss": points["at_miss_rate"][0],
        "min_cohort": MIN_COHORT,
        "cohort_mean": [_round(v) for v in unit(x.mean(axis=0))],
    }
