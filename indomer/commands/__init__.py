"""Thin click wrappers, one module per command; the work lives in the library modules.

Options that several commands share are defined once, as decorators, in
:mod:`indomer.commands.options` (DESIGN §4: one meaning per option name).
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from pathlib import Path

import click

from indomer.errors import IndomerError

#: errno -> what the user can do about it, for the one-line OS error message.
_OS_FIXES: dict[int, str] = {
    errno.ENOSPC: "free some space or choose another --out",
    errno.EDQUOT: "free some space or choose another --out",
    errno.EROFS: "the filesystem is read-only; choose a writable location",
    errno.EACCES: "check the permissions, or choose another location",
    errno.EPERM: "check the permissions, or choose another location",
    errno.ENOTDIR: "a file stands where a folder is expected; move it or choose another path",
    errno.EISDIR: "a folder stands where a file is expected; move it or choose another path",
    errno.ENOENT: "check the path",
    errno.EEXIST: "remove it or choose another path",
    errno.ENAMETOOLONG: "choose a shorter path",
    errno.ELOOP: "a symbolic link loops; fix or remove it",
}


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity, not the machine's count): the
    ``--jobs`` default of build and demo, so that no core stays idle by default."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def os_error_line(exc: OSError) -> str:
    """``PATH: cause; fix`` for an operating-system error (no traceback, no repr)."""
    where = exc.filename if exc.filename is not None else "(unknown path)"
    if exc.filename2 is not None:
        where = f"{where} -> {exc.filename2}"
    cause = exc.strerror or (os.strerror(exc.errno) if exc.errno else str(exc) or type(exc).__name__)
    fix = _OS_FIXES.get(exc.errno or 0, "check the path and try again")
    if exc.errno == errno.EEXIST and exc.filename is not None:
        path = Path(os.fsdecode(exc.filename))
        if path.exists() and not path.is_dir():  # mkdir over a file
            cause, fix = "a file, where a folder is expected", _OS_FIXES[errno.ENOTDIR]
    return f"{where}: {cause}; {fix}"


def guarded(fn):
    """Turn an :class:`IndomerError` or an OS error into one ``error: ...`` line and its exit
    code (1 for data and filesystem errors, 2 for usage errors)."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except IndomerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)
        except RecursionError:
            click.echo("error: an input is nested too deeply to read; check the files given",
                       err=True)
            sys.exit(1)
        except Exception as exc:
            arrow = sys.modules.get("pyarrow")
            if arrow is not None and isinstance(exc, arrow.ArrowException):
                # a shard read outside the dataset layer's own checks: still one line, exit 1
                text = " ".join(str(exc).split())
                click.echo(
                    f"error: a Parquet file is damaged ({text}); run 'indomer validate OUT' "
                    "and rebuild the dataset",
                    err=True,
                )
                sys.exit(1)
            if isinstance(exc, OSError):
                click.echo(f"error: {os_error_line(exc)}", err=True)
                sys.exit(1)
            raise

    return wrapper


# --------------------------------------------------------------------------- shared options
# One definition per option name lives in indomer.commands.options; these names stay importable
# from here for the commands written before it.
from indomer.commands.options import (
    allow_missing_option,
    bootstrap_option,
    bootstrap_unit_option,
    json_option,
    seed_option,
)

__all__ = [
    "allow_missing_option",
    "bootstrap_option",
    "bootstrap_unit_option",
    "default_jobs",
    "emit_json",
    "guarded",
    "json_option",
    "os_error_line",
    "outputs",
    "seed_option",
]


def emit_json(
    path: Path | None,
    text: str,
    *,
    inputs: tuple[Path | None, ...] = (),
    guard=None,
    option: str = "--json",
) -> None:
    """Write JSON ``text`` to ``path`` atomically, or to stdout when ``path`` is ``-``,
    through the output guard (:mod:`indomer.outputs`): ``guard`` when the command checked
    its outputs up front, else one made of ``inputs``."""
    if path is None:
        return
    from indomer.outputs import Outputs

    (guard if guard is not None else Outputs(inputs)).write_text(path, text, option)


def outputs(*inputs: Path | str | None, folders_read: tuple[Path, ...] = ()):
    """The output guard of one command run: ``inputs`` are files or folders it reads;
    ``folders_read`` are folders whose files it reads (each file counts as an input)."""
    from indomer.outputs import Outputs

    guard = Outputs(inputs)
    for folder in folders_read:
        guard.add_input(folder, files_inside=True)
    return guard
