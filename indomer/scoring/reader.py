"""Read what ``indomer score`` compares: the references of a split (a built dataset's shards or
the release JSON) and a preds.jsonl file, checked line by line; the I/O half of scoring, so
that :mod:`indomer.scoring.metrics` stays pure numpy."""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from indomer.errors import DataError, UsageError, first_few
from indomer.labels import TASKS, label_set
from indomer.readjson import loads, read_json
from indomer.scoring.metrics import INVALID, MISSING
from indomer.sidecar import refuse_other_assignment
from indomer.textparse import parse_label

DEFAULT_SPLIT = "validation"

#: Release JSON fields per task, recognised by a field only that file kind has.
RELEASE_FIELDS: dict[str, dict[str, str]] = {
    "sentiment_label": {"emotion": "label", "sentiment": "sentiment_label"},
    "text_label": {
        "sentiment": "label",
        "text_sentiment": "text_label",
        "audio_sentiment": "audio_label",
        "video_sentiment": "video_label",
    },
}
_RELEASE_SPLIT_RE = re.compile(r"_(train|val|validation|test)\.json$", re.IGNORECASE)
_CLIP_RE = re.compile(r"^clip_(?P<source>[0-9A-Za-z]+)_[A-Za-z]+_[0-9]+\Z")
_REF_COLUMNS = ["id", "source_id", "speaker_id", *TASKS]

# ---------------------------------------------------------------------------------------------
# References


@dataclass(frozen=True)
class References:
    """One split's reference labels (canonical names, None = not annotated) and groupings."""

    split: str
    frame: pd.DataFrame
    sources: tuple[str, ...] = field(default=())
    #: The active split's name and assignment sha256 of a built dataset's refs (else None).
    assignment: dict | None = None
    #: The build hash of the built dataset(s) the refs were read from, when every ref is one
    #: and they agree (read from the same pinned generation as the rows; else None).
    build_hash: str | None = None

    def ids(self) -> list[str]:
        return self.frame["id"].tolist()

    def has_task(self, task: str) -> bool:
        return task in self.frame.columns and bool(self.frame[task].notna().any())


def _release_split(path: Path) -> str | None:
    m = _RELEASE_SPLIT_RE.search(path.name)
    if not m:
        return None
    word = m.group(1).lower()
    return "validation" if word in ("val", "validation") else word


def _read_release_json(path: Path) -> pd.DataFrame:
    """A release ``7_class_*.json`` or ``3_class_*.json`` file as a frame of canonical names."""
    records = read_json(path)
    # a damaged reference file is a data error (exit 1), as a damaged shard is
    if not isinstance(records, list) or not records or not isinstance(records[0], dict):
        raise DataError(f"{path}: expected a non-empty JSON list of release records")
    fields = next((f for key, f in RELEASE_FIELDS.items() if key in records[0]), None)
    if fields is None:
        raise DataError(
            f"{path}: not a release split file (expected 7_class_*.json records with "
            "'sentiment_label' or 3_class_*.json records with 'text_label')"
        )
    rows = []
    for i, rec in enumerate(records):
        sid = rec.get("sample_id") if isinstance(rec, dict) else None
        if not isinstance(sid, str) or not sid:
            raise DataError(f"{path}: record {i}: no 'sample_id' string")
        row: dict[str, Any] = {"id": sid}
        for task, key in fields.items():
            row[task] = label_set(task).require(rec.get(key), f"{path}: {sid}: {key}")
        rows.append(row)
    return pd.DataFrame(rows)


def _read_one_ref(
    path: Path, split: str | None
) -> tuple[pd.DataFrame, str, dict | None, str | None]:
    """One reference: its rows, its split and (a dataset's) assignment identity and build
    hash, all of one generation."""
    from indomer.dataset import snapshot

    if path.is_dir():
        use = split or DEFAULT_SPLIT
        # one generation: the rows and the assignment they are checked against agree; a
        # damaged shard stays a data error (exit 1), as in every other command
        with snapshot(path) as snap:
            outputs = snap.build.get("outputs")
            digest = outputs.get("build_hash") if isinstance(outputs, dict) else None
            return (
                snap.read(use, columns=_REF_COLUMNS),
                use,
                snap.split_identity,
                digest if isinstance(digest, str) else None,
            )
    if path.is_file() and path.suffix.lower() == ".json":
        named = _release_split(path)
        if split is not None and named is not None and split != named:
            raise UsageError(
                f"{path}: this release file is the '{named}' split but --split is '{split}'; "
                "drop --split or pass the file of that split"
            )
        return _read_release_json(path), named or split or DEFAULT_SPLIT, None, None
    if not path.exists():
        raise UsageError(f"{path}: no such file or directory; pass a built dataset or release JSON")
    raise UsageError(
        f"{path}: not a built dataset directory or a release 7_class/3_class JSON split file"
    )


def load_references(
    refs: Sequence[str | Path] | str | Path, split: str | None = None
) -> References:
    """Read and combine references: built dataset directories and/or release JSON files.

    A directory is read through :func:`indomer.dataset.snapshot` (``split``, default
    validation). A release JSON file names its own split (``7_class_val.json`` is
    validation); ``split``, if given, must match. Several refs are merged by id: they must
    cover the same ids, agree on the split and agree on any task both carry.
    """
    paths = [Path(refs)] if isinstance(refs, (str, Path)) else [Path(r) for r in refs]
    if not paths:
        raise UsageError("no references given; pass --refs with a built dataset or release JSON")
    frames = []
    identities = []  # the first dataset's assignment is the one predictions are checked with
    hashes: list[str | None] = []
    for path in paths:
        frame, this_split, identity, digest = _read_one_ref(path, split)
        hashes.append(digest)
        if path.is_dir():
            identities.append(identity)
        if frame.empty:
            raise DataError(f"{path}: the '{this_split}' split has no rows")
        dup = frame["id"][frame["id"].duplicated()].unique().tolist()
        if dup:
            raise DataError(f"{path}: duplicate ids: {first_few(sorted(dup))}")
        frames.append((path, frame.set_index("id"), this_split))
    _, merged, merged_split = frames[0]
    for path, frame, this_split in frames[1:]:
        if this_split != merged_split:
            raise UsageError(
                f"{path} is the '{this_split}' split but {paths[0]} is '{merged_split}'; "
                "combine refs of one split"
            )
        only_new = sorted(set(frame.index) - set(merged.index))
        only_old = sorted(set(merged.index) - set(frame.index))
        if only_new or only_old:
            raise UsageError(
                f"{path}: ids differ from {paths[0]} ({first_few(only_new + only_old)}); "
                "combine refs of the same split"
            )
        frame = frame.reindex(merged.index)
        for col in frame.columns:
            if col not in merged.columns:
                merged[col] = frame[col]
                continue
            both = merged[col].notna() & frame[col].notna()
            clash = sorted(merged.index[both & (merged[col] != frame[col])])
            if clash:
                raise DataError(
                    f"{path}: {col} disagrees with {paths[0]} for ids {first_few(clash)}"
                )
            merged[col] = merged[col].where(merged[col].notna(), frame[col])
    merged = merged.reset_index().sort_values("id", kind="stable").reset_index(drop=True)
    return References(
        split=merged_split,
        frame=merged,
        sources=tuple(str(p) for p in paths),
        assignment=identities[0] if identities else None,
        build_hash=hashes[0] if None not in hashes and len(set(hashes)) == 1 else None,
    )


def check_assignment(preds_path: Path, references: References) -> None:
    """Refuse predictions whose sidecar (``PREDS.meta.json``, as ``indomer baseline`` and
    ``indomer predict`` write)
    records another assignment of the refs' split name: the same split name over other clips
    would be scored as if it were the same benchmark."""
    refuse_other_assignment(
        Path(preds_path),
        references.assignment,
        holder=", ".join(references.sources),
        fix="predict again on this dataset, or score against the dataset the predictions "
        "came from",
    )


def _source_of(seg_id: str) -> str | None:
    m = _CLIP_RE.match(seg_id)
    return m.group("source") if m else None


def resampling_units(frame: pd.DataFrame, unit: str) -> tuple[list[str], str]:
    """Each row's resampling unit and the unit's name.

    ``speaker``: ``speaker_id`` when every row has one, else the source video (``source_id``
    when every row has one, else parsed from ``clip_<video>_<Topic>_<n>`` ids); a bootstrap
    that mixed units would be neither. ``segment``: each row is its own unit.
    """
    if unit == "segment":
        return frame["id"].tolist(), "segment"
    for col, name in (("speaker_id", "speaker"), ("source_id", "source_video")):
        if col in frame.columns and frame[col].notna().all():
            return frame[col].astype(str).tolist(), name
    sources = [_source_of(i) for i in frame["id"]]
    bad = [i for i, s in zip(frame["id"], sources) if s is None]
    if bad:
        raise DataError(
            f"refs: no speaker_id or source_id for ids {first_few(bad)} and their ids do not "
            "look like clip_<video>_<Topic>_<n>; pass --bootstrap-unit segment"
        )
    return [str(s) for s in sources], "source_video"


# ---------------------------------------------------------------------------------------------
# Predictions


@cache
def load_schema(name: str) -> dict:
    """A JSON Schema shipped in ``indomer.schemas`` (``preds`` or ``score``)."""
    text = resources.files("indomer.schemas").joinpath(f"{name}.schema.json").read_text("utf-8")
    return json.loads(text)


@cache
def schema_validator(name: str) -> Any:
    from jsonschema import Draft202012Validator

    return Draft202012Validator(load_schema(name))


@dataclass(frozen=True)
class Predictions:
    """The rows of a preds.jsonl file: id -> {task: raw value}, in file order."""

    path: Path
    rows: dict[str, dict[str, Any]]
    lines: dict[str, int]

    def tasks(self) -> list[str]:
        """Tasks at least one line predicts, in :data:`TASKS` order."""
        seen = {t for row in self.rows.values() for t in row}
        return [t for t in TASKS if t in seen]


def read_predictions(path: str | Path) -> Predictions:
    """Read and check preds.jsonl (DESIGN section 5); errors name ``file:line`` or ids.

    Blank lines are skipped. Each line must be a JSON object with a string ``id`` and at
    least one task key whose value is a string (label, alias or free text) or null (no
    answer, counted invalid); other keys are kept out of scoring. Duplicate ids are errors.
    A UTF-8 byte-order mark before the first line is dropped (Windows editors and Excel write
    one); a mark on a later line means files were concatenated and is an error there.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise UsageError(f"{path}: cannot read predictions ({exc.strerror or exc})") from exc
    data = data.removeprefix(codecs.BOM_UTF8)
    validator = schema_validator("preds")
    rows: dict[str, dict[str, Any]] = {}
    lines: dict[str, int] = {}
    dups: dict[str, list[int]] = {}
    for lineno, raw in enumerate(data.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        if raw.startswith(codecs.BOM_UTF8):
            raise DataError(
                f"{where}: UTF-8 byte-order mark inside the file (files concatenated?); "
                "remove it, only the first line may carry one"
            )
        obj = loads(raw, str(path), lineno=lineno)
        if not isinstance(obj, dict):
            raise DataError(
                f"{where}: expected a JSON object with 'id' and a task key, "
                f"got a JSON {type(obj).__name__}"
            )
        if "id" not in obj:
            raise DataError(f"{where}: no 'id' key; every line needs the segment id")
        if not any(t in obj for t in TASKS):
            raise DataError(f"{where}: no task key; expected at least one of {', '.join(TASKS)}")
        if not validator.is_valid(obj):
            from jsonschema.exceptions import best_match

            err = best_match(validator.iter_errors(obj))
            key = "/".join(str(p) for p in err.absolute_path) if err is not None else ""
            msg = err.message if err is not None else "does not match preds.schema.json"
            raise DataError(f"{where}: {key + ': ' if key else ''}{msg}")
        seg_id = obj["id"]
        if seg_id in lines:
            dups.setdefault(seg_id, [lines[seg_id]]).append(lineno)
            continue
        rows[seg_id] = {t: obj[t] for t in TASKS if t in obj}
        lines[seg_id] = lineno
    if not rows:
        raise DataError(f"{path}: empty file; expected one JSON object per line")
    if dups:
        shown = [f"{i} (lines {', '.join(map(str, ls))})" for i, ls in dups.items()]
        raise DataError(f"{path}: duplicate ids: {first_few(shown)}; keep one line per id")
    return Predictions(path=path, rows=rows, lines=lines)


def encode_predictions(
    preds: Predictions, ids: Sequence[str], task: str, allow_missing: bool, split: str
) -> np.ndarray:
    """Label ids of the predictions for ``ids`` (INVALID, MISSING where they name none)."""
    names = label_set(task).names
    memo: dict[Any, int] = {}
    out = np.empty(len(ids), dtype=np.int64)
    missing = []
    for i, seg_id in enumerate(ids):
        row = preds.rows.get(seg_id)
        if row is None or task not in row:
            missing.append(seg_id)
            out[i] = MISSING
            continue
        value = row[task]
        key = value if isinstance(value, str) else None
        code = memo.get(key)
        if code is None:
            name = parse_label(value, task)
            code = INVALID if name is None else names.index(name)
            memo[key] = code
        out[i] = code
    if missing and not allow_missing:
        raise DataError(
            f"{preds.path}: {len(missing)} of {len(ids)} {split} ids have no {task} prediction: "
            f"{first_few(missing)}; predict them, or pass --allow-missing to count them wrong"
        )
    return out
