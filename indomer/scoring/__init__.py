"""Score a predictions file against a split, split the way scikit-learn separates ``metrics/``
from I/O: :mod:`~indomer.scoring.metrics` (pure numpy: confusion matrices, bootstrap),
:mod:`~indomer.scoring.reader` (references and preds.jsonl), :mod:`~indomer.scoring.report`
(the score JSON and the printed report). This module drives them for ``indomer score`` and
re-exports the names the commands, tests and tools import."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indomer.errors import DataError, UsageError, first_few
from indomer.labels import TASKS, label_set
from indomer.scoring.metrics import (
    CI_METRICS,
    HEADLINE,
    INVALID,
    MIN_UNITS,
    MISSING,
    TIE_EPS,
    UNITS,
    bootstrap_counts,
    confusion_matrix,
    lacking_classes,
    metrics_from_confusion,
    paired_p_value,
    percentile_ci,
    resampled_confusions,
    score_labels,
    undefined_intervals,
)
from indomer.scoring.reader import (
    DEFAULT_SPLIT,
    RELEASE_FIELDS,
    Predictions,
    References,
    check_assignment,
    encode_predictions,
    load_references,
    load_schema,
    read_predictions,
    resampling_units,
)
from indomer.scoring.report import (
    dump_json,
    format_report,
    format_task,
    lacking_line,
    undefined_lines,
    validate_score,
)

__all__ = [
    "CI_METRICS",
    "DEFAULT_SPLIT",
    "HEADLINE",
    "INVALID",
    "MIN_UNITS",
    "MISSING",
    "RELEASE_FIELDS",
    "TIE_EPS",
    "UNITS",
    "Predictions",
    "References",
    "bootstrap_counts",
    "check_assignment",
    "check_options",
    "confusion_matrix",
    "dump_json",
    "encode_predictions",
    "format_report",
    "format_task",
    "lacking_classes",
    "lacking_line",
    "load_references",
    "load_schema",
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
        check_assignment(p.path, references)  # first: a re-split also changes the ids
    for p in (predictions, other) if other is not None else (predictions,):
        extra = [i for i in p.rows if i not in known]
        if extra:
            raise DataError(
                f"{p.path}: {len(extra)} ids are not in the '{references.split}' split: "
                f"{first_few(extra)}; score against the split they came from (--split, --refs)"
            )
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
