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
runtime dependency; this module needs only numpy (and pandas to read refs).

Confidence intervals are percentile bootstraps over resampling units (the speaker by
default, because clips of one speaker are not independent), computed for all resamples at
once with ``np.bincount`` instead of a Python loop over metric calls.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from indomer import __version__
from indomer.errors import DataError, UsageError, first_few
from indomer.labels import TASKS, label_set, labels_sha256
from indomer.readjson import loads, read_json
from indomer.textparse import parse_label

#: Encoded prediction for a value that names no label.
INVALID = -1
#: Encoded prediction for a reference id the predictions file does not cover.
MISSING = -2
#: Metrics that get a bootstrap interval (DESIGN section 5).
CI_METRICS: tuple[str, ...] = ("macro_f1", "weighted_f1", "accuracy")
HEADLINE: tuple[str, ...] = ("macro_f1", "weighted_f1", "accuracy", "unweighted_accuracy")
UNITS: tuple[str, ...] = ("speaker", "segment")
DEFAULT_SPLIT = "validation"
#: |delta| at or below this is a tie in the paired comparison (float noise, not a difference).
TIE_EPS = 1e-12
#: Fewer resampling units than this and a bootstrap interval says nothing (DESIGN section 5):
#: with one unit every resample is the sample itself, and [0.1, 0.1] reads as certainty.
MIN_UNITS = 5

#: Release JSON fields per task, recognised by a field only that file kind has.
RELEASE_FIELDS: dict[str, dict[str, str]] = {
    "sentiment_label": {"emotion": "label", "sentiment": "sentiment_label"},
    "text_label": {
        "sentiment": "label",
        "text_sentiment": "text_label",
        "audio_sentiment": "audio_label",
        "video_sentiment": "video_label",
    },
}
_RELEASE_SPLIT_RE = re.compile(r"_(train|val|validation|test)\.json$", re.IGNORECASE)
_CLIP_RE = re.compile(r"^clip_(?P<source>[0-9A-Za-z]+)_[A-Za-z]+_[0-9]+\Z")
_REF_COLUMNS = ["id", "source_id", "speaker_id", *TASKS]


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


# ---------------------------------------------------------------------------------------------
# References


@dataclass(frozen=True)
class References:
    """One split's reference labels (canonical names, None = not annotated) and groupings."""

    split: str
    frame: pd.DataFrame
    sources: tuple[str, ...] = field(default=())
    #: The active split's name and assignment sha256 of a built dataset's refs (else None).
    assignment: dict | None = None

    def ids(self) -> list[str]:
        return self.frame["id"].tolist()

    def has_task(self, task: str) -> bool:
        return task in self.frame.columns and bool(self.frame[task].notna().any())


def _release_split(path: Path) -> str | None:
    m = _RELEASE_SPLIT_RE.search(path.name)
    if not m:
        return None
    word = m.group(1).lower()
    return "validation" if word in ("val", "validation") else word


def _read_release_json(path: Path) -> pd.DataFrame:
    """A release ``7_class_*.json`` or ``3_class_*.json`` file as a frame of canonical names."""
    records = read_json(path)
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise UsageError(f"{path}: expected a non-empty JSON list of release records")
    fields = next((f for key, f in RELEASE_FIELDS.items() if key in records[0]), None)
    if fields is None:
        raise UsageError(
            f"{path}: not a release split file (expected 7_class_*.json records with "
            "'sentiment_label' or 3_class_*.json records with 'text_label')"
        )
    rows = []
    for i, rec in enumerate(records):
        sid = rec.get("sample_id") if isinstance(rec, dict) else None
        if not isinstance(sid, str) or not sid:
            raise DataError(f"{path}: record {i}: no 'sample_id' string")
        row: dict[str, Any] = {"id": sid}
        for task, key in fields.items():
            row[task] = label_set(task).require(rec.get(key), f"{path}: {sid}: {key}")
        rows.append(row)
    return pd.DataFrame(rows)


def _read_one_ref(path: Path, split: str | None) -> tuple[pd.DataFrame, str]:
    from indomer.dataset import read_split

    if path.is_dir():
        use = split or DEFAULT_SPLIT
        # a damaged shard stays a data error (exit 1), as in every other command
        return read_split(path, use, columns=_REF_COLUMNS), use
    if path.is_file() and path.suffix.lower() == ".json":
        named = _release_split(path)
        if split is not None and named is not None and split != named:
            raise UsageError(
                f"{path}: this release file is the '{named}' split but --split is '{split}'; "
                "drop --split or pass the file of that split"
            )
        return _read_release_json(path), named or split or DEFAULT_SPLIT
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory; pass a built dataset or release JSON")
    raise UsageError(
        f"{path}: not a built dataset directory or a release 7_class/3_class JSON split file"
    )


def load_references(
    refs: Sequence[str | Path] | str | Path, split: str | None = None
) -> References:
    """Read and combine references: built dataset directories and/or release JSON files.

    A directory is read with :func:`indomer.dataset.read_split` (``split``, default
    validation). A release JSON file names its own split (``7_class_val.json`` is
    validation); ``split``, if given, must match. Several refs are merged by id: they must
    cover the same ids, agree on the split and agree on any task both carry.
    """
    paths = [Path(refs)] if isinstance(refs, (str, Path)) else [Path(r) for r in refs]
    if not paths:
        raise UsageError("no references given; pass --refs with a built dataset or release JSON")
    frames = []
    for path in paths:
        frame, this_split = _read_one_ref(path, split)
        if frame.empty:
            raise DataError(f"{path}: the '{this_split}' split has no rows")
        dup = frame["id"][frame["id"].duplicated()].unique().tolist()
        if dup:
            raise DataError(f"{path}: duplicate ids: {first_few(sorted(dup))}")
        frames.append((path, frame.set_index("id"), this_split))
    _, merged, merged_split = frames[0]
    for path, frame, this_split in frames[1:]:
        if this_split != merged_split:
            raise UsageError(
                f"{path} is the '{this_split}' split but {paths[0]} is '{merged_split}'; "
                "combine refs of one split"
            )
        only_new = sorted(set(frame.index) - set(merged.index))
        only_old = sorted(set(merged.index) - set(frame.index))
        if only_new or only_old:
            raise UsageError(
                f"{path}: ids differ from {paths[0]} ({first_few(only_new + only_old)}); "
                "combine refs of the same split"
            )
        frame = frame.reindex(merged.index)
        for col in frame.columns:
            if col not in merged.columns:
                merged[col] = frame[col]
                continue
            both = merged[col].notna() & frame[col].notna()
            clash = sorted(merged.index[both & (merged[col] != frame[col])])
            if clash:
                raise DataError(
                    f"{path}: {col} disagrees with {paths[0]} for ids {first_few(clash)}"
                )
            merged[col] = merged[col].where(merged[col].notna(), frame[col])
    merged = merged.reset_index().sort_values("id", kind="stable").reset_index(drop=True)
    assignment = None
    for path in paths:
        if path.is_dir():
            from indomer.dataset import split_identity

            assignment = split_identity(path)
            break
    return References(
        split=merged_split,
        frame=merged,
        sources=tuple(str(p) for p in paths),
        assignment=assignment,
    )


def check_assignment(preds_path: Path, references: References) -> None:
    """Refuse predictions whose sidecar (``PREDS.meta.json``, as ``indomer baseline`` writes)
    records another assignment of the refs' split name: the same split name over other clips
    would be scored as if it were the same benchmark."""
    ref = references.assignment
    side = Path(preds_path).with_name(Path(preds_path).name + ".meta.json")
    if ref is None or not side.is_file():
        return
    try:
        made = json.loads(side.read_text(encoding="utf-8")).get("assignment")
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, AttributeError):
        return
    if not isinstance(made, dict) or made.get("name") != ref.get("name"):
        return
    if made.get("sha256") != ref.get("sha256"):
        raise DataError(
            f"{preds_path}: made against split '{ref.get('name')}' assignment "
            f"{str(made.get('sha256'))[:12]}, but {', '.join(references.sources)} holds "
            f"assignment {str(ref.get('sha256'))[:12]} of that name (see {side.name}); predict "
            "again on this dataset, or score against the dataset the predictions came from"
        )


def _source_of(seg_id: str) -> str | None:
    m = _CLIP_RE.match(seg_id)
    return m.group("source") if m else None


def resampling_units(frame: pd.DataFrame, unit: str) -> tuple[list[str], str]:
    """Each row's resampling unit and the unit's name.

    ``speaker``: ``speaker_id`` when every row has one, else the source video (``source_id``
    when every row has one, else parsed from ``clip_<video>_<Topic>_<n>`` ids); a bootstrap
    that mixed units would be neither. ``segment``: each row is its own unit.
    """
    if unit == "segment":
        return frame["id"].tolist(), "segment"
    for col, name in (("speaker_id", "speaker"), ("source_id", "source_video")):
        if col in frame.columns and frame[col].notna().all():
            return frame[col].astype(str).tolist(), name
    sources = [_source_of(i) for i in frame["id"]]
    bad = [i for i, s in zip(frame["id"], sources) if s is None]
    if bad:
        raise DataError(
            f"refs: no speaker_id or source_id for ids {first_few(bad)} and their ids do not "
            "look like clip_<video>_<Topic>_<n>; pass --bootstrap-unit segment"
        )
    return [str(s) for s in sources], "source_video"


# ---------------------------------------------------------------------------------------------
# Predictions


@cache
def load_schema(name: str) -> dict:
    """A JSON Schema shipped in ``indomer.schemas`` (``preds`` or ``score``)."""
    text = resources.files("indomer.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def _validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


def validate_score(result: dict) -> None:
    """Check a score result against ``score.schema.json`` (a failure is a bug in indomer)."""
    from jsonschema.exceptions import best_match

    err = best_match(_validator("score").iter_errors(result))
    if err is not None:
        where = "/".join(str(p) for p in err.absolute_path) or "(top)"
        raise RuntimeError(f"score JSON breaks score.schema.json at {where}: {err.message}")


@dataclass(frozen=True)
class Predictions:
    """The rows of a preds.jsonl file: id -> {task: raw value}, in file order."""

    path: Path
    rows: dict[str, dict[str, Any]]
    lines: dict[str, int]

    def tasks(self) -> list[str]:
        """Tasks at least one line predicts, in :data:`TASKS` order."""
        seen = {t for row in self.rows.values() for t in row}
        return [t for t in TASKS if t in seen]


def read_predictions(path: str | Path) -> Predictions:
    """Read and check preds.jsonl (DESIGN section 5); errors name ``file:line`` or ids.

    Blank lines are skipped. Each line must be a JSON object with a string ``id`` and at
    least one task key whose value is a string (label, alias or free text) or null (no
    answer, counted invalid); other keys are kept out of scoring. Duplicate ids are errors.
    A UTF-8 byte-order mark before the first line is dropped (Windows editors and Excel write
    one); a mark on a later line means files were concatenated and is an error there.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read predictions ({exc.strerror or exc})") from exc
    data = data.removeprefix(codecs.BOM_UTF8)
    validator = _validator("preds")
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        if raw.startswith(codecs.BOM_UTF8):
            raise DataError(
                f"{where}: UTF-8 byte-order mark inside the file (files concatenated?); "
                "remove it, only the first line may carry one"
            )
        obj = loads(raw, str(path), lineno=lineno)
        if not isinstance(obj, dict):
            raise DataError(
                f"{where}: expected a JSON object with 'id' and a task key, "
                f"got a JSON {type(obj).__name__}"
            )
        if "id" not in obj:
            raise DataError(f"{where}: no 'id' key; every line needs the segment id")
        if not any(t in obj for t in TASKS):
            raise DataError(f"{where}: no task key; expected at least one of {', '.join(TASKS)}")
        if not validator.is_valid(obj):
            from jsonschema.exceptions import best_match

            err = best_match(validator.iter_errors(obj))
            key = "/".join(str(p) for p in err.absolute_path) if err is not None else ""
            msg = err.message if err is not None else "does not match preds.schema.json"
            raise DataError(f"{where}: {key + ': ' if key else ''}{msg}")
        seg_id = obj["id"]
        if seg_id in lines:
            dups.setdefault(seg_id, [lines[seg_id]]).append(lineno)
            continue
        rows[seg_id] = {t: obj[t] for t in TASKS if t in obj}
        lines[seg_id] = lineno
    if not rows:
        raise DataError(f"{path}: empty file; expected one JSON object per line")
    if dups:
        shown = [f"{i} (lines {', '.join(map(str, ls))})" for i, ls in dups.items()]
        raise DataError(f"{path}: duplicate ids: {first_few(shown)}; keep one line per id")
    return Predictions(path=path, rows=rows, lines=lines)


def encode_predictions(
    preds: Predictions, ids: Sequence[str], task: str, allow_missing: bool, split: str
) -> np.ndarray:
    """Label ids of the predictions for ``ids`` (INVALID, MISSING where they name none)."""
    names = label_set(task).names
    memo: dict[Any, int] = {}
    out = np.empty(len(ids), dtype=np.int64)
    missing = []
    for i, seg_id in enumerate(ids):
        row = preds.rows.get(seg_id)
        if row is None or task not in row:
            missing.append(seg_id)
            out[i] = MISSING
            continue
        value = row[task]
        key = value if isinstance(value, str) else None
        code = memo.get(key)
        if code is None:
            name = parse_label(value, task)
            code = INVALID if name is None else names.index(name)
            memo[key] = code
        out[i] = code
    if missing and not allow_missing:
        raise DataError(
            f"{preds.path}: {len(missing)} of {len(ids)} {split} ids have no {task} prediction: "
            f"{first_few(missing)}; predict them, or pass --allow-missing to count them wrong"
        )
    return out


# ---------------------------------------------------------------------------------------------
# The whole command


def check_options(task: str, unit: str, n_resamples: int, seed: int) -> None:
    """One line for a bad --task, --bootstrap-unit, --bootstrap or --seed (score, leaderboard)."""
    if task != "all" and task not in TASKS:
        raise UsageError(f"unknown task {task!r}; expected one of {', '.join(TASKS)} or all")
    if unit not in UNITS:
        raise UsageError(f"unknown bootstrap unit {unit!r}; expected one of {', '.join(UNITS)}")
    if n_resamples < 0:
        raise UsageError(f"--bootstrap must be 0 (no intervals) or more, got {n_resamples}")
    if seed < 0:
        raise UsageError(f"--seed must be 0 or more (numpy refuses negative seeds), got {seed}")


def _resolve_tasks(task: str, preds: Predictions, refs: References) -> list[str]:
    carried = preds.tasks()
    tasks = carried if task == "all" else [task]
    if task != "all" and task not in carried:
        raise DataError(
            f"{preds.path}: no line has a {task!r} prediction (the file predicts "
            f"{', '.join(carried)}); pick one of those with --task"
        )
    lacking = [t for t in tasks if not refs.has_task(t)]
    if lacking:
        hint = (
            "add --refs 3_Class/3_class_*.json"
            if any(t not in ("emotion", "sentiment") for t in lacking)
            else "add --refs 7_Class/7_class_*.json"
        )
        raise UsageError(
            f"{', '.join(refs.sources)}: no {', '.join(lacking)} references in the "
            f"'{refs.split}' split; {hint}, or choose another --task"
        )
    return tasks


def score_predictions(
    preds: str | Path,
    refs: Sequence[str | Path] | str | Path,
    split: str | None = None,
    task: str = "all",
    *,
    compare: str | Path | None = None,
    allow_missing: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    unit: str = "speaker",
) -> dict:
    """Score a preds.jsonl file: the score JSON of DESIGN section 5 as a dict.

    ``task`` is one task (returns that task's dict) or ``"all"`` (returns a dict keyed by
    every task the predictions carry). ``compare`` adds a paired bootstrap of the macro-F1
    difference against a second predictions file under the key ``compare``. Raises
    :class:`~indomer.errors.DataError` for bad predictions and
    :class:`~indomer.errors.UsageError` for bad options or references.
    """
    check_options(task, unit, n_resamples, seed)
    references = load_references(refs, split)
    predictions = read_predictions(preds)
    other = read_predictions(compare) if compare is not None else None
    known = set(references.frame["id"])
    for p in (predictions, other) if other is not None else (predictions,):
        extra = [i for i in p.rows if i not in known]
        if extra:
            raise DataError(
                f"{p.path}: {len(extra)} ids are not in the '{references.split}' split: "
                f"{first_few(extra)}; score against the split they came from (--split, --refs)"
            )
    for p in (predictions, other) if other is not None else (predictions,):
        check_assignment(p.path, references)
    tasks = _resolve_tasks(task, predictions, references)
    results = {}
    for t in tasks:
        results[t] = score_task(
            predictions,
            references,
            t,
            other=other,
            allow_missing=allow_missing,
            n_resamples=n_resamples,
            seed=seed,
            unit=unit,
        )
    out = results[task] if task != "all" else results
    validate_score(out)
    return out


def score_task(
    predictions: Predictions,
    references: References,
    task: str,
    *,
    other: Predictions | None = None,
    allow_missing: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    unit: str = "speaker",
) -> dict:
    """One task's score dict for already-read predictions and references: the work of
    :func:`score_predictions` per task, shared with ``indomer browse`` so that the page shows
    the very numbers ``indomer score`` prints."""
    frame = references.frame[references.frame[task].notna()]
    ids = frame["id"].tolist()
    names = label_set(task).names
    y_true = np.array([names.index(v) for v in frame[task]], dtype=np.int64)
    y_pred = encode_predictions(predictions, ids, task, allow_missing, references.split)
    y_other = None
    if other is not None:
        if task not in other.tasks():
            raise DataError(f"{other.path}: no line has a {task!r} prediction to compare with")
        y_other = encode_predictions(other, ids, task, allow_missing, references.split)
    units, unit_name = resampling_units(frame, unit)
    result = score_labels(
        task,
        y_true,
        y_pred,
        units,
        y_other=y_other,
        n_resamples=n_resamples,
        seed=seed,
        split=references.split,
        unit_name=unit_name,
    )
    if other is not None:
        result["compare"]["other"] = other.path.name
    if references.assignment is not None:
        result["assignment"] = dict(references.assignment)
    return result


def dump_json(result: dict) -> str:
    """The score JSON text: sorted keys, two-space indent, trailing newline, no NaN."""
    return json.dumps(result, sort_keys=True, indent=2, allow_nan=False) + "\n"


# ---------------------------------------------------------------------------------------------
# Human-readable report


def _fmt_ci(ci: list[float] | None, undefined: bool = False) -> str:
    if undefined:
        return "[undefined]"
    return f"[{ci[0]:.4f}, {ci[1]:.4f}]" if ci else ""


def undefined_lines(undefined: dict[str, str], unit: str) -> list[str]:
    """``  95% CI undefined for ...: reason`` lines, one per reason (score and leaderboard).

    A reason of too few units gets the way out: the naive per-clip interval, which the user
    may choose knowing what it ignores.
    """
    by_reason: dict[str, list[str]] = {}
    for key in CI_METRICS:
        if key in undefined:
            by_reason.setdefault(undefined[key], []).append(key)
    lines = []
    for reason, keys in by_reason.items():
        hint = ""
        if reason.startswith("only ") and unit != "segment":
            hint = (
                f"; score a split with {MIN_UNITS} or more {unit.replace('_', ' ')}s, or pass "
                "--bootstrap-unit segment for the naive per-clip interval"
            )
        lines.append(f"  95% CI undefined for {', '.join(keys)}: {reason}{hint}")
    return lines


def lacking_line(boot: dict, names: Sequence[str]) -> str:
    """One line: how many resamples missed a reference class, and which, in label order."""
    n = boot.get("n_resamples_lacking_a_class", 0)
    head = f"  resamples lacking a reference class: {n} of {boot['n_resamples']}"
    lacking = boot.get("lacking_class", {})
    which = [f"{name} {lacking[name]}" for name in names if lacking.get(name)]
    return head + (
        f" ({', '.join(which)}); macro averages there count it only if predicted" if which else ""
    )


def format_task(result: dict) -> str:
    """One task's result as a plain-text table (metrics with CIs, per class, confusion)."""
    boot = result.get("bootstrap", {})
    head = (
        f"{result['task']}  split={result['split']}  n={result['n']}  "
        f"missing={result['n_missing']}  invalid={result['n_invalid']}"
    )
    lines = [head]
    if result.get("ci95"):
        lines.append(
            f"  95% CI: percentile bootstrap, {boot['n_resamples']} resamples of "
            f"{boot['n_units']} {boot['unit']} units, seed {boot['seed']}"
        )
        lines.append(lacking_line(boot, result["confusion"]["labels"]))
        lines += undefined_lines(result.get("ci95_undefined", {}), boot["unit"])
    lines.append("")
    ci = result.get("ci95") or {}
    for key in HEADLINE:
        shown = _fmt_ci(ci.get(key), ci.get(key, []) is None)
        lines.append(f"  {key:<20} {result['metrics'][key]:.4f}  {shown}".rstrip())
    comp = result.get("compare")
    if comp:
        undefined = bool(comp.get("undefined")) and result.get("ci95") is not None
        if comp["p_value"] is not None:
            p = f"  p={comp['p_value']:.4f} (one-sided)"
        elif undefined:
            p = "  p undefined (the macro_f1 interval is)"
        else:
            p = ""
        lines.append(
            f"  vs {comp.get('other', 'other')}: macro_f1 {comp['macro_f1']:.4f}, "
            f"delta {comp['delta']:+.4f} {_fmt_ci(comp['ci95'], undefined)}{p}".rstrip()
        )
    names = result["confusion"]["labels"]
    width = max(10, *(len(n) for n in names)) + 2
    lines += ["", f"  {'class':<{width}}{'precision':>10}{'recall':>10}{'f1':>10}{'support':>9}"]
    for name in names:
        row = result["per_class"][name]
        lines.append(
            f"  {name:<{width}}{row['precision']:>10.4f}{row['recall']:>10.4f}"
            f"{row['f1']:>10.4f}{row['support']:>9d}"
        )
    conf = result["confusion"]
    extra = [c for c in ("invalid", "missing") if any(conf.get(c, []))]
    cols = [*names, *extra]
    cw = max(8, *(len(c) for c in cols)) + 1
    lines += ["", "  confusion (rows: reference, columns: prediction)"]
    lines.append("  " + " " * width + "".join(f"{c:>{cw}}" for c in cols))
    for i, name in enumerate(names):
        cells = [*conf["matrix"][i], *(conf[c][i] for c in extra)]
        lines.append(f"  {name:<{width}}" + "".join(f"{v:>{cw}d}" for v in cells))
    return "\n".join(lines)


def format_report(result: dict) -> str:
    """The report for :func:`score_predictions`' result (one task or keyed by task)."""
    if "task" in result:
        return format_task(result) + "\n"
    return "\n\n".join(format_task(result[t]) for t in TASKS if t in result) + "\n"


__all__ = [
    "INVALID",
    "MISSING",
    "Predictions",
    "References",
    "bootstrap_counts",
    "check_assignment",
    "confusion_matrix",
    "dump_json",
    "encode_predictions",
    "format_report",
    "lacking_classes",
    "lacking_line",
    "load_references",
    "metrics_from_confusion",
    "paired_p_value",
    "percentile_ci",
    "read_predictions",
    "resampled_confusions",
    "resampling_units",
    "score_labels",
    "score_predictions",
    "score_task",
    "undefined_intervals",
    "undefined_lines",
    "validate_score",
]
