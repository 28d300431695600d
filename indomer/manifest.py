"""Manifest rows on disk: JSONL, one row per line, compact, sorted keys, sorted by id.

Below the stages and the runner, so both can read and write manifests without importing
each other. Paths inside the build folder are stored relative to it (``PATH_FIELDS``), so a
manifest does not depend on where OUT is mounted: every node of a cluster may see it at
another path, and an object-store OUT can be added later.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from indomer.errors import DataError

#: Fields that hold file paths; inside the build folder they are stored relative to it.
PATH_FIELDS: dict[str, tuple[str, ...]] = {
    "video": ("path",),
    "segment": ("source_path", "audio_path", "video_path"),
}


def dumps_row(obj: dict) -> str:
    """One manifest line: compact JSON, sorted keys, UTF-8 kept."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def row_id(obj: dict) -> str:
    """The id a manifest is sorted by: ``id`` for segments, ``source_id`` for videos."""
    return str(obj.get("id") if obj.get("id") is not None else obj.get("source_id", ""))


def sort_rows(rows: Iterable[dict]) -> list[dict]:
    return sorted(rows, key=lambda o: (row_id(o), o.get("kind", ""), dumps_row(o)))


def manifest_bytes(rows: Iterable[dict]) -> bytes:
    return "".join(dumps_row(r) + "\n" for r in rows).encode("utf-8")


def rejected_bytes(entries: Iterable[dict]) -> bytes:
    """The one writer of ``rejected.jsonl`` (a stage's, the build's and the dataset's): the
    entries of :func:`indomer.config.reject`, one compact sorted-key line each, in order."""
    return manifest_bytes(entries)


def read_manifest(path: Path) -> list[dict]:
    """Rows of a JSONL file ([] when absent)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    out = []
    for n, line in enumerate(data.decode("utf-8").splitlines(), start=1):
        if line.strip():
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError as exc:
                raise DataError(
                    f"{path}:{n}: not a JSON line ({exc.msg}); rerun the build with --force"
                ) from None
    return out


def relocate(obj: dict, out: Path, absolute: bool) -> dict:
    """Paths inside the build folder: stored relative, given to stages absolute."""
    fields = PATH_FIELDS.get(obj.get("kind", ""), ())
    if not fields:
        return obj
    obj = dict(obj)
    for f in fields:
        value = obj.get(f)
        if not value:
            continue
        p = Path(value)
        if absolute and not p.is_absolute():
            obj[f] = str(out / p)
        elif not absolute and p.is_absolute() and p.is_relative_to(out):
            obj[f] = p.relative_to(out).as_posix()
    return obj


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def canon(obj: Any) -> bytes:
    """Canonical JSON bytes (sorted keys) for hashing."""
    return json.dumps(obj, sort_keys=True, ensure_ascii=False, default=str).encode("utf-8")
