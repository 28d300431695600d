"""media.py: the ffmpeg wrappers every media stage shares, checked against real ffmpeg and
ffprobe on media generated here with exact lengths."""

from __future__ import annotations

import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest

from indomer import media
from indomer.errors import RowRejected

RATE = media.AUDIO_RATE


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    """3.0 s of 25 fps video and a 440 Hz tone (48 kHz AAC), in a file whose name starts
    with a dash (ffmpeg would read a bare ``-x.mp4`` as an option)."""
    path = tmp_path_factory.mktemp("media") / "-clip one.mp4"
    cmd = [media.ffmpeg_exe(), "-nostdin", "-v", "error", "-y",
           "-f", "lavfi", "-i", "testsrc=size=160x120:rate=25:duration=3",
           "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000:duration=3",
           "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
           "-c:a", "aac", "-shortest", media.file_arg(path)]
    subprocess.run(cmd, check=True)
    return path


def test_to_samples_rounds_like_ffmpeg():
    assert media.to_samples(0.5, RATE) == 8000
    # through whole microseconds, as av_rescale: 1.0000314 s is 16000.5024 samples exactly,
    # but 1000031 us, 16000.496 samples, so 16000; 1.0000316 s is 1000032 us, 16000.512
    assert media.to_samples(1.0000314, RATE) == 16000
    assert media.to_samples(1.0000316, RATE) == 16001
    assert media.to_samples(0.00005, 10_000) == 1  # exactly half a sample: away from zero
    assert media.to_samples(-0.00005, 10_000) == -1
    assert media.to_samples(0.0, RATE) == 0


@pytest.mark.parametrize(("value", "want"), [("25/1", 25.0), ("30000/1001", 30000 / 1001),
                                              ("0/0", None), ("N/A", None), (None, None),
                                              ("3.5", 3.5), (7, 7.0)])
def test_as_float_reads_ffprobe_numbers(value, want):
    got = media.as_float(value)
    assert got == pytest.approx(want) if want is not None else got is None


def test_ffmpeg_lines_drop_generic_closers_and_addresses():
    err = (b"[mov,mp4,m4a,3gp,3g2,mj2 @ 0x55d1c0a2b3c0] moov atom not found\n"
           b"x.mp4: Invalid data found when processing input\n"
           b"Conversion failed!\n")
    assert media.last_line(err) == "x.mp4: Invalid data found when processing input"
    assert media.first_line(err) == "[mov,mp4,m4a,3gp,3g2,mj2] moov atom not found"
    assert media.last_line("") == "" and media.first_line(b"\n \n") == ""


def test_file_arg_is_absolute_and_safe_for_a_leading_dash(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert media.file_arg("-x.mp4") == f"file:{tmp_path}/-x.mp4"


def test_wav_bytes_are_deterministic_and_readable(tmp_path):
    x = (np.sin(np.arange(1600) / 5) * 12000).astype(np.int16)
    data = media.wav_bytes(x, RATE)
    assert data == media.wav_bytes(x.copy(), RATE)
    path = tmp_path / "a.wav"
    media.write_wav(path, x, RATE)
    assert path.read_bytes() == data
    assert [p.name for p in tmp_path.iterdir()] == ["a.wav"]  # no temp file left behind
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth(), w.getframerate()) == (1, 2, RATE)
        assert np.array_equal(np.frombuffer(w.readframes(w.getnframes()), "<i2"), x)


def test_mp4_tracks_agree_with_ffprobe(clip):
    tracks = media.mp4_tracks(clip)
    probe = media.ffprobe(clip)
    streams = {s["codec_type"]: s for s in probe["streams"]}
    assert tracks["vide"][1] == int(streams["video"]["nb_frames"]) == 75
    assert tracks["vide"][0] == pytest.approx(3.0, abs=1e-6)
    assert tracks["soun"][1] == int(streams["audio"]["nb_frames"])
    # mdhd counts the AAC encoder's 1024 priming samples, which the edit list hides from ffprobe
    assert tracks["soun"][0] == pytest.approx(float(streams["audio"]["duration"]) + 1024 / 48000,
                                              abs=1e-4)


def test_mp4_tracks_refuses_a_file_without_moov(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\x00\x00\x00\x10ftypisom\x00\x00\x00\x00")
    with pytest.raises(media.MediaError, match="no moov box"):
        media.mp4_tracks(bad)


def test_decode_pcm_and_read_audio_give_the_same_resampled_tone(clip):
    pcm = media.decode_pcm(clip, rate=RATE)
    wav = media.read_audio(clip, "clip_1_Talk_1")
    assert pcm.dtype == np.dtype("<i2") and wav.dtype == np.float32
    assert abs(len(pcm) - 3 * RATE) <= 1024 + 160 and abs(len(wav) - len(pcm)) <= 1
    # the tone is there: the strongest frequency of the middle second is 440 Hz
    mid = wav[RATE: 2 * RATE]
    peak = np.argmax(np.abs(np.fft.rfft(mid))) * RATE / len(mid)
    assert peak == pytest.approx(440, abs=2)
    assert np.allclose(pcm[RATE: 2 * RATE] / 32768, mid, atol=2e-3)


def test_read_audio_rejects_a_file_that_is_not_media(tmp_path):
    fake = tmp_path / "notes.mp4"
    fake.write_text("not a video")
    with pytest.raises(RowRejected) as info:
        media.read_audio(fake, "clip_9_Talk_1")
    assert info.value.row_id == "clip_9_Talk_1"
    assert "ffmpeg cannot decode the audio" in info.value.reason


def test_run_ffmpeg_raises_with_ffmpegs_own_line(tmp_path):
    with pytest.raises(media.MediaError, match="ffmpeg failed: .*No such file"):
        media.run_ffmpeg(["-i", media.file_arg(tmp_path / "missing.mp4"), "-f", "null", "-"])


def test_a_missing_program_names_the_fix(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(media.MissingProgramError, match="ffmpeg"):
        media.ffmpeg_exe()
