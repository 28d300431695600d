"""Test media made with ffmpeg in a fraction of a second, with exactly known facts.

Video is ``testsrc2`` (every frame differs), audio is seeded noise (aperiodic, so a
cross-correlation has one clear peak). Frame counts and sample counts are exact: the video
has ``seconds * fps`` frames and the audio ``seconds * sample_rate`` samples before AAC
padding.
"""

from __future__ import annotations

import random
import shutil
import subprocess
from pathlib import Path

import numpy as np

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"


def _ffmpeg(*args: str) -> None:
    subprocess.run(
        [FFMPEG, "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args],
        check=True,
        capture_output=True,
    )


def make_av(
    path: Path,
    *,
    seconds: float = 4.0,
    fps: int = 25,
    size: str = "320x240",
    sample_rate: int = 44100,
    channels: int = 1,
    seed: int = 1,
    audio_delay: float = 0.0,
    gop: int | None = None,
    pix_fmt: str = "yuv420p",
) -> Path:
    """An H.264 + AAC mp4; for ``.mkv`` H.264 + PCM (exact ``audio_delay``); for ``.webm``
    VP9 + Opus.

    ``audio_delay`` > 0 starts the audio stream that many seconds after the video (the
    container's timestamps say so), as some downloads do.
    """
    frames = round(seconds * fps)
    mkv = path.suffix == ".mkv"
    webm = path.suffix == ".webm"
    args = [
        "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={fps}",
        "-f", "lavfi",
        "-i", f"anoisesrc=color=pink:seed={seed}:amplitude=0.4:sample_rate={sample_rate}",
    ]
    if audio_delay:
        args = args[:4] + ["-itsoffset", f"{audio_delay:.6f}"] + args[4:]
    args += [
        "-map", "0:v", "-map", "1:a", "-t", f"{frames / fps:.6f}", "-ac", str(channels),
        "-g", str(gop or 2 * fps), "-pix_fmt", pix_fmt, "-threads", "1",
    ]
    if webm:  # what YouTube serves: VP9 + Opus (whose decoder drops 6.5 ms of pre-roll)
        args += ["-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", "8"]
        args += ["-c:a", "libopus"]
    else:
        args += ["-c:v", "libx264", "-preset", "ultrafast"]
        args += ["-c:a", "pcm_s16le"] if mkv else ["-c:a", "aac", "-movflags", "+faststart"]
    _ffmpeg(*args, str(path))
    return path


def make_video_only(path: Path, *, seconds: float = 2.0, fps: int = 25) -> Path:
    """An mp4 with a video stream and no audio stream."""
    _ffmpeg(
        "-f", "lavfi", "-i", f"testsrc2=size=160x120:rate={fps}",
        "-frames:v", str(round(seconds * fps)),
        "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", str(path),
    )
    return path


def make_corrupt(path: Path, good: Path) -> Path:
    """``good`` with its media data overwritten by noise: the header (moov, in front)
    still parses, so only decoding finds the damage."""
    data = bytearray(good.read_bytes())
    start = data.find(b"mdat") + 4 + 64
    rng = random.Random(0)
    for i in range(start, len(data) - 16):
        data[i] = rng.randrange(256)
    path.write_bytes(bytes(data))
    return path


def make_truncated(path: Path, good: Path, keep: float = 0.6) -> Path:
    """The first ``keep`` of ``good``'s bytes, as an interrupted download leaves it."""
    data = good.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    return path


def make_garbage(path: Path, n: int = 4096) -> Path:
    """Random bytes with a media extension."""
    rng = random.Random(1)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(n)))
    return path


def make_empty(path: Path) -> Path:
    """A zero-length file."""
    path.write_bytes(b"")
    return path


def decode_16k(path: Path, rate: int = 16000) -> np.ndarray:
    """The whole audio of ``path`` as mono int16 at ``rate``: the truth a wav clip is a
    slice of (independent of indomer.media)."""
    res = subprocess.run(
        [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
         "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
        check=True, capture_output=True,
    )
    return np.frombuffer(res.stdout, dtype="<i2")


def decode_16k_on_timeline(path: Path, rate: int = 16000) -> np.ndarray:
    """The audio placed by its timestamps on ffmpeg's timeline (time 0 = the container's
    start): silence before a late first sample, pre-roll dropped. An oracle for where a
    clip's samples belong that does not count samples the way the cutter does."""
    res = subprocess.run(
        [FFMPEG, "-nostdin", "-loglevel", "error", "-i", str(path), "-map", "0:a:0",
         "-af", "aresample=async=1:first_pts=0:min_hard_comp=0.0001",
         "-ac", "1", "-ar", str(rate), "-f", "s16le", "-"],
        check=True, capture_output=True,
    )
    return np.frombuffer(res.stdout, dtype="<i2")


def read_wav(path: Path) -> tuple[np.ndarray, int, int]:
    """Samples, sample rate and channel count of a 16-bit wav."""
    import wave

    with wave.open(str(path), "rb") as w:
        data = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")
        return data, w.getframerate(), w.getnchannels()


def ffprobe_streams(path: Path) -> dict[str, dict]:
    """``{"video": {...}, "audio": {...}}`` stream facts (with frame counts) via ffprobe."""
    import json

    res = subprocess.run(
        [shutil.which("ffprobe") or "ffprobe", "-v", "error", "-count_frames",
         "-show_streams", "-show_format", "-of", "json", str(path)],
        check=True, capture_output=True,
    )
    info = json.loads(res.stdout)
    out = {s["codec_type"]: s for s in info["streams"]}
    out["format"] = info["format"]
    return out


def make_audio_only(path: Path, *, seconds: float = 2.0) -> Path:
    """An AAC-in-mp4 file without a video stream (an audio-only download)."""
    _ffmpeg(
        "-f", "lavfi", "-i", "anoisesrc=seed=2:sample_rate=16000",
        "-t", f"{seconds:.6f}", "-c:a", "aac", str(path),
    )
    return path


def make_zero_duration(path: Path) -> Path:
    """An mp4 that ffmpeg wrote from zero frames: a valid header, duration 0, no media."""
    _ffmpeg(
        "-f", "lavfi", "-i", "testsrc2=size=160x120:rate=25", "-f", "lavfi", "-i", "anoisesrc",
        "-frames:v", "0", "-t", "0", "-map", "0:v", "-map", "1:a",
        "-c:v", "libx264", "-c:a", "aac", str(path),
    )
    return path


def make_rotated(path: Path, good: Path, degrees: int = 90) -> Path:
    """``good`` with a display rotation (as phones record portrait video); stream copy."""
    _ffmpeg("-i", str(good), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}", str(path))
    return path
