"""``indomer doctor [CONFIG.yaml] [--json]``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indomer.commands import guarded


@click.command()
@click.argument("config", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True,
              help="Print the checks as JSON (status, what, detail, fix, needed) instead.")
@guarded
def doctor(config: Path | None, as_json: bool) -> None:
    """Which tools, models and caches the build config (default: the default settings) needs,
    which are present offline, and the command that fetches each missing one. Exits 1 when
    something the config needs is missing. Nothing is downloaded."""
    from indomer import doctor as lib

    checks = lib.check(config)
    click.echo(lib.as_json(checks, config) if as_json else lib.format_table(checks))
    sys.exit(0 if lib.all_present(checks) else 1)
