"""Fetch: put each source video under the build folder, with its sha256.

http(s) URLs go through yt-dlp's Python API (no shell; mp4 preferred, capped at
``max_height``); local files are hard-linked when on the same filesystem (no copy of a
multi-GB video) and copied otherwise; a link shares the file, so a source edited in place
changes its size/mtime and the next build fetches (and hashes) it again. Every file appears under its final name only when it
is whole (temp file + rename), so a killed build never leaves a half video that looks done.
Ids become file names, so an unsafe id is refused before any path is built; other URL
schemes (``file:``, ``ftp:``, ``javascript:``) are refused rather than guessed at.
"""

from __future__ import annotations

import dataclasses
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field

from indomer.errors import RowRejected
from indomer.fsutil import sha256_file
from indomer.rows import SAFE_ID, Video
from indomer.stage import FolderState, Item, ItemStage, folder_setup, settings_of

#: Bump when the fetch output for the same input and settings changes.
VERSION = "1"
SCHEMES: tuple[str, ...] = ("http", "https")
_SUFFIX_RE = re.compile(r"^\.[A-Za-z0-9]{1,8}$")
_ANSI_RE = re.compile(r"\x1b\[[0-9;]*m")
#: errno values meaning "a hard link is impossible here", so copying is the answer.
_NO_LINK = {errno.EXDEV, errno.EPERM, errno.EMLINK, errno.ENOTSUP, errno.EACCES}


@dataclass(frozen=True)
class Settings:
    """``fetch:`` in the build config; retries and timeouts do not change the output."""

    # the bounds are checked by the config's pydantic model (indomer.config.section_model)
    max_height: Annotated[int, Field(ge=1)] = 720
    retries: Annotated[int, Field(ge=0)] = field(default=3, metadata={"fingerprint": False})
    socket_timeout: Annotated[float, Field(gt=0)] = field(
        default=30.0, metadata={"fingerprint": False})


def format_selector(max_height: int) -> str:
    """yt-dlp format: mp4 video + m4a audio up to the height, else the best single file.

    The last alternative accepts formats of unknown height (direct file links carry none),
    but only when no format of known height fits.
    """
    h = int(max_height)
    return f"bv*[height<={h}][ext=mp4]+ba[ext=m4a]/b[height<={h}]/b[height<=?{h}]"


def ydl_options(settings: Settings, outtmpl: str) -> dict:
    """The YoutubeDL params: quiet, one video, merged to mp4, retried, no cache or shell hooks."""
    return {
        "format": format_selector(settings.max_height),
        "merge_output_format": "mp4",
        "outtmpl": outtmpl,
        "retries": settings.retries,
        "fragment_retries": settings.retries,
        "extractor_retries": settings.retries,
        "socket_timeout": settings.socket_timeout,
        "noplaylist": True,
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "cachedir": False,
        "updatetime": False,
        "overwrites": True,
        "restrictfilenames": True,
    }


class _QuietLogger:
    """yt-dlp talks to this instead of stdout; the last error becomes the rejection reason."""

    def __init__(self) -> None:
        self.errors: list[str] = []

    def debug(self, msg: str) -> None:
        pass

    def info(self, msg: str) -> None:
        pass

    def warning(self, msg: str) -> None:
        pass

    def error(self, msg: str) -> None:
        self.errors.append(msg)


def _one_line(text: str) -> str:
    text = _ANSI_RE.sub("", str(text)).strip().splitlines()[0] if str(text).strip() else ""
    return text.removeprefix("ERROR: ").strip()


def download_url(url: str, workdir: Path, settings: Settings, source_id: str) -> Path:
    """Download ``url`` with yt-dlp into ``workdir``; return the file. Raises RowRejected."""
    import yt_dlp

    opts = ydl_options(settings, str(workdir / f"{source_id}.%(ext)s"))
    logger = _QuietLogger()
    opts["logger"] = logger
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False, process=False)
            if info.get("_type") in ("playlist", "multi_video"):
                raise RowRejected(
                    source_id,
                    f"{url} is a playlist, not one video",
                    "give one URL per video in sources.csv",
                )
            info = ydl.process_ie_result(info, download=True)
    except yt_dlp.utils.YoutubeDLError as exc:
        raise RowRejected(
            source_id,
            f"download failed: {_one_line(exc) or _one_line(logger.errors[-1:] or ['unknown'])}",
            "check that the URL plays in a browser, or download it and give the local path",
        ) from None
    files = [
        Path(d["filepath"])
        for d in (info or {}).get("requested_downloads") or []
        if "filepath" in d
    ]
    if not files:
        files = sorted(p for p in workdir.iterdir() if p.suffix not in (".part", ".ytdl"))
    if not files or not files[0].is_file():
        raise RowRejected(
            source_id,
            f"yt-dlp reported no file for {url}",
            "check the URL, or download it and give the local path",
        )
    return files[0]


def place_local(src: Path, dest: Path) -> str:
    """Hard-link (same filesystem) or copy ``src`` to ``dest`` atomically; return how."""
    fd, tmp_name = tempfile.mkstemp(prefix=f".{dest.name}.", suffix=".tmp", dir=dest.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    tmp.unlink()
    try:
        try:
            os.link(src, tmp)
            how = "link"
        except OSError as exc:
            if exc.errno not in _NO_LINK:
                raise
            with open(src, "rb") as fin, open(tmp, "wb") as fout:
                shutil.copyfileobj(fin, fout, 1 << 20)
                fout.flush()
                os.fsync(fout.fileno())
            how = "copy"
        os.replace(tmp, dest)
        # rename() between two links of one file does nothing and leaves tmp (POSIX).
        tmp.unlink(missing_ok=True)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return how


def check_target(video: Video) -> None:
    """Refuse unsafe ids and unsupported URL schemes before anything touches the disk."""
    sid = video.source_id
    if not isinstance(sid, str) or not SAFE_ID.fullmatch(sid):
        raise RowRejected(
            str(sid),
            f"unsafe source_id {sid!r} (ids become file names)",
            "use letters, digits, '_' or '-', starting with a letter or digit",
        )
    if video.url is not None:
        scheme = urlsplit(video.url).scheme.lower()
        if scheme not in SCHEMES:
            raise RowRejected(
                sid,
                f"URL scheme {scheme + ':' if scheme else '(none)'!s} is not supported",
                "give an http(s) URL or a local file path in url_or_path",
            )
    elif not video.path:
        raise RowRejected(sid, "no URL and no path", "fill url_or_path in sources.csv")


def process(
    video: Video,
    cfg: Settings,
    media_dir: Path,
    *,
    downloader: Callable[[str, Path, Settings, str], Path] = download_url,
) -> list[Video]:
    """Fetch one source into ``media_dir``; return it with ``path`` and ``sha256`` filled.

    A sha256 given in sources.csv must match the fetched bytes (both hashes are reported).
    ``downloader`` is the yt-dlp boundary (tests may replace it).
    """
    check_target(video)
    sid = video.source_id
    media_dir = Path(media_dir)
    media_dir.mkdir(parents=True, exist_ok=True)
    if video.url is not None:
        work = Path(tempfile.mkdtemp(prefix=f".{sid}.", dir=media_dir))
        try:
            got = downloader(video.url, work, cfg, sid)
            dest = media_dir / f"{sid}{got.suffix.lower() if _SUFFIX_RE.match(got.suffix) else ''}"
            os.replace(got, dest)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    else:
        src = Path(video.path)
        if not src.is_file():
            raise RowRejected(
                sid,
                f"no such file {src}",
                "fix url_or_path in sources.csv (relative paths start at the sources file)",
            )
        suffix = src.suffix.lower() if _SUFFIX_RE.match(src.suffix) else ""
        dest = media_dir / f"{sid}{suffix}"
        place_local(src, dest)
    digest = sha256_file(dest)
    if video.sha256 is not None and video.sha256.lower() != digest:
        dest.unlink(missing_ok=True)
        raise RowRejected(
            sid,
            f"sha256 mismatch: expected {video.sha256.lower()}, got {digest}",
            "check that the file is the intended one, or correct the sha256 in sources.csv",
        )
    return [dataclasses.replace(video, path=str(dest), sha256=digest)]


def tool_versions() -> dict[str, str]:
    """What the fetch output depends on besides the input: yt-dlp's version."""
    try:
        from yt_dlp.version import __version__ as ytv
    except ImportError:
        ytv = "missing"
    return {"yt-dlp": ytv}


__all__ = ["Settings", "download_url", "format_selector", "process", "ydl_options"]


# --------------------------------------------------------------------------- the stage


def _run(item: Item, state: FolderState) -> list:
    return process(item.video, state.settings, state.folder)


def _salt(item: Item) -> str:
    """Local sources: size and mtime, so an edited file is fetched again; URLs: yt-dlp."""
    import json

    v = item.video
    if v.url is not None:
        return json.dumps(tool_versions(), sort_keys=True)
    try:
        st = os.stat(v.path) if v.path else None
    except OSError:
        return "missing"
    return f"{st.st_size}:{st.st_mtime_ns}:{st.st_ino}" if st else "missing"


STAGE = ItemStage(
    "fetch",
    _run,
    settings=settings_of("fetch"),
    setup=folder_setup("media"),
    salt=_salt,
    reads=("sources",),
)
