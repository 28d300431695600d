"""``indomer demo [OUT]``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indomer.commands import default_jobs, guarded
from indomer.commands.options import address_option, engine_option, jobs_option, quiet_option
from indomer.pipeline import ENGINES


@click.command()
@click.argument("out", required=False, default="indomer-demo",
                type=click.Path(file_okay=False, path_type=Path))
@jobs_option()
@engine_option(ENGINES)
@address_option()
@quiet_option()
@guarded
def demo(out: Path, jobs: int | None, engine: str, address: str | None, quiet: bool) -> None:
    """Generate a synthetic Indonesian corpus and run the whole pipeline on it, offline.

    Writes OUT/corpus (media, transcripts, annotator sheets, config.yaml) and OUT/dataset
    (the built dataset), then validates it and scores a majority-class baseline.
    """
    from indomer.demo.corpus import run_demo

    result = run_demo(out, jobs=jobs if jobs is not None else default_jobs(), quiet=quiet,
                      log=click.echo, engine=engine, address=address,
                      progress=lambda m: click.echo(m, err=True))
    if result["problems"]:
        sys.exit(1)
    click.echo(f"demo dataset: {result['dataset']} (config: {result['corpus'] / 'config.yaml'})")
