"""``indomer validate OUT``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indomer.commands import guarded


@click.command()
@click.argument("out", type=click.Path(exists=True, file_okay=False, path_type=Path))
@guarded
def validate(out: Path) -> None:
    """Check schema, labels, ids, media, leakage and provenance of a built dataset."""
    from indomer.validate import validate as run

    problems, warnings = run(out)
    for w in warnings:
        click.echo(f"warning: {w}", err=True)
    for p in problems:
        click.echo(f"error: {p}", err=True)
    if problems:
        click.echo(f"{out}: {len(problems)} problem(s)", err=True)
        sys.exit(1)
    click.echo(f"{out}: valid")
