"""Thin click wrappers, one module per command; the work lives in the library modules."""

from __future__ import annotations

import functools
import sys

import click

from indomer.errors import IndomerError


def guarded(fn):
    """Turn an :class:`IndomerError` into one ``error: ...`` line and its exit code."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except IndomerError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(exc.exit_code)

    return wrapper
