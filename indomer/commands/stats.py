"""``indomer stats OUT [--json FILE] [--plots DIR]``."""

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
    help="Also write the statistics (cross-modal agreement included) as JSON to this file.",
)
@click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    help="Also draw the figures as PNG files into this folder (needs matplotlib).",
)
@guarded
def stats(out: Path, json_path: Path | None, plots_dir: Path | None) -> None:
    """Segments, videos, speakers, words, durations, class counts per split, cross-modal
    agreement and, with --plots, the figures."""
    from indomer.dataset import available_splits
    from indomer.errors import UsageError
    from indomer.fsutil import write_json_atomic
    from indomer.stats import compute_stats, format_table, load_data

    if not available_splits(out):
        raise UsageError(f"{out}: no shards under data/; build the dataset first")
    data = load_data(out)
    result = compute_stats(out, data)
    click.echo(format_table(result))
    if json_path:
        write_json_atomic(json_path, result)
    if plots_dir:
        from indomer.plots import write_plots

        files, notes = write_plots(out, plots_dir, data, result)
        for path in files:
            click.echo(f"wrote {path}")
        for note in notes:
            click.echo(f"note: {note}")
        if plots_dir.resolve() == (out / "figures").resolve():
            import json

            from indomer import card

            build = json.loads((out / "build.json").read_text(encoding="utf-8"))
            write_json_atomic(
                plots_dir / "figures.json",
                {
                    "build_hash": build.get("outputs", {}).get("build_hash"),
                    "files": sorted(p.name for p in files),
                },
            )
            card.refresh(out)
            click.echo(f"the card {out / 'README.md'} now shows them; indomer push sends them")
