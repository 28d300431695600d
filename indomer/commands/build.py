"""``indomer build``: release mode (raw mode from a config comes with the media pipeline)."""

from __future__ import annotations

from pathlib import Path

import click

from indomer.commands import guarded


@click.command()
@click.option(
    "--release",
    "release",
    required=True,
    metavar="DIR|github:OWNER/REPO@COMMIT",
    help="The public IndoMER release: a local folder, or the upstream repository "
    "pinned to a commit (downloaded and checksum-verified).",
)
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(file_okay=False, path_type=Path),
    help="Output dataset folder (new, empty, or an earlier indomer build).",
)
@click.option(
    "--media-dir",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Folder with <id>.wav / <id>.mp4 clips to embed; missing ones are reported.",
)
@click.option(
    "--annotations",
    multiple=True,
    type=click.Path(exists=True, path_type=Path),
    help="Annotator sheets (CSV files or folders, repeatable) merged into the labels "
    "(majority of >= 2, else the expert); see annotations/GUIDELINE.md.",
)
@click.option("--strict", is_flag=True, help="Stop at the first bad row instead of rejecting it.")
@guarded
def build(
    release: str, out: Path, media_dir: Path | None, annotations: tuple[Path, ...], strict: bool
) -> None:
    """Import the IndoMER release into Parquet shards with a card and build.json."""
    from indomer.build import build_release

    info = build_release(
        release,
        out,
        media_dir=media_dir,
        annotations=list(annotations),
        strict=strict,
        log=lambda m: click.echo(m, err=True),
    )
    rows = info.get("rows", {})
    summary = ", ".join(f"{k} {v}" for k, v in rows.items())
    click.echo(
        f"built {sum(rows.values())} rows ({summary}) in {out}; "
        f"{info['rejected']} rejected, {len(info['repaired_texts'])} transcripts repaired"
    )
