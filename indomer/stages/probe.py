"""Probe: fill in what each source video really is, and drop the ones that cannot be cut.

ffprobe only reads headers, so a download whose header survived but whose data is garbage or
cut short would pass it and fail later, inside a long cut. Probe therefore also decodes the
first and the last ``check_seconds`` of every source (a truncated download breaks at the
end, a damaged one usually at the start), which costs a fraction of a second per file.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from subprocess import PIPE
from typing import Any

from indomer import media
from indomer.errors import RowRejected
from indomer.rows import Video
from indomer.stage import Item, ItemStage, ffmpeg_version, settings_of

REFETCH = "re-fetch the source, or re-encode it (ffmpeg -i IN -c:v libx264 -c:a aac OUT.mp4)"


@dataclass(frozen=True)
class Settings:
    """Probe options (recorded with the build config)."""

    check_seconds: float = 1.0  # decoded at the start and at the end of every source
    require_video: bool = True  # an audio-only source cannot give the mp4 clips


def _display_size(stream: dict[str, Any]) -> tuple[int | None, int | None]:
    """Width and height as shown: a phone video rotated 90 degrees swaps them."""
    w, h = stream.get("width"), stream.get("height")
    rotation = media.as_float(stream.get("tags", {}).get("rotate")) or 0.0
    for side in stream.get("side_data_list", []):
        if "rotation" in side:
            rotation = media.as_float(side["rotation"]) or 0.0
    if w and h and round(abs(rotation)) % 180 == 90:
        w, h = h, w
    return (int(w) if w else None), (int(h) if h else None)


def _duration(info: dict[str, Any]) -> float | None:
    d = media.as_float(info["format"].get("duration"))
    if d is None:
        found = [media.as_float(s.get("duration")) for s in info["streams"]]
        d = max((x for x in found if x is not None), default=None)
    return d


def _decode_check(path: Path, streams: dict[str, int], duration: float, seconds: float) -> None:
    """Decode the head and the tail of the file; raise MediaError on a decode error, or when
    a window yields no frame of a stream (a truncated file just ends, without an error)."""
    kinds = list(streams)
    maps = [a for k in kinds for a in ("-map", f"0:{streams[k]}")]
    if duration > 2 * seconds:
        windows = {
            f"first {seconds:g} s": ["-t", f"{seconds:.6f}"],
            f"last {seconds:g} s": ["-ss", f"{duration - seconds:.6f}"],
        }
    else:  # a short file: decode all of it once
        windows = {"whole file": []}
    for where, window in windows.items():
        args = ["-threads", "1", *window, "-i", media.file_arg(path), *maps]
        out = media.run_ffmpeg([*args, "-f", "framecrc", "pipe:1"], stdout=PIPE, strict=True)
        # framecrc: one "stream_index, dts, pts, duration, size, crc" line per decoded frame
        seen = {ln.split(b",", 1)[0].strip() for ln in out.splitlines() if ln[:1] != b"#"}
        for n, kind in enumerate(kinds):
            if str(n).encode() not in seen:
                detail = f"no {kind} frame decodes in the {where}; is the file truncated?"
                raise media.MediaError(detail, detail)


def process(video: Video, cfg: Settings | None = None) -> list[Video]:
    """Keep ``video`` with duration, fps, size, codecs and sample rate filled in, or raise
    :class:`RowRejected` saying why it cannot be used and how to fix it."""
    cfg = cfg or Settings()
    rid = video.source_id
    if not video.path:
        raise RowRejected(rid, "no local media file", "run fetch first, or give the file's path")
    path = Path(video.path)
    if not path.is_file():
        raise RowRejected(rid, f"media file not found: {path}", "check the path or re-fetch it")
    if path.stat().st_size == 0:
        raise RowRejected(rid, f"media file is empty (0 bytes): {path}", REFETCH)
    try:
        info = media.ffprobe(path)
    except media.MediaError as exc:
        raise RowRejected(rid, f"not a readable media file ({exc.detail})", REFETCH) from None
    duration = _duration(info)
    if not duration or duration <= 0:
        raise RowRejected(rid, "zero duration (no media in the file)", REFETCH)
    vst, ast = media.pick_stream(info, "video"), media.pick_stream(info, "audio")
    if ast is None:
        raise RowRejected(
            rid, "no audio stream", "use a source with its sound track (audio is a modality)"
        )
    if vst is None and cfg.require_video:
        raise RowRejected(
            rid, "no video stream", "use the video, not an audio-only download (yt-dlp -f bv+ba)"
        )
    streams = {k: int(s["index"]) for k, s in (("video", vst), ("audio", ast)) if s is not None}
    try:
        _decode_check(path, streams, duration, cfg.check_seconds)
    except media.MediaError as exc:
        raise RowRejected(rid, f"does not decode ({exc.first})", REFETCH) from None
    width, height = _display_size(vst) if vst else (None, None)
    fps = None
    if vst is not None:
        fps = media.as_float(vst.get("avg_frame_rate")) or media.as_float(
            vst.get("r_frame_rate")
        )
    rate = media.as_float(ast.get("sample_rate"))
    return [
        dataclasses.replace(
            video,
            duration=round(duration, 6),
            fps=round(fps, 6) if fps else None,
            width=width,
            height=height,
            video_codec=vst.get("codec_name") if vst else None,
            audio_codec=ast.get("codec_name"),
            sample_rate=int(rate) if rate else None,
        )
    ]


# --------------------------------------------------------------------------- the stage


def _run(item: Item, state: Settings) -> list:
    """The stage's contract: the state is the settings (probe loads nothing)."""
    return process(item.video, state)


STAGE = ItemStage("probe", _run, settings=settings_of("probe"), tools=ffmpeg_version)
