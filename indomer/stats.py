"""Dataset statistics computed from the shards: the one place the card's numbers come from."""

from __future__ import annotations

import io
import re
import wave
from collections import Counter

import pandas as pd
import pyarrow.parquet as pq

from indomer.dataset import available_splits, read_split, shard_paths
from indomer.labels import TASKS, label_set

WORD_RE = re.compile(r"[^\W_]+(?:[-'’][^\W_]+)*")
LIGHT_COLUMNS = [
    "id",
    "source_id",
    "segment_index",
    "topic",
    "speaker_id",
    "start",
    "end",
    "text",
    *TASKS,
    "emotion_intensity",
    "adjudicated",
]


def words(text: str | None) -> list[str]:
    """Word tokens of a transcript (letters/digits, keeping ``gara-gara`` and ``it’s`` whole)."""
    return WORD_RE.findall(text or "")


def wav_seconds(data: bytes) -> float | None:
    """Duration of a PCM WAV from its header; None when the bytes are not a readable WAV."""
    try:
        with wave.open(io.BytesIO(data)) as w:
            return w.getnframes() / float(w.getframerate())
    except (wave.Error, EOFError):
        return None


def load_light(out) -> pd.DataFrame:
    """All splits without media bytes, with a ``split`` column (cheap even for media builds)."""
    frames = []
    for split in available_splits(out):
        schema_names = pq.read_schema(shard_paths(out, split)[0]).names
        cols = [c for c in LIGHT_COLUMNS if c in schema_names]
        df = read_split(out, split, columns=cols)
        df.insert(0, "split", split)
        frames.append(df)
    return (
        pd.concat(frames, ignore_index=True)
        if frames
        else pd.DataFrame(columns=["split", *LIGHT_COLUMNS])
    )


def durations(out) -> pd.Series | None:
    """Seconds per segment id from end-start, else from embedded WAV headers; None if unknown."""
    found: dict[str, float] = {}
    for split in available_splits(out):
        for path in shard_paths(out, split):
            pf = pq.ParquetFile(path)
            names = pf.schema_arrow.names
            for batch in pf.iter_batches(batch_size=256, columns=["id", "start", "end", "audio"]):
                for row in batch.to_pylist():
                    if row["start"] is not None and row["end"] is not None:
                        found[row["id"]] = row["end"] - row["start"]
                    elif "audio" in names and row["audio"] and row["audio"].get("bytes"):
                        secs = wav_seconds(row["audio"]["bytes"])
                        if secs is not None:
                            found[row["id"]] = secs
    return pd.Series(found, dtype="float64") if found else None


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
        "classes": {},
    }
    for task in TASKS:
        counts = Counter(v for v in df[task] if v is not None)
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


def compute_stats(out) -> dict:
    """Statistics overall and per split, plus the topic distribution; deterministic."""
    df = load_light(out)
    dur = durations(out)
    stats = {"overall": _summary(df, dur), "splits": {}}
    for split in available_splits(out):
        stats["splits"][split] = _summary(df[df["split"] == split], dur)
    stats["topics"] = {k: int(v) for k, v in sorted(Counter(df["topic"]).items())}
    return stats


def format_table(stats: dict) -> str:
    """A plain-text table of :func:`compute_stats` for the terminal."""
    cols = ["overall", *stats["splits"]]
    get = {"overall": stats["overall"], **stats["splits"]}
    lines = []
    rows = [
        ("segments", "segments"),
        ("videos", "videos"),
        ("speakers", "speakers"),
        ("topics", "topics"),
        ("words/segment", "words_per_segment"),
        ("vocabulary", "vocabulary"),
    ]
    width = max(14, *(len(c) for c in cols)) + 2
    lines.append(f"{'':<22}" + "".join(f"{c:>{width}}" for c in cols))
    for label, key in rows:
        vals = [get[c].get(key) for c in cols]
        lines.append(f"{label:<22}" + "".join(f"{'-' if v is None else v:>{width}}" for v in vals))
    if "duration" in stats["overall"]:
        for label, key in (
            ("hours", "total_hours"),
            ("mean seconds", "mean_seconds"),
            ("words/second", "speech_rate_wps"),
        ):
            vals = [get[c].get("duration", {}).get(key) for c in cols]
            lines.append(
                f"{label:<22}" + "".join(f"{'-' if v is None else v:>{width}}" for v in vals)
            )
    for task in TASKS:
        lines.append(f"{task}:")
        for name in label_set(task).names:
            vals = [get[c]["classes"][task][name] for c in cols]
            lines.append(f"  {name:<20}" + "".join(f"{v:>{width}}" for v in vals))
    return "\n".join(lines)
