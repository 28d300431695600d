"""Voices stage: who speaks in each clip of one source, and the voice embeddings.

Per source (:func:`process`, models loaded once by :func:`setup`): with ``diarization`` set,
the pyannote pipeline runs on the whole source (turns are consistent across its clips) and
:func:`indomer.backends.diarize.clip_summary` gives each clip its ``n_speakers``,
``primary_share`` and ``overlap``; a clip whose main speaker does not dominate (share under
``min_primary_share`` or overlap over ``max_overlap``) is flagged, or rejected with
``on_mixed: reject``. Without diarization (the default: no pyannote pipeline ships offline)
those fields are null and nothing is flagged. Each clip then gets a voice embedding of its
main speaker (the stretches where that speaker talks alone, when another one intrudes and at
least 1 s remains; else the whole clip). The speakers stage (:mod:`indomer.stages.speakers`)
clusters them across sources. Its settings are the ``speakers:`` section
(:mod:`indomer.speaker_settings`), without the clustering-only fields.

**Where the embedding lives: in the row.** ``speaker["embedding"]`` holds the 256 float32
values as base64 (1.4 KB per clip; 14 MB of manifest for 10,000 clips). A row then stays a
pure value, as the pipeline requires (``--jobs`` workers, a Ray cluster): the whole-dataset
step needs nothing but the manifest, the manifest's sha256 in the next fingerprint covers
the embeddings, and no side file can go stale or missing. The speakers stage drops the
vector from ``speaker``, so it never reaches the shards.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indomer.errors import RowRejected
from indomer.rows import Segment, Video
from indomer.speaker_settings import Settings, from_config, tool_versions
from indomer.speakers import encode_embedding
from indomer.stage import Item, ItemStage

SAMPLE_RATE = 16_000
#: Main-speaker-only audio shorter than this is not trusted alone: embed the whole clip.
MIN_SOLO_SECONDS = 1.0


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
    from indomer.media import read_wav, wav_info

    info = wav_info(path) if path else None
    if info is None or (info[0], info[1], info[3]) != (SAMPLE_RATE, 1, "PCM_16"):
        return None
    return read_wav(path)[0][:, 0]


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


# --------------------------------------------------------------------------- the stage


def _voices_settings(cfg: Any) -> Settings:
    """The per-source part: the clustering settings (threshold, speakers.csv) are left out,
    so changing them re-clusters without re-embedding every clip."""
    return from_config(cfg).for_items()


def _voices_run(item: Item, state: State) -> list:
    """Diarization summary and voice embedding of each clip of one source."""
    return [item.video, *process(item.video, item.segments, state)]


#: The per-source step (a model stage: a pool of workers, each loading the encoder once).
STAGE = ItemStage(
    "voices",
    _voices_run,
    configure=_voices_settings,
    section="speakers",
    setup=setup,
    tools_for=tool_versions,
    model=True,
)
