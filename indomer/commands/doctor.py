"""``indomer doctor [CONFIG.yaml] [--json FILE|-]``."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from indomer.commands import emit_json, guarded, json_option


@click.command()
@click.argument("config", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@json_option()
@guarded
def doctor(config: Path | None, json_path: Path | None) -> None:
    """Which tools, models and caches the build CONFIG needs, which are present offline, and
    the command that fetches each missing one; without CONFIG, every extra and what each
    command needs, with the install command of each missing part. Exits 1 when something
    the config (without one: indomer itself) needs is missing. Nothing is downloaded.
    --json holds the config, ok and every check."""
    from indomer import doctor as lib

    checks = lib.check(config)
    # the JSON first: a refused --json path then leaves no table half-way to a failure
    emit_json(json_path, lib.as_json(checks, config) + "\n", inputs=(config,))
    if json_path is None or str(json_path) != "-":
        click.echo(lib.format_table(checks, config=config is not None))
    sys.exit(0 if lib.all_present(checks) else 1)
