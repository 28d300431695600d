"""``indomer leaderboard``: a thin wrapper over :func:`indomer.leaderboard.leaderboard`."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import emit_json, guarded, json_option, outputs
from indomer.commands.options import refs_option, scoring_options, split_option


@click.command("leaderboard")
@click.argument("preds", nargs=-1, required=True, type=click.Path(path_type=Path))
@refs_option()
@split_option(release_refs=True)
@click.option(
    "--task",
    default=None,
    metavar="TASK",
    help="emotion | sentiment | text_sentiment | audio_sentiment | video_sentiment "
    "[default: the one task every file predicts].",
)
@click.option(
    "--reference",
    default=None,
    metavar="NAME",
    help="The system the others are tested against (file name without .jsonl) "
    "[default: the first file].",
)
@json_option()
@click.option(
    "--markdown",
    "markdown_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    metavar="FILE",
    help="Also write the table as Markdown to FILE.",
)
@scoring_options()
@guarded
def leaderboard(
    preds: tuple[Path, ...],
    refs: tuple[Path, ...],
    split: str | None,
    task: str | None,
    reference: str | None,
    json_path: Path | None,
    markdown_path: Path | None,
    allow_missing: bool,
    n_resamples: int,
    seed: int,
    unit: str,
) -> None:
    """Rank the systems in PREDS.jsonl files on one task of one split.

    One row per system: macro-F1 with its 95% interval, weighted F1, accuracy, UA and the
    invalid-answer rate, and against the reference system the macro-F1 difference with a
    paired bootstrap p-value over speaker blocks. Best first.
    """
    from indomer import leaderboard as lib

    guard = outputs(*preds, *refs)
    if json_path is not None:
        guard.file(json_path, "--json")
    if markdown_path is not None:
        guard.file(markdown_path, "--markdown")
    board = lib.leaderboard(
        list(preds),
        list(refs),
        split,
        task,
        reference=reference,
        allow_missing=allow_missing,
        n_resamples=n_resamples,
        seed=seed,
        unit=unit,
    )
    emit_json(json_path, lib.dump_json(board), guard=guard)
    if markdown_path is not None:
        guard.write_text(markdown_path, lib.format_markdown(board), "--markdown")
    if json_path is None or str(json_path) != "-":
        click.echo(lib.format_table(board), nl=False)
