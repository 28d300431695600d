"""``indomer export``: a thin wrapper over :func:`indomer.export.export`."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded
from indomer.commands.options import split_option, to_option


@click.command("export")
@click.argument("out", type=click.Path(path_type=Path))
@click.option(
    "--format",
    "fmt",
    required=True,
    metavar="ms-swift|llamafactory",
    help=(
        "ms-swift: SPLIT.jsonl with <video> (audio from the same mp4: USE_AUDIO_IN_VIDEO); "
        "llamafactory: SPLIT.json with <video><audio> plus dataset_info.json."
    ),
)
@split_option("train")
@click.option(
    "--tasks",
    default="emotion,sentiment,keywords,face,prosody",
    show_default=True,
    metavar="T1,T2",
    help="Record tasks: emotion, sentiment and the auxiliary keywords, face, prosody.",
)
@to_option()
@guarded
def export(out: Path, fmt: str, split: str, tasks: str, to: Path) -> None:
    """Write training/evaluation records of OUT's split for ms-swift or LLaMA-Factory.

    The auxiliary targets are computed from --split alone. DIR gets the records, media/
    and export.json. One record per clip and task; media are written once under DIR/media/ with paths
    relative to the records. Clips a task cannot use (no media in a release build, no
    tracked face) are listed as skipped, by id, in DIR/export.json and in the summary.
    """
    from indomer.export import export as run_export
    from indomer.export import parse_tasks

    run_export(out, fmt, split, parse_tasks(tasks), to, log=click.echo)
