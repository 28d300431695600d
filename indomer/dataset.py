"""The dataset on disk: Parquet columns, Hugging Face feature metadata, atomic shard writes.

In memory a split is a pandas DataFrame whose label columns hold canonical names (or None);
on disk they are ClassLabel ids with the names in the embedded ``huggingface`` metadata, so
``datasets.load_dataset(OUT)`` shows names while pandas, polars and DuckDB read plain ints.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Self

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from indomer.errors import DataError, UsageError
from indomer.faults import fault
from indomer.labels import TASKS, label_set

SPLITS: tuple[str, ...] = ("train", "validation", "test")
#: Keep shards well under the Hub's recommended 500 MB.
MAX_SHARD_BYTES = 300 * 1024 * 1024
AUDIO_SAMPLING_RATE = 16_000
SHARD_RE = re.compile(r"^(?P<split>[a-z]+)-(?P<i>\d{5})-of-(?P<n>\d{5})\.parquet$")

WORD = pa.struct(
    [
        ("word", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("score", pa.float64()),
    ]
)
VOTE = pa.struct([("annotator", pa.string()), ("field", pa.string()), ("value", pa.string())])
MEDIA = pa.struct([("bytes", pa.binary()), ("path", pa.string())])
#: frames: sampled frames; detected: frames with exactly one face; multiple: frames with
#: more than one; box: median single-face box [x, y, w, h] as fractions of the frame width
#: (x, w) and height (y, h); continuity: share of consecutive samples whose single boxes
#: overlap (IoU >= min_iou); flagged: the clip does not show one face most of the time.
FACE = pa.struct(
    [
        ("frames", pa.int32()),
        ("detected", pa.int32()),
        ("multiple", pa.int32()),
        ("box", pa.list_(pa.float64())),
        ("continuity", pa.float64()),
        ("flagged", pa.bool_()),
    ]
)

#: What the raw build's speaker check found in the clip's audio (DESIGN §3): n_speakers:
#: diarization labels with enough speech in the clip; primary_share: the main speaker's
#: share of the clip's speech; overlap: share of it spoken over; flagged: the clip's main
#: speaker does not hold it (mixed or overlapping voices). Null in release builds.
SPEAKER_CHECK = pa.struct(
    [
        ("n_speakers", pa.int32()),
        ("primary_share", pa.float64()),
        ("overlap", pa.float64()),
        ("flagged", pa.bool_()),
    ]
)
#: Columns added after the first datasets: shards without them still read (the readers
#: give None) and validate; a rebuild adds them.
NEWER_COLUMNS: tuple[str, ...] = ("speaker_check",)

SCHEMA = pa.schema(
    [
        ("id", pa.string()),
        ("source_id", pa.string()),
        ("segment_index", pa.int32()),
        ("topic", pa.string()),
        ("speaker_id", pa.string()),
        ("start", pa.float64()),
        ("end", pa.float64()),
        ("text", pa.string()),
        ("words", pa.list_(WORD)),
        ("emotion", pa.int64()),
        ("sentiment", pa.int64()),
        ("text_sentiment", pa.int64()),
        ("audio_sentiment", pa.int64()),
        ("video_sentiment", pa.int64()),
        ("emotion_intensity", pa.int8()),
        ("annotations", pa.list_(VOTE)),
        ("adjudicated", pa.bool_()),
        ("audio", MEDIA),
        ("video", MEDIA),
        ("face", FACE),
        ("speaker_check", SPEAKER_CHECK),
    ]
)
COLUMNS: tuple[str, ...] = tuple(SCHEMA.names)
LABEL_COLUMNS: tuple[str, ...] = TASKS
#: The columns that hold clip media (bytes): the ones a reader of text and labels skips.
MEDIA_COLUMNS: tuple[str, ...] = ("audio", "video")


def columns_except(*names: str) -> tuple[str, ...]:
    """:data:`COLUMNS` in schema order without ``names``: what a reader that needs only
    some columns asks for, so that its list follows the schema rather than copying it."""
    unknown = [n for n in names if n not in COLUMNS]
    if unknown:
        raise ValueError(f"not dataset columns: {', '.join(unknown)}")
    return tuple(c for c in COLUMNS if c not in names)


#: The ``datasets`` Value dtype of each Arrow type the schema uses.
_HF_DTYPES: dict[pa.DataType, str] = {
    pa.string(): "string",
    pa.int8(): "int8",
    pa.int32(): "int32",
    pa.float64(): "float64",
    pa.bool_(): "bool",
}


def _hf_feature(dtype: pa.DataType) -> dict | list:
    """The ``datasets`` feature of an Arrow type: lists as ``[inner]``, structs field by field."""
    if pa.types.is_list(dtype):
        return [_hf_feature(dtype.value_type)]
    if pa.types.is_struct(dtype):
        return {f.name: _hf_feature(f.type) for f in dtype}
    return {"dtype": _HF_DTYPES[dtype], "_type": "Value"}


def hf_features() -> dict:
    """The ``datasets.Features`` dict (as JSON) for :data:`SCHEMA`, in its order, derived from
    it: label columns are ClassLabels with their names, the media columns Audio and Video."""
    special: dict[str, dict] = {
        task: {"names": list(label_set(task).names), "_type": "ClassLabel"} for task in TASKS
    }
    special["audio"] = {"sampling_rate": AUDIO_SAMPLING_RATE, "decode": True, "_type": "Audio"}
    special["video"] = {"decode": True, "_type": "Video"}
    return {f.name: special.get(f.name) or _hf_feature(f.type) for f in SCHEMA}


def to_table(df: pd.DataFrame, meta: dict | None = None) -> pa.Table:
    """Convert an in-memory split (label names) to an Arrow table (ClassLabel ids) in SCHEMA order."""
    data = {}
    n = len(df)
    for field in SCHEMA:
        name = field.name
        if name not in df.columns:
            data[name] = pa.nulls(n, type=field.type)
            continue
        values = df[name].tolist()
        if name in LABEL_COLUMNS:
            ls = label_set(name)
            values = [
                None if v is None or (isinstance(v, float) and math.isnan(v)) else ls.id(v)
                for v in values
            ]
        else:
            values = [
                None
                if isinstance(v, float) and math.isnan(v)
                else v.load()
                if isinstance(v, MediaFile)
                else v
                for v in values
            ]
        data[name] = pa.array(values, type=field.type)
        del values
    kv = {
        b"huggingface": json.dumps({"info": {"features": hf_features()}}, sort_keys=True).encode()
    }
    if meta is not None:
        kv[META_KEY] = json.dumps(meta, sort_keys=True, ensure_ascii=False).encode("utf-8")
    return pa.Table.from_pydict(data, schema=SCHEMA.with_metadata(kv))


#: Parquet key-value metadata key holding how the shard came to be (DESIGN §7.6): the
#: indomer version and the validated build config (or the release it was imported from).
META_KEY = b"indomer"


@contextlib.contextmanager
def shard_errors(path: Path):
    """Turn a damaged shard (truncated, not Parquet, unreadable) into one DataError line
    naming it: a damaged dataset is a data error (exit 1) in every command."""
    try:
        yield
    except (pa.ArrowException, OSError) as exc:
        if isinstance(exc, OSError) and not isinstance(exc, pa.ArrowException) and (
            exc.filename is not None and Path(exc.filename) != Path(path)
        ):
            raise
        raise DataError(
            f"{path}: not a readable Parquet shard ({' '.join(str(exc).split())}); run "
            "'indomer validate' and rebuild the dataset"
        ) from None


def read_meta(out: Path) -> dict | None:
    """The ``indomer`` metadata of the dataset's first shard (None for older builds)."""
    for split in available_splits(out):
        for path in shard_paths(out, split):
            with shard_errors(path):
                kv = pq.read_schema(path).metadata or {}
            return json.loads(kv[META_KEY]) if META_KEY in kv else None
    return None


def from_table(table: pa.Table) -> pd.DataFrame:
    """Arrow table (ids) to the in-memory form (label names), keeping only known columns."""
    cols = {}
    for name in table.column_names:
        values = table.column(name).to_pylist()
        if name in LABEL_COLUMNS:
            names = label_set(name).names
            bad = [v for v in values if v is not None and not 0 <= v < len(names)]
            if bad:
                raise DataError(
                    f"{name}: ClassLabel id {bad[0]} outside 0..{len(names) - 1}; "
                    "run 'indomer validate' and rebuild"
                )
            values = [None if v is None else names[v] for v in values]
        cols[name] = values
    return pd.DataFrame(cols, columns=table.column_names)


def shard_paths(out: Path, split: str) -> list[Path]:
    """The complete shard files of ``split``, in order (temporary files are never listed)."""
    data = Path(out) / "data"
    if not data.is_dir():
        return []
    found = []
    for p in data.iterdir():
        m = SHARD_RE.match(p.name)
        if m and m["split"] == split:
            found.append(p)
    return sorted(found)


def available_splits(out: Path) -> list[str]:
    """Splits with at least one shard, in SPLITS order."""
    return [s for s in SPLITS if shard_paths(out, s)]


def read_split(out: Path, split: str, columns: list[str] | None = None) -> pd.DataFrame:
    """Read one split of a built dataset into the in-memory form (label names).

    A one-call reader for a single split; a command that reads more than once resolves one
    :func:`snapshot` and reads everything through it."""
    with snapshot(out) as snap:
        return snap.read(split, columns)


@dataclass(frozen=True)
class MediaFile:
    """A clip file to embed, read only when its shard is written.

    Holding paths instead of bytes keeps a build's memory bounded by one shard, not by the
    whole dataset (a build of many sources stays flat).
    """

    file: Path
    name: str

    @property
    def size(self) -> int:
        return self.file.stat().st_size

    def load(self) -> dict:
        return {"bytes": self.file.read_bytes(), "path": self.name}


def _n_shards(df: pd.DataFrame) -> int:
    size = 0
    for col in ("audio", "video"):
        if col in df.columns:
            for v in df[col]:
                if isinstance(v, MediaFile):
                    size += v.size
                elif isinstance(v, dict) and v.get("bytes"):
                    size += len(v["bytes"])
    size += int(df["text"].str.len().sum()) if "text" in df.columns and len(df) else 0
    return max(1, math.ceil(size / MAX_SHARD_BYTES))


def write_split(out: Path, split: str, df: pd.DataFrame, meta: dict | None = None) -> list[Path]:
    """Write ``df`` as the shards of ``split``, atomically replacing any previous ones.

    ``meta`` (the build's provenance, e.g. its config) goes into every shard's key-value
    metadata under ``indomer``, so a shard found alone still says how it was made.

    Shards are first written under ``data/.tmp/`` and renamed into place only when all are
    whole, so an interrupted write never leaves a partial file that a reader would match.
    """
    if split not in SPLITS:
        raise UsageError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
    out = Path(out)
    data = out / "data"
    tmp = data / ".tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    df = df.sort_values("id", kind="stable").reset_index(drop=True)
    n = _n_shards(df)
    per = math.ceil(len(df) / n) if len(df) else 0
    # clip bytes, not the columns: a re-split reads back null media columns of a release
    # build, and must lay its rows out as the build does (same rows, same bytes)
    has_media = any(c in df.columns and df[c].notna().any() for c in ("audio", "video"))
    written = []
    group = 64 if has_media else 10_000
    for i in range(n):
        part = df.iloc[i * per : (i + 1) * per]
        name = f"{split}-{i:05d}-of-{n:05d}.parquet"
        # One row group at a time: only that group's clip bytes are ever in memory.
        schema = to_table(part.iloc[:0], meta).schema
        try:
            with pq.ParquetWriter(
                tmp / name, schema, compression="zstd", write_statistics=True
            ) as writer:
                for g in range(0, max(len(part), 1), group):
                    writer.write_table(
                        to_table(part.iloc[g : g + group], meta), row_group_size=group
                    )
                    # hand the group's clip buffers back now, not when the allocator decides
                    pa.default_memory_pool().release_unused()
        except OSError as exc:
            raise _with_path(exc, tmp / name) from None
        written.append(name)
    for old in shard_paths(out, split):
        old.unlink()
    final = []
    for name in written:
        os.replace(tmp / name, data / name)
        final.append(data / name)
    shutil.rmtree(tmp, ignore_errors=True)
    return final


def _with_path(exc: OSError, path: Path) -> OSError:
    """Arrow's OS errors name no file and hide errno in the text: give both back."""
    if exc.filename is not None:
        return exc
    code = exc.errno
    if code is None:
        m = re.search(r"\[errno (\d+)\]", str(exc))
        code = int(m.group(1)) if m else None
    return OSError(code, os.strerror(code) if code else str(exc), str(path))


def remove_split(out: Path, split: str) -> None:
    """Delete a split's shards (used when a re-split has fewer splits than before)."""
    for p in shard_paths(out, split):
        p.unlink()


def split_identity(root: Path) -> dict | None:
    """The active split of a dataset (or one generation of it) as ``{"name", "sha256"}``: the
    name ``build.json`` gives it and the sha256 of its assignment (the canonical JSON of
    ``splits/NAME.json``'s ``assignment``), so that predictions made against one assignment
    are told from those made against another of the same name. None when build.json names no
    split file (a hand-made dataset). Here, below the generation layer, so that the scorer
    can read it without an import cycle."""
    try:
        build = json.loads((Path(root) / "build.json").read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"{root}/build.json: not valid JSON ({exc}); rebuild the dataset") from None
    split = build.get("split") if isinstance(build, dict) else None
    if not isinstance(split, dict) or not isinstance(split.get("file"), str):
        return None
    path = Path(root) / split["file"]
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
        assignment = doc["assignment"]
    except FileNotFoundError:
        return None
    except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a split document ({exc}); run 'indomer validate'") from None
    return {"name": split.get("name"), "sha256": assignment_sha256(assignment)}


def assignment_sha256(assignment: object) -> str:
    """The sha256 of a split assignment (its canonical JSON): what tells two assignments of
    one split name apart in predictions, score reports, the card and ``indomer split``."""
    import hashlib

    text = json.dumps(assignment, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()


# --------------------------------------------------------------------------- one reader

#: Where a dataset made by indomer keeps its generations (``OUT/.indomer/current`` links to
#: the committed one; :mod:`indomer.generation` writes them, this layer only reads).
STATE_DIR = ".indomer"


def current_generation(out: Path) -> Path | None:
    """The folder of the committed generation (a consistent snapshot to read), else None."""
    link = Path(out) / STATE_DIR / "current"
    if not link.is_symlink():
        return None
    target = link.parent / os.readlink(link)
    return target if target.is_dir() else None


def _assignment_sha(doc: object, path: Path) -> str:
    try:
        assignment = doc["assignment"]  # type: ignore[index]
    except (KeyError, TypeError) as exc:
        raise DataError(f"{path}: not a split document ({exc}); run 'indomer validate'") from None
    return assignment_sha256(assignment)


def _room_for(n_files: int) -> None:
    """Let this process hold ``n_files`` more open files: a large dataset has thousands of
    shards, and a pinned snapshot holds each open (the soft limit is raised toward the hard
    one, as far as the system allows)."""
    try:
        import resource
    except ImportError:  # not POSIX
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = n_files + 256
    if soft != resource.RLIM_INFINITY and soft < want:
        new = want if hard == resource.RLIM_INFINITY else min(want, hard)
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (new, hard))


class _Changed(Exception):
    """The generation being opened was replaced meanwhile: resolve the new one."""


class Snapshot:
    """One generation of a dataset, pinned for the whole command (DESIGN §1).

    Resolved once per command with :func:`snapshot`: every shard of the generation is
    opened here and held open, and ``build.json`` and the active split document are read
    here, so a ``split`` or ``build`` that commits (and collects this generation) while the
    command runs changes nothing it reads: it reads the old dataset or, if it started
    after the commit, the new one, never a mix and never a vanished file. The price: the
    old generation's disk space is freed only when the command ends.

    Every command reads shards through :meth:`iter_rows` / :meth:`read` (one loop, one
    error: a damaged shard is one line naming the file, exit 1).
    """

    def __init__(self, out: Path, root: Path) -> None:
        self.out = Path(out)
        self.root = Path(root)
        self.build: dict = {}
        self.split_doc: dict | None = None
        self.split_identity: dict | None = None
        self._files: dict[str, list[tuple[Path, pa.NativeFile]]] = {}
        self._open()

    # ------------------------------------------------------------------ opening

    def _open(self) -> None:
        from indomer.readjson import read_json

        try:
            path = self.root / "build.json"
            if path.is_file():
                doc = read_json(path, shown=self.out / "build.json")
                if not isinstance(doc, dict):
                    raise DataError(
                        f"{self.out / 'build.json'}: expected a JSON object, found "
                        f"{type(doc).__name__}; rebuild"
                    )
                self.build = doc
            elif self.root != self.out:
                raise _Changed  # collected between resolving and reading
            split = self.build.get("split")
            if isinstance(split, dict) and isinstance(split.get("file"), str):
                spath = self.root / split["file"]
                if spath.is_file():
                    self.split_doc = read_json(spath, shown=self.out / split["file"])
                    self.split_identity = {
                        "name": split.get("name"),
                        "sha256": _assignment_sha(self.split_doc, self.out / split["file"]),
                    }
            _room_for(sum(len(shard_paths(self.root, n)) for n in SPLITS))
            for name in available_splits(self.root):
                opened: list[tuple[Path, pa.NativeFile]] = []
                self._files[name] = opened
                for p in shard_paths(self.root, name):
                    try:
                        opened.append((p, pa.OSFile(str(p), "r")))
                    except FileNotFoundError:
                        raise _Changed from None
                    except (pa.ArrowException, OSError) as exc:
                        with shard_errors(p):
                            raise exc from None
            self._check_whole()
        except BaseException:
            self.close()
            raise

    def _check_whole(self) -> None:
        """The shards opened are those build.json lists; if not, and the generation is no
        longer the current one, it was being collected while it was listed: resolve again.
        (A generation that lists other shards than it holds is ``validate``'s to report.)"""
        outputs = self.build.get("outputs")
        if self.root == self.out or not isinstance(outputs, dict):
            return
        want = {
            f.get("path")
            for s in (outputs.get("splits") or {}).values()
            if isinstance(s, dict)
            for f in s.get("files") or []
            if isinstance(f, dict)
        }
        have = {p.relative_to(self.root).as_posix() for fs in self._files.values() for p, _ in fs}
        if want != have and current_generation(self.out) != self.root:
            raise _Changed

    def close(self) -> None:
        for files in self._files.values():
            for _, fh in files:
                fh.close()
        self._files = {}

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ------------------------------------------------------------------ what is there

    def splits(self) -> list[str]:
        """Splits with at least one shard, in SPLITS order."""
        return [s for s in SPLITS if self._files.get(s)]

    def shard_paths(self, split: str) -> list[Path]:
        """The shard files of ``split`` in this generation, in order."""
        return [p for p, _ in self._files.get(split, [])]

    def require(self, split: str) -> None:
        """A missing split is one usage line naming those there."""
        if not self._files.get(split):
            have = self.splits()
            raise UsageError(
                f"{self.out}: no '{split}' split (found: "
                f"{', '.join(have) or 'no shards under data/'}); pick one of those with "
                "--split, or run 'indomer split' first"
            )

    def handle(self, path: Path) -> pa.NativeFile:
        """The file held open for one of this generation's shards (by its path)."""
        for files in self._files.values():
            for p, fh in files:
                if p == path:
                    return fh
        raise KeyError(path)

    def parquet(self, path: Path):
        """The open ``ParquetFile`` of one of this generation's shards (by its path)."""
        fh = self.handle(path)
        with shard_errors(path):
            return pq.ParquetFile(fh)

    def sha256(self, path: Path) -> str:
        """The sha256 of one of this generation's shards, read from the file held open."""
        import hashlib

        for files in self._files.values():
            for p, fh in files:
                if p == path:
                    digest = hashlib.sha256()
                    size, pos = fh.size(), 0
                    with shard_errors(p):
                        while pos < size:
                            chunk = fh.read_at(min(1 << 20, size - pos), pos)
                            digest.update(chunk)
                            pos += len(chunk)
                    return digest.hexdigest()
        raise KeyError(path)

    def columns(self, split: str) -> list[str]:
        """The columns the split's first shard holds (older datasets lack newer ones)."""
        self.require(split)
        return list(self.parquet(self.shard_paths(split)[0]).schema_arrow.names)

    # ------------------------------------------------------------------ rows

    def iter_batches(
        self, split: str, columns: list[str] | None = None, batch_size: int = 64
    ) -> Iterator[tuple[Path, pa.Table]]:
        """The split's rows as Arrow tables of up to ``batch_size`` rows, in dataset order,
        with the shard each came from. The one shard-reading loop: a damaged shard is one
        DataError line naming it. Columns the shards lack are left out."""
        self.require(split)
        for path in self.shard_paths(split):
            with shard_errors(path):
                pf = self.parquet(path)
                names = pf.schema_arrow.names
                use = None if columns is None else [c for c in columns if c in names]
                for batch in pf.iter_batches(batch_size=batch_size, columns=use):
                    fault("read")
                    yield path, pa.Table.from_batches([batch])

    def iter_rows(
        self, split: str, columns: list[str] | None = None, batch_size: int = 64
    ) -> Iterator[dict]:
        """The split's rows as dicts, label columns as names, a few rows in memory at a
        time; a column asked for that the shards lack (an older dataset) is None."""
        for _path, table in self.iter_batches(split, columns, batch_size):
            df = from_table(table)
            for row in df.to_dict("records"):
                for c in columns or ():
                    row.setdefault(c, None)
                yield row

    def read(self, split: str, columns: list[str] | None = None) -> pd.DataFrame:
        """The whole split in the in-memory form (label names); missing columns are None."""
        tables = [t for _p, t in self.iter_batches(split, columns, batch_size=65_536)]
        df = from_table(pa.concat_tables(tables, promote_options="default"))
        for c in columns or ():
            if c not in df.columns:
                df[c] = None
        return df[list(columns)] if columns else df

    def read_clip_audio(self, row: dict):
        """The clip's audio (``row["audio"]``) decoded: (float32 samples, one column per
        channel; sampling rate), or None when the row carries none."""
        from indomer.media import read_wav

        audio = row.get("audio") or {}
        data = audio.get("bytes") if isinstance(audio, dict) else None
        if not data:
            return None
        return read_wav(data, name=f"{self.out}: clip {row.get('id')}: audio")


def snapshot(out: Path) -> Snapshot:
    """Open one consistent generation of ``out`` for reading (``out`` itself if not ours).

    Resolve it once per command and read everything through it (DESIGN §1)."""
    out = Path(out)
    for _ in range(20):
        root = current_generation(out) or out
        try:
            snap = Snapshot(out, root)
        except _Changed:
            continue
        fault("snapshot")
        return snap
    raise DataError(f"{out}: the dataset kept changing while it was opened; try again")
