"""``indomer score``: a thin wrapper over :func:`indomer.scoring.score_predictions`."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import emit_json, guarded, json_option, outputs
from indomer.commands.options import refs_option, scoring_options, split_option
from indomer.labels import TASKS

TASK_CHOICES = " | ".join([*TASKS, "all"])


@click.command("score")
@click.argument("preds", type=click.Path(path_type=Path))
@refs_option()
@split_option(release_refs=True)
@click.option(
    "--task",
    default="all",
    show_default=True,
    metavar="TASK",
    help=f"{TASK_CHOICES}; 'all' scores every task the predictions carry.",
)
@json_option()
@click.option(
    "--compare",
    type=click.Path(path_type=Path),
    default=None,
    help="Second predictions file: paired bootstrap of the macro-F1 difference (preds - other).",
)
@scoring_options()
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
