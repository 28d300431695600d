"""``speakers.csv``: known identities (a source or clip pinned to a speaker id) and must-link or
cannot-link pairs of sources, read into :class:`Pins` for the clustering."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from indomer.errors import DataError
from indomer.rows import SAFE_ID

# --------------------------------------------------------------------------- pins


@dataclass(frozen=True)
class Pins:
    """Known identities from ``speakers.csv``: source id or clip id -> (speaker id, where);
    must-link (``same``) and cannot-link (``different``) pairs of sources, with where."""

    sources: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    clips: Mapping[str, tuple[str, str]] = field(default_factory=dict)
    same: tuple[tuple[str, str, str], ...] = ()
    different: tuple[tuple[str, str, str], ...] = ()
    problems: tuple[str, ...] = ()


def read_overrides(path: str | Path) -> Pins:
    """Read ``speakers.csv``: ``source_id`` and/or ``id``, then ``speaker_id``, ``same_as``
    and/or ``not_same_as``.

    Each row fills exactly one of ``source_id`` (every clip of that source video) and ``id``
    (one clip; it wins over its source's row), and at least one of: ``speaker_id`` (a
    must-link by name: every row with that name is one person), ``same_as`` (a source id of
    the same person: must-link without a name) and ``not_same_as`` (a source id of another
    person: cannot-link, honoured even when the voices match). Ids must be safe ids; one
    source or clip pinned to two different speakers is an error naming both lines.
    """
    from indomer.config import read_table

    path = Path(path)
    header = _header(path)
    if "source_id" not in header and "id" not in header:
        raise DataError(f"{path}:1: needs a source_id or an id column next to speaker_id; "
                        "expected header source_id,speaker_id (or id,speaker_id), optionally "
                        "with same_as and not_same_as")
    if not {"speaker_id", "same_as", "not_same_as"} & set(header):
        raise DataError(f"{path}:1: needs a speaker_id, same_as or not_same_as column; "
                        "expected header source_id,speaker_id[,same_as,not_same_as]")
    known = ("source_id", "id", "speaker_id", "same_as", "not_same_as")
    unknown = [h for h in header if h not in known]
    if unknown:
        raise DataError(f"{path}:1: unknown column(s) {', '.join(unknown)}; expected some of "
                        f"{','.join(known)}")
    rows = read_table(path, (), known)
    sources: dict[str, tuple[str, str]] = {}
    clips: dict[str, tuple[str, str]] = {}
    same: list[tuple[str, str, str]] = []
    different: list[tuple[str, str, str]] = []
    problems: list[str] = []
    for line, row in rows:
        where = f"{path}:{line}"
        if row is None:
            raise DataError(f"{where}: wrong number of cells; expected {','.join(header)}")
        speaker = row.get("speaker_id")
        source, clip = row.get("source_id"), row.get("id")
        link, unlink = row.get("same_as"), row.get("not_same_as")
        if (source is None) == (clip is None):
            raise DataError(f"{where}: fill exactly one of source_id and id (found "
                            f"{'both' if source else 'neither'})")
        if speaker is None and link is None and unlink is None:
            raise DataError(f"{where}: speaker_id is empty; give the person's id (or a "
                            "source id in same_as / not_same_as)")
        for name, value in (("speaker_id", speaker), ("source_id", source), ("id", clip),
                            ("same_as", link), ("not_same_as", unlink)):
            if value is not None and not SAFE_ID.match(value):
                raise DataError(f"{where}: {name} {value!r} is not a safe id (letters, digits, "
                                "_ and -, not starting with _ or -); rename it")
        if (link is not None or unlink is not None) and source is None:
            raise DataError(f"{where}: same_as / not_same_as link source videos; fill "
                            "source_id, not id")
        for other in (link, unlink):
            if other is not None and other == source:
                raise DataError(f"{where}: source {source} is linked to itself; name another "
                                "source")
        if link is not None:
            same.append((source, link, where))
        if unlink is not None:
            different.append((source, unlink, where))
        if speaker is None:
            continue
        table, key = (sources, source) if source is not None else (clips, clip)
        if key in table and table[key][0] != speaker:
            problems.append(f"{where}: {key} is pinned to {speaker!r} here and to "
                            f"{table[key][0]!r} at {table[key][1]}; this line is ignored, "
                            "keep one")
            continue
        table.setdefault(key, (speaker, where))
    return Pins(sources, clips, tuple(same), tuple(different), tuple(problems))


def _header(path: Path) -> list[str]:
    import csv

    with open(path, encoding="utf-8-sig", newline="") as fh:
        return [h.strip().lower() for h in next(csv.reader(fh), [])]
