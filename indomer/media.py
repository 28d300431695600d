"""ffmpeg and ffprobe, run as programs with argument lists (never a shell string).

Every stage that touches media goes through here, so the program lookup, the quiet flags,
and the one-line error built from ffmpeg's stderr are the same everywhere. Paths are passed
as ``file:/absolute/path``: a name starting with ``-`` or containing ``:`` is then never read
as an option or a protocol.
"""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import struct
import subprocess
import tempfile
import wave
from pathlib import Path
from typing import IO, Any, BinaryIO, NamedTuple

import numpy as np

from indomer.errors import DataError, IndomerError, MissingExtraError

#: Prepended to every ffmpeg call: no keyboard, no banner, no progress, only real errors.
QUIET = ["-nostdin", "-hide_banner", "-nostats", "-loglevel", "error"]

_ADDRESS = re.compile(r"\[([^\]@]+?) @ 0x[0-9a-fA-F]+\]")


class MissingProgramError(MissingExtraError):
    """ffmpeg or ffprobe is not on PATH; a system package, not a pip extra, fixes it."""

    def __init__(self, program: str) -> None:
        IndomerError.__init__(
            self,
            f"{program} not found on PATH; install ffmpeg: apt-get install ffmpeg "
            "(macOS: brew install ffmpeg)",
        )


class MediaError(DataError):
    """ffmpeg or ffprobe failed on a file; ``detail`` is ffmpeg's own last error line and
    ``first`` its first (for decode errors the first names the cause)."""

    def __init__(self, message: str, detail: str, first: str = "") -> None:
        super().__init__(message)
        self.detail = detail
        self.first = first or detail


def _program(name: str) -> str:
    found = shutil.which(name)
    if found is None:
        raise MissingProgramError(name)
    return found


def ffmpeg_exe() -> str:
    """The ffmpeg program on PATH (looked up each call, so tests can change PATH)."""
    return _program("ffmpeg")


def ffprobe_exe() -> str:
    """The ffprobe program on PATH."""
    return _program("ffprobe")


def file_arg(path: str | os.PathLike[str]) -> str:
    """``file:`` plus the absolute path: safe for any file name, as input or output."""
    return "file:" + os.path.abspath(os.fspath(path))


#: ffmpeg's closing lines that only say that something failed earlier.
_GENERIC = ("Conversion failed!", "Error marking filters as finished", "Exiting normally")


def last_line(stderr: bytes | str) -> str:
    """ffmpeg's last stderr line that says something (its generic closing lines skipped),
    without the run-dependent ``@ 0x...`` address, so rejection reasons are reproducible."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    useful = [ln for ln in lines if not ln.startswith(_GENERIC)] or lines
    return _ADDRESS.sub(r"[\1]", useful[-1]) if useful else ""


def first_line(stderr: bytes | str) -> str:
    """ffmpeg's first non-empty stderr line (address removed, as in :func:`last_line`)."""
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else stderr
    lines = [ln.strip() for ln in text.splitlines() if ln.strip()]
    return _ADDRESS.sub(r"[\1]", lines[0]) if lines else ""


def fd_arg(fd: int) -> str:
    """``file:/dev/fd/N``: the input argument for a file we hold open as descriptor ``fd``
    (pass it with ``pass_fds``). ffmpeg then reads the very file we opened and checked, so a
    name swapped for a link after the check is never followed (Linux and macOS)."""
    return f"file:/dev/fd/{fd}"


def run_ffmpeg(
    args: list[str],
    *,
    stdout: int | IO[bytes] | None = None,
    strict: bool = False,
    pass_fds: tuple[int, ...] = (),
) -> bytes:
    """Run ``ffmpeg QUIET + args``; return its stdout (when piped) or b"".

    Raises :class:`MediaError` with ffmpeg's last stderr line when it exits non-zero, and
    with ``strict`` also when it printed any error (ffmpeg exits 0 after decode errors, so a
    corrupt stream is only visible on stderr). ``pass_fds`` are open files that ``args``
    name with :func:`fd_arg`.
    """
    cmd = [ffmpeg_exe(), *QUIET, *args]
    proc = subprocess.run(
        cmd,
        check=False,
        stdin=subprocess.DEVNULL,
        stdout=stdout,
        stderr=subprocess.PIPE,
        pass_fds=pass_fds,
    )
    detail = last_line(proc.stderr)
    if proc.returncode != 0 or (strict and detail):
        detail = detail or f"exit status {proc.returncode}"
        raise MediaError(f"ffmpeg failed: {detail}", detail, first_line(proc.stderr))
    return proc.stdout if isinstance(proc.stdout, bytes) else b""


def ffprobe(path: str | os.PathLike[str], *, fd: int | None = None) -> dict[str, Any]:
    """Container and stream facts as ffprobe's JSON (``format`` and ``streams``); with
    ``fd``, of the file open as that descriptor (``path`` is then only for messages)."""
    cmd = [
        ffprobe_exe(), "-hide_banner", "-loglevel", "error",
        "-print_format", "json", "-show_format", "-show_streams",
        file_arg(path) if fd is None else fd_arg(fd),
    ]
    proc = subprocess.run(
        cmd,
        check=False,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        pass_fds=() if fd is None else (fd,),
    )
    detail = last_line(proc.stderr)
    if fd is not None:
        detail = detail.replace(fd_arg(fd), os.fspath(path))
    if proc.returncode != 0:
        raise MediaError(f"ffprobe failed: {detail or f'exit status {proc.returncode}'}", detail)
    try:
        info = json.loads(proc.stdout)
    except ValueError as exc:
        raise MediaError(f"ffprobe printed no JSON: {exc}", str(exc)) from None
    info.setdefault("streams", [])
    info.setdefault("format", {})
    return info


def first_frame_time(path: str | os.PathLike[str], stream: int) -> float | None:
    """The timestamp (seconds) of the first frame the decoder returns for ``stream``.

    Not the stream's ``start_time``: that is the first packet's, and a decoder that drops
    pre-roll samples (Opus pre-skip, AAC priming without an edit list) starts later. For an
    Opus track in WebM, the usual YouTube download, the two differ by 6.5 ms.
    """
    cmd = [
        ffprobe_exe(), "-hide_banner", "-loglevel", "error", "-select_streams", str(stream),
        "-read_intervals", "%+#16", "-show_entries", "frame=best_effort_timestamp_time,pts_time",
        "-print_format", "json", file_arg(path),
    ]
    proc = subprocess.run(cmd, check=False, stdin=subprocess.DEVNULL, capture_output=True)
    if proc.returncode != 0:
        detail = last_line(proc.stderr) or f"exit status {proc.returncode}"
        raise MediaError(f"ffprobe failed: {detail}", detail)
    try:
        frames = json.loads(proc.stdout).get("frames", [])
    except ValueError:
        return None
    for frame in frames:
        for key in ("best_effort_timestamp_time", "pts_time"):
            t = as_float(frame.get(key))
            if t is not None:
                return t
    return None


def pick_stream(info: dict[str, Any], kind: str) -> dict[str, Any] | None:
    """The first ``video``/``audio`` stream, skipping cover art (an attached picture)."""
    for st in info.get("streams", []):
        if st.get("codec_type") != kind:
            continue
        if kind == "video" and st.get("disposition", {}).get("attached_pic"):
            continue
        return st
    return None


def as_float(value: Any) -> float | None:
    """ffprobe's numbers come as strings, ``N/A`` or ``num/den`` ratios."""
    if value is None:
        return None
    text = str(value)
    try:
        if "/" in text:
            num, den = text.split("/", 1)
            return float(num) / float(den) if float(den) else None
        return float(text)
    except ValueError:
        return None


def to_samples(seconds: float, rate: int) -> int:
    """Seconds to a sample index the way ffmpeg does it: through whole microseconds, then
    rounding half away from zero (``av_rescale``), so our slices match ffmpeg's trims."""
    us = round(seconds * 1_000_000)
    q, r = divmod(abs(us) * rate, 1_000_000)
    n = q + (1 if 2 * r >= 1_000_000 else 0)
    return n if us >= 0 else -n


def decode_pcm(
    path: str | os.PathLike[str], *, rate: int, stream: int | None = None
) -> np.ndarray:
    """The whole audio stream as mono int16 at ``rate`` (one ffmpeg decode, one resampler
    run, so any slice of it equals the source's resample over that span)."""
    args = [
        "-threads", "1", "-i", file_arg(path),
        "-map", f"0:{stream}" if stream is not None else "0:a:0",
        "-vn", "-sn", "-dn", "-ac", "1", "-ar", str(rate),
        "-c:a", "pcm_s16le", "-f", "s16le", "pipe:1",
    ]
    # ffmpeg writes to a temp file that numpy reads straight into the array: one copy in
    # memory (115 MB per hour of audio), not a pipe buffer plus an array.
    with tempfile.TemporaryFile() as fh:
        run_ffmpeg(args, stdout=fh)
        fh.seek(0)
        return np.fromfile(fh, dtype="<i2")


def publish(tmp: Path, final: Path) -> None:
    """fsync ``tmp`` (written by us or by ffmpeg), make it world-readable like any output
    file (mkstemp makes 0600), and rename it over ``final``."""
    fd = os.open(tmp, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.chmod(tmp, 0o644)
    os.replace(tmp, final)


def temp_beside(final: Path) -> Path:
    """An empty temp file in ``final``'s folder (same file system, so the rename is atomic),
    named ``.<name>.<random>.tmp`` so a listing never mistakes it for a finished file."""
    fd, tmp = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(tmp)


def wav_bytes(samples: np.ndarray, rate: int) -> bytes:
    """A mono 16-bit PCM WAV file; the ``wave`` header is fixed, so equal samples give equal
    bytes."""
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.ascontiguousarray(samples, dtype="<i2").tobytes())
    return buf.getvalue()


def _sound_file():
    import soundfile  # a base requirement (setup.cfg), imported when audio is read

    return soundfile


class WavHeader(NamedTuple):
    """What a WAV's header says (:func:`wav_header`): ``frames`` is what the file holds,
    ``announced`` what its data chunk claims (more when the file was cut short)."""

    rate: int
    channels: int
    frames: int
    subtype: str
    announced: int


#: libsndfile's log line of a WAV's data chunk: ``data : BYTES`` (``(should be N)`` after it
#: when the file holds fewer bytes than the header announces).
_DATA_LOG = re.compile(r"^data : (\d+)", re.MULTILINE)
#: Bytes per sample of the PCM subtypes, to turn the announced data bytes into frames.
_SUBTYPE_BYTES = {"PCM_U8": 1, "PCM_S8": 1, "PCM_16": 2, "PCM_24": 3, "PCM_32": 4,
                  "FLOAT": 4, "DOUBLE": 8}


def wav_header(src: str | os.PathLike[str] | bytes | BinaryIO) -> WavHeader | None:
    """The header of a WAV file, WAV bytes or an open WAV file (read from its start), or None
    when it is not a WAV libsndfile reads. The one WAV header reader (soundfile/libsndfile)."""
    sf = _sound_file()
    if isinstance(src, bytes):
        src = io.BytesIO(src)
    elif hasattr(src, "seek"):
        src.seek(0)
    try:
        info = sf.info(src if hasattr(src, "read") else os.fspath(src))
    except (sf.SoundFileError, RuntimeError, OSError, EOFError):
        return None
    if info.format not in ("WAV", "RF64", "WAVEX"):
        return None
    frames, channels = int(info.frames), int(info.channels)
    announced = frames
    found = _DATA_LOG.search(info.extra_info or "")
    width = _SUBTYPE_BYTES.get(str(info.subtype))
    if found and width and channels:
        announced = max(frames, int(found.group(1)) // (width * channels))
    return WavHeader(int(info.samplerate), channels, frames, str(info.subtype), announced)


def wav_info(src: str | os.PathLike[str] | bytes) -> tuple[int, int, int, str] | None:
    """``(rate, channels, frames, subtype)`` of a WAV file or WAV bytes from its header, or
    None when it is not a readable WAV (:func:`wav_header`)."""
    head = wav_header(src)
    return None if head is None else (head.rate, head.channels, head.frames, head.subtype)


def read_wav(
    src: str | os.PathLike[str] | bytes, *, name: str | None = None, fix: str = ""
) -> tuple[np.ndarray, int]:
    """A WAV file (or WAV bytes) as float32 samples in [-1, 1], one column per channel, and
    its sampling rate: PCM 8/16/24/32-bit and IEEE float, through soundfile (libsndfile),
    the one WAV reader of indomer. Anything else is one DataError line naming ``name``."""
    sf = _sound_file()
    shown = name or (os.fspath(src) if not isinstance(src, bytes) else "WAV bytes")
    if wav_info(src) is None:
        raise DataError(f"{shown}: not a WAV file (libsndfile cannot read it)" +
                        (f"; {fix}" if fix else ""))
    try:
        samples, rate = sf.read(
            io.BytesIO(src) if isinstance(src, bytes) else os.fspath(src),
            dtype="float32",
            always_2d=True,
        )
    except (sf.SoundFileError, RuntimeError, OSError) as exc:
        raise DataError(f"{shown}: unreadable WAV ({exc})" + (f"; {fix}" if fix else "")) from None
    return np.ascontiguousarray(samples, dtype=np.float32), int(rate)


def write_wav(path: Path, samples: np.ndarray, rate: int) -> None:
    """:func:`wav_bytes`, written atomically (temp file, fsync, rename)."""
    tmp = temp_beside(path)
    try:
        tmp.write_bytes(wav_bytes(samples, rate))
        publish(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


# ---------------------------------------------------------------------------------------
# A minimal MP4 reader: track durations and sample counts, without starting a process.

_CONTAINERS = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _boxes(data: bytes, start: int, end: int):
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        head = 8
        if size == 1:
            if pos + 16 > end:
                return
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
            head = 16
        elif size == 0:
            size = end - pos
        if size < head or pos + size > end:
            return
        yield kind, pos + head, pos + size
        pos += size


def _read_moov(path: Path) -> bytes:
    with open(path, "rb") as fh:
        pos = 0
        while True:
            fh.seek(pos)
            head = fh.read(16)
            if len(head) < 8:
                raise MediaError(f"{path}: no moov box", "no moov box")
            size, kind = struct.unpack(">I4s", head[:8])
            hlen = 8
            if size == 1:
                size, hlen = struct.unpack(">Q", head[8:16])[0], 16
            elif size == 0:
                size = os.fstat(fh.fileno()).st_size - pos
            if size < hlen:
                raise MediaError(f"{path}: bad box size", "bad box size")
            if kind == b"moov":
                fh.seek(pos)
                return fh.read(size)
            pos += size


def mp4_tracks(path: str | os.PathLike[str]) -> dict[str, tuple[float, int]]:
    """``{"vide": (seconds, samples), "soun": (...)}`` from each track's ``mdhd`` and
    ``stsz``: the encoded length of a clip, to check a cut without another ffprobe run."""
    moov = _read_moov(Path(path))
    out: dict[str, tuple[float, int]] = {}
    for kind, s, e in _boxes(moov, 8, len(moov)):
        if kind != b"trak":
            continue
        handler, seconds, count = "", 0.0, 0
        stack = [(s, e)]
        while stack:
            a, b = stack.pop()
            for k, cs, ce in _boxes(moov, a, b):
                if k in _CONTAINERS:
                    stack.append((cs, ce))
                elif k == b"hdlr":
                    handler = moov[cs + 8 : cs + 12].decode("latin-1")
                elif k == b"mdhd":
                    if moov[cs] == 1:
                        scale, dur = struct.unpack(">IQ", moov[cs + 20 : cs + 32])
                    else:
                        scale, dur = struct.unpack(">II", moov[cs + 12 : cs + 20])
                    seconds = dur / scale if scale else 0.0
                elif k == b"stsz":
                    count = struct.unpack(">I", moov[cs + 8 : cs + 12])[0]
        if handler and handler not in out:
            out[handler] = (seconds, count)
    return out


#: The sample rate the stages analyse audio at.
AUDIO_RATE = 16_000


def read_audio(path: Path, row_id: str) -> np.ndarray:
    """The first audio stream of ``path`` as 16 kHz mono float32, decoded by ffmpeg (the
    segment and voices stages both read a source this way)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        from indomer.errors import UsageError

        raise UsageError("ffmpeg is not on PATH; install it (Debian: apt-get install ffmpeg)")
    cmd = [exe, "-nostdin", "-v", "error", "-i", str(path), "-vn", "-sn", "-dn",
           "-ac", "1", "-ar", str(AUDIO_RATE), "-f", "f32le", "-"]
    res = subprocess.run(cmd, capture_output=True, check=False)
    if res.returncode != 0:
        lines = res.stderr.decode("utf-8", "replace").strip().splitlines()
        from indomer.errors import RowRejected

        raise RowRejected(row_id, f"ffmpeg cannot decode the audio of {path}: "
                          f"{lines[-1] if lines else 'exit code ' + str(res.returncode)}",
                          "check that the file is a playable video with an audio track")
    wav = np.frombuffer(res.stdout, dtype="<f4").astype(np.float32)
    if wav.size == 0:
        from indomer.errors import RowRejected

        raise RowRejected(row_id, f"{path} has no audio samples",
                          "check that the file has an audio track")
    return wav
