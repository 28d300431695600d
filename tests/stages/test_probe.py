"""probe.process on generated media: the facts it fills in, and what it refuses and why."""

from __future__ import annotations

from pathlib import Path

import pytest

from indomer.errors import RowRejected
from indomer.media import MissingProgramError, ffmpeg_exe, last_line
from indomer.rows import Video
from indomer.stages import probe
from stages import media_fixtures as mf

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory) -> Path:
    d = tmp_path_factory.mktemp("probe")
    good = mf.make_av(d / "good.mp4", seconds=4.0, fps=25, size="320x240", sample_rate=44100)
    mf.make_av(d / "delayed.mkv", seconds=3.0, fps=30, size="160x120", audio_delay=0.5)
    mf.make_video_only(d / "silent.mp4")
    mf.make_audio_only(d / "audio.m4a")
    mf.make_corrupt(d / "corrupt.mp4", good)
    mf.make_truncated(d / "truncated.mp4", good)
    mf.make_garbage(d / "garbage.mp4")
    mf.make_empty(d / "empty.mp4")
    mf.make_zero_duration(d / "zero.mp4")
    mf.make_rotated(d / "portrait.mp4", good, 90)
    return d


def _video(path: Path | None) -> Video:
    return Video(source_id="7", topic="Cooking", url=None, path=str(path) if path else None)


def test_fills_in_the_facts(media_dir):
    [v] = probe.process(_video(media_dir / "good.mp4"))
    assert v.duration == pytest.approx(4.0, abs=0.05)
    assert v.fps == 25.0
    assert (v.width, v.height) == (320, 240)
    assert (v.video_codec, v.audio_codec, v.sample_rate) == ("h264", "aac", 44100)
    # the rest of the row is kept as it was
    assert (v.source_id, v.topic, v.path) == ("7", "Cooking", str(media_dir / "good.mp4"))


def test_other_container_and_codec(media_dir):
    [v] = probe.process(_video(media_dir / "delayed.mkv"))
    assert v.fps == 30.0 and (v.width, v.height) == (160, 120)
    assert v.audio_codec == "pcm_s16le" and v.duration == pytest.approx(3.0, abs=0.6)


def test_rotated_video_reports_the_displayed_size(media_dir):
    [v] = probe.process(_video(media_dir / "portrait.mp4"))
    assert (v.width, v.height) == (240, 320)


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("empty.mp4", "empty (0 bytes)"),
        ("garbage.mp4", "not a readable media file"),
        ("corrupt.mp4", "does not decode"),
        ("truncated.mp4", "does not decode"),
        ("silent.mp4", "no audio stream"),
        ("audio.m4a", "no video stream"),
        ("zero.mp4", "zero duration"),
        ("missing.mp4", "not found"),
    ],
)
def test_rejects_with_reason_and_fix(media_dir, name, reason):
    with pytest.raises(RowRejected) as info:
        probe.process(_video(media_dir / name))
    assert info.value.row_id == "7"
    assert reason in info.value.reason
    assert info.value.fix
    assert "@ 0x" not in info.value.reason  # no run-dependent pointer in rejected.jsonl


def test_rejects_a_row_without_a_file():
    with pytest.raises(RowRejected, match="no local media file"):
        probe.process(_video(None))


def test_audio_only_is_allowed_when_asked(media_dir):
    [v] = probe.process(_video(media_dir / "audio.m4a"), probe.Settings(require_video=False))
    assert v.width is None and v.video_codec is None and v.sample_rate == 16000


def test_missing_ffmpeg_is_one_clear_line(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(MissingProgramError, match="apt-get install ffmpeg"):
        ffmpeg_exe()


def test_error_lines_drop_pointers_and_generic_trailers():
    err = b"[h264 @ 0x55e07ab2b840] Invalid NAL unit size\nConversion failed!\n"
    assert last_line(err) == "[h264] Invalid NAL unit size"
