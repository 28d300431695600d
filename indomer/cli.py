"""The ``indomer`` command line: a click group whose commands live in ``indomer.commands``.

Command modules import only light dependencies at import time, so ``indomer --help`` and
``indomer score`` never import torch.
"""

from __future__ import annotations

import importlib

import click

from indomer import __version__

#: command name -> module in indomer.commands defining a click command of the same name.
COMMANDS: dict[str, str] = {
    "build": "build",
    "demo": "demo",
    "doctor": "doctor",
    "split": "split",
    "score": "score",
    "validate": "validate",
    "stats": "stats",
    "push": "push",
}


class LazyGroup(click.Group):
    """Import a command's module only when that command (or the help listing) needs it."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        module = importlib.import_module(f"indomer.commands.{COMMANDS[name]}")
        return getattr(module, name)


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="indomer")
def main() -> None:
    """Build, split, score and publish the IndoMER multimodal emotion dataset."""
