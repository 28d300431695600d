"""Silero VAD on onnxruntime finds the synthetic sentences where the synth put them."""

from __future__ import annotations

import numpy as np
import pytest

from indomer.backends import vad as vad_mod
from indomer.backends.vad import FRAME_SAMPLES, FRAME_SECONDS, SileroVAD, load_vad, model_path
from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak
from indomer.errors import MissingExtraError
from indomer.stages.segment import Settings, segments_from_probs

SENTENCES = [text for _, text in DEMO_SENTENCES[4:8]]
TOLERANCE = 0.25  # seconds, FIXTURES.md section 4


@pytest.mark.slow
@pytest.mark.parametrize("voice", ["m3", "f2", "id_p80"])
def test_vad_clips_match_the_sentence_truth(voice):
    wav, truth = speak(SENTENCES, VOICES[voice])
    probs = load_vad().speech_probs(wav)
    clips = segments_from_probs(probs, FRAME_SECONDS, Settings(),
                                duration=wav.size / 16_000)
    expected = [(s["start"], s["end"]) for s in truth["sentences"]]
    assert len(clips) == len(expected), (clips, expected)
    for (start, end), (t_start, t_end) in zip(clips, expected, strict=True):
        assert abs(start - t_start) <= TOLERANCE, (voice, start, t_start)
        assert abs(end - t_end) <= TOLERANCE, (voice, end, t_end)


def test_speech_probs_shape_range_and_repeatability():
    wav, _ = speak(SENTENCES[:1], VOICES["id"])
    vad = load_vad()
    assert load_vad() is vad  # one model per process
    probs = vad.speech_probs(wav)
    assert probs.shape == (-(-wav.size // FRAME_SAMPLES),)
    assert probs.dtype == np.float32
    assert np.all((probs >= 0) & (probs <= 1))
    vad.speech_probs(np.zeros(5000, dtype=np.float32))  # state must not leak between calls
    np.testing.assert_array_equal(vad.speech_probs(wav), probs)
    # silence and the lead-in are not speech; the middle of the sentence is
    assert probs[:10].max() < 0.2
    assert np.median(probs[int(1.0 / FRAME_SECONDS): int(2.5 / FRAME_SECONDS)]) > 0.8
    silent = vad.speech_probs(np.zeros(16_000, dtype=np.float32))
    assert silent.shape == (32,) and silent.max() < 0.2


def test_speech_probs_of_empty_audio_is_empty():
    assert load_vad().speech_probs(np.zeros(0, dtype=np.float32)).shape == (0,)


def test_model_comes_from_the_installed_wheel():
    path = model_path()
    assert path.name == "silero_vad.onnx" and path.parent.parent.name == "silero_vad"
    assert load_vad().version.startswith("silero-vad ")


def test_missing_package_names_the_extra(monkeypatch):
    monkeypatch.setattr(vad_mod.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"indomer\[media\]"):
        SileroVAD()
