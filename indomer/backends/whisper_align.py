"""Forced alignment of a given transcript with Whisper (CTranslate2), offline.

The transcript's spoken words (:mod:`indomer.textnorm`: numbers, currency and percentages
spelled out in Indonesian) are tokenised and fed to the model as the text it "heard";
``ctranslate2.models.Whisper.align`` runs the decoder once over those tokens (no
autoregressive decoding) and returns a monotonic path from text tokens to 20 ms audio
frames, found by DTW over the cross-attention of the model's alignment heads. As in
faster-whisper's ``find_alignment``, a word starts where the path jumps onto its first token
and ends where it jumps onto the next token; a sentence mark after a word is its own token,
so a pause before the next sentence is not counted in the word.

The times are then checked against the audio's own energy (a 10 ms speech mask): a word
edge lying in silence moves to the nearest speech inside the word, and a word with no
speech under it is not placed. Every word that cannot be placed gets a reason
(:data:`REASONS`) instead of a time; nothing is ever guessed outside the clip.

Whisper sees at most 30 s at once. A longer clip is aligned window by window: each window
gets the next words (as many as the clip's own speaking rate could fit, and some more),
keeps the words that end well inside it, and the next window starts where they end.
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indomer.errors import MissingExtraError
from indomer.textnorm import WordTime

SAMPLE_RATE = 16_000
LANGUAGE = "id"
WINDOW = 30.0  # Whisper's input window, seconds
HOP = 160  # samples per mel frame (10 ms)
FRAMES = 3000  # mel frames per window
#: The encoder sees a window's audio, then this much silence, in whole steps of
#: :data:`FRAME_STEP` mel frames (at most :data:`FRAMES`), not the whole 30 s: CTranslate2's
#: encoder takes fewer frames, and its cost falls faster than the frames (self-attention).
#: A 16 s demo source (2,000 frames): about 0.7 CPU s, not 1.5. On the demo, 267 of 282 word
#: edges stayed within 1 ms of the full window's and none moved more than 0.06 s; the errors
#: against the spoken truth stayed about the same (median 6 ms, p95 128 ms, was 120), and the
#: accuracy table's did (README, "Word times offline"). A 1 s step with the same tail moved
#: one test word 0.5 s (tests/stages/test_align.py); 5 s steps did not.
TAIL_FRAMES = 100
FRAME_STEP = 500
TOKEN_SECONDS = 0.02  # one encoder frame, the alignment's time step
MEDIAN_FILTER = 7
#: A window keeps a word only when it ends this far before the window's end (else the next
#: window, which starts at the last kept word, aligns it again with the audio that follows).
GUARD = 3.0
#: Speech mask: 10 ms frames louder than both ``peak - SPAN_DB`` and ``floor + 20 % of the
#: range`` are speech (peak: the 95th percentile of frame levels; floor: the 10th).
SPAN_DB = 40.0
#: A boundary between two words moves into the first pause from this far before it to this
#: far after it (seconds): the alignment path reaches a word's first token early (measured on
#: espeak-ng speech: 0.1-0.45 s early, never more than 0.05 s late).
BACK = 0.05
AHEAD = 0.5
#: The most spoken characters per second of speech a transcript may hold; above it the words
#: cannot all have been said in this audio (fluent Indonesian runs at about 12-16).
MAX_RATE = 35.0
#: Below this mean token probability (over a window's tokens) the transcript is taken not to
#: be what was said. Measured on espeak-ng speech with Whisper base int8: the right transcript
#: 0.51-0.62 a clip, another Indonesian sentence of the same length over the same audio 0.12.
MIN_MEAN_PROBABILITY = 0.2
SENTENCE_MARKS = ".,!?;:"
#: Silence between short clips that share one window of at most 30 s (a video's short clips
#: are aligned in one model call, not one each).
PACK_GAP = 0.5
#: What the placement rules above add up to, for the stage's fingerprint: change it with them.
ALGORITHM = (f"forced-align v2 tail={TAIL_FRAMES}/{FRAME_STEP} pack={PACK_GAP} median={MEDIAN_FILTER} guard={GUARD} span={SPAN_DB} "
             f"back={BACK} ahead={AHEAD} max_rate={MAX_RATE} min_p={MIN_MEAN_PROBABILITY}")

#: Why a word has no time (counted per clip in the stage's report).
REASONS = {
    "script": "not written in Latin letters or digits",
    "silence": "no speech under it",
    "too-long": "the transcript is far longer than the speech in the clip",
    "mismatch": "the transcript does not match the audio",
    "squeezed": "no audio frame left for it",
    "no-audio": "the clip has no audio",
}


@dataclass(frozen=True)
class Placement:
    """One spoken word's time, or None with a :data:`REASONS` key."""

    time: WordTime | None
    reason: str | None = None


# --------------------------------------------------------------------------- pure parts


def speech_mask(wav: np.ndarray) -> np.ndarray:
    """True for each 10 ms frame of ``wav`` (16 kHz) that holds speech-level energy."""
    n = wav.size // HOP
    if n == 0:
        return np.zeros(0, dtype=bool)
    frames = wav[: n * HOP].astype(np.float64).reshape(n, HOP)
    level = 10.0 * np.log10(np.mean(frames * frames, axis=1) + 1e-12)
    peak = float(np.percentile(level, 95))
    floor = float(np.percentile(level, 10))
    if peak < -70.0:  # digital silence or nearly: nothing here is speech
        return np.zeros(n, dtype=bool)
    threshold = max(peak - SPAN_DB, floor + 0.2 * (peak - floor))
    return level > threshold


def encoder_frames(samples: int) -> int:
    """Mel frames the encoder gets for a window of ``samples`` (16 kHz): the audio's, then
    :data:`TAIL_FRAMES` of silence, rounded up to :data:`FRAME_STEP`, at most :data:`FRAMES`."""
    n = samples // HOP + TAIL_FRAMES
    return min(FRAMES, -(-n // FRAME_STEP) * FRAME_STEP)


def batches(widths: Sequence[int], size: int) -> list[list[int]]:
    """Indices of consecutive windows of one width, at most ``size`` a batch (a batch is one
    array; the grouping depends only on the order, so the results do too)."""
    out: list[list[int]] = []
    for i, w in enumerate(widths):
        if out and len(out[-1]) < size and widths[out[-1][0]] == w:
            out[-1].append(i)
        else:
            out.append([i])
    return out


def jump_times(alignments: Sequence[Sequence[int]], n_tokens: int) -> np.ndarray:
    """The time (s) at which the alignment path first reaches each text token.

    ``alignments`` are CTranslate2's ``(text index, time index)`` pairs over the text tokens
    followed by the end-of-text token; the result has ``n_tokens + 1`` entries, the last one
    for end-of-text. As faster-whisper does: times where the text index changes.
    """
    pairs = np.asarray(alignments, dtype=np.int64).reshape(-1, 2)
    out = np.full(n_tokens + 1, np.nan)
    if pairs.size == 0:
        return out
    text, time = pairs[:, 0], pairs[:, 1]
    jumps = np.concatenate([[True], np.diff(text) != 0])
    for t, f in zip(text[jumps], time[jumps], strict=True):
        if 0 <= t <= n_tokens and np.isnan(out[t]):
            out[t] = f * TOKEN_SECONDS
    # a token the path skipped starts where the next one does
    for i in range(n_tokens - 1, -1, -1):
        if np.isnan(out[i]):
            out[i] = out[i + 1]
    return out


def word_spans(token_counts: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(first token, first token after the word's core)`` per word, from ``(core, tail)``
    token counts (the tail: a sentence mark fed after the word)."""
    spans, pos = [], 0
    for core, tail in token_counts:
        spans.append((pos, pos + core))
        pos += core + tail
    return spans


def silences(mask: np.ndarray, min_frames: int = 4) -> list[tuple[int, int]]:
    """``(first, after last)`` frame of each run of at least ``min_frames`` silent frames."""
    runs, start = [], None
    for i, speech in enumerate(np.append(mask, True)):
        if not speech and start is None:
            start = i
        elif speech and start is not None:
            if i - start >= min_frames:
                runs.append((start, i))
            start = None
    return runs


def refine(bounds: Sequence[tuple[float, float]], shared: Sequence[bool], mask: np.ndarray
           ) -> list[tuple[float, float] | None]:
    """Word ``(start, end)`` pairs (clip seconds) moved onto the speech the mask shows.

    ``shared[k]``: word ``k`` ends where word ``k + 1`` starts (no sentence mark between
    them). Such a boundary moves into the first pause from :data:`BACK` before it to
    :data:`AHEAD` after it (the alignment path tends to reach a word early), when there is one.
    Then a word's edges in silence move inward to its first and last speech frame; a word
    with no speech frame under it is None.
    """
    runs = silences(mask)
    out: list[list[float]] = [[s, e] for s, e in bounds]
    for k, is_shared in enumerate(shared):
        if not is_shared or k + 1 >= len(out):
            continue
        t = out[k][1]
        near = [(a / 100, b / 100) for a, b in runs
                if b / 100 > t - BACK and a / 100 < t + AHEAD
                and a / 100 > out[k][0] and b / 100 < out[k + 1][1]]
        if near:  # the first: the path is early far more often than late
            a, b = near[0]
            out[k][1], out[k + 1][0] = a, b
    result: list[tuple[float, float] | None] = []
    for s, e in out:
        i, j = max(0, int(np.floor(s * 100))), min(mask.size, int(np.ceil(e * 100)))
        inside = np.flatnonzero(mask[i:j]) if j > i else np.zeros(0, dtype=int)
        if inside.size == 0:
            result.append(None)
            continue
        s2 = max(s, (i + int(inside[0])) / 100)
        e2 = min(e, (i + int(inside[-1]) + 1) / 100)
        result.append((s2, e2) if e2 > s2 else None)
    return result


def is_latin(word: str) -> bool:
    """Whether Whisper is fed this spoken word: it has an ASCII letter or digit."""
    return any(ch.isascii() and ch.isalnum() for ch in word)


# --------------------------------------------------------------------------- the model


class WhisperAligner:
    """A CTranslate2 Whisper model (loaded once) that places a transcript's words in audio."""

    def __init__(self, model: str = "whisper-base", *, device: str = "auto",
                 compute_type: str = "auto", threads: int = 0, allow_download: bool = False,
                 cache_dir: Path | None = None, batch_size: int = 8) -> None:
        # One thread by default: --jobs already runs one worker per core. (CTranslate2's CPU
        # results also depend on OMP_NUM_THREADS, which the runner pins: pipeline.py.)
        self.threads = threads if threads > 0 else 1
        try:
            import ctranslate2
            import tokenizers
            from faster_whisper.feature_extractor import FeatureExtractor
            from faster_whisper.tokenizer import Tokenizer
        except ImportError:
            raise MissingExtraError("faster-whisper", "align") from None
        from indomer.backends.asr import load_whisper

        # one load serves both jobs: alignment (its CTranslate2 model) and drafts
        self.whisper, folder, self.version, self.device = load_whisper(
            model, device=device, compute_type=compute_type, cpu_threads=self.threads,
            allow_download=allow_download, cache_dir=cache_dir)
        self.name = model
        self.batch_size = max(1, batch_size)
        self.model = self.whisper.model
        # the model's own tokenizer.json, already read by WhisperModel (0.16 CPU s a load)
        hf = getattr(self.whisper, "hf_tokenizer", None)
        if hf is None:
            hf = tokenizers.Tokenizer.from_file(str(Path(folder) / "tokenizer.json"))
        self.tokenizer = Tokenizer(hf, self.model.is_multilingual, task="transcribe",
                                   language=LANGUAGE)
        self.features = FeatureExtractor(feature_size=self.model.n_mels)
        self._ctranslate2 = ctranslate2
        self._lock = threading.Lock()

    # -- drafts

    def transcribe(self, wav: np.ndarray) -> str:
        """An Indonesian draft of ``wav`` (16 kHz mono) from the same model: beam search at
        temperature 0 only (the same audio gives the same text), the repetition penalty of
        the WhisperX draft, never prompted."""
        from indomer.backends.asr import REPETITION_PENALTY

        audio = np.ascontiguousarray(wav, dtype=np.float32)
        if audio.size == 0:
            return ""
        with self._lock:
            segments, _ = self.whisper.transcribe(
                audio, language=LANGUAGE, task="transcribe", beam_size=5, temperature=0.0,
                condition_on_previous_text=False, vad_filter=False, without_timestamps=True,
                repetition_penalty=REPETITION_PENALTY,
            )
            return " ".join(t for t in (seg.text.strip() for seg in segments) if t)

    # -- text

    def _encode(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[int], list[tuple[int, int]]]:
        tokens: list[int] = []
        counts = []
        for word, mark in pairs:
            core = self.tokenizer.encode(" " + word)
            tail = self.tokenizer.encode(mark) if mark else []
            tokens += core + tail
            counts.append((len(core), len(tail)))
        return tokens, word_spans(counts)

    # -- audio

    def _mel(self, wav: np.ndarray, frames: int = FRAMES) -> np.ndarray:
        """Log-mel features of ``wav`` (at most 30 s), cut or padded (silence: the log-mel of
        zeros) to ``frames``."""
        feats = self.features(np.ascontiguousarray(wav, dtype=np.float32), chunk_length=30)
        feats = feats[:, :frames]
        if feats.shape[1] < frames:
            feats = np.pad(feats, ((0, 0), (0, frames - feats.shape[1])))
        return np.ascontiguousarray(feats, dtype=np.float32)

    def _align(self, jobs: Sequence[tuple[np.ndarray, list[int]]]) -> list[tuple[np.ndarray, np.ndarray]]:
        """For each ``(window audio, tokens)``: the jump times and the token probabilities."""
        out: list[tuple[np.ndarray, np.ndarray]] = []
        widths = [encoder_frames(wav.size) for wav, _ in jobs]
        for group in batches(widths, self.batch_size):
            batch = [jobs[i] for i in group]
            mels = np.stack([self._mel(wav, widths[group[0]]) for wav, _ in batch])
            frames = [max(1, min(FRAMES, wav.size // HOP)) for wav, _ in batch]
            with self._lock:
                results = self.model.align(
                    self._ctranslate2.StorageView.from_array(mels),
                    list(self.tokenizer.sot_sequence), [tokens for _, tokens in batch],
                    frames, median_filter_width=MEDIAN_FILTER,
                )
            for (_, tokens), res in zip(batch, results, strict=True):
                out.append((jump_times(res.alignments, len(tokens)),
                            np.asarray(res.text_token_probs, dtype=np.float64)))
        return out

    # -- words

    def place(self, words: Sequence[str], wav: np.ndarray,
              marks: Sequence[str] | None = None) -> list[Placement]:
        """Where each spoken word of ``words`` lies in ``wav`` (16 kHz mono), clip seconds."""
        return self.place_many([(words, wav, marks)])[0]

    def place_many(self, clips: Sequence[tuple[Sequence[str], np.ndarray, Sequence[str] | None]]
                   ) -> list[list[Placement]]:
        """:meth:`place` for several clips: short clips share a window (:func:`pack`, in
        order, :data:`PACK_GAP` of silence apart), and the windows go through the model in
        batches. The result depends only on ``clips`` (their order included)."""
        plans = [_Plan(self, list(w), np.ascontiguousarray(a, dtype=np.float32),
                       list(m) if m is not None else [""] * len(w)) for w, a, m in clips]
        # round by round: every clip still needing a window contributes one
        while True:
            pending = [p for p in plans if p.next_job() is not None]
            if not pending:
                break
            groups = pack([(p.next_job()[0].size, p.single) for p in pending])  # type: ignore[index]
            jobs = []
            for group in groups:
                audio, tokens = [], []
                for k, g in enumerate(group):
                    wav, toks = pending[g].next_job()  # type: ignore[misc]
                    if k:
                        audio.append(np.zeros(round(PACK_GAP * SAMPLE_RATE), dtype=np.float32))
                    audio.append(wav)
                    tokens += toks
                jobs.append((np.concatenate(audio), tokens))
            results = self._align(jobs)
            for group, (jumps, probs) in zip(groups, results, strict=True):
                pos, t = 0, 0.0
                for g in group:
                    wav, toks = pending[g].next_job()  # type: ignore[misc]
                    n = len(toks)
                    pending[g].take((jumps[pos: pos + n + 1] - t, probs[pos: pos + n]))
                    pos += n
                    t += wav.size / SAMPLE_RATE + PACK_GAP
        return [p.result() for p in plans]


def pack(jobs: Sequence[tuple[int, bool]]) -> list[list[int]]:
    """Indices of ``(samples, packable)`` jobs grouped, in order, into windows of at most 30 s
    (with :data:`PACK_GAP` between them); a job that is not packable stays alone."""
    groups: list[list[int]] = []
    used = 0.0
    for i, (samples, packable) in enumerate(jobs):
        seconds = samples / SAMPLE_RATE
        if packable and groups and jobs[groups[-1][0]][1] and used + PACK_GAP + seconds <= WINDOW:
            groups[-1].append(i)
            used += PACK_GAP + seconds
        else:
            groups.append([i])
            used = seconds
    return groups


def _leading(bounds: Sequence[tuple[float, float]], limit: float) -> int:
    """How many leading words of ``bounds`` end by ``limit``."""
    n = 0
    for _, end in bounds:
        if not end <= limit:  # NaN included
            break
        n += 1
    return n


class _Plan:
    """The window-by-window alignment of one clip (one window when it is at most 30 s)."""

    def __init__(self, aligner: WhisperAligner, words: list[str], wav: np.ndarray,
                 marks: list[str]) -> None:
        self.aligner = aligner
        self.words = words
        self.wav = wav
        self.out: list[Placement | None] = [None] * len(words)
        self.duration = wav.size / SAMPLE_RATE
        self.mask = speech_mask(wav)
        self.fed = [i for i, w in enumerate(words) if is_latin(w)]
        for i, w in enumerate(words):
            if not is_latin(w):
                self.out[i] = Placement(None, "script")
        self.pairs = {i: (words[i], marks[i]) for i in self.fed}
        self.single = self.duration <= WINDOW  # one window: may share it with other clips
        self.cursor = 0  # index into self.fed
        self.t0 = 0.0  # window start, clip seconds
        self.job: tuple[np.ndarray, list[int]] | None = None
        self.window: list[int] = []
        self.spans: list[tuple[int, int]] = []
        speech = float(self.mask.sum()) / 100
        chars = sum(len(words[i]) for i in self.fed)
        self.rate = chars / speech if speech > 0 else float("inf")
        if not self.fed:
            self.done = True
        elif wav.size < HOP or speech == 0:
            self._finish("no-audio" if wav.size < HOP else "silence")
        elif self.rate > MAX_RATE:
            self._finish("too-long")
        else:
            self.done = False

    def _finish(self, reason: str) -> None:
        for i in self.fed[self.cursor:]:
            self.out[i] = Placement(None, reason)
        self.cursor = len(self.fed)
        self.done = True

    def next_job(self) -> tuple[np.ndarray, list[int]] | None:
        if self.done:
            return None
        if self.job is None:
            t1 = min(self.duration, self.t0 + WINDOW)
            self.last = t1 >= self.duration - 1e-6
            rest = self.fed[self.cursor:]
            if self.last:
                take = rest
            else:  # what the clip's speaking rate fits in this window, and half again
                budget = 1.5 * self.rate * (t1 - self.t0) + 20
                take, used = [], 0.0
                for i in rest:
                    if take and used + len(self.words[i]) > budget:
                        break
                    take.append(i)
                    used += len(self.words[i]) + 1
            a, b = round(self.t0 * SAMPLE_RATE), round(t1 * SAMPLE_RATE)
            tokens, self.spans = self.aligner._encode([self.pairs[i] for i in take])
            self.window = take
            self.job = (self.wav[a:b], tokens)
        return self.job

    def take(self, res: tuple[np.ndarray, np.ndarray]) -> None:
        jumps, probs = res
        t0 = self.t0
        t1 = min(self.duration, t0 + WINDOW)
        limit = t1 if self.last else t1 - GUARD
        mean_prob = float(np.mean(probs)) if probs.size else 0.0
        raw = [(t0 + float(jumps[a]), t0 + float(jumps[b])) for a, b in self.spans]
        kept = len(raw) if self.last else _leading(raw, limit)
        shared = [self.spans[k][1] == self.spans[k + 1][0] if k + 1 < len(self.spans)
                  else False for k in range(len(self.spans))]
        fine = refine(raw, shared, self.mask)
        for k in range(kept):
            i, (a, b) = self.window[k], self.spans[k]
            start, end = raw[k]
            if mean_prob < MIN_MEAN_PROBABILITY:
                self.out[i] = Placement(None, "mismatch")
            elif not np.isfinite(start) or not np.isfinite(end) or end <= start:
                self.out[i] = Placement(None, "squeezed")
            elif fine[k] is None:
                self.out[i] = Placement(None, "silence")
            else:
                s, e = fine[k]  # type: ignore[misc]
                score = round(float(np.mean(probs[a:b])), 4) if b > a else None
                self.out[i] = Placement(WordTime(round(s, 3), round(min(e, self.duration), 3),
                                                 score))
        self.job = None
        if self.last:
            self.cursor = len(self.fed)
            self.done = True
            return
        if kept:  # the next window starts where the last kept word ends
            self.cursor += kept
            last = self.out[self.window[kept - 1]]
            end = last.time.end if last is not None and last.time is not None else raw[kept - 1][1]
            self.t0 = max(self.t0, end)
        else:  # nothing placeable ends in this window (a long pause or music): move on
            self.t0 = t1 - GUARD
        if self.cursor >= len(self.fed):
            self.done = True

    def result(self) -> list[Placement]:
        """The placements in order: a word never starts before the one before it ends."""
        out, prev = [], 0.0
        for p in self.out:
            if p is None:
                p = Placement(None, "squeezed")
            elif p.time is not None:
                if p.time.start < prev:
                    p = (Placement(WordTime(prev, p.time.end, p.time.score))
                         if p.time.end > prev else Placement(None, "squeezed"))
                if p.time is not None:
                    prev = p.time.end
            out.append(p)
        return out


_CACHE: dict[tuple, WhisperAligner] = {}
_CACHE_LOCK = threading.Lock()


def load_whisper_aligner(model: str = "whisper-base", **kwargs: Any) -> WhisperAligner:
    """The process's :class:`WhisperAligner` for these arguments (loaded on first use)."""
    key = (model, tuple(sorted(kwargs.items())))
    with _CACHE_LOCK:
        if key not in _CACHE:
            _CACHE[key] = WhisperAligner(model, **kwargs)
        return _CACHE[key]


__all__ = [
    "REASONS",
    "Placement",
    "WhisperAligner",
    "batches",
    "encoder_frames",
    "is_latin",
    "jump_times",
    "load_whisper_aligner",
    "refine",
    "silences",
    "speech_mask",
    "word_spans",
]
