"""The synthetic corpus is exact and repeatable: word truth to the sample, same bytes twice."""

from __future__ import annotations

import hashlib
import itertools
import json
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from indomer.demo.synth import (
    DEMO_SENTENCES,
    FACES,
    LFW_FACES,
    SAMPLE_RATE,
    TRIM_LEVEL,
    VOICES,
    Voice,
    face_frames,
    speak,
    talking_head,
    write_wav,
)
from indomer.errors import UsageError

SENTENCES = [text for _, text in DEMO_SENTENCES[:3]]
needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None,
    reason="ffmpeg/ffprobe not on PATH (apt-get install ffmpeg)",
)


@pytest.fixture(scope="module")
def m3() -> tuple[np.ndarray, dict]:
    return speak(SENTENCES, VOICES["m3"])


def _digest(wav: np.ndarray) -> str:
    return hashlib.sha256(wav.tobytes()).hexdigest()


def test_speak_returns_16k_float32_and_exact_word_truth(m3):
    wav, truth = m3
    assert wav.dtype == np.float32 and wav.ndim == 1
    assert truth["sample_rate"] == SAMPLE_RATE
    assert truth["duration"] == wav.size / SAMPLE_RATE
    assert [s["text"] for s in truth["sentences"]] == SENTENCES
    assert truth["sentences"][0]["start"] == 0.5  # the lead
    words = [w for s in truth["sentences"] for w in s["words"]]
    assert [w["word"] for w in truth["sentences"][0]["words"]] == [
        "Saya", "sangat", "senang", "bisa", "bertemu", "kalian", "hari", "ini"]
    for w in words:
        a, b = round(w["start"] * SAMPLE_RATE), round(w["end"] * SAMPLE_RATE)
        # each word starts and ends on a sample above the trim level ...
        assert abs(wav[a]) > TRIM_LEVEL and abs(wav[b - 1]) > TRIM_LEVEL
    for prev, nxt in itertools.pairwise(words):
        a, b = round(prev["end"] * SAMPLE_RATE), round(nxt["start"] * SAMPLE_RATE)
        # ... and the gaps between words are silence of exactly the requested length
        assert not wav[a:b].any()
        assert b - a in (round(0.06 * SAMPLE_RATE), round(0.7 * SAMPLE_RATE))
    for s1, s2 in itertools.pairwise(truth["sentences"]):
        assert round((s2["start"] - s1["end"]) * SAMPLE_RATE) == round(0.7 * SAMPLE_RATE)
    tail = wav[round(truth["sentences"][-1]["end"] * SAMPLE_RATE):]
    assert tail.size == round(0.5 * SAMPLE_RATE) and not tail.any()
    json.dumps(truth)  # the truth is plain JSON


def test_speak_is_byte_deterministic_whatever_was_spoken_before(m3):
    wav, truth = m3
    speak(["Kereta berangkat pukul tujuh pagi."], VOICES["f2"])  # disturb any engine state
    again, truth2 = speak(SENTENCES, VOICES["m3"])
    assert _digest(again) == _digest(wav)
    assert truth2 == truth
    # the breathy f2 variant uses espeak's noise generator: it must repeat too
    assert _digest(speak(SENTENCES[:1], VOICES["f2"])[0]) == _digest(
        speak(SENTENCES[:1], VOICES["f2"])[0])


def test_speak_is_thread_safe(m3):
    wav, _ = m3
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda _: speak(SENTENCES, VOICES["m3"])[0], range(4)))
    assert {_digest(r) for r in results} == {_digest(wav)}


def _median_f0(wav: np.ndarray) -> float:
    """Median pitch of the loud 40 ms frames, by autocorrelation (60-400 Hz)."""
    n = int(0.04 * SAMPLE_RATE)
    f0s = []
    for i in range(0, wav.size - n, n):
        x = wav[i:i + n].astype(np.float64)
        if np.sqrt(np.mean(x ** 2)) < 0.05:
            continue
        x = x - x.mean()
        ac = np.correlate(x, x, "full")[n - 1:]
        lo, hi = SAMPLE_RATE // 400, SAMPLE_RATE // 60
        f0s.append(SAMPLE_RATE / (lo + int(np.argmax(ac[lo:hi]))))
    return float(np.median(f0s))


def test_resampling_is_scipys_resample_poly_bit_for_bit():
    """The numpy polyphase loop gives resample_poly's bytes (so the demo's media do not
    change), with the filter file scipy designs (tools/make_resample_filter.py)."""
    import sys

    from scipy.signal import resample_poly

    from indomer.demo import synth

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from make_resample_filter import design

    h = design()
    assert synth._resample_filter().tobytes() == (h * 320).tobytes()
    rng = np.random.default_rng(3)
    for n in (1, 2, 440, 441, 442, 8_821, 9_000, 22_050, 33_333):
        x = (rng.standard_normal(n) * 3_000).astype(np.int16)
        want = resample_poly(x.astype(np.float64) / 32768.0, 320, 441, window=h)
        got = synth._resample_22050_to_16k(x)
        assert got.dtype == want.dtype and got.shape == want.shape, n
        assert got.tobytes() == want.tobytes(), n


def test_voices_sound_different(m3):
    wav_m3, _ = m3
    wav_f2, _ = speak(SENTENCES, VOICES["f2"])
    wav_id, _ = speak(SENTENCES, VOICES["id"])
    wav_p80, _ = speak(SENTENCES, VOICES["id_p80"])
    assert len({_digest(w) for w in (wav_m3, wav_f2, wav_id, wav_p80)}) == 4
    # the male variant at pitch 30 is clearly lower than the female one at pitch 70,
    # and the same voice at pitch 80 is higher than at 50
    assert _median_f0(wav_m3) * 1.3 < _median_f0(wav_f2)
    assert _median_f0(wav_id) * 1.1 < _median_f0(wav_p80)


def test_voice_and_text_errors_are_usage_errors():
    with pytest.raises(UsageError, match="pitch"):
        Voice("id", pitch=120)
    with pytest.raises(UsageError, match="no voice"):
        speak(["Halo."], Voice("zz-nonexistent"))
    with pytest.raises(UsageError, match="no audio"):
        speak(["..."], VOICES["id"])


def test_demo_sentences_cover_the_emotions():
    emotions = {e for e, _ in DEMO_SENTENCES}
    assert {"anger", "happiness", "neutral", "sadness"} <= emotions
    assert len(DEMO_SENTENCES) >= 12


def test_face_frames_move_and_boxes_cover_the_face():
    frames = list(face_frames("astronaut", 50, seed=1))
    boxes = [b for _, b in frames]
    assert len(set(boxes)) > 10  # the head moves
    for frame, (x0, y0, x1, y1) in frames:
        assert frame.shape == (480, 640, 3) and frame.dtype == np.uint8
        assert 0 <= x0 < x1 <= 640 and 0 <= y0 < y1 <= 480
        assert 90 <= x1 - x0 <= 160  # about the 110-130 px faces FIXTURES measured
        face = frame[y0:y1, x0:x1].astype(int)
        assert (np.abs(face - frame[0, 0]).sum(axis=2) > 30).mean() > 0.9  # not background
    assert [b for _, b in face_frames("astronaut", 50, seed=1)] == boxes
    assert [b for _, b in face_frames("astronaut", 50, seed=2)] != boxes
    with pytest.raises(UsageError, match="unknown face"):
        next(face_frames("nobody", 1))
    assert set(FACES) == {"astronaut", "hopper", *LFW_FACES}


def test_every_demo_person_has_their_own_face():
    """One face per voice and one voice per face: a face signal must not see one face
    speaking with two voices (which it would rightly flag)."""
    from indomer.demo.corpus import SOURCES

    face_of = {}
    for src in SOURCES:
        assert face_of.setdefault(src.voice, src.face) == src.face, src  # m3: same in 1 and 4
        assert src.face in FACES
    assert len(set(face_of.values())) == len(face_of) == 6
    assert [s.source_id for s in SOURCES if s.voice == "m3"] == ["1", "4"]


def test_lfw_faces_are_framed_real_faces():
    from indomer.demo.synth import _BACKGROUND_BGR, _face_image

    for name in LFW_FACES:
        img = _face_image(name)
        assert img.shape == (384, 384, 3) and img.dtype == np.uint8
        assert (img[:100] == _BACKGROUND_BGR[::-1]).all()  # framed by the background
        face = img[128:256, 128:256]
        assert face.std() > 20 and (face[..., 0] == face[..., 1]).all()  # a gray photo
        ((_, box),) = face_frames(name, 1)
        assert 110 <= box[3] - box[1] <= 140  # about the size of the head crops' faces
    assert len({_face_image(n).tobytes() for n in LFW_FACES}) == len(LFW_FACES)


def _probe(path: Path) -> dict:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_streams", "-show_format", "-of", "json", str(path)],
        capture_output=True, check=True, text=True)
    return json.loads(out.stdout)


def _decode_audio(path: Path) -> np.ndarray:
    out = subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(path), "-vn", "-ac", "1", "-ar",
         str(SAMPLE_RATE), "-f", "f32le", "-"], capture_output=True, check=True)
    return np.frombuffer(out.stdout, dtype="<f4")


@needs_ffmpeg
@pytest.mark.slow
def test_talking_head_is_byte_identical_with_exact_duration_and_audio(tmp_path):
    wav, _ = speak(SENTENCES[:1], VOICES["id"])
    a, b = tmp_path / "a.mp4", tmp_path / "sub" / "b.mp4"
    boxes = talking_head(wav, "hopper", a, seed=3)
    assert talking_head(wav, "hopper", b, seed=3) == boxes
    assert a.read_bytes() == b.read_bytes()
    assert not list(tmp_path.glob(".*partial"))

    info = _probe(a)
    video = next(s for s in info["streams"] if s["codec_type"] == "video")
    audio = next(s for s in info["streams"] if s["codec_type"] == "audio")
    assert (video["codec_name"], audio["codec_name"]) == ("h264", "aac")
    assert (video["width"], video["height"], video["pix_fmt"]) == (640, 480, "yuv420p")
    assert int(audio["sample_rate"]) == SAMPLE_RATE and audio["channels"] == 1
    assert int(video["nb_frames"]) == len(boxes)
    assert abs(float(video["duration"]) - wav.size / SAMPLE_RATE) <= 1 / 25

    decoded = _decode_audio(a)
    n = min(decoded.size, wav.size)
    x, y = wav[:n].astype(np.float64), decoded[:n].astype(np.float64)
    xc = np.fft.irfft(np.fft.rfft(y, 2 * n) * np.conj(np.fft.rfft(x, 2 * n)))
    lags = np.concatenate([np.arange(n), np.arange(-n, 0)])
    assert lags[int(np.argmax(xc))] == 0
    assert np.corrcoef(x, y)[0, 1] > 0.95


@needs_ffmpeg
def test_write_wav_round_trips(tmp_path):
    wav, _ = speak(SENTENCES[:1], VOICES["id"])
    write_wav(tmp_path / "x.wav", wav)
    back = _decode_audio(tmp_path / "x.wav")
    assert back.size == wav.size
    assert np.max(np.abs(back - wav)) < 1e-4
