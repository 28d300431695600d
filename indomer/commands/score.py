"""``indomer score``: a thin wrapper over :func:`indomer.scoring.score_predictions`."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import (
    allow_missing_option,
    bootstrap_option,
    bootstrap_unit_option,
    emit_json,
    guarded,
    json_option,
    outputs,
    seed_option,
)
from indomer.labels import TASKS

TASK_CHOICES = " | ".join([*TASKS, "all"])


@click.command("score")
@click.argument("preds", type=click.Path(path_type=Path))
@click.option(
    "--refs",
    "refs",
    multiple=True,
    required=True,
    type=click.Path(path_type=Path),
    help=(
        "References: a built dataset directory, or a release split file "
        "(7_class_*.json: emotion + sentiment; 3_class_*.json: sentiment + text/audio/video "
        "sentiment). Repeat to combine files of the same split."
    ),
)
@click.option(
    "--split",
    default=None,
    help=(
        "Split of a built dataset [default: validation]. A release JSON file names its own "
        "split (7_class_val.json is validation); --split, if given, must match it."
    ),
)
@click.option(
    "--task",
    default="all",
    show_default=True,
    metavar="TASK",
    help=f"{TASK_CHOICES}; 'all' scores every task the predictions carry.",
)
@json_option("Write the score JSON to FILE (the table is still printed unless FILE is -).")
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="Second predictions file: paired bootstrap of the macro-F1 difference (preds - other).",
)
@allow_missing_option()
@bootstrap_option("Bootstrap resamples for the 95% intervals; 0 skips them.")
@seed_option("Bootstrap seed; same predictions and seed, same intervals.")
@bootstrap_unit_option()
@guarded
def score(
    preds: Path,
    refs: tuple[Path, ...],
    split: str | None,
    task: str,
    json_path: Path | None,
    compare: Path | None,
    allow_missing: bool,
    n_resamples: int,
    seed: int,
    unit: str,
) -> None:
    """Score PREDS.jsonl (one JSON object per line: id + task keys) against --refs.

    Prints macro-F1 (the headline), weighted F1, accuracy and unweighted accuracy with
    bootstrap 95% intervals, per-class figures and the confusion matrix.
    """
    from indomer.scoring import dump_json, format_report, score_predictions

    guard = outputs(preds, compare, *refs)
    if json_path is not None:
        guard.file(json_path, "--json")
    result = score_predictions(
        preds,
        list(refs),
        split,
        task,
        compare=compare,
        allow_missing=allow_missing,
        n_resamples=n_resamples,
        seed=seed,
        unit=unit,
    )
    emit_json(json_path, dump_json(result), guard=guard)
    if json_path is None or str(json_path) != "-":
        click.echo(format_report(result), nl=False)
