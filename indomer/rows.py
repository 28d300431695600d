"""The row kinds that flow through the raw-mode pipeline (one frozen dataclass each).

Stages return new rows with :func:`dataclasses.replace`; manifests store them as JSON
objects through :func:`to_json` / :func:`from_json`, so a row is a pure value that can be
shipped to another process (``--jobs``) or another machine.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass
from typing import Any, TypeVar

#: Ids become file names: a safe character set and no leading dot, so ``../x`` cannot pass.
SAFE_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*\Z")


@dataclass(frozen=True)
class Video:
    """One source video: where it comes from and, after fetch/probe, what it is."""

    source_id: str
    topic: str
    url: str | None = None  # http(s) URL, or None for a local file
    path: str | None = None  # local file: the given path before fetch, the fetched copy after
    license: str | None = None
    sha256: str | None = None
    duration: float | None = None
    fps: float | None = None
    width: int | None = None
    height: int | None = None
    video_codec: str | None = None
    audio_codec: str | None = None
    sample_rate: int | None = None


@dataclass(frozen=True)
class Segment:
    """One clip of a source video, ``start``/``end`` in seconds of the source."""

    id: str
    source_id: str
    segment_index: int
    topic: str
    start: float
    end: float
    text: str | None = None
    source_path: str | None = None  # the fetched source media this clip is cut from
    audio_path: str | None = None  # 16 kHz mono wav, relative to the build folder
    video_path: str | None = None  # H.264/AAC mp4, relative to the build folder
    # align: the transcript's own tokens with times ({word, start, end, score}; null times
    # where the aligner could not place a word), whether the text is manual or an ASR draft,
    # and the alignment quality ({mean_score, aligned_share, model}).
    words: tuple[dict[str, Any], ...] | None = None
    text_source: str | None = None  # "manual" or "asr"
    align: dict[str, Any] | None = None
    # speakers: the global speaker id, the diarization summary of the clip
    # ({n_speakers, primary_share, overlap, flagged}) and the face-track summary.
    speaker_id: str | None = None
    speaker: dict[str, Any] | None = None
    face: dict[str, Any] | None = None


Row = TypeVar("Row", Video, Segment)
KINDS: dict[str, type] = {"video": Video, "segment": Segment}


def to_json(row: Video | Segment) -> dict[str, Any]:
    """A manifest line: the row's fields plus its kind."""
    kind = "video" if isinstance(row, Video) else "segment"
    return {"kind": kind, **dataclasses.asdict(row)}


def from_json(obj: dict[str, Any]) -> Video | Segment:
    """Inverse of :func:`to_json`; unknown keys are an error, not silently dropped."""
    obj = dict(obj)
    cls = KINDS[obj.pop("kind")]
    if obj.get("words") is not None:
        obj["words"] = tuple(obj["words"])
    return cls(**obj)


def segment_id(source_id: str, topic: str, index: int) -> str:
    """The release convention: ``clip_<source>_<Topic>_<n>``."""
    return f"clip_{source_id}_{topic}_{index}"
