"""The small error hierarchy every command turns into one line and an exit code.

Messages start with the file:line or row id, say what was expected and how to fix it.
"""

from __future__ import annotations


class IndomerError(Exception):
    """Base class: a problem the user can fix; the CLI prints it as one line."""

    exit_code = 1


class DataError(IndomerError):
    """The input data is wrong (bad file, bad id, bad label): exit code 1."""

    exit_code = 1


class UsageError(IndomerError):
    """The command was called wrongly (bad option value, missing split): exit code 2."""

    exit_code = 2


class MissingExtraError(IndomerError):
    """A heavy optional dependency is not installed; the message names the extra."""

    exit_code = 2

    def __init__(self, module: str, extra: str) -> None:
        super().__init__(
            f"{module} is not installed; install it with: pip install 'indomer[{extra}]'"
        )


def first_few(items, n: int = 5) -> str:
    """Render the first ``n`` offenders of a list for an error line, with a count of the rest."""
    items = list(items)
    shown = ", ".join(str(i) for i in items[:n])
    rest = len(items) - n
    return shown + (f" (and {rest} more)" if rest > 0 else "")


def require_columns(source, header, required, expected: str) -> None:
    """Refuse a table whose header lacks a ``required`` column: one line naming the file's
    first line, the missing columns and the ``expected`` header (config tables, annotator
    sheets and the release CSV all say it so)."""
    missing = [c for c in required if c not in header]
    if missing:
        raise DataError(
            f"{source}:1: missing column(s) {', '.join(missing)}; expected header {expected}"
        )


class RowRejected(IndomerError):
    """One row (video or segment) cannot go on; the pipeline records it in rejected.jsonl.

    ``reason`` says what is wrong, ``fix`` what the user can do; the others carry on
    unless ``--strict``.
    """

    def __init__(self, row_id: str, reason: str, fix: str) -> None:
        super().__init__(f"{row_id}: {reason}; {fix}")
        self.row_id = row_id
        self.reason = reason
        self.fix = fix
