"""The one bounded JSON reader (DESIGN §7.14) for every JSON file a user hands in.

Python's ``json`` recurses once per nesting level, so a 200,000-deep array is a
``RecursionError``, and it reads any size. Here a document may be at most
:data:`MAX_DEPTH` levels deep and :data:`MAX_BYTES` long (a JSONL line :data:`MAX_LINE`),
and every failure is one :class:`~indomer.errors.DataError` line naming the file and the
position (line and column), what was expected, and how to fix it.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from indomer.errors import DataError, UsageError

#: Nesting levels a document may have (every indomer and Label Studio file needs < 10).
MAX_DEPTH = 64
#: Bytes a whole-file JSON document may have.
MAX_BYTES = 512 * 1024 * 1024
#: Bytes one JSONL line may have.
MAX_LINE = 16 * 1024 * 1024

#: A JSON string (so brackets inside strings are not counted), or one bracket.
_TOKEN = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"|[\[\]{}]', re.DOTALL)
_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)


def _position(text: str, offset: int) -> tuple[int, int]:
    line = text.count("\n", 0, offset) + 1
    col = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, col


def _where(source: str, text: str, offset: int, lineno: int | None) -> tuple[str, str]:
    """``(file:line[:col], " at column N" or "")``: a JSONL line names the file's line."""
    line, col = _position(text, offset)
    if lineno is not None:
        return f"{source}:{lineno}", f" at column {col}"
    return f"{source}:{line}:{col}", ""


def _too_deep(text: str, max_depth: int) -> int | None:
    """Offset of the first bracket nested deeper than ``max_depth``, or None."""
    bare = _STRING.sub('""', text)
    if bare.count("[") + bare.count("{") <= max_depth:
        return None
    depth = 0
    for m in _TOKEN.finditer(text):
        tok = m.group()
        if tok in "[{":
            depth += 1
            if depth > max_depth:
                return m.start()
        elif tok in "]}":
            depth -= 1
    return None


def loads(
    data: str | bytes,
    source: str,
    *,
    lineno: int | None = None,
    max_depth: int = MAX_DEPTH,
) -> Any:
    """Parse ``data`` (from ``source``; ``lineno`` for a JSONL line) within the bounds."""
    if isinstance(data, bytes):
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError as exc:
            at = f"{source}:{lineno}" if lineno is not None else source
            raise DataError(
                f"{at}: not UTF-8 (byte {exc.start}: {exc.reason}); save the file as UTF-8"
            ) from None
    else:
        text = data
    if lineno is None:
        text = text.removeprefix("\ufeff")
    deep = _too_deep(text, max_depth)
    if deep is not None:
        at, col = _where(source, text, deep, lineno)
        raise DataError(
            f"{at}: JSON nested deeper than {max_depth} levels{col}; this is not a file "
            "indomer or Label Studio writes"
        )
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        at, col = _where(source, text, exc.pos, lineno)
        raise DataError(
            f"{at}: not valid JSON ({exc.msg}{col}); "
            + ("expected one JSON value per line" if lineno else "fix the file or write it again")
        ) from None
    except RecursionError:  # pragma: no cover - the depth check comes first
        raise DataError(f"{source}: JSON nested too deep") from None


def read_json(
    path: Path | str,
    *,
    max_bytes: int = MAX_BYTES,
    max_depth: int = MAX_DEPTH,
    shown: Path | str | None = None,
) -> Any:
    """Read one JSON document from ``path`` (named ``shown`` in errors, e.g. the dataset's
    ``OUT/build.json`` rather than the generation file behind it)."""
    path = Path(path)
    data = _read(path, max_bytes)
    source = str(shown) if shown is not None else str(path)
    return loads(data.removeprefix(codecs.BOM_UTF8), source, max_depth=max_depth)


def _read(path: Path, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as fh:
            data = fh.read(max_bytes + 1)
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, expected a JSON file") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    if len(data) > max_bytes:
        raise DataError(
            f"{path}: larger than {max_bytes // (1024 * 1024)} MiB; this is not a file "
            "indomer reads whole (split it, or check it is the right file)"
        )
    return data


def iter_jsonl(
    path: Path | str, *, max_line: int = MAX_LINE, max_depth: int = MAX_DEPTH
) -> Iterator[tuple[int, Any]]:
    """``(line number, value)`` for each non-blank line of a JSONL file."""
    path = Path(path)
    try:
        fh = open(path, "rb")  # noqa: SIM115 - closed below
    except FileNotFoundError:
        raise UsageError(f"{path}: no such file; check the path") from None
    except IsADirectoryError:
        raise UsageError(f"{path}: is a folder, expected a JSONL file") from None
    with fh:
        for lineno, raw in enumerate(_lines(fh, path, max_line), start=1):
            if lineno == 1:
                raw = raw.removeprefix(codecs.BOM_UTF8)
            if not raw.strip():
                continue
            raw = raw.rstrip(b"\r\n")
            yield lineno, loads(raw, str(path), lineno=lineno, max_depth=max_depth)


def _lines(fh, path: Path, max_line: int) -> Iterator[bytes]:
    lineno = 0
    while True:
        raw = fh.readline(max_line + 1)
        if not raw:
            return
        lineno += 1
        if len(raw) > max_line and not raw.endswith(b"\n"):
            raise DataError(
                f"{path}:{lineno}: line longer than {max_line // (1024 * 1024)} MiB; "
                "expected one JSON object per line"
            )
        yield raw
