"""Cut: one source video and its segments in, ``clips/<id>.mp4`` and ``clips/<id>.wav`` out.

How, and why:

* **mp4 (H.264 yuv420p + AAC), frame-accurate.** Each source is decoded once per group of
  up to ``clips_per_process`` clips: one ffmpeg process splits the decoded stream and
  ``trim``/``atrim`` each branch to ``[start, end)`` before its own encoder. A clip holds
  the frames whose timestamps fall in ``[start, end)``, rebased to 0, so its length is
  within one frame of ``end - start``; its audio starts exactly at ``start``.
  ``tools/bench_cut.py`` (2 cores, 200 clips from ten 60 s 640x360 sources, ``--jobs 2``):
  22.3 s wall / 42.3 s CPU against 25.4 s / 49.9 s for one ffmpeg per clip, which pays
  about 65 ms of start-up and x264 set-up per process. 42.3 s is about what re-encoding
  each whole source once costs (4.2 s CPU per source), so encoding is what is left. Memory
  grows with the open encoders (about 25 MB each at 360p, 75 MB at 720p), hence the group
  cap: 8 per process measured as fast as 20 (245 MB against 523 MB peak). A group seeks
  its video to the whole second before its first clip (exact: H.264 decodes the same frames
  from a keyframe) and reads its audio from the start (AAC decoding is not seek-invariant),
  so the clips' bytes do not depend on the grouping.
* **wav (16 kHz mono s16le), sample-exact.** The source's audio is decoded and resampled
  once, in one ffmpeg run, and each clip is the slice ``[round(start*sr), round(end*sr))``
  of it, written with :mod:`wave`: a clip's samples are exactly the source's 16 kHz
  resample over the same span (cross-correlation lag 0). The slice is placed on ffmpeg's
  timeline (0 = the container's start, as ``-ss`` counts): the first decoded sample sits
  at its own timestamp (Opus in WebM: +7 ms; a late audio track: later), silence before
  it. Samples are counted from there, so the audio is assumed gapless after its start.
* **Deterministic bytes.** ``-threads 1`` for x264 (its output depends on the thread
  count), bitexact muxer/encoder flags (no version strings), no metadata or chapters, and
  a fixed wav header; tests cut twice and compare the bytes.
* **Atomic.** Every file is written under a temp name in ``clips/`` and renamed into place
  once complete (and, for the mp4, once its length has been checked), so a killed build
  never leaves half a clip under a final name.
* **Parallel.** The runner's executor cuts several sources at once (``--jobs``); the work
  is in ffmpeg child processes.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Annotated, Literal, get_args

import numpy as np
from pydantic import Field

from indomer import media
from indomer.errors import RowRejected
from indomer.rows import SAFE_ID, Segment, Video
from indomer.stage import FolderState, Item, ItemStage, ffmpeg_version, folder_setup, settings_of

US = 1_000_000
Preset = Literal[
    "ultrafast", "superfast", "veryfast", "faster", "fast",
    "medium", "slow", "slower", "veryslow", "placebo",
]
X264_PRESETS: tuple[str, ...] = get_args(Preset)


@dataclass(frozen=True)
class Settings:
    """Cut options (recorded with the build config; they change the clips' bytes)."""

    # the bounds are checked by the config's pydantic model (indomer.config.section_model),
    # with the setting's name, not as an ffmpeg error later
    crf: Annotated[int, Field(ge=0, le=51)] = 23
    preset: Preset = "veryfast"
    audio_rate: Annotated[int, Field(ge=8000)] = 16000  # the wav clips
    audio_bitrate: str = "128k"  # AAC in the mp4 clips, at the source's rate and channels
    # scale taller sources down, keeping the aspect ratio
    max_height: Annotated[int, Field(ge=16)] | None = None
    # mp4 clips one ffmpeg encodes at once (bounds memory)
    clips_per_process: Annotated[int, Field(ge=1)] = 8
    verify: bool = True  # check every mp4's length against its segment


@dataclass(frozen=True)
class _Source:
    """What the cutter needs to know about one source file (from one ffprobe run)."""

    path: Path
    video_index: int | None
    audio_index: int
    fps: float | None
    video_end: float  # seconds, on the timeline segments use (the container's start is 0)
    audio_start: float  # where the first decoded audio sample sits on that timeline


def _source_facts(path: Path) -> _Source:
    info = media.ffprobe(path)
    vst, ast = media.pick_stream(info, "video"), media.pick_stream(info, "audio")
    if ast is None:
        raise media.MediaError("no audio stream", "no audio stream")
    t0 = media.as_float(info["format"].get("start_time")) or 0.0
    duration = media.as_float(info["format"].get("duration")) or 0.0
    fps = video_end = None
    if vst is not None:
        fps = media.as_float(vst.get("avg_frame_rate")) or media.as_float(vst.get("r_frame_rate"))
        vdur = media.as_float(vst.get("duration"))
        if vdur is not None:
            video_end = (media.as_float(vst.get("start_time")) or t0) - t0 + vdur
    # Where the first decoded sample sits; the stream's start_time is the first packet's,
    # which is earlier when the decoder drops pre-roll (Opus in WebM: 6.5 ms).
    a0 = media.first_frame_time(path, int(ast["index"]))
    if a0 is None:
        a0 = media.as_float(ast.get("start_time"))
    return _Source(
        path=path,
        video_index=int(vst["index"]) if vst is not None else None,
        audio_index=int(ast["index"]),
        fps=fps,
        video_end=video_end if video_end is not None else duration,
        audio_start=(a0 - t0) if a0 is not None else 0.0,
    )


def _us(seconds: float) -> int:
    return round(seconds * US)


def _sec(us: int) -> str:
    """Whole microseconds as ``S.ffffff``: ffmpeg parses it back to the same integer."""
    sign = "-" if us < 0 else ""
    q, r = divmod(abs(us), US)
    return f"{sign}{q}.{r:06d}"


FIX_ID = "rename it: letters, digits, '_' and '-' only, starting with a letter or digit"
FIX_TIMES = "correct the segment's start/end times"
FIX_SOURCE = "check the source with: ffmpeg -v error -i SOURCE -f null -; re-fetch or re-encode it"
FIX_VFR = "re-encode the source at a constant frame rate (ffmpeg -i IN -fps_mode cfr OUT.mp4)"


def _check(seg: Segment, video: Video, src: _Source) -> tuple[str, str] | None:
    """Why ``seg`` cannot be cut from ``src``, and the fix (None when it can)."""
    if not SAFE_ID.match(seg.id):
        return f"unsafe segment id {seg.id!r} (it becomes a file name)", FIX_ID
    if seg.source_id != video.source_id:
        return (
            f"belongs to source {seg.source_id!r}, not {video.source_id!r}",
            "cut it together with its own source",
        )
    if not (seg.start >= 0 and seg.end > seg.start):
        return f"bad span {seg.start}..{seg.end} s (need 0 <= start < end)", FIX_TIMES
    frame = 1.0 / src.fps if src.fps else 0.0
    if src.video_index is not None and seg.end - seg.start < frame:
        return f"shorter than one video frame ({seg.end - seg.start:.4f} s)", FIX_TIMES
    if seg.end > src.video_end + max(frame, 1e-3):
        return f"ends at {seg.end} s, after the source's end at {src.video_end:.3f} s", FIX_TIMES
    return None


def _filtergraph(
    src: _Source, spans: list[tuple[int, int]], seek: int, max_height: int | None
) -> str:
    """One decode of each stream, split to one ``[start, end)`` trim per clip.

    Input 0 is the video, seeked to ``seek`` (so its times are relative to it); input 1 is
    the audio, read from the start: AAC decoding is not seek-invariant (its noise
    substitution draws from a generator that runs from the first decoded frame), so only
    an unseeked decode gives every grouping the same samples. Video frames are rebased to
    the first kept frame; audio is rebased to the segment start itself (``round(start*SR)``,
    the sample ``atrim`` starts at), so audio that begins late keeps its offset.
    """
    n = len(spans)
    if max_height:
        size = f"w=-2:h='trunc(min(ih,{int(max_height)})/2)*2'"
    else:  # x264's yuv420p needs even sizes
        size = "w='trunc(iw/2)*2':h='trunc(ih/2)*2'"
    chains = [
        f"[0:{src.video_index}]scale={size}:flags=bicubic,format=pix_fmts=yuv420p,"
        f"split={n}" + "".join(f"[vs{i}]" for i in range(n)),
        f"[1:{src.audio_index}]asplit={n}" + "".join(f"[as{i}]" for i in range(n)),
    ]
    for i, (s, e) in enumerate(spans):
        vs, ve = _sec(s - seek), _sec(e - seek)
        chains.append(f"[vs{i}]trim=start={vs}:end={ve},setpts=PTS-STARTPTS[v{i}]")
        chains.append(
            f"[as{i}]atrim=start={_sec(s)}:end={_sec(e)},"
            f"asetpts=PTS-round({s}*SR/{US})/(SR*TB)[a{i}]"
        )
    return ";".join(chains)


def _encode_args(cfg: Settings) -> list[str]:
    return [
        "-c:v", "libx264", "-preset", cfg.preset, "-crf", str(cfg.crf), "-threads", "1",
        "-c:a", "aac", "-b:a", cfg.audio_bitrate,
        "-fflags", "+bitexact", "-flags:v", "+bitexact", "-flags:a", "+bitexact",
        "-map_metadata", "-1", "-map_chapters", "-1",
        "-movflags", "+faststart", "-f", "mp4",
    ]


Outcome = dict[str, tuple[str, str] | None]  # segment id -> (reason, fix), None when cut


def _verify(path: Path, seg: Segment, src: _Source) -> str | None:
    """Why the encoded clip is wrong (None when its video is within a frame of the span)."""
    try:
        tracks = media.mp4_tracks(path)
    except (OSError, media.MediaError) as exc:
        return f"unreadable clip ({exc})"
    if "vide" not in tracks or tracks["vide"][1] == 0:
        return "clip has no video frames"
    if "soun" not in tracks:
        return "clip has no audio track"
    seconds, frames = tracks["vide"]
    frame = 1.0 / src.fps if src.fps else seconds / frames
    want = seg.end - seg.start
    if abs(seconds - want) > frame + 1e-3:
        return f"clip video is {seconds:.3f} s, expected {want:.3f} s (within one frame)"
    return None


def _cut_mp4_group(src: _Source, segs: list[Segment], clips: Path, cfg: Settings) -> Outcome:
    """Encode one group of clips in one ffmpeg run; ``{id: error or None}``."""
    first = min(_us(s.start) for s in segs)
    seek = first - first % US  # a whole second: exact in every stream time base
    spans = [(_us(s.start), _us(s.end)) for s in segs]
    args = [
        "-y",
        "-threads", "1", "-ss", _sec(seek), "-i", media.file_arg(src.path),
        "-threads", "1", "-i", media.file_arg(src.path),
        "-filter_complex", _filtergraph(src, spans, seek, cfg.max_height),
        "-filter_complex_threads", "1",
    ]
    temps = [media.temp_beside(clips / f"{s.id}.mp4") for s in segs]
    for i, tmp in enumerate(temps):
        args += ["-map", f"[v{i}]", "-map", f"[a{i}]", *_encode_args(cfg), media.file_arg(tmp)]
    result: Outcome = {}
    try:
        try:
            media.run_ffmpeg(args)
        except media.MediaError as exc:
            why = f"ffmpeg could not cut it ({exc.detail})"
            return {s.id: (why, FIX_SOURCE) for s in segs}
        for seg, tmp in zip(segs, temps):
            err = _verify(tmp, seg, src) if cfg.verify else None
            if err is None:
                media.publish(tmp, clips / f"{seg.id}.mp4")
            result[seg.id] = None if err is None else (err, FIX_VFR)
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)
    return result


def _slice(pcm: np.ndarray, offset: int, i0: int, i1: int) -> np.ndarray:
    """Samples ``[i0, i1)`` of the source timeline, where ``pcm[0]`` sits at ``offset``;
    silence where the audio does not reach."""
    out = np.zeros(i1 - i0, dtype="<i2")
    lo, hi = max(i0 - offset, 0), min(i1 - offset, len(pcm))
    if hi > lo:
        out[lo + offset - i0 : hi + offset - i0] = pcm[lo:hi]
    return out


def _cut_wavs(src: _Source, segs: list[Segment], clips: Path, cfg: Settings) -> Outcome:
    """Decode the source's audio once at ``audio_rate`` and write every clip's slice."""
    rate = cfg.audio_rate
    try:
        pcm = media.decode_pcm(src.path, rate=rate, stream=src.audio_index)
    except media.MediaError as exc:
        why = f"audio does not decode ({exc.detail})"
        return {s.id: (why, FIX_SOURCE) for s in segs}
    offset = media.to_samples(src.audio_start, rate)
    for s in segs:
        i0, i1 = media.to_samples(s.start, rate), media.to_samples(s.end, rate)
        media.write_wav(clips / f"{s.id}.wav", _slice(pcm, offset, i0, i1), rate)
    return {s.id: None for s in segs}


@dataclass
class _Plan:
    video: Video
    segments: list[Segment]
    rejected: dict[int, tuple[str, str]]  # position -> (reason, fix), decided up front
    src: _Source | None = None


def _plan(video: Video, segments: Sequence[Segment], seen: set[str]) -> _Plan:
    """Probe the source once and decide which segments can be cut (``seen``: ids already
    planned, so two rows never write the same file)."""
    plan = _Plan(video, list(segments), {})
    path = Path(video.path) if video.path else None
    try:
        if path is None or not path.is_file():
            raise media.MediaError(f"source file not found: {path}", f"file not found: {path}")
        plan.src = _source_facts(path)
    except media.MediaError as exc:
        why = f"source {video.source_id!r} cannot be cut ({exc.detail})"
        plan.rejected = {n: (why, FIX_SOURCE) for n in range(len(segments))}
        return plan
    for n, s in enumerate(segments):
        why = _check(s, video, plan.src)
        if why is None and s.id in seen:
            why = "duplicate segment id (another row writes the same clip)", FIX_ID
        if why is not None:
            plan.rejected[n] = why
        else:
            seen.add(s.id)
    return plan


def _tasks(plan: _Plan, clips: Path, cfg: Settings) -> list[Callable[[], Outcome]]:
    src = plan.src
    todo = [s for n, s in enumerate(plan.segments) if n not in plan.rejected]
    if src is None or not todo:
        return []
    tasks: list[Callable[[], Outcome]] = [partial(_cut_wavs, src, todo, clips, cfg)]
    if src.video_index is not None:
        ordered = sorted(todo, key=lambda s: (s.start, s.end, s.id))
        k = max(1, cfg.clips_per_process)
        for g in range(0, len(ordered), k):
            tasks.append(partial(_cut_mp4_group, src, ordered[g : g + k], clips, cfg))
    return tasks


def _cut(
    sources: Sequence[tuple[Video, Sequence[Segment]]], clips_dir: Path, cfg: Settings, jobs: int
) -> list[list[Segment | RowRejected]]:
    """Per source, its segments (paths filled) or their rejections, in input order."""
    clips = Path(clips_dir)
    clips.mkdir(parents=True, exist_ok=True)
    seen: set[str] = set()
    plans = [_plan(video, segs, seen) for video, segs in sources]
    tasks = [t for p in plans for t in _tasks(p, clips, cfg)]
    errors: dict[str, tuple[str, str]] = {}
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        for outcome in pool.map(lambda task: task(), tasks):
            for sid, err in outcome.items():
                if err is not None:
                    errors.setdefault(sid, err)
    out: list[list[Segment | RowRejected]] = []
    for p in plans:
        has_video = p.src is not None and p.src.video_index is not None
        rows: list[Segment | RowRejected] = []
        for n, s in enumerate(p.segments):
            why = p.rejected.get(n) or errors.get(s.id)
            if why is None:
                rows.append(
                    dataclasses.replace(
                        s,
                        source_path=s.source_path or p.video.path,
                        audio_path=str(clips / f"{s.id}.wav"),
                        video_path=str(clips / f"{s.id}.mp4") if has_video else None,
                    )
                )
                continue
            if n not in p.rejected:  # cut, then failed: never leave half a pair behind
                for ext in (".mp4", ".wav"):
                    (clips / f"{s.id}{ext}").unlink(missing_ok=True)
            rows.append(RowRejected(s.id, *why))
        out.append(rows)
    return out


def process(
    video: Video, segments: Sequence[Segment], cfg: Settings | None, clips_dir: Path
) -> list[Segment | RowRejected]:
    """The per-item stage: one source and all its segments, cut with one decode per group.

    Returns each segment with its clip paths filled, or a :class:`RowRejected` in its place
    (the pipeline writes those to rejected.jsonl and goes on).
    """
    return _cut([(video, segments)], clips_dir, cfg or Settings(), jobs=1)[0]


# --------------------------------------------------------------------------- the stage


def _run(item: Item, state: FolderState) -> list:
    """All clips of one source in one go (the source is decoded once per group of clips);
    a segment that cannot be cut comes back as a RowRejected in its place."""
    return [item.video, *process(item.video, item.segments, state.settings, state.folder)]


STAGE = ItemStage(
    "cut", _run, settings=settings_of("cut"), setup=folder_setup("clips"), tools=ffmpeg_version
)
