"""Voice embeddings: resemblyzer's bundled encoder (real voices) and the pyannote path with a
random local WeSpeaker checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
from speaker_fixtures import demo_clips, random_pipeline_dir

from indomer.backends.voice import (
    MIN_SECONDS,
    PyannoteEncoder,
    load_encoder,
    model_version,
)
from indomer.errors import UsageError


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
