"""Score a predictions file against a split: one confusion matrix per task, metrics, bootstrap.

Everything is derived from one confusion matrix over the task's full label set (labels.yaml
order); ``per_class`` and ``confusion`` list every class. Predictions that name no label
(invalid) or that are absent (missing, with ``allow_missing``) go to an extra column: they are
a false negative of their reference class and a true or false positive of no class, which is
what scikit-learn gives for a prediction outside ``labels=``. Macro averages (macro-F1, UA) run
over the classes *present* in the scored sample, those in the references or in the valid
predictions, as scikit-learn's default ``labels=None`` does (an invalid answer is no class);
a class the sample never mentions has no F1 to average, and counting it as 0 would punish a
bootstrap resample for missing a rare class. scikit-learn is the reference in the tests, not a
runtime dependency; this module needs only numpy (:mod:`indomer.scoring.reader` reads refs).

Confidence intervals are percentile bootstraps over resampling units (the speaker by
default, because clips of one speaker are not independent), computed for all resamples at
once with ``np.bincount`` instead of a Python loop over metric calls.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np

from indomer import __version__
from indomer.labels import label_set, labels_sha256

#: Encoded prediction for a value that names no label.
INVALID = -1
#: Encoded prediction for a reference id the predictions file does not cover.
MISSING = -2
#: Metrics that get a bootstrap interval (DESIGN section 5).
CI_METRICS: tuple[str, ...] = ("macro_f1", "weighted_f1", "accuracy")
HEADLINE: tuple[str, ...] = ("macro_f1", "weighted_f1", "accuracy", "unweighted_accuracy")
UNITS: tuple[str, ...] = ("speaker", "segment")
#: |delta| at or below this is a tie in the paired comparison (float noise, not a difference).
TIE_EPS = 1e-12
#: Fewer resampling units than this and a bootstrap interval says nothing (DESIGN section 5):
#: with one unit every resample is the sample itself, and [0.1, 0.1] reads as certainty.
MIN_UNITS = 5


# ---------------------------------------------------------------------------------------------
# Metrics core


def confusion_matrix(y_true: Any, y_pred: Any, n_classes: int) -> np.ndarray:
    """Counts of (reference, prediction) pairs as a ``(K, K + 1)`` int64 array.

    Rows are reference ids ``0..K-1``; columns are predicted ids, and the last column counts
    predictions outside ``0..K-1`` (invalid or missing). ``cm[:, :K]`` equals scikit-learn's
    ``confusion_matrix(y_true, y_pred, labels=range(K))``; the row sums are the supports.
    """
    t = np.asarray(y_true, dtype=np.int64).ravel()
    p = np.asarray(y_pred, dtype=np.int64).ravel()
    if t.shape != p.shape:
        raise ValueError(f"y_true has {t.size} items but y_pred has {p.size}")
    if t.size and (t.min() < 0 or t.max() >= n_classes):
        raise ValueError(f"reference ids must lie in 0..{n_classes - 1}")
    p = np.where((p >= 0) & (p < n_classes), p, n_classes)
    width = n_classes + 1
    counts = np.bincount(t * width + p, minlength=n_classes * width)
    return counts.reshape(n_classes, width)


def _div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den with 0 where den == 0 (scikit-learn's zero_division=0)."""
    num, den = np.broadcast_arrays(np.asarray(num, dtype=float), np.asarray(den, dtype=float))
    return np.divide(num, den, out=np.zeros(num.shape), where=den > 0)


def metrics_from_confusion(cm: Any) -> dict[str, np.ndarray]:
    """All metrics from confusion counts of shape ``(..., K, K)`` or ``(..., K, K + 1)``.

    Leading axes are batch axes (one matrix per bootstrap resample), so one call scores every
    resample. Returned per-class arrays have shape ``(..., K)``, the rest ``(...)``.

    - precision, recall, f1, support: scikit-learn's ``precision_recall_fscore_support`` with
      ``labels=`` the full label set and ``zero_division=0``; f1 = 2 TP / (support + predicted).
    - present: the classes with support > 0 or a valid prediction (``(..., K)`` bool).
    - macro_f1: mean F1 over the present classes, i.e. scikit-learn's ``f1_score(...,
      average="macro", zero_division=0)`` with ``labels=None``, the invalid/missing column
      being no class (``labels=`` the present label ids when some prediction is invalid).
    - unweighted_accuracy ("UA"): mean recall over the same present classes (``recall_score``
      macro); a class predicted but never referenced has recall 0 there.
    - weighted_f1: mean weighted by support; accuracy: TP total / all references.

    A class absent from both the references and the valid predictions is left out of the
    macro averages rather than scored 0, so the rule is the same for the full sample and for
    a bootstrap resample that happens to miss a rare class.
    """
    cm = np.asarray(cm, dtype=float)
    k = cm.shape[-2]
    tp = np.diagonal(cm[..., :k], axis1=-2, axis2=-1)
    support = cm.sum(axis=-1)
    predicted = cm[..., :k].sum(axis=-2)
    total = support.sum(axis=-1)
    recall = _div(tp, support)
    f1 = _div(2.0 * tp, support + predicted)
    present = (support > 0) | (predicted > 0)
    n_present = present.sum(axis=-1)
    # f1 and recall are 0 for an absent class, so only the denominators need the mask
    return {
        "precision": _div(tp, predicted),
        "recall": recall,
        "f1": f1,
        "support": support,
        "present": present,
        "macro_f1": _div(f1.sum(axis=-1), n_present),
        "weighted_f1": _div((f1 * support).sum(axis=-1), total),
        "accuracy": _div(tp.sum(axis=-1), total),
        "unweighted_accuracy": _div(recall.sum(axis=-1), n_present),
    }


def lacking_classes(support: np.ndarray, boot_support: np.ndarray) -> tuple[np.ndarray, int]:
    """How many resamples lack each class, and how many lack at least one.

    A resample lacks a class when the full sample's references hold it (``support > 0``,
    shape ``(K,)``) but the resample's references do not (``boot_support``, ``(B, K)``). Such
    a resample leaves the class out of its macro averages unless the system predicts it
    there; the counts say how often that happened, so a reader can judge how much a rare
    class shapes the interval.
    """
    lacks = (np.asarray(support) > 0) & (np.asarray(boot_support) == 0)
    return lacks.sum(axis=0).astype(np.int64), int(lacks.any(axis=-1).sum())


# ---------------------------------------------------------------------------------------------
# Bootstrap


def _chunks(n_resamples: int, n_items: int) -> Iterator[int]:
    """Resample counts per chunk, so that a chunk holds at most ~4M items in memory."""
    step = max(1, (1 << 22) // max(1, n_items))
    for start in range(0, n_resamples, step):
        yield min(step, n_resamples - start)


def bootstrap_counts(n_units: int, n_resamples: int, rng: np.random.Generator) -> np.ndarray:
    """How often each unit is drawn in each resample: ``(n_resamples, n_units)`` int64.

    Each resample draws ``n_units`` units uniformly with replacement (the usual cluster
    bootstrap); row ``b`` counts the draws, so a resample's weight on a segment is its unit's
    count. Drawn in chunks of rows from ``rng``, deterministically for a given seed.
    """
    parts = []
    for size in _chunks(n_resamples, n_units):
        idx = rng.integers(0, n_units, size=(size, n_units))
        offsets = (np.arange(size, dtype=np.int64) * n_units)[:, None]
        flat = np.bincount((idx + offsets).ravel(), minlength=size * n_units)
        parts.append(flat.reshape(size, n_units))
    if not parts:
        return np.zeros((0, n_units), dtype=np.int64)
    return np.concatenate(parts)


def resampled_confusions(
    y_true: Any, y_pred: Any, units: Any, counts: np.ndarray, n_classes: int
) -> np.ndarray:
    """Confusion counts of every resample, ``(B, K, K + 1)``, via one weighted bincount.

    Segment ``i`` enters resample ``b`` ``counts[b, units[i]]`` times, so resample ``b``'s
    matrix is a bincount of the segments' cells weighted by those counts.
    """
    t = np.asarray(y_true, dtype=np.int64)
    p = np.asarray(y_pred, dtype=np.int64)
    u = np.asarray(units, dtype=np.int64)
    width = n_classes + 1
    n_cells = n_classes * width
    cells = t * width + np.where((p >= 0) & (p < n_classes), p, n_classes)
    out = []
    start = 0
    for size in _chunks(counts.shape[0], t.size):
        weights = counts[start : start + size][:, u]
        codes = (np.arange(size, dtype=np.int64) * n_cells)[:, None] + cells[None, :]
        flat = np.bincount(codes.ravel(), weights=weights.ravel(), minlength=size * n_cells)
        out.append(flat.reshape(size, n_classes, width))
        start += size
    if not out:
        return np.zeros((0, n_classes, width))
    return np.concatenate(out)


def percentile_ci(values: np.ndarray) -> list[float]:
    """The 2.5th and 97.5th percentiles (numpy's default linear interpolation)."""
    lo, hi = np.percentile(values, [2.5, 97.5])
    return [float(lo), float(hi)]


def undefined_intervals(
    n_units: int, unit: str, n_resamples: int, n_lacking: int
) -> dict[str, str]:
    """Why an interval of :data:`CI_METRICS` cannot be trusted: ``{metric: reason}``.

    Empty when every interval stands. With no resamples, or fewer than :data:`MIN_UNITS`
    units, none stands. When most resamples lack a reference class (``n_lacking`` of
    ``n_resamples``, see :func:`lacking_classes`), most of them average macro-F1 over fewer
    classes than the sample does, so its interval describes another metric; weighted F1 and
    accuracy give an absent class no weight and keep theirs. The paired comparison is of
    macro-F1, so it stands or falls with the macro-F1 interval.
    """
    if n_resamples <= 0:
        return dict.fromkeys(CI_METRICS, "not computed (--bootstrap 0)")
    shown = unit.replace("_", " ")
    if n_units < MIN_UNITS:
        why = (
            f"only {n_units} {shown} unit{'' if n_units == 1 else 's'} to resample, fewer than "
            f"{MIN_UNITS}"
        )
        return dict.fromkeys(CI_METRICS, why)
    if 2 * n_lacking > n_resamples:
        return {
            "macro_f1": (
                f"{n_lacking} of {n_resamples} resamples lack a reference class, so most "
                "average macro-F1 over fewer classes than the sample"
            )
        }
    return {}


def paired_p_value(delta: float, deltas: np.ndarray) -> float:
    """Koehn (2004) paired-bootstrap p-value of an observed macro-F1 difference.

    The share of resamples in which the system that is better on the full data is not
    strictly better: ``mean(deltas <= 0)`` when ``delta > 0``, ``mean(deltas >= 0)`` when
    ``delta < 0`` (ties, within :data:`TIE_EPS`, count against the winner). With no observed
    difference there is nothing to test and the p-value is 1. One-sided, as in Koehn's
    "system A is better in 95% of the samples, so p = 0.05".
    """
    if abs(delta) <= TIE_EPS:
        return 1.0
    signed = deltas * np.sign(delta)
    return float(np.mean(signed <= TIE_EPS))


# ---------------------------------------------------------------------------------------------
# Scoring encoded labels


def _task_result(
    task: str,
    split: str | None,
    y_true: np.ndarray,
    y_pred: np.ndarray,
) -> tuple[dict, np.ndarray]:
    names = label_set(task).names
    k = len(names)
    cm = confusion_matrix(y_true, y_pred, k)
    m = metrics_from_confusion(cm)
    per_class = {
        name: {
            "precision": float(m["precision"][i]),
            "recall": float(m["recall"][i]),
            "f1": float(m["f1"][i]),
            "support": int(cm[i].sum()),
        }
        for i, name in enumerate(names)
    }
    invalid = np.bincount(y_true[y_pred == INVALID], minlength=k)
    missing = np.bincount(y_true[y_pred == MISSING], minlength=k)
    result = {
        "task": task,
        "split": split,
        "n": int(y_true.size),
        "n_missing": int((y_pred == MISSING).sum()),
        "n_invalid": int((y_pred == INVALID).sum()),
        "metrics": {key: float(m[key]) for key in HEADLINE},
        "per_class": per_class,
        "confusion": {
            "labels": list(names),
            "matrix": cm[:, :k].tolist(),
            "invalid": invalid.tolist(),
            "missing": missing.tolist(),
        },
        "versions": {"indomer": __version__, "labels": labels_sha256()},
    }
    return result, m["macro_f1"]


def _normalise(y_pred: Any, n_classes: int) -> np.ndarray:
    p = np.asarray(y_pred, dtype=np.int64)
    return np.where((p == MISSING) | ((p >= 0) & (p < n_classes)), p, INVALID)


def score_labels(
    task: str,
    y_true: Any,
    y_pred: Any,
    units: Any = None,
    *,
    y_other: Any = None,
    n_resamples: int = 1000,
    seed: int = 0,
    split: str | None = None,
    unit_name: str | None = None,
) -> dict:
    """Score encoded labels of one task: the per-task dict of the score JSON.

    ``y_true`` holds label ids of ``label_set(task).names``; ``y_pred`` (and ``y_other``, the
    system compared against) the same ids, or :data:`INVALID` / :data:`MISSING`. ``units``
    gives each segment's resampling unit (any hashable; None = each segment its own unit),
    and ``unit_name`` the unit's name for the JSON (default: ``segment`` or ``speaker``).
    Predicted ids outside the label set other than MISSING count as INVALID.
    Every task draws from a fresh ``np.random.default_rng(seed)``, so a task's interval does
    not depend on which other tasks are scored, and ``--compare`` reuses the very same draws.
    ``bootstrap.lacking_class`` counts, for each class of the references, the resamples whose
    references miss it (see :func:`lacking_classes`); ``n_resamples_lacking_a_class`` counts
    the resamples that miss at least one.
    """
    names = label_set(task).names
    k = len(names)
    t = np.asarray(y_true, dtype=np.int64)
    p = _normalise(y_pred, k)
    result, macro = _task_result(task, split, t, p)
    if units is None:
        unit_codes = np.arange(t.size)
    else:
        _, unit_codes = np.unique(np.asarray(units, dtype=object).astype(str), return_inverse=True)
    n_units = int(unit_codes.max()) + 1 if t.size else 0
    if unit_name is None:
        unit_name = "segment" if units is None else "speaker"
    support = np.bincount(t, minlength=k)
    lacking = np.zeros(k, dtype=np.int64)
    n_lacking = 0
    counts = None
    if n_resamples > 0 and t.size:
        counts = bootstrap_counts(n_units, n_resamples, np.random.default_rng(seed))
        boot = metrics_from_confusion(resampled_confusions(t, p, unit_codes, counts, k))
        lacking, n_lacking = lacking_classes(support, boot["support"])
    undefined = undefined_intervals(n_units, unit_name, n_resamples, n_lacking)
    if counts is None:
        result["ci95"] = None
    else:
        result["ci95"] = {
            key: None if key in undefined else percentile_ci(boot[key]) for key in CI_METRICS
        }
    result["ci95_undefined"] = undefined
    result["bootstrap"] = {
        "n_resamples": int(n_resamples),
        "seed": int(seed),
        "unit": unit_name,
        "n_units": n_units,
        "lacking_class": {names[i]: int(lacking[i]) for i in range(k) if support[i] > 0},
        "n_resamples_lacking_a_class": n_lacking,
    }
    if y_other is not None:
        o = _normalise(y_other, k)
        other_cm = confusion_matrix(t, o, k)
        other_macro = float(metrics_from_confusion(other_cm)["macro_f1"])
        delta = float(macro) - other_macro
        compare: dict[str, Any] = {
            "macro_f1": other_macro,
            "delta": delta,
            "n_invalid": int((o == INVALID).sum()),
            "n_missing": int((o == MISSING).sum()),
            "ci95": None,
            "p_value": None,
            "undefined": undefined.get("macro_f1"),
        }
        if counts is not None and "macro_f1" not in undefined:
            other_boot = metrics_from_confusion(resampled_confusions(t, o, unit_codes, counts, k))
            deltas = boot["macro_f1"] - other_boot["macro_f1"]
            compare["ci95"] = percentile_ci(deltas)
            compare["p_value"] = paired_p_value(delta, deltas)
        result["compare"] = compare
    return result
