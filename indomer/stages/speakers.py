"""Speakers stage: who speaks in each clip, and one global speaker id per clip.

Two steps, because ids need every source at once while the heavy work does not:

* **per source** (:func:`process`, models loaded once by :func:`setup`): with
  ``diarization`` set, the pyannote pipeline runs on the whole source (turns are consistent
  across its clips) and :func:`indomer.backends.diarize.clip_summary` gives each clip its
  ``n_speakers``, ``primary_share`` and ``overlap``; a clip whose main speaker does not
  dominate (share under ``min_primary_share`` or overlap over ``max_overlap``) is flagged,
  or rejected with ``on_mixed: reject``. Without diarization (the default: no pyannote
  pipeline ships offline) those fields are null and nothing is flagged. Each clip then gets
  a voice embedding of its main speaker (the stretches where that speaker talks alone, when
  another one intrudes and at least 1 s remains; else the whole clip).
* **whole dataset** (:func:`assign`): embeddings are clustered across sources into global
  ``speaker_id`` values (:mod:`indomer.speakers`), with ``speakers.csv`` pins.

**Where the embedding lives: in the row.** ``speaker["embedding"]`` holds the 256 float32
values as base64 (1.4 KB per clip; 14 MB of manifest for 10,000 clips). A row then stays a
pure value, as the pipeline requires (``--jobs`` workers, a Ray cluster): the whole-dataset
step needs nothing but the manifest, the manifest's sha256 in the next fingerprint covers
the embeddings, and no side file can go stale or missing. :func:`assign` drops the vector
from ``speaker``, so it never reaches the shards.
"""

from __future__ import annotations

import dataclasses
import wave
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indomer.errors import RowRejected, UsageError
from indomer.rows import Segment, Video
from indomer.speakers import (
    FACE_DIFFERENT,
    FACE_SAME,
    RESEMBLYZER_LINK_THRESHOLD,
    RESEMBLYZER_THRESHOLD,
    ClipVoice,
    Clustering,
    Linking,
    cluster_voices,
    decode_embedding,
    encode_embedding,
    read_overrides,
    report_unused,
    score_model,
)
from indomer.stage import Context, Item, Stage

SAMPLE_RATE = 16_000
#: Main-speaker-only audio shorter than this is not trusted alone: embed the whole clip.
MIN_SOLO_SECONDS = 1.0
#: Settings that change what :func:`process` writes; the others only change :func:`assign`.
ITEM_FIELDS = ("embedding", "diarization", "min_primary_share", "max_overlap",
               "min_speaker_time", "on_mixed", "device", "threads")
CLUSTER_FIELDS = ("embedding", "threshold", "link_threshold", "faces", "overrides",
                  "calibration", "prior", "hard_p", "min_voice_seconds")


@dataclass(frozen=True)
class Settings:
    """The ``speakers:`` config section.

    ``embedding``: ``resemblyzer`` (bundled, offline) or a pyannote embedding model (hub id or
    local path). ``diarization``: a pyannote pipeline (hub id such as
    ``pyannote/speaker-diarization-community-1``, or a local folder); null skips diarization.
    ``threshold``: cosine similarity at which two source voices are one speaker, the best
    guess behind ``speaker_id`` (null: the resemblyzer default; required for other models,
    whose scale differs: measure it with ``indomer speakers calibrate``).
    ``link_threshold``: voice cosine from which matching faces make two sources one speaker id
    (null: the resemblyzer default; required with ``threshold`` for other models).
    ``calibration``: a ``speakers calibrate --json`` file whose probability fit maps the
    cohort-normalised voice score to the probability of one person (null: the shipped fit on
    the AMI excerpt; a file for another embedding model is reported and the default used).
    ``prior``: the share of source pairs that are one person in this dataset, when known (null:
    the calibration set's, 3.4% on AMI, which over-states the risk where most people have one
    video).
    ``hard_p``: probability from which a pair counts as certain, so a split never separates
    it (lower pairs only weigh on the split's expected people on two sides).
    ``min_voice_seconds``: a source voice with less speech than this is reported: its
    identity is uncertain, review it.
    ``faces``: use the face identity embeddings of the faces stage, when present, as a second
    signal (a face cosine adds its evidence to the pair's probability; voice/face
    disagreements are listed for review). ``min_primary_share``,
    ``max_overlap``: when a clip's main speaker dominates. ``min_speaker_time``: seconds a
    diarization label needs in a clip to count in ``n_speakers``. ``on_mixed``: ``flag``
    keeps a clip that fails the test (``speaker.flagged``), ``reject`` drops it.
    ``overrides``: a ``speakers.csv`` pinning known people (``source_id`` or ``id``,
    ``speaker_id``). ``device``: where pyannote runs. ``threads``: torch threads per worker
    (1 is fastest when workers share the cores; the vectors differ in their last bits
    between counts, so it is fingerprinted). ``allow_download``: let the hub fetch missing
    models (off: cache only; not in the fingerprint).
    """

    embedding: str = "resemblyzer"
    diarization: str | None = None
    threshold: float | None = None
    link_threshold: float | None = None
    calibration: str | None = None
    prior: float | None = None
    hard_p: float = 0.99
    min_voice_seconds: float = 2.0
    faces: bool = True
    min_primary_share: float = 0.8
    max_overlap: float = 0.2
    min_speaker_time: float = 0.25
    on_mixed: Literal["flag", "reject"] = "flag"
    overrides: str | None = None
    device: str = "cpu"
    threads: int = 1
    allow_download: bool = field(default=False, metadata={"fingerprint": False})

    def __post_init__(self) -> None:
        if not self.embedding:
            raise UsageError("speakers.embedding is empty; use resemblyzer or a pyannote model")
        if self.threshold is not None and not 0.0 < self.threshold <= 1.0:
            raise UsageError(f"speakers.threshold must be in (0, 1], got {self.threshold}")
        if self.link_threshold is not None and not 0.0 < self.link_threshold <= 1.0:
            raise UsageError(f"speakers.link_threshold must be in (0, 1], got "
                             f"{self.link_threshold}")
        if self.embedding != "resemblyzer" and (self.threshold is None
                                                or self.link_threshold is None):
            raise UsageError(f"speakers.threshold and speakers.link_threshold: required with "
                             f"embedding {self.embedding!r} (the defaults are measured for "
                             "resemblyzer only); measure both with 'indomer speakers calibrate'")
        if self.cluster_link_threshold > self.cluster_threshold:
            raise UsageError(f"speakers.link_threshold ({self.cluster_link_threshold:g}) must "
                             f"not exceed speakers.threshold ({self.cluster_threshold:g}): the "
                             "split groups must be at least as coarse as the speaker ids")
        if self.prior is not None and not 0.0 < self.prior < 1.0:
            raise UsageError(f"speakers.prior must be in (0, 1), got {self.prior}")
        if not 0.5 < self.hard_p <= 1.0:
            raise UsageError(f"speakers.hard_p must be in (0.5, 1], got {self.hard_p}")
        if self.min_voice_seconds < 0:
            raise UsageError(f"speakers.min_voice_seconds must be >= 0 s, got "
                             f"{self.min_voice_seconds}")
        for name in ("min_primary_share", "max_overlap"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise UsageError(f"speakers.{name} must be in [0, 1], got {getattr(self, name)}")
        if self.min_speaker_time < 0:
            raise UsageError(f"speakers.min_speaker_time must be >= 0 s, got "
                             f"{self.min_speaker_time}")
        if self.threads < 1:
            raise UsageError(f"speakers.threads must be >= 1, got {self.threads}")
        if self.on_mixed not in ("flag", "reject"):
            raise UsageError(f"speakers.on_mixed must be flag or reject, got {self.on_mixed!r}")

    @property
    def cluster_threshold(self) -> float:
        return self.threshold if self.threshold is not None else RESEMBLYZER_THRESHOLD

    @property
    def cluster_link_threshold(self) -> float:
        if self.link_threshold is not None:
            return self.link_threshold
        return min(RESEMBLYZER_LINK_THRESHOLD, self.cluster_threshold)

    def linking(self, model: object | None = None) -> Linking:
        """What :func:`indomer.speakers.cluster_voices` identifies sources with."""
        return Linking(
            self.cluster_threshold,
            self.cluster_link_threshold,
            FACE_SAME if self.faces else None,
            FACE_DIFFERENT if self.faces else None,
            model,
            self.hard_p,
        )

    def operating_point(self, calibration: dict | None = None) -> dict:
        """What identity rests on (the split report and the card state it): the speaker-id
        threshold, the probability calibration and where it comes from, the hard bound."""
        lk = self.linking()
        return {
            "embedding": self.embedding,
            "threshold": lk.threshold,
            "hard_p": self.hard_p,
            "face_same": lk.face_same,
            "face_different": lk.face_different,
            "calibration": calibration or {"source": "none", "file": None},
        }

    def for_items(self) -> Settings:
        """These settings with the clustering-only fields neutral (``threshold`` 1.0, no
        ``overrides``): what the per-source step is fingerprinted with, so tuning the
        clustering does not re-embed every clip."""
        return dataclasses.replace(self, threshold=1.0, link_threshold=1.0, faces=True,
                                   overrides=None, calibration=None, prior=None, hard_p=0.99,
                                   min_voice_seconds=2.0)


def tool_versions(settings: Settings) -> dict[str, str]:
    """Model identities for the fingerprint (embedding weights, diarization pipeline)."""
    from indomer.backends.voice import model_version

    out = {"voice": model_version(settings.embedding)}
    if settings.diarization:
        from indomer.backends.diarize import model_version as pipeline_version

        out["diarization"] = pipeline_version(settings.diarization)
    return out


def overrides_path(settings: Settings, root: Path | None = None) -> Path | None:
    """``speakers.csv`` resolved against ``root`` (the config's folder) when relative."""
    return _resolve(settings.overrides, root)


def calibration_path(settings: Settings, root: Path | None = None) -> Path | None:
    """``speakers.calibration`` resolved against ``root`` when relative (None: shipped)."""
    return _resolve(settings.calibration, root)


def _resolve(value: str | None, root: Path | None) -> Path | None:
    if not value:
        return None
    p = Path(value).expanduser()
    return p if p.is_absolute() or root is None else Path(root) / p


# --------------------------------------------------------------------------- per source


@dataclass(frozen=True)
class State:
    """Loaded once per worker: the settings, the voice encoder, the diarization pipeline."""

    settings: Settings
    encoder: Any
    pipeline: Any = None


def setup(settings: Settings, ctx: Any = None) -> State:
    """Load the models the settings name (cache only unless ``allow_download``)."""
    from indomer.backends.voice import load_encoder

    encoder = load_encoder(settings.embedding, allow_download=settings.allow_download,
                           device=settings.device, threads=settings.threads)
    pipeline = None
    if settings.diarization:
        from indomer.backends.diarize import load_pipeline

        pipeline = load_pipeline(settings.diarization, allow_download=settings.allow_download,
                                 device=settings.device)
    return State(settings, encoder, pipeline)


def mixed_reason(summary: Mapping[str, Any] | None, settings: Settings) -> str | None:
    """Why a clip's main speaker does not dominate, or None when it does (or is unknown)."""
    if summary is None:
        return None
    share, overlap = summary["primary_share"], summary["overlap"]
    if share is None:
        return "diarization found no speech in the clip"
    problems = []
    if share < settings.min_primary_share:
        problems.append(f"the main speaker has {share:.0%} of the speech (speakers."
                        f"min_primary_share is {settings.min_primary_share:g})")
    if overlap > settings.max_overlap:
        problems.append(f"{overlap:.0%} of the speech is overlapped (speakers.max_overlap is "
                        f"{settings.max_overlap:g})")
    if not problems:
        return None
    return f"{summary['n_speakers']} speakers: " + " and ".join(problems)


def _read_clip_wav(path: str | None) -> np.ndarray | None:
    """The cut stage's 16 kHz mono 16-bit clip, or None when absent or in another format."""
    if not path:
        return None
    try:
        with wave.open(str(path), "rb") as fh:
            if (fh.getframerate(), fh.getnchannels(), fh.getsampwidth()) != (SAMPLE_RATE, 1, 2):
                return None
            data = fh.readframes(fh.getnframes())
    except (OSError, EOFError, wave.Error):
        return None
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / 32768.0


class _Source:
    """The source's 16 kHz audio, decoded by ffmpeg on first use only."""

    def __init__(self, video: Video, segments: Sequence[Segment]) -> None:
        self.path = video.path or next((s.source_path for s in segments if s.source_path), None)
        self.source_id = video.source_id
        self._wav: np.ndarray | None = None

    def wav(self) -> np.ndarray:
        if self._wav is None:
            if not self.path:
                raise RowRejected(self.source_id, "the video has no media file",
                                  "run the fetch stage first or give a local path")
            from indomer.media import read_audio

            self._wav = read_audio(Path(self.path), self.source_id)
        return self._wav

    def clip(self, seg: Segment) -> np.ndarray:
        wav = self.wav()
        return wav[round(seg.start * SAMPLE_RATE): round(seg.end * SAMPLE_RATE)]


def process(video: Video, segments: Sequence[Segment], state: State) -> list:
    """The clips of one source with ``speaker`` filled; a clip rejected by ``on_mixed``
    comes back as a :class:`RowRejected` in its place (the video row is not returned).

    ``speaker`` = ``{n_speakers, primary_share, overlap, flagged, primary, embedding}``:
    the first three null without diarization; ``primary`` is the main speaker's
    source-local diarization label; ``embedding`` is base64 float32 (null when the clip had
    too little voice), read back by :func:`assign`.
    """
    from indomer.backends.diarize import clip_summary, diarize_source, solo_regions

    s = state.settings
    source = _Source(video, segments)
    turns = None
    if state.pipeline is not None:
        turns = diarize_source(source.wav(), state.pipeline, threads=s.threads)
    out: list = []
    speech: dict[str, list[tuple[bool, int, np.ndarray]]] = {}  # label -> (clean, row, audio)
    for seg in segments:
        clip = _read_clip_wav(seg.audio_path)
        if clip is None:
            clip = source.clip(seg)
        summary = None
        voice = clip
        if turns is not None:
            summary = clip_summary(turns, seg.start, seg.end, min_speaker_time=s.min_speaker_time)
            if summary["primary"] is not None and summary["n_speakers"] > 1:
                pieces = [clip[round(a * SAMPLE_RATE): round(b * SAMPLE_RATE)]
                          for a, b in solo_regions(turns, seg.start, seg.end, summary["primary"])]
                solo = np.concatenate(pieces) if pieces else clip[:0]
                if solo.size >= MIN_SOLO_SECONDS * SAMPLE_RATE:
                    voice = solo
        reason = mixed_reason(summary, s)
        if reason is not None and s.on_mixed == "reject":
            out.append(RowRejected(seg.id, reason, "check the clip; to keep such clips set "
                                   "speakers.on_mixed: flag, or relax speakers.min_primary_share"
                                   " / speakers.max_overlap"))
            continue
        vector = state.encoder.embed(voice)
        speaker = {
            "n_speakers": None if summary is None else summary["n_speakers"],
            "primary_share": None if summary is None else summary["primary_share"],
            "overlap": None if summary is None else summary["overlap"],
            "flagged": reason is not None,
            "primary": None if summary is None else summary["primary"],
            "embedding": None if vector is None else encode_embedding(vector),
        }
        speech.setdefault(speaker["primary"] or "", []).append((reason is None, len(out), voice))
        out.append(dataclasses.replace(seg, speaker=speaker))
    # one embedding of each voice's concatenated speech (clean clips; all when none is clean):
    # a voice is identified from all its speech at once, not from an average of short clips
    for parts in speech.values():
        use = [p for p in parts if p[0]] or parts
        whole = state.encoder.embed(np.concatenate([a for _, _, a in use]))
        if whole is None:
            continue
        code = encode_embedding(whole)
        for _, row, _ in parts:
            out[row] = dataclasses.replace(out[row], speaker={**out[row].speaker, "voice": code})
    return out


def run(items: Iterable[tuple[Video, Sequence[Segment]]], settings: Settings) -> Iterable:
    """:func:`process` over many sources with models loaded once; yields ``(video, rows or
    RowRejected)`` so one bad source never stops the others."""
    state = setup(settings)
    for video, segments in items:
        try:
            yield video, process(video, segments, state)
        except RowRejected as exc:
            yield video, exc


# --------------------------------------------------------------------------- whole dataset


def assign(
    rows: Iterable[Video | Segment],
    embeddings: Mapping[str, np.ndarray] | None = None,
    settings: Settings = Settings(),
    *,
    root: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> list:
    """``rows`` with every segment's ``speaker_id`` set (videos pass through); see
    :func:`identify`, which also returns the identity record."""
    return identify(rows, embeddings, settings, root=root, log=log)[0]


def identify(
    rows: Iterable[Video | Segment],
    embeddings: Mapping[str, np.ndarray] | None = None,
    settings: Settings = Settings(),
    *,
    root: Path | None = None,
    log: Callable[[str], None] | None = None,
) -> tuple[list, dict]:
    """(rows with ``speaker_id`` and ``speaker["group"]`` set, the identity record).

    ``embeddings`` maps clip id -> vector; by default each segment's own
    ``speaker["embedding"]`` is used, and dropped from the returned rows (so is
    ``face["embedding"]``). ``root`` resolves a relative ``settings.overrides`` and
    ``settings.calibration``; ``log`` hears one line per problem that does not stop the build
    (an unused or contradictory pin, a calibration for another model, a short voice). The
    record holds the operating point, the hard split groups (group -> speaker ids, group ->
    sources), the probable group pairs with their evidence, the voice/face disagreements and
    the warnings.
    """
    rows = list(rows)
    segs = [r for r in rows if isinstance(r, Segment)]
    clips = []
    for seg in segs:
        sp = seg.speaker or {}
        if embeddings is not None:
            vec = embeddings.get(seg.id)
        else:
            vec = decode_embedding(sp["embedding"], seg.id) if sp.get("embedding") else None
        whole = decode_embedding(sp["voice"], seg.id) if sp.get("voice") else None
        fc = (seg.face or {}).get("embedding")
        face = decode_embedding(fc, seg.id) if fc and settings.faces else None
        clips.append(ClipVoice(seg.id, seg.source_id, vec, sp.get("primary"),
                               bool(sp.get("flagged")), face, float(seg.end - seg.start), whole))
    path = overrides_path(settings, root)
    pins = read_overrides(path) if path is not None else None
    warnings: list[str] = []

    def warn(line: str) -> None:
        warnings.append(line)
        if log is not None:
            log(line)

    model, calibration = score_model(
        settings.embedding, calibration_path(settings, root),
        face_same=FACE_SAME if settings.faces else None,
        face_different=FACE_DIFFERENT if settings.faces else None, prior=settings.prior,
        log=warn)
    if model is None:
        warn(f"speakers: no probability calibration for embedding {settings.embedding!r}; "
             "the split keeps speaker ids apart but cannot state its risk; set "
             "speakers.calibration to a 'indomer speakers calibrate --json' file")
    if model is None:  # hard groups only: every pair of groups taken as (nearly) apart
        from indomer.identity import LOGIT_MAX, ScoreModel

        model = ScoreModel(slope=0.0, intercept=-LOGIT_MAX)
    result: Clustering = cluster_voices(clips, settings.linking(model), pins)
    report_unused(result, warn if log is not None else None)
    seconds: dict[str, float] = {}
    for c in clips:
        if c.embedding is not None:
            seconds[c.source_id] = seconds.get(c.source_id, 0.0) + c.seconds
    for src, sec in sorted(seconds.items()):
        if sec < settings.min_voice_seconds:
            warn(f"source {src}: its voice has {sec:.1f} s of speech, under "
                 f"speakers.min_voice_seconds ({settings.min_voice_seconds:g} s); its identity "
                 "is uncertain: check it with 'indomer speakers review' and pin it in "
                 "speakers.csv")
    out = []
    for r in rows:
        if isinstance(r, Segment):
            sp = None
            if r.speaker is not None or result.groups.get(r.id) is not None:
                sp = {k: v for k, v in (r.speaker or {}).items()
                      if k not in ("embedding", "voice")}
                sp["group"] = result.groups.get(r.id)
            face = r.face
            if face is not None and "embedding" in face:
                face = {k: v for k, v in face.items() if k != "embedding"}
            r = dataclasses.replace(r, speaker_id=result.speaker_ids.get(r.id), speaker=sp,
                                    face=face)
        out.append(r)
    members: dict[str, set[str]] = {}
    sources: dict[str, set[str]] = {}
    source_of = {c.id: c.source_id for c in clips}
    for cid, g in result.groups.items():
        spk = result.speaker_ids.get(cid)
        if g is not None and spk is not None:
            members.setdefault(g, set()).add(spk)
            sources.setdefault(g, set()).add(source_of[cid])
    record = {
        "operating_point": settings.operating_point(calibration),
        "n_speakers": result.n_speakers,
        "n_groups": len(members),
        "groups": {g: sorted(v) for g, v in sorted(members.items())},
        "group_sources": {g: sorted(v) for g, v in sorted(sources.items())},
        "pairs": list(result.pairs),
        "pairs_total": result.n_group_pairs,
        "pairs_dropped_mass": round(result.dropped_mass, 6),
        "disagreements": list(result.disagreements[:REVIEW_MAX]),
        "disagreements_total": len(result.disagreements),
        "warnings": warnings,
    }
    return out, record


#: Voice/face disagreements kept in the record.
REVIEW_MAX = 200


# --------------------------------------------------------------------------- the stages


def _settings(cfg: Any) -> Settings:
    """Both speaker stages read the config's ``speakers:`` section."""
    return cfg.settings("speakers", Settings)


def _voices_settings(cfg: Any) -> Settings:
    """The per-source part: the clustering settings (threshold, speakers.csv) are left out,
    so changing them re-clusters without re-embedding every clip."""
    return _settings(cfg).for_items()


def _voices_run(item: Item, state: State) -> list:
    """Diarization summary and voice embedding of each clip of one source."""
    return [item.video, *process(item.video, item.segments, state)]


def _overrides_file(cfg: Any, dirs: dict[str, Path]) -> dict[str, Path]:
    settings = _settings(cfg)
    files = {}
    path = overrides_path(settings, cfg.root)
    if path is not None:
        files["speakers"] = path
    cal = calibration_path(settings, cfg.root)
    if cal is not None:
        files["calibration"] = cal
    return files


def _speakers_run(
    inputs: dict[str, list[dict]], settings: Settings, ctx: Context
) -> tuple[list, list]:
    """Global speaker ids: every source's voices clustered together (whole-dataset step)."""
    import sys

    from indomer.fsutil import write_json_atomic
    from indomer.rows import from_json, to_json

    rows = [from_json(o) for rs in inputs.values() for o in rs]
    out, record = identify(
        rows, settings=settings, root=ctx.config.root, log=lambda m: print(m, file=sys.stderr)
    )
    # the split groups, operating point and review queue: read by the split and shards stages
    write_json_atomic(ctx.workdir / "identity.json", record)
    return [to_json(r) for r in out], []


#: The per-source step (a model stage: a pool of workers, each loading the encoder once).
VOICES = Stage(
    "voices",
    _voices_run,
    configure=_voices_settings,
    setup=setup,
    tools_for=tool_versions,
    model=True,
)
#: The whole-dataset step: one speaker id per person across videos.
STAGE = Stage(
    "speakers",
    _speakers_run,
    configure=_settings,
    per_item=False,
    inputs=_overrides_file,
    unit="segment",
)
