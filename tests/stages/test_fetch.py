"""fetch.process: local files (link or copy), sha256 checks, refused ids and schemes, and
http(s) through the real yt-dlp against a local HTTP server (127.0.0.1 only)."""

from __future__ import annotations

import errno
import functools
import hashlib
import http.server
import os
import shutil
import subprocess
import threading
from pathlib import Path

import pytest
from quiet_server import QuietHTTPServer

from indomer.errors import RowRejected, UsageError
from indomer.rows import Video
from indomer.stages import fetch


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def clip(tmp_path: Path) -> Path:
    path = tmp_path / "src" / "talk.MP4"
    path.parent.mkdir()
    path.write_bytes(b"not really a video, but bytes are bytes" * 50)
    return path


def test_local_file_is_hard_linked_with_its_sha256(tmp_path, clip):
    media = tmp_path / "media"
    [got] = fetch.process(Video("s1", "Cooking", path=str(clip)), fetch.Settings(), media)
    dest = media / "s1.mp4"
    assert got.path == str(dest) and got.sha256 == _sha(clip.read_bytes())
    assert os.stat(dest).st_ino == os.stat(clip).st_ino  # same filesystem: no copy
    assert sorted(p.name for p in media.iterdir()) == ["s1.mp4"]  # no temp file left
    # fetching again (same link) is harmless and leaves no temp file either
    fetch.process(Video("s1", "Cooking", path=str(clip)), fetch.Settings(), media)
    assert sorted(p.name for p in media.iterdir()) == ["s1.mp4"]


def test_local_file_is_copied_when_a_link_is_impossible(tmp_path, clip, monkeypatch):
    def no_link(src, dst):
        raise OSError(errno.EXDEV, "Invalid cross-device link")

    monkeypatch.setattr(os, "link", no_link)
    [got] = fetch.process(Video("s1", "Cooking", path=str(clip)), fetch.Settings(), tmp_path / "m")
    assert Path(got.path).read_bytes() == clip.read_bytes()
    assert os.stat(got.path).st_ino != os.stat(clip).st_ino


def test_given_sha256_is_checked(tmp_path, clip):
    good = _sha(clip.read_bytes())
    [got] = fetch.process(
        Video("s1", "Cooking", path=str(clip), sha256=good.upper()), fetch.Settings(), tmp_path
    )
    assert got.sha256 == good
    wrong = "0" * 64
    with pytest.raises(RowRejected) as info:
        fetch.process(
            Video("s2", "Cooking", path=str(clip), sha256=wrong), fetch.Settings(), tmp_path / "m"
        )
    exc = info.value
    assert exc.row_id == "s2"
    assert exc.reason == f"sha256 mismatch: expected {wrong}, got {good}"
    assert "sha256" in exc.fix
    assert not (tmp_path / "m" / "s2.mp4").exists()  # the wrong file is not kept


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/v.mp4", "javascript:alert(1)", "//host/v"]
)
def test_other_url_schemes_are_refused(tmp_path, url):
    with pytest.raises(RowRejected, match="URL scheme .* is not supported") as info:
        fetch.process(Video("s1", "Cooking", url=url), fetch.Settings(), tmp_path / "m")
    assert "http(s)" in info.value.fix
    assert not (tmp_path / "m").exists() or not any((tmp_path / "m").iterdir())


@pytest.mark.parametrize("bad", ["../x", "..", ".hidden", "a/b", "a b", "", "-x", "x\n"])
def test_unsafe_ids_are_refused_before_any_path_is_built(tmp_path, clip, bad):
    media = tmp_path / "deep" / "media"
    with pytest.raises(RowRejected, match="unsafe source_id"):
        fetch.process(Video(bad, "Cooking", path=str(clip)), fetch.Settings(), media)
    assert not (tmp_path / "deep").exists()


def test_missing_local_file_is_rejected(tmp_path):
    with pytest.raises(RowRejected, match="no such file"):
        fetch.process(
            Video("s1", "Cooking", path=str(tmp_path / "x.mp4")), fetch.Settings(), tmp_path
        )


def test_settings_are_checked():
    from indomer.config import make_settings

    with pytest.raises(UsageError, match="fetch.max_height: 0 is less than the minimum of 1"):
        make_settings(fetch.Settings, {"max_height": 0}, "fetch")
    assert fetch.format_selector(480) == (
        "bv*[height<=480][ext=mp4]+ba[ext=m4a]/b[height<=480]/b[height<=?480]"
    )


# --------------------------------------------------------------------------- yt-dlp


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def server(tmp_path):
    """A local HTTP server for a folder holding a 1 s H.264/AAC mp4 made by ffmpeg."""
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg is None:
        pytest.skip("ffmpeg not installed")
    root = tmp_path / "www"
    root.mkdir()
    subprocess.run(
        [ffmpeg, "-nostdin", "-loglevel", "error", "-y",
         "-f", "lavfi", "-i", "testsrc=size=96x64:rate=10",
         "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=16000",
         "-t", "1", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest",
         str(root / "talk.mp4")],
        check=True,
    )  # fmt: skip
    handler = functools.partial(_Quiet, directory=str(root))
    httpd = QuietHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", root
    httpd.shutdown()
    httpd.server_close()


def test_http_url_goes_through_yt_dlp_with_the_documented_options(tmp_path, server, monkeypatch):
    import yt_dlp

    base, root = server
    seen = []

    class Spy(yt_dlp.YoutubeDL):
        def __init__(self, params=None, *args, **kwargs):
            seen.append(dict(params or {}))
            super().__init__(params, *args, **kwargs)

    monkeypatch.setattr(yt_dlp, "YoutubeDL", Spy)
    settings = fetch.Settings(max_height=360, retries=2)
    media = tmp_path / "media"
    [got] = fetch.process(Video("s1", "Cooking", url=f"{base}/talk.mp4"), settings, media)
    served = (root / "talk.mp4").read_bytes()
    assert got.path == str(media / "s1.mp4") and Path(got.path).read_bytes() == served
    assert got.sha256 == _sha(served) and got.url == f"{base}/talk.mp4"
    assert sorted(p.name for p in media.iterdir()) == ["s1.mp4"]  # temp folder cleaned up
    [params] = seen
    assert params["format"] == fetch.format_selector(360)
    assert params["merge_output_format"] == "mp4"
    assert params["retries"] == params["fragment_retries"] == 2
    assert params["noplaylist"] is True and params["cachedir"] is False
    assert params["outtmpl"].endswith("s1.%(ext)s")
    assert "exec" not in str(params.get("postprocessors", ""))  # no shell hooks


def test_unreachable_url_is_rejected_with_the_reason(tmp_path, server):
    base, _ = server
    with pytest.raises(RowRejected, match=r"download failed: .*404") as info:
        fetch.process(
            Video("s1", "Cooking", url=f"{base}/missing.mp4"),
            fetch.Settings(retries=0),
            tmp_path / "m",
        )
    assert "local path" in info.value.fix
    assert not any((tmp_path / "m").iterdir())
