"""WhisperX forced alignment: exact times from a known emission matrix, the shipped punkt
parameters, the real code path with a tiny random wav2vec2, and offline model resolution."""

from __future__ import annotations

import math
import sys
import types

import align_models
import numpy as np
import pytest

pytest.importorskip("whisperx")
torch = pytest.importorskip("torch")

from indomer.backends import align as backend
from indomer.backends.align import (
    Wav2Vec2Aligner,
    align_words,
    install_punkt,
    load_aligner,
    resolve_model,
)
from indomer.errors import MissingExtraError, UsageError
from indomer.textnorm import normalize, token_times

VOCAB = align_models.VOCAB
DICTIONARY = {c: i for i, c in enumerate(VOCAB)}
METADATA = {"language": "id", "dictionary": DICTIONARY, "type": "huggingface"}
FRAME = 0.02  # seconds per emission frame in the stub tests


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    align_models.offline(monkeypatch)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory):
    return align_models.tiny_wav2vec2(tmp_path_factory.getbasetemp() / "align-models")


class FixedEmission(torch.nn.Module):
    """A stand-in CTC model: whatever the audio, it emits the given log-probabilities."""

    def __init__(self, log_probs: torch.Tensor) -> None:
        super().__init__()
        self.log_probs = log_probs

    def forward(self, waveform: torch.Tensor) -> types.SimpleNamespace:
        return types.SimpleNamespace(logits=self.log_probs[None])


def emission(n_frames: int, entries: list[tuple[int, str]], peak: float = 0.9) -> torch.Tensor:
    """Log-probabilities where frame t emits ``ch`` for each (t, ch) in ``entries`` and the
    blank everywhere else (``peak`` against an even spread of the rest).

    With CTC's stay-on-blank trellis the best path enters each character exactly at its
    frame: any other path trades at least two ``peak`` frames for ``(1-peak)/(V-1)`` ones.
    """
    low = math.log((1 - peak) / (len(VOCAB) - 1))
    e = torch.full((n_frames, len(VOCAB)), low)
    e[:, DICTIONARY["<pad>"]] = math.log(peak)
    for t, ch in entries:
        e[t, :] = low
        e[t, DICTIONARY[ch]] = math.log(peak)
    return e


def path_for(words: list[str], starts: list[int], step: int = 2) -> list[tuple[int, str]]:
    """Entries spelling ``words``: word k's characters every ``step`` frames from
    ``starts[k]``, then the ``|`` separator ``step`` frames after its last character."""
    entries = []
    for k, (w, t0) in enumerate(zip(words, starts, strict=True)):
        entries += [(t0 + step * i, ch) for i, ch in enumerate(w)]
        if k + 1 < len(words):
            entries.append((t0 + step * len(w), "|"))
    return entries


def expected_times(words: list[str], starts: list[int], step: int = 2) -> list[tuple[float, float]]:
    """whisperx's convention: a word runs from its first character's frame to the frame where
    the next token (the separator) starts; the last character of the text lasts one frame."""
    out = []
    for k, (w, t0) in enumerate(zip(words, starts, strict=True)):
        last = t0 + step * (len(w) - 1)
        end = last + step if k + 1 < len(words) else last + 1
        out.append((round(t0 * FRAME, 3), round(end * FRAME, 3)))
    return out


def run_stub(words: list[str], entries, n_frames: int):
    audio = np.zeros(round(n_frames * FRAME * 16_000), dtype=np.float32)
    return align_words(FixedEmission(emission(n_frames, entries)), METADATA, words, audio)


def test_word_times_equal_the_known_best_path():
    transcript = "Harganya Rp5.000, naik 50% kata dr. Budi!"
    norm = normalize(transcript)
    words = list(norm.words)
    assert words == [
        "harganya",
        "lima",
        "ribu",
        "rupiah",
        "naik",
        "lima",
        "puluh",
        "persen",
        "kata",
        "dokter",
        "budi",
    ]
    starts, t = [], 7
    for w in words:  # irregular pauses between words
        starts.append(t)
        t += 2 * len(w) + 3 + (len(w) % 4) * 5
    n_frames = t + 10
    placed = run_stub(words, path_for(words, starts), n_frames)
    want = expected_times(words, starts)
    assert [(p.start, p.end) for p in placed] == want
    assert all(p.score == pytest.approx(0.9) for p in placed)

    # ...and back onto the transcript's tokens, in source-video seconds
    tokens = token_times(norm, placed, offset=12.5)
    assert [w["word"] for w in tokens] == transcript.split()
    got = {w["word"]: (w["start"], w["end"]) for w in tokens}
    assert got["Harganya"] == (round(want[0][0] + 12.5, 6), round(want[0][1] + 12.5, 6))
    assert got["Rp5.000,"] == (round(want[1][0] + 12.5, 6), round(want[3][1] + 12.5, 6))
    assert got["50%"] == (round(want[5][0] + 12.5, 6), round(want[7][1] + 12.5, 6))
    assert got["Budi!"] == (round(want[10][0] + 12.5, 6), round(want[10][1] + 12.5, 6))


def test_characters_outside_the_vocabulary_still_align():
    # "é" is not in the model's vocabulary: whisperx aligns it to a wildcard column
    words = ["kafé", "enak"]
    starts = [3, 20]
    entries = [
        (3, "k"),
        (5, "a"),
        (7, "f"),
        (9, "e"),
        (11, "|"),
        (20, "e"),
        (22, "n"),
        (24, "a"),
        (26, "k"),
    ]
    placed = run_stub(words, entries, 40)
    assert [(p.start, p.end) for p in placed] == expected_times(words, starts)


def test_an_impossible_path_places_nothing_and_invents_nothing():
    # five frames cannot hold the nine tokens of "saya makan"
    placed = run_stub(["saya", "makan"], [(0, "s"), (1, "a"), (2, "y"), (3, "a"), (4, "|")], 5)
    assert placed == [None, None]
    assert align_words(FixedEmission(emission(5, [])), METADATA, [], np.zeros(10)) == []
    with pytest.raises(ValueError, match="no spaces"):
        align_words(FixedEmission(emission(5, [])), METADATA, ["a b"], np.zeros(1600))


def test_interpolated_words_count_as_not_placed():
    got = [
        {"word": "saya", "start": 0.1, "end": 0.3, "score": 0.8},
        {"word": "dua", "start": 0.3, "end": 0.5},  # whisperx interpolated: no score
        {"word": "ribu", "start": float("nan"), "end": 0.9, "score": 0.7},
    ]
    placed = backend._match_placed(["saya", "dua", "ribu", "lagi"], got)
    assert placed[0] is not None and placed[0].start == 0.1
    assert placed[1:] == [None, None, None]


def test_shipped_punkt_parameters_split_indonesian_sentences(monkeypatch):
    import nltk
    from nltk.tokenize import PunktTokenizer
    from whisperx import utils as wx_utils

    install_punkt()
    install_punkt()  # idempotent
    root = str(backend.punkt_root())
    assert nltk.data.path.count(root) == 1
    assert wx_utils.PUNKT_LANGUAGES["id"] == "indonesian"
    splitter = PunktTokenizer("indonesian")
    text = "Saya bertemu dr. Budi dan Bpk. Ahmad kemarin. Harganya Rp. 5.000 dll. Lalu kami pulang."
    assert splitter.tokenize(text) == [
        "Saya bertemu dr. Budi dan Bpk. Ahmad kemarin.",
        "Harganya Rp. 5.000 dll.",
        "Lalu kami pulang.",
    ]
    abbrevs = set(
        (backend.punkt_root() / "tokenizers/punkt_tab/indonesian/abbrev_types.txt")
        .read_text()
        .split()
    )
    assert {"dr", "bpk", "dll", "dsb", "rp", "jl", "no"} <= abbrevs
    assert len(backend.punkt_version()) == 12


def test_alignment_never_downloads_punkt(monkeypatch, tiny_model):
    import nltk

    def refuse(*args, **kwargs):
        raise AssertionError("nltk.download called")

    monkeypatch.setattr(nltk, "download", refuse)
    aligner = load_aligner(str(tiny_model), device="cpu")
    placed = aligner.place(["saya", "senang"], np.zeros(16_000, dtype=np.float32))
    assert len(placed) == 2


@pytest.mark.slow
def test_tiny_wav2vec2_runs_the_whisperx_code_path(tiny_model):
    from indomer.demo.synth import VOICES, speak

    aligner = load_aligner(str(tiny_model), device="cpu")
    assert load_aligner(str(tiny_model), device="cpu") is aligner  # loaded once per process
    assert aligner.device == "cpu" and aligner.version.startswith(str(tiny_model))
    text = "Saya sangat senang bisa bertemu kalian, harganya Rp5.000!"
    wav, _ = speak([text], VOICES["id"])
    norm = normalize(text)
    placed = aligner.place(norm.words, wav)
    assert len(placed) == len(norm.words)
    duration = wav.size / 16_000
    timed = [p for p in placed if p is not None]
    assert timed, "a random model still yields a path"
    for p in timed:
        assert 0.0 <= p.start <= p.end <= duration + 1e-6
        assert 0.0 <= p.score <= 1.0
    starts = [p.start for p in timed]
    assert starts == sorted(starts)
    again = aligner.place(norm.words, wav)
    assert again == placed  # deterministic


def test_uncached_hub_model_is_one_clear_error():
    with pytest.raises(UsageError) as err:
        resolve_model("indomer-test/no-such-model", allow_download=False)
    msg = str(err.value)
    assert "indomer-test/no-such-model" in msg
    assert "huggingface-cli download indomer-test/no-such-model" in msg
    assert "allow_download" in msg and "\n" not in msg
    # with downloads allowed the id goes to the loader as is
    assert resolve_model("indomer-test/no-such-model", allow_download=True) == (
        "indomer-test/no-such-model",
        "indomer-test/no-such-model@latest",
    )
    with pytest.raises(UsageError, match="neither a folder"):
        resolve_model("./no/such/folder", allow_download=False)
    assert backend.model_version("indomer-test/no-such-model").endswith("(missing)")


def test_cached_hub_model_resolves_to_its_snapshot(monkeypatch, tmp_path):
    snap = tmp_path / "snapshots" / "0123abcd"
    snap.mkdir(parents=True)
    monkeypatch.setattr(backend, "cached_snapshot", lambda repo: snap)
    assert resolve_model(backend.DEFAULT_MODEL, allow_download=False) == (
        str(snap),
        f"{backend.DEFAULT_MODEL}@0123abcd",
    )


def test_local_folder_version_follows_its_content(tiny_model, tmp_path):
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(tiny_model, copy)
    v1 = resolve_model(str(copy), allow_download=False)[1]
    (copy / "config.json").write_text((copy / "config.json").read_text() + " ")
    assert resolve_model(str(copy), allow_download=False)[1] != v1


def test_missing_whisperx_names_the_extra(monkeypatch, tiny_model):
    monkeypatch.setitem(sys.modules, "whisperx.alignment", None)
    with pytest.raises(MissingExtraError, match=r"indomer\[align\]"):
        Wav2Vec2Aligner(str(tiny_model), device="cpu")
