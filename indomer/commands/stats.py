"""``indomer stats OUT``."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option(
    "--json",
    "json_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write the statistics as JSON to this file.",
)
@guarded
def stats(out: Path, json_path: Path | None) -> None:
    """Segments, videos, speakers, words, vocabulary, durations and class counts per split."""
    from indomer.fsutil import write_json_atomic
    from indomer.stats import compute_stats, format_table

    result = compute_stats(out)
    click.echo(format_table(result))
    if json_path:
        write_json_atomic(json_path, result)
