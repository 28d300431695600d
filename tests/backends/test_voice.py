"""Voice embeddings: resemblyzer's bundled encoder (real voices) and the pyannote path with a
random local WeSpeaker checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from speaker_fixtures import demo_clips, random_pipeline_dir

from indomer.backends.voice import (
    MIN_SECONDS,
    PyannoteEncoder,
    _mel_constants,
    load_encoder,
    mel_spectrogram,
    model_version,
)
from indomer.errors import UsageError
from indomer.identity import unit_vector


@pytest.mark.slow
def test_resemblyzer_embeds_clips_as_unit_vectors_that_tell_voices_apart():
    enc = load_encoder()
    assert load_encoder() is enc and enc.name == "resemblyzer"
    clips = demo_clips()
    m3 = [c for c in clips if c[0].voice == "m3"]
    f2 = [c for c in clips if c[0].voice == "f2"]
    a, b, c = enc.embed(m3[0][4]), enc.embed(m3[5][4]), enc.embed(f2[0][4])
    for v in (a, b, c):
        assert v.shape == (256,) and v.dtype == np.float32
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    # same voice, other source and sentence vs another voice (measured 0.93-0.99 vs 0.48-0.55)
    assert float(a @ b) > 0.9
    assert float(a @ c) < 0.7
    np.testing.assert_array_equal(enc.embed(m3[0][4]), a)  # repeatable


def test_mel_constants_are_librosas():
    """The shipped filter bank and window are what librosa and scipy give resemblyzer
    (a stale file would change every voice vector)."""
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
    from make_resemblyzer_mel import constants

    basis, window = _mel_constants()
    want = constants()
    assert basis.dtype == want["basis"].dtype == np.float32 and basis.shape == (40, 201)
    assert basis.tobytes() == want["basis"].tobytes()
    assert window.tobytes() == want["window"].tobytes()


def test_mel_spectrogram_is_resemblyzers_bit_for_bit():
    from resemblyzer.audio import preprocess_wav, wav_to_mel_spectrogram

    rng = np.random.default_rng(7)
    t = np.arange(3 * 16_000) / 16_000
    tone = (0.3 * np.sin(2 * np.pi * 220 * t) * (1 + np.sin(2 * np.pi * 3 * t))).astype(np.float32)
    signals = [rng.standard_normal(n).astype(np.float32) * 0.1 for n in (400, 401, 1_999, 16_000)]
    signals += [tone, preprocess_wav(tone), tone[:12_345]]
    for x in signals:
        want, got = wav_to_mel_spectrogram(x), mel_spectrogram(x)
        assert got.shape == want.shape and got.dtype == want.dtype == np.float32
        assert got.tobytes() == want.tobytes(), x.size


@pytest.mark.slow
def test_embed_equals_resemblyzers_own_path():
    """Same vector as ``embed_utterance(preprocess_wav(x, source_sr=16000))``: the shortcut
    past librosa (its resample is a no-op at 16 kHz, its spectrogram is rebuilt) moves no bit."""
    from resemblyzer import preprocess_wav

    from indomer.backends.torchutil import torch_threads

    enc = load_encoder()
    for clip in demo_clips()[:3]:
        x = np.asarray(clip[4], dtype=np.float32)
        with torch_threads(enc.threads):  # the thread count moves the last bits
            want = unit_vector(enc._encoder.embed_utterance(preprocess_wav(x, source_sr=16_000)))
        assert enc.embed(x).tobytes() == want.tobytes()


@pytest.mark.slow
def test_too_little_voice_gives_none():
    enc = load_encoder()
    assert enc.embed(np.zeros(int(MIN_SECONDS * 16_000) - 1, dtype=np.float32)) is None
    assert enc.embed(np.zeros(32_000, dtype=np.float32)) is None  # silence is trimmed away
    with pytest.raises(UsageError, match="mono"):
        enc.embed(np.zeros((2, 16_000), dtype=np.float32))


def test_model_version_names_the_bundled_weights():
    v = model_version()
    assert v.startswith("resemblyzer 0.1.4 (pretrained.pt sha256:") and "unknown" not in v
    assert model_version() == v


@pytest.mark.slow
def test_pyannote_encoder_from_a_local_checkpoint():
    folder = random_pipeline_dir() / "embedding"
    enc = PyannoteEncoder(str(folder))
    wav = demo_clips()[0][4]
    v = enc.embed(wav)
    assert v.shape == (256,) and v.dtype == np.float32
    assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
    np.testing.assert_array_equal(enc.embed(wav), v)
    assert enc.embed(wav[:100]) is None
    assert model_version(str(folder)).startswith("embedding@sha256:")


def test_pyannote_encoder_missing_hub_model(tmp_path, monkeypatch):
    with pytest.raises(
        UsageError,
        match=r"^speakers.embedding: pyannote model "
        r"'pyannote/wespeaker-voxceleb-resnet34-LM' is not",
    ):
        PyannoteEncoder("pyannote/wespeaker-voxceleb-resnet34-LM", cache_dir=tmp_path)
