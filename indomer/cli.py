"""The ``indomer`` command line: a click group whose commands live in ``indomer.commands``.

Command modules import only light dependencies at import time, so ``indomer --help`` and
``indomer score`` never import torch.

Every failure is one line: the commands turn :class:`~indomer.errors.IndomerError` into
``error: ...`` (``indomer.commands.guarded``), and this group does the same for click's own
usage errors (missing argument, unknown option, bad value), which click would otherwise print
as a usage block of four lines. ``--help`` and ``--version`` are untouched.
"""

from __future__ import annotations

import importlib
import typing

import click

from indomer import __version__
from indomer.threads import pin_threads

#: command name -> module in indomer.commands defining a click command of the same name.
COMMANDS: dict[str, str] = {
    "annotate": "annotate",
    "build": "build",
    "demo": "demo",
    "doctor": "doctor",
    "split": "split",
    "score": "score",
    "validate": "validate",
    "stats": "stats",
    "push": "push",
    "speakers": "speakers",
    "predict": "predict",
    "baseline": "baseline",
    "leaderboard": "leaderboard",
    "browse": "browse",
    "export": "export",
}
#: Commands that run the pipeline: their thread counts are pinned before anything loads, so
#: ``--jobs 1`` (stages in this process) gives the bytes of the pool and Ray workers.
PINNED = frozenset({"build", "demo"})
#: ``ctx.meta`` key: the command path of the subcommand being parsed.
_COMMAND_PATH = "indomer.command_path"
#: click >= 8.2 shows a bare group's help by raising this usage error (left as it is: it is
#: help, not a mistake); click >= 8.4 names unknown commands with NoSuchCommand. ``()`` on
#: older click, where ``except ()`` and ``isinstance(x, ())`` match nothing.
_NO_ARGS_IS_HELP: typing.Any = getattr(click.exceptions, "NoArgsIsHelpError", ())
_NO_SUCH_COMMAND: typing.Any = getattr(click.exceptions, "NoSuchCommand", ())


class OneLineError(click.ClickException):
    """A click error shown as one ``error: ...`` line; click's ``main`` exits with its code."""

    def __init__(self, message: str, exit_code: int) -> None:
        super().__init__(message)
        self.exit_code = exit_code  # type: ignore[misc]  # per instance: 2 usage, 1 otherwise

    def show(self, file: typing.IO[typing.Any] | None = None) -> None:
        click.echo(f"error: {self.message}", file=file, err=file is None)


def usage_line(exc: click.UsageError, ctx: click.Context | None = None) -> str:
    """``what went wrong; see 'indomer CMD --help'``, on one line, from a click usage error."""
    possibilities = getattr(exc, "possibilities", None)
    if possibilities and isinstance(exc, (click.NoSuchOption, _NO_SUCH_COMMAND)):
        text = f"{exc.message.rstrip('.')} (did you mean {' or '.join(possibilities)}?)"
    else:
        text = exc.format_message()
    text = " ".join(text.split()).rstrip(".")
    if len(text) > 1 and text[0].isupper() and text[1].islower():
        text = text[0].lower() + text[1:]
    if exc.ctx is not None:
        path = exc.ctx.command_path
    elif ctx is not None:
        path = ctx.meta.get(_COMMAND_PATH, ctx.command_path)
    else:
        return text
    return f"{text}; see '{path} --help'"


def one_line(exc: click.ClickException, ctx: click.Context | None = None) -> OneLineError:
    """The one-line form of any click error (usage errors exit 2, the others keep their code)."""
    if isinstance(exc, click.UsageError):
        return OneLineError(usage_line(exc, ctx), 2)
    text = " ".join(exc.format_message().split())
    return OneLineError(text, exc.exit_code)


class LazyGroup(click.Group):
    """Import a command's module only when that command (or the help listing) needs it, and
    report click's usage errors on one line."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in COMMANDS:
            return None
        if name in PINNED:
            pin_threads()  # before the command loads numpy or a model (indomer.threads)
        module = importlib.import_module(f"indomer.commands.{COMMANDS[name]}")
        return getattr(module, name)

    def resolve_command(
        self, ctx: click.Context, args: list[str]
    ) -> tuple[str | None, click.Command | None, list[str]]:
        try:
            name, cmd, rest = super().resolve_command(ctx, args)
        except _NO_SUCH_COMMAND as exc:
            # click suggests from ``self.commands``, which a lazy group leaves empty
            raise _NO_SUCH_COMMAND(
                exc.command_name, possibilities=self.list_commands(ctx), ctx=ctx
            ) from None
        # some parser errors (an option without its value) carry no context: remember whose
        # help to point at
        ctx.meta[_COMMAND_PATH] = f"{ctx.command_path} {name}"
        return name, cmd, rest

    def make_context(
        self,
        info_name: str | None,
        args: list[str],
        parent: click.Context | None = None,
        **extra: typing.Any,
    ) -> click.Context:
        try:
            return super().make_context(info_name, args, parent=parent, **extra)
        except _NO_ARGS_IS_HELP:
            raise
        except OneLineError:
            raise
        except click.ClickException as exc:
            raise one_line(exc) from None

    def invoke(self, ctx: click.Context) -> typing.Any:
        try:
            return super().invoke(ctx)
        except _NO_ARGS_IS_HELP:
            raise
        except OneLineError:
            raise
        except click.ClickException as exc:
            raise one_line(exc, ctx) from None


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="indomer")
def main() -> None:
    """Build, split, score and publish the IndoMER multimodal emotion dataset."""
