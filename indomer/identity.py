"""Identity as probabilities: per pair of voices, the probability that they are one person,
and what a split's assignment then risks (pure numpy; no I/O).

How, and why:

* **Normalised voice score.** Raw cosines are not comparable across domains: on real AMI
  speech one person scores 0.67-0.94 across recordings and different people up to 0.86,
  while synthetic voices all sit higher. So each pair is scored after subtracting the mean
  of a *cohort*: the dataset's other voices (the pair itself left out, so that two voices
  never pull their own reference). A cohort smaller than :data:`MIN_COHORT` is padded with
  the calibration set's mean voice, so a dataset of three sources still gets a defined,
  stable score. The score is the cosine of the two centred vectors, computed for every pair
  at once from the Gram matrix (``O(n^2)``, no per-pair vectors).
* **Calibrated probability.** ``logit p = slope * score + intercept``, a logistic regression
  fitted on labelled speech (``indomer speakers calibrate``; the shipped record is fitted on
  the AMI excerpt). Its intercept carries the calibration set's prior (3.4% of AMI's pairs
  are one person); a dataset's own prior is estimated from its scores
  (:func:`estimate_prior`) and replaces it, unless ``speakers.prior`` fixes it. Where both
  sources have a face, the face cosine adds a log-likelihood
  ratio (:func:`face_llr`): strongly positive at or above ``FACE_SAME``, strongly negative
  below ``FACE_DIFFERENT``, linear between. Pins are certain: must-links 1, cannot-links 0.
* **Hard groups.** Voices that share a speaker id (the best guess), are pinned together or
  reach :data:`HARD_P` are one unit of the split (a union). Everything else stays a
  *weighted* pair: no single linkage through uncertain sources.
* **Group pairs.** Two hard groups are one person with probability
  ``q = 1 - prod(1 - p_ij)`` over their voice pairs (independence: an over-estimate when a
  group holds several voices, which only makes the stated risk conservative).
* **Risk of a split.** The search minimises ``sum q`` over group pairs in different splits
  (cheap to update per move). The number stated is per person
  (:func:`expected_on_two_sides`): a person of twenty videos split 16/2/2 makes 68 pairs
  on two sides but is one person. Pairs under :data:`PAIR_MIN` are not listed; their total
  mass is kept and counted as if placed at random (``(1 - sum r_k^2)`` of it lands on two
  sides).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: A pair at or above this probability is treated as certain: its groups are united.
HARD_P = 0.99
#: Group pairs below this probability are not listed (their mass is kept as a total).
PAIR_MIN = 1e-3
#: Group pairs listed at most (the most probable first).
PAIRS_MAX = 2000
#: Cohort size below which the calibration set's mean voice pads the dataset's cohort.
MIN_COHORT = 8
#: Face log-likelihood ratio at (and beyond) the face thresholds.
FACE_LLR = 6.0
#: Logits are clipped here, so no voice score alone makes a pair exactly certain.
LOGIT_MAX = 12.0
#: Weight, in pairs, of the calibration set's prior in a dataset's estimated prior (a Beta
#: prior of this many pseudo-pairs): a dataset of a few sources keeps about the calibration
#: set's prior, and no dataset's estimate falls under ``prior * PRIOR_PAIRS / pairs``.
PRIOR_PAIRS = 100.0


@dataclass(frozen=True)
class ScoreModel:
    """How scores become probabilities (a calibration record's ``probability`` block)."""

    slope: float
    intercept: float
    cohort_mean: np.ndarray | None = None
    min_cohort: int = MIN_COHORT
    face_same: float | None = None
    face_different: float | None = None
    #: The calibration set's share of same-person pairs, which ``intercept`` carries.
    prior: float | None = None
    #: (mean, sd) of the normalised score of same-person and of different-people pairs in the
    #: calibration set: the two densities whose mixture estimates a dataset's prior.
    same: tuple[float, float] | None = None
    different: tuple[float, float] | None = None
    #: Replace ``prior`` by the dataset's own, estimated from its scores (:func:`estimate_prior`).
    estimate_prior: bool = False


def unit(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x, dtype=np.float64)
    n = np.linalg.norm(x, axis=-1, keepdims=True)
    return np.divide(x, n, out=np.zeros_like(x), where=n > 0)


def unit_vector(vector: Any) -> np.ndarray | None:
    """One embedding scaled to unit L2 norm as float32, as the voice and face backends store
    it (None when it is zero or not finite: no identity to compare)."""
    x = np.asarray(vector, dtype=np.float64).ravel()
    norm = float(np.linalg.norm(x))
    if not np.isfinite(norm) or norm == 0.0:
        return None
    return (x / norm).astype(np.float32)


def cohort_scores(
    x: np.ndarray, fallback: np.ndarray | None = None, min_cohort: int = MIN_COHORT
) -> np.ndarray:
    """Cosine of every pair of unit voices after subtracting the mean of the other voices
    (padded with ``min_cohort - (n - 2)`` copies of ``fallback`` when the cohort is small).

    With ``u_i = x_i - c``, ``c = (T - x_i - x_j + k f) / m`` (``T`` the sum of all voices,
    ``m`` the cohort size), every dot product is a function of the Gram matrix, ``x_i . T``
    and ``|T|^2``, so the whole matrix costs one ``n x n`` product.
    """
    x = unit(x)
    n, d = x.shape
    out = np.eye(n)
    if n < 2:
        return out
    base = n - 2
    k = 0
    total = x.sum(axis=0)
    if fallback is not None and np.asarray(fallback).size != d:
        fallback = None  # a calibration of another embedding size cannot pad this cohort
    if fallback is not None and base < min_cohort:
        k = min_cohort - base
        total = total + k * unit(np.asarray(fallback, dtype=np.float64).ravel())
    m = base + k
    g = x @ x.T
    if m == 0:  # two voices and no fallback: nothing to centre on
        return g
    t = x @ total
    tau = float(total @ total)
    a, c = 1.0 + 1.0 / m, 1.0 / m
    ti, tj = t[:, None], t[None, :]
    dot = g * (a * a + c * c) + 2 * a * c - (a + c) * (ti + tj) / m + tau / m**2
    ni = a * a + c * c + 2 * a * c * g - 2 * (a * ti + c * tj) / m + tau / m**2
    nj = a * a + c * c + 2 * a * c * g - 2 * (a * tj + c * ti) / m + tau / m**2
    den = np.sqrt(np.maximum(ni, 1e-12) * np.maximum(nj, 1e-12))
    out = np.clip(dot / den, -1.0, 1.0)
    np.fill_diagonal(out, 1.0)
    return out


def fit_logistic(scores: Sequence[float], same: Sequence[bool], l2: float = 1e-5,
                 iters: int = 100) -> tuple[float, float]:
    """(slope, intercept) of ``P(same) = sigmoid(slope * score + intercept)`` by Newton's
    method with a small ridge on the slope (separable data would otherwise diverge)."""
    s = np.asarray(scores, dtype=np.float64)
    y = np.asarray(same, dtype=np.float64)
    X = np.stack([s, np.ones_like(s)], axis=1)
    w = np.zeros(2)
    ridge = np.diag([l2 * len(s), 0.0])
    for _ in range(iters):
        p = 1.0 / (1.0 + np.exp(-np.clip(X @ w, -50, 50)))
        grad = X.T @ (p - y) + ridge @ w
        hess = X.T @ (X * (p * (1 - p))[:, None]) + ridge + 1e-9 * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-10:
            break
    return float(w[0]), float(w[1])


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -LOGIT_MAX, LOGIT_MAX)))


def face_llr(cos: np.ndarray, same: float, different: float) -> np.ndarray:
    """Log-likelihood ratio of one person from a face cosine: ``+FACE_LLR`` at ``same`` and
    above, ``-FACE_LLR`` at ``different`` and below, linear between (set from the measured
    dlib ranges in :mod:`indomer.speakers`, not fitted)."""
    mid = (same + different) / 2
    half = max((same - different) / 2, 1e-9)
    return np.clip((np.asarray(cos, dtype=np.float64) - mid) / half, -1, 1) * FACE_LLR


def _logit(p: float) -> float:
    return math.log(p / (1.0 - p))


def _normal_logpdf(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return -0.5 * ((x - mean) / sd) ** 2 - math.log(sd)


def estimate_prior(
    scores: np.ndarray, same: tuple[float, float], different: tuple[float, float],
    prior: float, pseudo: float = PRIOR_PAIRS,
) -> float:
    """The share of pairs that are one person in this dataset.

    Why: the logistic calibration carries its calibration set's prior (3.4% of AMI's pairs
    are one person), while in a corpus of 207 videos by 203 people it is 0.02%, so every
    probability, and the stated risk, came out about 100 times too high. The scores of a
    dataset are a mixture of the same-person and the different-people score densities (normal,
    with the calibration set's means and sds); the mixing weight is its prior. It is the
    maximum a posteriori weight under a Beta prior of ``pseudo`` pseudo-pairs at the
    calibration set's ``prior``: the fixed point ``pi (N + pseudo) = sum_i post_i(pi) +
    pseudo prior`` (``post_i`` the posterior of pair i under ``pi``), found by bisection on
    log pi. The pseudo-pairs keep a small dataset near the calibration prior and are the
    estimate's floor on a large one. (Re-estimating the prior through the logistic fit
    instead collapses to zero: its likelihood ratio averages 0.45, not 1, over
    different-people pairs.)
    """
    s = np.asarray(scores, dtype=np.float64).ravel()
    s = s[np.isfinite(s)]
    lr = np.exp(np.clip(_normal_logpdf(s, *same) - _normal_logpdf(s, *different), -50, 50))
    a, total = pseudo * prior, s.size + pseudo

    def excess(pi: float) -> float:
        post = pi * lr / (1.0 - pi + pi * lr)
        return float(post.sum()) + a - pi * total

    lo, hi = math.log(1e-12), 0.0  # excess(1e-12) > 0 > excess(1)
    for _ in range(60):
        mid = (lo + hi) / 2
        if excess(math.exp(mid)) > 0:
            lo = mid
        else:
            hi = mid
    return float(min(max(math.exp((lo + hi) / 2), 1e-12), 1.0 - 1e-9))


def voice_logit(score: np.ndarray, model: ScoreModel, report: dict | None = None
                ) -> np.ndarray:
    """Log-odds of one person from a dataset's normalised voice scores (a square matrix):
    the calibration, with the prior replaced by the dataset's own where the model asks
    (``report["prior"]`` receives it)."""
    logit = model.slope * score + model.intercept
    if (model.estimate_prior and model.prior and model.same and model.different
            and score.shape[0] > 1 and model.same[1] and model.different[1]):
        iu = np.triu_indices(score.shape[0], 1)
        pi = estimate_prior(score[iu], model.same, model.different, model.prior)
        logit = logit + (_logit(pi) - _logit(model.prior))
        if report is not None:
            report["prior"] = pi
    return logit


def pair_probabilities(
    x: np.ndarray,
    model: ScoreModel,
    faces: Sequence[np.ndarray | None] = (),
    same: Sequence[tuple[int, int]] = (),
    cannot: Sequence[tuple[int, int]] = (),
    report: dict | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """(P, normalised voice scores, face cosines or None) for unit voices ``x``; ``same`` and
    ``cannot`` are index pairs pinned together (1) or apart (0); ``report["prior"]`` receives
    the dataset's estimated prior, where the model estimates it."""
    score = cohort_scores(x, model.cohort_mean, model.min_cohort)
    logit = voice_logit(score, model, report)
    fcos = None
    if model.face_same is not None and faces and any(f is not None for f in faces):
        n = len(faces)
        dim = next(f.size for f in faces if f is not None)
        f = np.zeros((n, dim))
        known = np.zeros(n, dtype=bool)
        for i, v in enumerate(faces):
            if v is not None:
                f[i] = unit(v)
                known[i] = True
        fcos = f @ f.T
        both = known[:, None] & known[None, :]
        logit = logit + np.where(both, face_llr(fcos, model.face_same,
                                                model.face_different or model.face_same), 0.0)
        fcos = np.where(both, fcos, np.nan)
    p = sigmoid(logit)
    for pairs, value in ((same, 1.0), (cannot, 0.0)):
        if len(pairs):
            i, j = np.asarray(pairs, dtype=np.int64).T
            p[i, j] = p[j, i] = value
    np.fill_diagonal(p, 1.0)
    return p, score, fcos


def union_find(n: int, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """Per item, the smallest item of its connected component."""
    parent = list(range(n))

    def find(a: int) -> int:
        while parent[a] != a:
            parent[a] = parent[parent[a]]
            a = parent[a]
        return a

    for i, j in pairs:
        ri, rj = find(int(i)), find(int(j))
        if ri != rj:
            parent[max(ri, rj)] = min(ri, rj)
    return np.array([find(i) for i in range(n)], dtype=np.int64)


def hard_groups(p: np.ndarray, cannot: Sequence[tuple[int, int]] = (),
                hard: float = HARD_P) -> np.ndarray:
    """Per voice, the smallest voice of its hard group: pairs at or above ``hard`` united
    (strongest first), except a union that would put a cannot-link pair in one group."""
    n = p.shape[0]
    iu, ju = np.nonzero(np.triu(p >= hard, 1))
    order = np.lexsort((ju, iu, -p[iu, ju]))
    banned = {(min(i, j), max(i, j)) for i, j in cannot}
    members = {i: {i} for i in range(n)}
    root = list(range(n))
    for k in order.tolist():
        a, b = root[int(iu[k])], root[int(ju[k])]
        if a == b:
            continue
        if any((min(s, t), max(s, t)) in banned for s in members[a] for t in members[b]):
            continue
        lo, hi = min(a, b), max(a, b)
        for s in members[hi]:
            root[s] = lo
        members[lo] |= members.pop(hi)
    return np.array(root, dtype=np.int64)


def group_pairs(p: np.ndarray, label: np.ndarray, cannot: Sequence[tuple[int, int]] = ()
                ) -> tuple[np.ndarray, np.ndarray]:
    """(groups, Q): the hard groups (sorted labels) and ``Q[g, h]`` = probability that groups
    g and h hold one person, ``1 - prod(1 - p_ij)``; 0 when a cannot-link joins them."""
    groups, index = np.unique(label, return_inverse=True)
    k = groups.size
    a = np.zeros((p.shape[0], k))
    a[np.arange(p.shape[0]), index] = 1.0
    logq = np.log1p(-np.clip(p, 0.0, 1.0 - 1e-12))
    q = 1.0 - np.exp(a.T @ logq @ a)
    for i, j in cannot:
        gi, gj = index[i], index[j]
        q[gi, gj] = q[gj, gi] = 0.0
    np.fill_diagonal(q, 0.0)
    return groups, np.clip(q, 0.0, 1.0)


# --------------------------------------------------------------------------- risk


def risk(weights: np.ndarray, assign: np.ndarray) -> float:
    """Expected same-person group pairs on two sides: ``sum q`` over pairs split apart."""
    cross = assign[:, None] != assign[None, :]
    return float((np.triu(weights, 1) * cross).sum())


def expected_on_two_sides(
    pairs: Sequence[Mapping], where: Mapping[str, str], dropped_mass: float = 0.0,
    fractions: Sequence[float] = (),
) -> tuple[float, list[dict]]:
    """(expected number of people on two sides, pairs on two sides, most probable first) for
    groups placed by ``where`` (group -> split); pairs with a group not in ``where`` are left
    out. ``dropped_mass`` (pairs too unlikely to list) counts as randomly placed (``(1 - sum
    f^2)`` of it lands on two sides), each pair at the groups' mean per-person weight.

    Per person, not per pair: a person of m groups split 16/2/2 makes 68 group pairs on two
    sides but is one person. Each group g counts ``P(g has a same-person group on another
    side) / (1 + max(1, s_g))``: the probability (``1 - prod(1 - q)`` over its pairs split
    apart) shared among the expected members of its person given it has one elsewhere
    (``s_g``: the sum of q over all its pairs; at least one other). This is exact when every q
    is 0 or 1 (a person on two sides: each of its m groups counts 1/m) and for a lone pair
    (q), and never exceeds the sum of q over pairs on two sides.
    """
    contrib = []
    mass: dict[str, float] = {}
    keep: dict[str, float] = {}
    for e in pairs:
        a, b = where.get(e["a"]), where.get(e["b"])
        if a is None or b is None:
            continue
        q = min(max(float(e["p"]), 0.0), 1.0)
        for g in (e["a"], e["b"]):
            mass[g] = mass.get(g, 0.0) + q
        if a == b:
            continue
        for g in (e["a"], e["b"]):
            keep[g] = keep.get(g, 0.0) + (math.log1p(-q) if q < 1.0 else -math.inf)
        contrib.append({**e, "splits": [a, b]})
    contrib.sort(key=lambda e: (-e["p"], e["a"], e["b"]))
    total = math.fsum((1.0 - math.exp(keep[g])) / (1.0 + max(1.0, mass[g]))
                      for g in sorted(keep))
    spread = 1.0 - sum(f * f for f in fractions) if fractions else 1.0
    # an unlisted pair (q small) on two sides adds about q (1 - c_g) / (1 + max(1, s_g)) for
    # each of its groups: spread evenly over the groups, the mass counts at their mean
    # (1 for groups with no other pair, less where a group is already likely on two sides
    # or shares its person with many)
    share = 1.0
    if dropped_mass > 0 and where:
        share = math.fsum(2.0 * math.exp(keep.get(g, 0.0)) / (1.0 + max(1.0, mass.get(g, 0.0)))
                          for g in sorted(where)) / len(where)
    return total + dropped_mass * spread * share, contrib


def review_queue(pairs: Sequence[Mapping], where: Mapping[str, str] | None) -> list[dict]:
    """Pairs ranked by how much an answer lowers the expected number of people on two sides.

    A pair split apart contributes ``q``; either answer removes it (same: the groups are
    united and placed together; different: ``q`` becomes 0), so its expected reduction is
    ``q``. A pair on one side contributes nothing now; it follows, most uncertain first
    (``q (1 - q)``), since the next split may separate it.
    """
    out = []
    for e in pairs:
        q = float(e["p"])
        crossed = where is not None and where.get(e["a"]) != where.get(e["b"])
        if where is None:
            gain = q  # no split yet: every pair could end up apart
        else:
            gain = q if crossed else 0.0
        out.append({**e, "expected_reduction": round(gain, 6),
                    "on_two_sides": bool(crossed) if where is not None else None})
    out.sort(key=lambda e: (-e["expected_reduction"], -float(e["p"]) * (1 - float(e["p"])),
                            e["a"], e["b"]))
    return out
