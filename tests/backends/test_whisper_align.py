"""Forced alignment with Whisper: the path arithmetic on known paths, and the shipped model
on espeak-ng speech with exact word truth (FIXTURES.md section 1, recipe A)."""

from __future__ import annotations

import align_models
import numpy as np
import pytest

from indomer.backends import whisper_align as wa
from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak

SENTENCES = [text for _, text in DEMO_SENTENCES]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    align_models.offline(monkeypatch)


def test_jump_times_are_where_the_path_reaches_each_token():
    # tokens 0..2 then end-of-text (index 3); time steps of 20 ms
    path = [(0, 0), (0, 1), (1, 2), (1, 3), (1, 4), (2, 5), (3, 6), (3, 7)]
    assert wa.jump_times(path, 3).tolist() == pytest.approx([0.0, 0.04, 0.10, 0.12])
    # a token the path steps over (no time of its own) starts with the next one
    assert wa.jump_times([(0, 0), (2, 3), (3, 9)], 3).tolist() == pytest.approx(
        [0.0, 0.06, 0.06, 0.18])
    assert np.isnan(wa.jump_times([], 2)).all()


def test_word_spans_leave_the_sentence_mark_out_of_the_word():
    # "saya" (1 token) "senang" (2 tokens) "." (1 token) "kamu" (1 token)
    assert wa.word_spans([(1, 0), (2, 1), (1, 0)]) == [(0, 1), (1, 3), (4, 5)]


def _mask(speech: list[tuple[float, float]], seconds: float) -> np.ndarray:
    mask = np.zeros(round(seconds * 100), dtype=bool)
    for a, b in speech:
        mask[round(a * 100): round(b * 100)] = True
    return mask


def test_speech_mask_finds_the_loud_frames_only():
    rng = np.random.default_rng(0)
    wav = np.zeros(16_000 * 3, dtype=np.float32)
    wav[8_000:24_000] = 0.3 * rng.standard_normal(16_000)  # 0.5-1.5 s
    wav += 1e-4 * rng.standard_normal(wav.size).astype(np.float32)  # a noise floor
    mask = wa.speech_mask(wav)
    assert mask.size == 300
    assert mask[50:150].all() and not mask[:50].any() and not mask[150:].any()
    assert not wa.speech_mask(np.zeros(16_000, dtype=np.float32)).any()
    assert wa.silences(mask) == [(0, 50), (150, 300)]


def test_refine_moves_shared_boundaries_into_the_pause_and_trims_silence():
    # two words: 0.50-1.00 and 1.06-1.50 s of speech; the path put the boundary at 0.85
    # (early, inside the first word) and the first word's start in the lead silence
    mask = _mask([(0.5, 1.0), (1.06, 1.5)], 2.0)
    got = wa.refine([(0.2, 0.85), (0.85, 1.7)], [True, False], mask)
    assert got == [pytest.approx((0.5, 1.0)), pytest.approx((1.06, 1.5))]
    # the first pause after the boundary wins; one too far after or before is not taken
    mask = _mask([(0.2, 0.7), (0.75, 1.0), (1.06, 1.5)], 2.0)
    first = wa.refine([(0.2, 0.65), (0.65, 1.5)], [True, False], mask)
    assert first == [pytest.approx((0.2, 0.7)), pytest.approx((0.75, 1.5))]
    far = wa.refine([(0.2, 0.19), (0.19, 1.2), (1.2, 1.5), (1.6, 1.9)],
                    [False, True, False], mask)
    assert far[0] is None  # no speech under it
    assert far[1] == pytest.approx((0.2, 1.2)) and far[2] == pytest.approx((1.2, 1.5))
    assert far[3] is None


@pytest.fixture(scope="module")
def aligner(tmp_path_factory) -> wa.WhisperAligner:
    pytest.importorskip("faster_whisper")
    cache = align_models.whisper_cache(tmp_path_factory.getbasetemp() / "align-models")
    return wa.load_whisper_aligner("whisper-base", device="cpu", cache_dir=cache)


def _words(sentences: list[str]) -> tuple[list[str], list[str]]:
    from indomer.stages.align import sentence_marks
    from indomer.textnorm import normalize

    norm = normalize(" ".join(sentences))
    return list(norm.words), sentence_marks(norm)


#: Measured with tools/bench_align.py on all four voices (720 words, 2 cores, contended):
#: every word timed; start error median 5 ms, p95 115 ms; end median 4 ms, p95 186 ms.
#: The test's two voices get margins of about 3x on the medians and 1.5x on the p95s.
MAX_MEDIAN = 0.03
MAX_P95 = 0.28


@pytest.mark.slow
def test_forced_alignment_times_every_word_within_the_goal(aligner):
    """Three 4-sentence clips per voice (about 20 s each) and one of 12 (about 60 s: two
    Whisper windows), against exact truth."""
    clips = []
    for voice in ("m3", "f4"):
        for chosen in (SENTENCES[0:4], SENTENCES[4:8], SENTENCES[8:12], SENTENCES):
            wav, truth = speak(chosen, VOICES[voice])
            words, marks = _words(chosen)
            clips.append((words, wav, marks, [w for s in truth["sentences"] for w in s["words"]]))
    assert max(c[1].size for c in clips) / 16_000 > 2 * wa.WINDOW - 5
    results = aligner.place_many([(w, a, m) for w, a, m, _ in clips])
    starts, ends, total = [], [], 0
    for (words, wav, _, truth), placed in zip(clips, results, strict=True):
        assert len(placed) == len(words) == len(truth)
        prev_end = 0.0
        for p, t in zip(placed, truth, strict=True):
            total += 1
            if p.time is None:
                continue
            assert prev_end <= p.time.start < p.time.end <= wav.size / 16_000  # in order
            prev_end = p.time.end
            starts.append(abs(p.time.start - t["start"]))
            ends.append(abs(p.time.end - t["end"]))
    assert len(starts) >= 0.98 * total
    for errs in (starts, ends):
        assert np.median(errs) < MAX_MEDIAN, np.median(errs)
        assert np.percentile(errs, 95) < MAX_P95, np.percentile(errs, 95)


@pytest.mark.slow
def test_words_that_cannot_be_placed_get_a_reason(aligner):
    wav, _ = speak(SENTENCES[0:1], VOICES["id"])
    words, marks = _words(SENTENCES[0:1])
    silence = np.zeros(16_000 * 4, dtype=np.float32)
    other, other_marks = _words(SENTENCES[7:8])  # Indonesian, but not what was said
    long_words, long_marks = _words(SENTENCES * 4)
    got = aligner.place_many([
        (words, silence, marks),
        (other, wav, other_marks),
        (long_words, wav, long_marks),
        (words, np.zeros(10, dtype=np.float32), marks),
        (["saya", "привет"], wav[: 16_000], ["", ""]),
    ])
    assert {p.reason for p in got[0]} == {"silence"}
    assert {p.reason for p in got[1]} == {"mismatch"}
    assert {p.reason for p in got[2]} == {"too-long"}
    assert {p.reason for p in got[3]} == {"no-audio"}
    assert got[4][1].reason == "script" and got[4][1].time is None
    assert all(p.time is None for r in got[:4] for p in r)
    assert set(wa.REASONS) >= {p.reason for r in got for p in r if p.reason}


@pytest.mark.slow
def test_alignment_is_deterministic_and_packing_short_clips_moves_little(aligner):
    wav, _ = speak(SENTENCES[2:4], VOICES["f2"])
    words, marks = _words(SENTENCES[2:4])
    one = aligner.place(words, wav, marks)
    assert aligner.place(words, wav, marks) == one
    assert wa.pack([(wav.size, True), (wav.size // 2, True)]) == [[0, 1]]  # one window
    both = aligner.place_many([(words, wav, marks), (words, wav[: wav.size // 2], marks)])
    assert both == aligner.place_many([(words, wav, marks), (words, wav[: wav.size // 2], marks)])
    for alone, packed in zip(one, both[0], strict=True):
        assert abs(alone.time.start - packed.time.start) <= 0.1
        assert abs(alone.time.end - packed.time.end) <= 0.1
    for p in both[1]:  # the half clip: its words lie inside it
        assert p.time is None or p.time.end <= wav.size // 2 / 16_000


def test_pack_fills_windows_in_order():
    sec = 16_000
    jobs = [(10 * sec, True), (10 * sec, True), (9 * sec, True), (5 * sec, True),
            (30 * sec, True), (3 * sec, False), (2 * sec, True)]
    assert wa.pack(jobs) == [[0, 1, 2], [3], [4], [5], [6]]


def test_encoder_frames_cover_the_audio_and_a_tail_of_silence():
    sec = 16_000
    assert (wa.TAIL_FRAMES, wa.FRAME_STEP) == (100, 500)
    assert wa.encoder_frames(0) == 500
    assert wa.encoder_frames(16 * sec) == 2000  # 1600 frames of audio, 100 of silence, step
    assert wa.encoder_frames(19 * sec) == 2000
    assert wa.encoder_frames(19 * sec + 160) == 2500  # one frame more: the next step
    assert wa.encoder_frames(25 * sec) == wa.FRAMES  # never more than Whisper's window
    assert wa.encoder_frames(30 * sec) == wa.FRAMES
    for samples in range(0, 30 * sec, 7_919):
        n = wa.encoder_frames(samples)
        assert n % wa.FRAME_STEP == 0 and n >= min(wa.FRAMES, samples // wa.HOP + wa.TAIL_FRAMES)


def test_batches_group_consecutive_windows_of_one_width():
    assert wa.batches([], 8) == []
    assert wa.batches([1700, 1700, 3000, 1700, 1700, 1700], 2) == [[0, 1], [2], [3, 4], [5]]
    assert wa.batches([3000] * 3, 8) == [[0, 1, 2]]


@pytest.mark.slow
def test_a_short_window_times_words_as_the_whole_30_s_window_does(aligner, monkeypatch):
    """The encoder sees 20 s, not 30: the words land where the full window puts them."""
    wav, _ = speak(SENTENCES[0:3], VOICES["id"])
    words, marks = _words(SENTENCES[0:3])
    assert wa.encoder_frames(wav.size) < wa.FRAMES
    short = aligner.place(words, wav, marks)
    monkeypatch.setattr(wa, "encoder_frames", lambda samples: wa.FRAMES)
    full = aligner.place(words, wav, marks)
    assert all(p.time is not None for p in short + full)
    for a, b in zip(short, full, strict=True):
        assert abs(a.time.start - b.time.start) <= 0.03 and abs(a.time.end - b.time.end) <= 0.03
