"""Segment stage: cut a source video's speech into clips at natural pauses (Silero VAD).

IndoMER clips are utterances of a monologue, cut where the speaker pauses. Raw mode may give
the timestamps (checked by :func:`check_given`); otherwise :func:`process` finds speech with
Silero VAD and :func:`segments_from_probs` turns per-frame probabilities into clips. That
function is pure, so its rules are tested on hand-made probability arrays.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import numpy as np
from pydantic import Field

from indomer.errors import DataError, RowRejected, UsageError
from indomer.manifest import read_manifest
from indomer.media import read_audio
from indomer.rows import Segment, Video, segment_id
from indomer.stage import Context, Item, ItemStage, ffmpeg_version, settings_of

SAMPLE_RATE = 16_000


@dataclass(frozen=True)
class Settings:
    """How speech becomes clips; every length is in seconds.

    ``threshold``: a frame whose speech probability is at least this starts speech; speech
    goes on until a frame falls below ``threshold - 0.15`` (silero's hysteresis), so a word
    with a soft middle is not cut in two.
    ``min_pause``: a silence shorter than this (a breath, the gap between words) stays inside
    a clip; a longer one ends it.
    ``min_clip``: a clip shorter than this is too short to label; it joins the neighbour
    across the shorter pause (unless that would make a clip longer than ``max_clip``).
    ``max_clip``: a clip longer than this is split at its longest internal pause, again and
    again until every piece fits (at the least likely speech frame if it has no pause).
    ``pad``: context added before and after each clip (silero's ``speech_pad_ms``), never
    past the middle of the pause to the next clip or the ends of the recording.
    ``min_speech``: speech shorter than this (a click, a cough) is noise and dropped.
    """

    # one field's bounds are checked by the config's pydantic model
    # (indomer.config.section_model); __post_init__ checks what two fields say together
    threshold: Annotated[float, Field(gt=0, lt=1)] = 0.5
    min_pause: Annotated[float, Field(ge=0)] = 0.3
    min_clip: Annotated[float, Field(ge=0)] = 1.0
    max_clip: Annotated[float, Field(gt=0)] = 15.0
    pad: Annotated[float, Field(ge=0)] = 0.03
    min_speech: Annotated[float, Field(ge=0)] = 0.1

    def __post_init__(self) -> None:
        if self.max_clip <= self.min_clip:
            raise ValueError(f"max_clip ({self.max_clip:g}) must be greater than min_clip "
                             f"({self.min_clip:g})")

    @property
    def neg_threshold(self) -> float:
        """Below this, speech that has started ends (as silero: threshold - 0.15, >= 0.01)."""
        return max(self.threshold - 0.15, 0.01)


def settings_from(cfg: Any) -> Settings:
    """The segment settings inside ``cfg``: None (defaults), a :class:`Settings`, an object or
    mapping with a ``segment`` entry, or a mapping of Settings fields."""
    if cfg is None:
        return Settings()
    if isinstance(cfg, Settings):
        return cfg
    if isinstance(cfg, Mapping):
        if "segment" in cfg:
            return settings_from(cfg["segment"])
        from indomer.config import make_settings

        return make_settings(Settings, cfg, "segment")
    inner = getattr(cfg, "segment", None)
    if inner is not None:
        return settings_from(inner)
    raise UsageError(f"segment: cannot read settings from {type(cfg).__name__}")


# --- probabilities -> clips (pure) ----------------------------------------------------------

# A clip under construction: its speech regions as (start_frame, end_frame), end exclusive,
# in time order; the gaps between consecutive regions are its internal pauses.
_Clip = list[tuple[int, int]]


def _speech_regions(probs: np.ndarray, on: float, off: float) -> list[tuple[int, int]]:
    regions: list[tuple[int, int]] = []
    start = -1
    for i, p in enumerate(probs.tolist()):
        if start < 0:
            if p >= on:
                start = i
        elif p < off:
            regions.append((start, i))
            start = -1
    if start >= 0:
        regions.append((start, len(probs)))
    return regions


def _middle_first(candidates: Iterable[int], lo: int, hi: int) -> list[int]:
    """Candidates ordered by distance from the middle of [lo, hi], earlier first on ties."""
    return sorted(candidates, key=lambda k: (abs(2 * k - (lo + hi)), k))


def _split(clip: _Clip, probs: np.ndarray, max_frames: float, min_frames: float) -> list[_Clip]:
    """Split ``clip`` until every piece spans at most ``max_frames``."""
    lo, hi = clip[0][0], clip[-1][1]
    if hi - lo <= max_frames:
        return [clip]
    if len(clip) > 1:
        # the longest pause, preferring one that leaves both sides at least min_clip long,
        # then the one nearest the middle
        def rank(k: int) -> tuple[bool, int, int]:
            left, right = clip[k][1] - lo, hi - clip[k + 1][0]
            gap = clip[k + 1][0] - clip[k][1]
            fits = left >= min_frames and right >= min_frames
            return (not fits, -gap, abs(clip[k][1] + clip[k + 1][0] - lo - hi))

        k = min(range(len(clip) - 1), key=rank)
        return (_split(clip[: k + 1], probs, max_frames, min_frames)
                + _split(clip[k + 1:], probs, max_frames, min_frames))
    # one unbroken region: cut at its least likely speech frame, away from the ends
    margin = int(min(min_frames, (hi - lo) / 4))
    inner = range(lo + max(1, margin), hi - max(1, margin))
    if not inner:
        return [clip]
    order = _middle_first(inner, lo, hi)
    cut = min(order, key=lambda k: probs[k])
    return (_split([(lo, cut)], probs, max_frames, min_frames)
            + _split([(cut, hi)], probs, max_frames, min_frames))


def _merge_short(clips: list[_Clip], max_frames: float, min_frames: float) -> list[_Clip]:
    """Join each clip shorter than ``min_frames`` to the neighbour across the shorter pause."""
    clips = [list(c) for c in clips]
    changed = True
    while changed:
        changed = False
        for i, clip in enumerate(clips):
            if clip[-1][1] - clip[0][0] >= min_frames:
                continue
            options = []  # (pause, side): side -1 = previous clip, +1 = next clip
            if i > 0 and clip[-1][1] - clips[i - 1][0][0] <= max_frames:
                options.append((clip[0][0] - clips[i - 1][-1][1], -1))
            if i + 1 < len(clips) and clips[i + 1][-1][1] - clip[0][0] <= max_frames:
                options.append((clips[i + 1][0][0] - clip[-1][1], 1))
            if not options:
                continue
            _, side = min(options)
            j = i - 1 if side < 0 else i
            clips[j: j + 2] = [clips[j] + clips[j + 1]]
            changed = True
            break
    return clips


def segments_from_probs(
    probs: Sequence[float] | np.ndarray,
    frame_s: float,
    settings: Settings,
    *,
    duration: float | None = None,
) -> list[tuple[float, float]]:
    """Clips ``(start, end)`` in seconds from per-frame speech probabilities.

    Frame ``i`` covers ``[i * frame_s, (i + 1) * frame_s)``; ``duration`` (default: all
    frames) bounds the padded clips. The rules, in order: hysteresis speech regions (see
    :class:`Settings`), drop regions under ``min_speech``, join regions across pauses under
    ``min_pause``, split clips over ``max_clip`` at their longest pause, merge clips under
    ``min_clip`` into the nearer neighbour, then pad. Times are rounded to microseconds.
    """
    p = np.asarray(probs, dtype=np.float64).ravel()
    if frame_s <= 0:
        raise UsageError(f"frame_s must be > 0, got {frame_s}")
    if not np.all(np.isfinite(p)):
        raise UsageError("speech probabilities contain NaN or infinity")
    total = len(p) * frame_s if duration is None else float(duration)
    regions = [
        r for r in _speech_regions(p, settings.threshold, settings.neg_threshold)
        if (r[1] - r[0]) * frame_s >= settings.min_speech - 1e-9
    ]
    if not regions:
        return []
    clips: list[_Clip] = [[regions[0]]]
    for region in regions[1:]:
        if (region[0] - clips[-1][-1][1]) * frame_s < settings.min_pause - 1e-9:
            clips[-1].append(region)
        else:
            clips.append([region])
    max_frames = settings.max_clip / frame_s + 1e-9
    min_frames = settings.min_clip / frame_s - 1e-9
    clips = [piece for clip in clips for piece in _split(clip, p, max_frames, min_frames)]
    clips = _merge_short(clips, max_frames, min_frames)

    spans = [(c[0][0] * frame_s, min(c[-1][1] * frame_s, total)) for c in clips]
    out: list[tuple[float, float]] = []
    for i, (start, end) in enumerate(spans):
        lo = (spans[i - 1][1] + start) / 2 if i > 0 else 0.0
        hi = (end + spans[i + 1][0]) / 2 if i + 1 < len(spans) else total
        s = max(start - settings.pad, lo, 0.0)
        e = min(end + settings.pad, hi, total)
        if e > s:
            out.append((round(s, 6), round(e, 6)))
    return out


# --- given timestamps ---------------------------------------------------------------------


def check_given(
    segments: Iterable[tuple[str, float, float]],
    duration: float,
    *,
    tolerance: float = 0.0,
) -> None:
    """Raise :class:`DataError` naming every given ``(id, start, end)`` that cannot be cut.

    A segment must have ``0 <= start < end <= duration + tolerance``, and segments of one
    video must not overlap (touching is fine); an overlap names both ids.
    """
    rows = list(segments)
    problems: list[str] = []
    limit = duration + tolerance
    valid: list[tuple[float, float, str]] = []
    for row_id, start, end in rows:
        try:
            start, end = float(start), float(end)
        except (TypeError, ValueError):
            problems.append(f"{row_id}: start/end {start!r}/{end!r} are not numbers")
            continue
        if not (math.isfinite(start) and math.isfinite(end)):
            problems.append(f"{row_id}: start/end {start}/{end} are not finite")
        elif start < 0:
            problems.append(f"{row_id}: start {start:g} s is before the video starts")
        elif end <= start:
            problems.append(f"{row_id}: end {end:g} s is not after start {start:g} s")
        elif end > limit:
            problems.append(f"{row_id}: end {end:g} s is past the video's end "
                            f"({duration:g} s)")
        else:
            valid.append((start, end, str(row_id)))
    valid.sort()
    reach_end, reach_id = -math.inf, ""
    for start, end, row_id in valid:
        if start < reach_end:
            problems.append(f"{row_id} ({start:g}-{end:g} s) overlaps {reach_id} "
                            f"(ends at {reach_end:g} s)")
        if end > reach_end:
            reach_end, reach_id = end, row_id
    if problems:
        shown = "; ".join(problems[:5])
        more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
        raise DataError(f"{shown}{more}; fix the segment timestamps (0 <= start < end <= "
                        f"video duration, no overlaps)")


# --- the stage ----------------------------------------------------------------------------


def process(video: Video, cfg: Any = None, *, vad: Any = None) -> list[Segment]:
    """Clips of one source video, numbered from 1 in time order (``clip_<src>_<Topic>_<n>``).

    ``vad`` is a loaded :class:`indomer.backends.vad.SileroVAD` (``run`` passes one);
    by default the process-wide one is used.
    """
    settings = settings_from(cfg)
    if not video.path:
        raise RowRejected(video.source_id, "the video has no media file",
                          "run the fetch stage first or give a local path")
    wav = read_audio(Path(video.path), video.source_id)
    if vad is None:
        from indomer.backends.vad import load_vad

        vad = load_vad()
    from indomer.backends.vad import FRAME_SECONDS

    probs = vad.speech_probs(wav)
    spans = segments_from_probs(probs, FRAME_SECONDS, settings, duration=wav.size / SAMPLE_RATE)
    if not spans:
        raise RowRejected(video.source_id, "no speech found",
                          f"check the audio track, or lower segment.threshold "
                          f"(now {settings.threshold})")
    return [
        Segment(
            id=segment_id(video.source_id, video.topic, n),
            source_id=video.source_id,
            segment_index=n,
            topic=video.topic,
            start=start,
            end=end,
            source_path=video.path,
        )
        for n, (start, end) in enumerate(spans, start=1)
    ]


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class State:
    settings: Any
    given: dict[str, tuple[Segment, ...]] | None
    vad: Any = None


def _given_segments_file(cfg: Any, dirs: dict[str, Path]) -> dict[str, Path]:
    path = dirs["sources"] / "segments.jsonl"
    return {"segments": path} if cfg.segments is not None else {}


def _tools() -> dict[str, str]:
    """The VAD model (natural-pause segmentation) and the ffmpeg that decodes the audio."""
    from indomer.backends.vad import model_version

    return {"vad": model_version(), **ffmpeg_version()}


def _setup(settings: Any, ctx: Context) -> State:
    """Given timestamps when the config has a segments table, else the VAD, loaded once."""
    from indomer.rows import from_json

    if ctx.config.segments is None:
        from indomer.backends.vad import load_vad

        return State(settings, None, load_vad())
    given: dict[str, list[Segment]] = {}
    for obj in read_manifest(ctx.dirs["sources"] / "segments.jsonl"):
        seg = from_json(obj)
        given.setdefault(seg.source_id, []).append(seg)
    return State(settings, {k: tuple(v) for k, v in given.items()})


#: Given segments may end this far past the probed duration (container rounding).
DURATION_SLACK = 0.05


def _run(item: Item, state: State) -> list:
    """Timestamps from segments.csv when given, else natural pauses (:func:`process`)."""
    video = item.video
    if state.given is None:
        return [video, *process(video, state.settings, vad=state.vad)]
    segs = state.given.get(video.source_id)
    if not segs:
        raise RowRejected(
            video.source_id,
            "no rows for this source in the segments table",
            "add its segments to the segments CSV, or remove the source",
        )
    out: list = [video]
    overlaps = _overlaps(segs)
    for s in segs:
        if video.duration is not None and s.end > video.duration + DURATION_SLACK:
            out.append(
                RowRejected(
                    s.id,
                    f"ends at {s.end:g} s, after the video's {video.duration:g} s",
                    "fix the end time in the segments CSV",
                )
            )
        elif s.id in overlaps:
            other = overlaps[s.id]
            out.append(
                RowRejected(
                    s.id,
                    f"{s.start:g}-{s.end:g} s overlaps {other.id} ({other.start:g}-{other.end:g} s)",
                    "fix the timestamps in the segments CSV so that clips of one video do not "
                    "overlap (touching is fine)",
                )
            )
        else:
            out.append(dataclasses.replace(s, source_path=video.path))
    return out


def _overlaps(segs: Sequence[Segment]) -> dict[str, Segment]:
    """Every given segment that overlaps another of its video, mapped to one it overlaps.

    Both sides are rejected: which of the two is wrong is for the user to say, and cutting
    either would put the same speech in two clips.
    """
    found: dict[str, Segment] = {}
    ordered = sorted(segs, key=lambda s: (s.start, s.end, s.id))
    reach: Segment | None = None
    for s in ordered:
        if reach is not None and s.start < reach.end:
            found.setdefault(s.id, reach)
            found.setdefault(reach.id, s)
        if reach is None or s.end > reach.end:
            reach = s
    return found


STAGE = ItemStage(
    "segment",
    _run,
    settings=settings_of("segment"),
    setup=_setup,
    inputs=_given_segments_file,
    tools=_tools,
)
