"""Systems side by side: one row per predictions file, with intervals and paired p-values.

Every system is scored exactly as ``indomer score`` scores it (the same confusion matrix,
metrics and bootstrap draws: :mod:`indomer.scoring` does the work), and all systems share the
same resamples of the same units, so the difference between a system and the reference is a
paired bootstrap (Koehn 2004), with the p-value ``indomer score SYSTEM --compare REFERENCE``
reports. Rows are sorted by macro-F1, best first; ties keep the order of the command line.

The JSON (``schemas/leaderboard.schema.json``) records the split, the task, the bootstrap and
the indomer version, and the refs' build hash when the refs are a built dataset, so that
``indomer push --results`` can check the table describes the dataset it publishes.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from indomer import __version__
from indomer.errors import DataError, UsageError, first_few
from indomer.labels import TASKS, label_set, labels_sha256
from indomer.readjson import read_json
from indomer.scoring import check_options as scoring_check_options
from indomer.scoring import metrics, reader
from indomer.scoring.report import lacking_line, undefined_lines

#: Column heads of the text and Markdown tables, in order.
COLUMNS = ("rank", "system", "macro-F1 [95% CI]", "weighted F1", "accuracy", "UA", "invalid")


def system_name(path: Path) -> str:
    """A system's name: the file name without ``.jsonl`` (``tfidf-lr.jsonl`` -> ``tfidf-lr``)."""
    name = path.name
    return name[: -len(".jsonl")] if name.lower().endswith(".jsonl") else name


def _check_options(n_resamples: int, seed: int, unit: str, task: str | None) -> None:
    """The scorer's checks (one task here, not ``all``), and at least one resample: the
    p-values need them."""
    if task is not None and task not in TASKS:
        raise UsageError(f"unknown task {task!r}; expected one of {', '.join(TASKS)}")
    if n_resamples < 1:
        raise UsageError(f"--bootstrap must be 1 or more (the p-values need it), got {n_resamples}")
    scoring_check_options(task or TASKS[0], unit, n_resamples, seed)


def _names(paths: Sequence[Path]) -> list[str]:
    names = [system_name(p) for p in paths]
    seen: dict[str, Path] = {}
    for path, name in zip(paths, names):
        if name in seen:
            raise UsageError(
                f"{path}: its system name '{name}' is also that of {seen[name]}; each system is "
                "named by its file name, so rename one of the files"
            )
        seen[name] = path
    return names


def _reference_index(reference: str | None, names: list[str], paths: Sequence[Path]) -> int:
    if reference is None:
        return 0
    for i, (name, path) in enumerate(zip(names, paths)):
        if reference in (name, path.name, str(path)):
            return i
    raise UsageError(
        f"--reference {reference!r} names none of the systems ({', '.join(names)}); give one "
        "of those names (the file name without .jsonl)"
    )


def _resolve_task(task: str | None, preds: list[reader.Predictions]) -> str:
    if task is not None:
        for p in preds:
            if task not in p.tasks():
                raise DataError(
                    f"{p.path}: no line has a {task!r} prediction (the file predicts "
                    f"{', '.join(p.tasks())}); pick a task every file predicts with --task"
                )
        return task
    common = [t for t in TASKS if all(t in p.tasks() for p in preds)]
    if len(common) == 1:
        return common[0]
    if not common:
        carried = "; ".join(f"{p.path.name}: {', '.join(p.tasks())}" for p in preds)
        raise DataError(f"no task is predicted by every file ({carried}); rank files of one task")
    raise UsageError(f"every file predicts {', '.join(common)}; pick one with --task")


def leaderboard(
    preds: Sequence[str | Path],
    refs: Sequence[str | Path] | str | Path,
    split: str | None = None,
    task: str | None = None,
    *,
    reference: str | None = None,
    allow_missing: bool = False,
    n_resamples: int = 1000,
    seed: int = 0,
    unit: str = "speaker",
) -> dict:
    """Rank the predictions files ``preds`` on one task of one split: the leaderboard JSON.

    ``task`` defaults to the one task every file predicts. ``reference`` names the system the
    others are compared with (its name, file name or path; default the first file). Raises
    :class:`~indomer.errors.DataError` for bad predictions (a file with ids of another split
    is named) and :class:`~indomer.errors.UsageError` for bad options.
    """
    _check_options(n_resamples, seed, unit, task)
    paths = [Path(p) for p in preds]
    if not paths:
        raise UsageError("no predictions files given; pass one or more PREDS.jsonl")
    names = _names(paths)
    ref_i = _reference_index(reference, names, paths)
    ref_paths = [Path(refs)] if isinstance(refs, (str, Path)) else [Path(r) for r in refs]
    references = reader.load_references(ref_paths, split)
    systems = [reader.read_predictions(p) for p in paths]
    known = set(references.frame["id"])
    for p in systems:
        reader.check_assignment(p.path, references)
        extra = [i for i in p.rows if i not in known]
        if extra:
            raise DataError(
                f"{p.path}: {len(extra)} of its {len(p.rows)} ids are not in the "
                f"'{references.split}' split ({first_few(extra)}); it predicts another split: "
                "regenerate it for this split, or rank it with the --split it came from"
            )
    task = _resolve_task(task, systems)
    names_k = label_set(task).names
    k = len(names_k)
    frame = references.frame[references.frame[task].notna()]
    if frame.empty:
        raise UsageError(
            f"{', '.join(references.sources)}: no {task} references in the "
            f"'{references.split}' split; choose another --task or --refs"
        )
    ids = frame["id"].tolist()
    y_true = np.array([names_k.index(v) for v in frame[task]], dtype=np.int64)
    units, unit_name = reader.resampling_units(frame, unit)
    # the very draws score_labels makes, so each row's interval equals `indomer score`'s
    _, unit_codes = np.unique(np.asarray(units, dtype=object).astype(str), return_inverse=True)
    n_units = int(unit_codes.max()) + 1
    counts = metrics.bootstrap_counts(n_units, n_resamples, np.random.default_rng(seed))

    # which intervals stand depends on the references and the draws only, as in score
    support = np.bincount(y_true, minlength=k)
    per_unit = np.zeros((n_units, k), dtype=np.int64)
    np.add.at(per_unit, (unit_codes, y_true), 1)
    boot_support = counts @ per_unit
    lacking, n_lacking = metrics.lacking_classes(support, boot_support)
    undefined = metrics.undefined_intervals(n_units, unit_name, n_resamples, n_lacking)

    rows = []
    boot_macro = []
    for name, p in zip(names, systems):
        y_pred = reader.encode_predictions(p, ids, task, allow_missing, references.split)
        m = metrics.metrics_from_confusion(metrics.confusion_matrix(y_true, y_pred, k))
        boot = metrics.metrics_from_confusion(
            metrics.resampled_confusions(y_true, y_pred, unit_codes, counts, k)
        )
        boot_macro.append(boot["macro_f1"])
        n_invalid = int((y_pred == metrics.INVALID).sum())
        n_missing = int((y_pred == metrics.MISSING).sum())
        rows.append(
            {
                "name": name,
                "file": p.path.name,
                "metrics": {key: float(m[key]) for key in metrics.HEADLINE},
                "ci95": {
                    key: None if key in undefined else metrics.percentile_ci(boot[key])
                    for key in metrics.CI_METRICS
                },
                "n_invalid": n_invalid,
                "n_missing": n_missing,
                "invalid_rate": n_invalid / len(ids),
            }
        )
    ref_macro = rows[ref_i]["metrics"]["macro_f1"]
    for i, row in enumerate(rows):
        if i == ref_i:
            row["compare"] = None
            continue
        delta = row["metrics"]["macro_f1"] - ref_macro
        deltas = boot_macro[i] - boot_macro[ref_i]
        defined = "macro_f1" not in undefined
        row["compare"] = {
            "reference": names[ref_i],
            "delta": delta,
            "ci95": metrics.percentile_ci(deltas) if defined else None,
            "p_value": metrics.paired_p_value(delta, deltas) if defined else None,
        }
    order = sorted(range(len(rows)), key=lambda i: -rows[i]["metrics"]["macro_f1"])  # stable
    ranked = []
    for i in order:
        row = rows[i]
        better = sum(r["metrics"]["macro_f1"] > row["metrics"]["macro_f1"] for r in rows)
        ranked.append({"rank": better + 1, **row})
    board = {
        "task": task,
        "split": references.split,
        "n": len(ids),
        "reference": names[ref_i],
        "systems": ranked,
        "bootstrap": {
            "n_resamples": int(n_resamples),
            "seed": int(seed),
            "unit": unit_name,
            "n_units": n_units,
            "lacking_class": {names_k[i]: int(lacking[i]) for i in range(k) if support[i] > 0},
            "n_resamples_lacking_a_class": n_lacking,
        },
        "ci95_undefined": undefined,
        "refs_build_hash": references.build_hash,
        "versions": {"indomer": __version__, "labels": labels_sha256()},
    }
    if references.assignment is not None:
        board["assignment"] = dict(references.assignment)
    validate_leaderboard(board)
    return board


# ---------------------------------------------------------------------------------------------
# JSON


def validate_leaderboard(board: dict, where: str | None = None) -> None:
    """Check ``board`` against ``leaderboard.schema.json``.

    Without ``where`` a failure is a bug in indomer (RuntimeError); with it (a file a user
    passes, e.g. to ``push --results``) it is one :class:`DataError` line naming the file.
    """
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import best_match

    from indomer.scoring import load_schema

    err = best_match(Draft202012Validator(load_schema("leaderboard")).iter_errors(board))
    if err is None:
        return
    at = "/".join(str(p) for p in err.absolute_path) or "(top)"
    if where is None:
        raise RuntimeError(
            f"leaderboard JSON breaks leaderboard.schema.json at {at}: {err.message}"
        )
    raise DataError(
        f"{where}: not an 'indomer leaderboard --json' file ({at}: {err.message}); "
        "write one with indomer leaderboard --json FILE"
    )


def dump_json(board: dict) -> str:
    """The leaderboard JSON text: sorted keys, two-space indent, trailing newline, no NaN."""
    return json.dumps(board, sort_keys=True, indent=2, allow_nan=False) + "\n"


def read_leaderboard(path: str | Path) -> dict:
    """A leaderboard JSON file, checked against the schema (one line naming the file if not)."""
    path = Path(path)
    board = read_json(path)
    validate_leaderboard(board, str(path))
    return board


# ---------------------------------------------------------------------------------------------
# Tables


def _cells(board: dict, row: dict) -> list[str]:
    m, ci = row["metrics"], row["ci95"]
    interval = ci.get("macro_f1")
    shown_ci = "[undefined]" if interval is None else f"[{interval[0]:.4f}, {interval[1]:.4f}]"
    comp = row["compare"]
    if comp is None:
        vs = "reference"
    else:
        p = comp["p_value"]
        # no resample reverses the order: p is below one resample's share, not 0
        if p is None:
            shown = "p undefined"
        elif p == 0:
            shown = f"p<{1 / board['bootstrap']['n_resamples']:.3g}"
        else:
            shown = f"p={p:.4f}"
        vs = f"{comp['delta']:+.4f}, {shown}"
    return [
        str(row["rank"]),
        row["name"],
        f"{m['macro_f1']:.4f} {shown_ci}",
        f"{m['weighted_f1']:.4f}",
        f"{m['accuracy']:.4f}",
        f"{m['unweighted_accuracy']:.4f}",
        f"{row['invalid_rate']:.1%}",
        vs,
    ]


def _heads(board: dict) -> list[str]:
    return [*COLUMNS, f"vs {board['reference']} (delta macro-F1, p)"]


def _caption(board: dict) -> str:
    boot = board["bootstrap"]
    return (
        f"{board['task']}, '{board['split']}' split, n={board['n']}; 95% intervals and one-sided "
        f"paired p-values from {boot['n_resamples']} bootstrap resamples of "
        f"{boot['n_units']} {boot['unit']} units (seed {boot['seed']}); "
        f"indomer {board['versions']['indomer']}"
    )


def _warnings(board: dict) -> list[str]:
    """What ``indomer score`` prints under its caption: the resamples that lack a class, and
    why an interval is undefined (boards written before these keys existed have none)."""
    boot = board["bootstrap"]
    lines = []
    if "n_resamples_lacking_a_class" in boot:
        lines.append(lacking_line(boot, label_set(board["task"]).names))
    lines += undefined_lines(board.get("ci95_undefined", {}), boot["unit"])
    return lines


def format_table(board: dict) -> str:
    """The leaderboard as an aligned plain-text table under a caption and its warnings."""
    rows = [_heads(board), *(_cells(board, r) for r in board["systems"])]
    widths = [max(len(r[c]) for r in rows) for c in range(len(rows[0]))]
    lines = [_caption(board), *_warnings(board), ""]
    for r in rows:
        lines.append("  ".join(cell.ljust(w) for cell, w in zip(r, widths)).rstrip())
    return "\n".join(lines) + "\n"


def format_markdown(board: dict) -> str:
    """The leaderboard as a Markdown table (what ``--markdown`` and the card show)."""
    lines = [
        "| " + " | ".join(_heads(board)) + " |",
        "|" + "|".join("---:" if i == 0 else "---" for i in range(len(_heads(board)))) + "|",
    ]
    for row in board["systems"]:
        cells = [c.replace("|", "\\|") for c in _cells(board, row)]
        lines.append("| " + " | ".join(cells) + " |")
    undefined = undefined_lines(board.get("ci95_undefined", {}), board["bootstrap"]["unit"])
    notes = "".join(f"\n\n{w.strip()}." for w in undefined)
    return "\n".join(lines) + "\n\n" + _caption(board) + "." + notes + "\n"


__all__ = [
    "dump_json",
    "format_markdown",
    "format_table",
    "leaderboard",
    "read_leaderboard",
    "system_name",
    "validate_leaderboard",
]
