"""Dataset statistics computed from the shards: the one place the card's numbers come from."""

from __future__ import annotations

import contextlib
import re
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from indomer.dataset import COLUMNS, MEDIA_COLUMNS, Snapshot, columns_except, snapshot
from indomer.labels import MODALITY_TASKS, TASKS, label_set

WORD_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
#: The columns the statistics read: no media, votes, words or per-clip checks, and the
#: gender column a future build may add (:data:`GENDER_COLUMN`).
LIGHT_COLUMNS = [
    *columns_except(*MEDIA_COLUMNS, "words", "annotations", "face", "speaker_check"),
    "gender",
]


def words(text: str | None) -> list[str]:
    """Word tokens of a transcript (letters/digits, keeping ``gara-gara`` and ``it’s`` whole)."""
    return WORD_RE.findall(text) if isinstance(text, str) else []


def _has_text(value) -> bool:
    return isinstance(value, str) and bool(value.strip())


def wav_seconds(data: bytes) -> float | None:
    """Duration of a WAV from its header; None when the bytes are not a readable WAV."""
    from indomer.media import wav_info

    info = wav_info(data)
    return None if info is None or not info[0] else info[2] / float(info[0])


@contextlib.contextmanager
def _opened(out: Path | Snapshot) -> Iterator[Snapshot]:
    """The snapshot given, or one generation of the folder given, pinned while it is read."""
    if isinstance(out, Snapshot):
        yield out
    else:
        with snapshot(out) as snap:
            yield snap


def load_light(out: Path | Snapshot) -> pd.DataFrame:
    """All splits without media bytes, with a ``split`` column (cheap even for media builds)."""
    frames = []
    with _opened(out) as snap:
        for split in snap.splits():
            cols = [c for c in LIGHT_COLUMNS if c in snap.columns(split)]
            df = snap.read(split, columns=cols)
            df.insert(0, "split", split)
            frames.append(df)
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["split", *LIGHT_COLUMNS])
    )


#: Columns read in one streaming pass (they may hold media bytes): rows with a value are counted.
HEAVY_COLUMNS = ("words", "annotations", "audio", "video", "face")
#: A gender column is not part of the schema; if a future build adds one, it is reported.
GENDER_COLUMN = "gender"


def _present(column: pa.ChunkedArray | pa.Array, name: str) -> int:
    """Rows of a heavy column that hold a value, counted in Arrow (no Python copies)."""
    if name in ("audio", "video"):
        data = pc.struct_field(column, "bytes")
        return int(pc.sum(pc.fill_null(pc.greater(pc.binary_length(data), 0), False)).as_py() or 0)
    if name in ("words", "annotations"):
        return int(pc.sum(pc.fill_null(pc.greater(pc.list_value_length(column), 0), False))
                   .as_py() or 0)
    return len(column) - column.null_count


def scan_heavy(out) -> tuple[pd.Series | None, dict[str, int]]:
    """One pass over the media and nested columns, a column of one row group at a time.

    Counting is done in Arrow, and WAV headers are read only for rows without start/end,
    so memory stays at one row group's column whatever the size of the dataset. Returns
    seconds per segment id (end - start, else the embedded WAV header; None when no row
    has either) and, per heavy column, how many rows hold a value (media: bytes).
    """
    found: dict[str, float] = {}
    present = dict.fromkeys(HEAVY_COLUMNS, 0)
    with _opened(out) as snap:
        for split in snap.splits():
            names = snap.columns(split)
            light = snap.read(split, [c for c in ("id", "start", "end") if c in names])
            spans = list(zip(
                light["id"], light.get("start", [None] * len(light)),
                light.get("end", [None] * len(light)),
            ))  # fmt: skip
            todo = {seg for seg, a, b in spans if not (pd.notna(a) and pd.notna(b))}
            for c in HEAVY_COLUMNS:
                if c in names:  # one column of a few rows at a time
                    for _path, table in snap.iter_batches(split, [c]):
                        present[c] += _present(table.column(c), c)
                        pa.default_memory_pool().release_unused()
            heard: dict[str, float] = {}
            if todo and "audio" in names:
                for _path, table in snap.iter_batches(split, ["id", "audio"]):
                    data = pc.struct_field(table.column("audio"), "bytes")
                    for seg, blob in zip(table.column("id").to_pylist(), data.to_pylist()):
                        secs = wav_seconds(blob) if seg in todo and blob else None
                        if secs is not None:
                            heard[seg] = secs
            for seg, a, b in spans:  # in row order, as before
                if seg not in todo:
                    found[seg] = b - a
                elif seg in heard:
                    found[seg] = heard[seg]
    return (pd.Series(found, dtype="float64") if found else None), present


def durations(out) -> pd.Series | None:
    """Seconds per segment id from end-start, else from embedded WAV headers; None if unknown."""
    return scan_heavy(out)[0]


def _rate(agree: int, n: int) -> dict:
    return {"agree": agree, "n": n, "rate": round(agree / n, 4) if n else None}


def cross_modal(df: pd.DataFrame) -> dict:
    """How often each modality's sentiment matches the overall label and the other modalities.

    Only rows where both compared labels are present count (``n``); ``confusion`` has the
    overall sentiment as rows and the modality label as columns, in label order.
    """
    names = list(label_set("sentiment").names)
    labels = {
        t: [v if isinstance(v, str) else None for v in df[t]] if t in df else [None] * len(df)
        for t in ("sentiment", *MODALITY_TASKS)
    }

    def agree(a: str, b: str) -> dict:
        pairs = [(x, y) for x, y in zip(labels[a], labels[b]) if x is not None and y is not None]
        return _rate(sum(x == y for x, y in pairs), len(pairs))

    result: dict = {
        "vs_sentiment": {t: agree(t, "sentiment") for t in MODALITY_TASKS},
        "pairwise": {
            f"{a}/{b}": agree(a, b)
            for i, a in enumerate(MODALITY_TASKS)
            for b in MODALITY_TASKS[i + 1 :]
        },
    }
    rows = [r for r in zip(*(labels[t] for t in MODALITY_TASKS)) if None not in r]
    result["all_modalities"] = _rate(sum(len(set(r)) == 1 for r in rows), len(rows))
    full = [
        (s, *r)
        for s, *r in zip(*(labels[t] for t in ("sentiment", *MODALITY_TASKS)))
        if s is not None and None not in r
    ]
    result["all_with_sentiment"] = _rate(sum(len(set(r)) == 1 for r in full), len(full))
    confusion = {}
    for t in MODALITY_TASKS:
        matrix = [[0] * len(names) for _ in names]
        for s, m in zip(labels["sentiment"], labels[t]):
            if s is not None and m is not None:
                matrix[names.index(s)][names.index(m)] += 1
        confusion[t] = {"labels": names, "matrix": matrix}
    result["confusion"] = confusion
    return result


def _summary(df: pd.DataFrame, dur: pd.Series | None) -> dict:
    tokens = [words(t) for t in df["text"]]
    n_words = [len(t) for t in tokens]
    vocab = {w.casefold() for t in tokens for w in t}
    speakers = df["speaker_id"].dropna() if "speaker_id" in df else pd.Series([], dtype=object)
    out = {
        "segments": len(df),
        "videos": int(df["source_id"].nunique()),
        "speakers": int(speakers.nunique()) if len(speakers) else None,
        "topics": int(df["topic"].nunique()),
        "words_per_segment": round(float(sum(n_words) / len(df)), 4) if len(df) else 0.0,
        "vocabulary": len(vocab),
        "segments_without_text": int(sum(1 for t in df["text"] if not _has_text(t))),
        "adjudicated": int(df["adjudicated"].eq(True).sum()) if "adjudicated" in df else 0,
        "gender": None,
        "classes": {},
    }
    if GENDER_COLUMN in df and df[GENDER_COLUMN].notna().any():
        values = [g.casefold() if isinstance(g, str) else "unknown" for g in df[GENDER_COLUMN]]
        out["gender"] = {k: int(v) for k, v in sorted(Counter(values).items())}
    for task in TASKS:
        counts = Counter(v for v in df[task] if isinstance(v, str))
        out["classes"][task] = {name: int(counts.get(name, 0)) for name in label_set(task).names}
    if dur is not None:
        d = dur.reindex(df["id"]).dropna()
        if len(d):
            total_words = sum(n for n, i in zip(n_words, df["id"]) if i in d.index)
            out["duration"] = {
                "segments_with_duration": len(d),
                "total_hours": round(float(d.sum()) / 3600, 4),
                "mean_seconds": round(float(d.mean()), 4),
                "speech_rate_wps": round(total_words / float(d.sum()), 4) if d.sum() > 0 else None,
            }
    return out


@dataclass(frozen=True)
class ShardData:
    """What the statistics and the figures read from the shards, read once."""

    df: pd.DataFrame
    durations: pd.Series | None
    present: dict[str, int]


def load_data(out) -> ShardData:
    """The light columns of every split plus one streaming pass over the heavy ones."""
    with _opened(out) as snap:  # both passes over one generation
        dur, present = scan_heavy(snap)
        return ShardData(load_light(snap), dur, present)


def _column_presence(data: ShardData) -> dict[str, int]:
    df = data.df
    counts = {}
    for name in COLUMNS:
        if name in HEAVY_COLUMNS:
            counts[name] = int(data.present.get(name, 0))
        elif name == "text":
            counts[name] = len(df) - int(sum(1 for t in df["text"] if not _has_text(t)))
        elif name in df:
            counts[name] = int(df[name].notna().sum())
        else:
            counts[name] = 0
    return counts


def waiting_counts(build: dict | None) -> dict[str, int]:
    """Clips the build kept out of the shards: waiting for labels (``unlabelled``) and
    waiting for the expert (``unresolved``: no majority, no expert), from build.json."""
    waiting = (build or {}).get("waiting") or {}
    return {k: len(waiting.get(k) or []) for k in ("unlabelled", "unresolved")}


def compute_stats(out, data: ShardData | None = None, build: dict | None = None) -> dict:
    """Statistics overall and per split, topics, column coverage and cross-modal agreement,
    and the clips kept out of the shards (``waiting``, from ``build``, else OUT/build.json).

    Every number the card and ``indomer stats`` print comes from here; deterministic.
    """
    with _opened(out) as snap:
        if build is None:
            build = snap.build
        data = data or load_data(snap)
        splits = snap.splits()
    df, dur = data.df, data.durations
    stats = {"overall": _summary(df, dur), "splits": {}, "waiting": waiting_counts(build)}
    for split in splits:
        stats["splits"][split] = _summary(df[df["split"] == split], dur)
    stats["topics"] = {k: int(v) for k, v in sorted(Counter(df["topic"]).items())}
    stats["columns"] = _column_presence(data)
    stats["cross_modal"] = cross_modal(df)
    return stats


def _fmt(value) -> str:
    return "-" if value is None else str(value)


def format_cross_modal(cm: dict) -> str:
    """The cross-modal agreement table: each modality against the overall label and each other."""
    lines = [f"{'cross-modal agreement':<34}{'agree':>8}{'of':>8}{'rate':>9}"]
    rows = [(f"{t.split('_')[0]} = overall sentiment", v) for t, v in cm["vs_sentiment"].items()]
    rows += [
        (" = ".join(k.split("_")[0] for k in pair.split("/")), v)
        for pair, v in cm["pairwise"].items()
    ]
    rows.append(("text = audio = video", cm["all_modalities"]))
    rows.append(("all three = overall sentiment", cm["all_with_sentiment"]))
    for label, v in rows:
        rate = "-" if v["rate"] is None else f"{v['rate']:.4f}"
        lines.append(f"  {label:<32}{v['agree']:>8}{v['n']:>8}{rate:>9}")
    return "\n".join(lines)


def format_table(stats: dict) -> str:
    """A plain-text table of :func:`compute_stats` for the terminal."""
    cols = ["overall", *stats["splits"]]
    get = {"overall": stats["overall"], **stats["splits"]}
    width = max(14, *(len(c) for c in cols)) + 2
    lines = [f"{'':<22}" + "".join(f"{c:>{width}}" for c in cols)]

    def row(label: str, vals: list) -> None:
        lines.append(f"{label:<22}" + "".join(f"{_fmt(v):>{width}}" for v in vals))

    for label, key in (
        ("segments", "segments"),
        ("videos", "videos"),
        ("speakers", "speakers"),
        ("topics", "topics"),
        ("words/segment", "words_per_segment"),
        ("vocabulary", "vocabulary"),
        ("without text", "segments_without_text"),
    ):
        row(label, [get[c].get(key) for c in cols])
    genders = sorted({g for c in cols for g in (get[c].get("gender") or {})})
    if genders:
        for g in genders:
            row(f"gender {g}", [(get[c].get("gender") or {}).get(g, 0) for c in cols])
    else:
        row("male/female", ["unknown"] * len(cols))
    if "duration" in stats["overall"]:
        for label, key in (
            ("hours", "total_hours"),
            ("mean seconds", "mean_seconds"),
            ("words/second", "speech_rate_wps"),
        ):
            row(label, [get[c].get("duration", {}).get(key) for c in cols])
    else:
        row("durations", ["unknown"] * len(cols))
    for task in TASKS:
        lines.append(f"{task}:")
        for name in label_set(task).names:
            vals = [get[c]["classes"][task][name] for c in cols]
            lines.append(f"  {name:<20}" + "".join(f"{v:>{width}}" for v in vals))
    waiting = stats.get("waiting") or {}
    if any(waiting.values()):
        lines.append("not in the shards (waiting):")
        lines.append(f"  {'unlabelled':<20}{waiting.get('unlabelled', 0):>{width}}")
        lines.append(f"  {'unresolved':<20}{waiting.get('unresolved', 0):>{width}}"
                     "  (no majority; for the expert)")
    if "cross_modal" in stats:
        lines.append(format_cross_modal(stats["cross_modal"]))
    return "\n".join(lines)
