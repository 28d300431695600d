"""Speaker test material, built once per test process (plain cached functions, so every test
module shares one copy; pytest fixtures imported into several modules would be built twice).

* :func:`demo_clips`: the demo corpus's 19 clips (7 sources, voices m3, f2, id, m3, f4, m7, m2) as
  16 kHz audio, cut at the exact sentence truth, made with the demo's own synth in about 1 s.
* :func:`demo_voices`: their resemblyzer embeddings as ``ClipVoice`` rows, with the truth.
* :func:`random_pipeline_dir`: a random-weight pyannote diarization folder (FIXTURES.md
  section 6, segmentation_step 0.5).
"""

from __future__ import annotations

import atexit
import functools
import os
import shutil
import tempfile
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ["PYANNOTE_METRICS_ENABLED"] = "false"

from indomer.demo.corpus import SOURCES, SPEAKERS
from indomer.demo.synth import DEMO_SENTENCES, VOICES, Voice, speak
from indomer.rows import segment_id

SR = 16_000
#: A voice unlike every demo voice (resemblyzer cosine <= 0.74 to each demo source).
UNRELATED = ("9", "Sport", Voice("id+klatt", pitch=50, rate=150), (1, 3, 5, 7))


def _tmpdir(prefix: str) -> Path:
    path = Path(tempfile.mkdtemp(prefix=prefix))
    atexit.register(shutil.rmtree, path, True)
    return path


def clips_of(source_id: str, topic: str, voice: Voice, sentences: tuple[int, ...]):
    """(source wav, [(clip id, start, end, clip wav)]) for one synthetic source."""
    wav, truth = speak([DEMO_SENTENCES[i][1] for i in sentences], voice)
    out = []
    for k, s in enumerate(truth["sentences"], start=1):
        a, b = round(s["start"] * SR), round(s["end"] * SR)
        out.append((segment_id(source_id, topic, k), s["start"], s["end"], wav[a:b]))
    return wav, out


@functools.lru_cache(maxsize=1)
def demo_clips() -> tuple:
    """((source, clip id, start, end, clip wav, true speaker), ...) for the demo corpus."""
    rows = []
    for src in SOURCES:
        _, clips = clips_of(src.source_id, src.topic, VOICES[src.voice], src.sentences)
        for cid, start, end, wav in clips:
            rows.append((src, cid, start, end, wav, SPEAKERS[src.voice]))
    return tuple(rows)


@functools.lru_cache(maxsize=1)
def demo_voices() -> tuple[list, dict[str, str]]:
    """(ClipVoice per demo clip, clip id -> true speaker) with resemblyzer's real encoder."""
    from indomer.backends.voice import load_encoder
    from indomer.speakers import ClipVoice

    enc = load_encoder()
    voices, truth = [], {}
    for src, cid, _, _, wav, speaker in demo_clips():
        voices.append(ClipVoice(cid, src.source_id, enc.embed(wav)))
        truth[cid] = speaker
    return voices, truth


@functools.lru_cache(maxsize=1)
def unrelated_voices() -> list:
    """The clips of one extra source whose voice matches no demo voice."""
    from indomer.backends.voice import load_encoder
    from indomer.speakers import ClipVoice

    enc = load_encoder()
    source_id, topic, voice, sentences = UNRELATED
    _, clips = clips_of(source_id, topic, voice, sentences)
    return [ClipVoice(cid, source_id, enc.embed(wav)) for cid, _, _, wav in clips]


@functools.lru_cache(maxsize=1)
def random_pipeline_dir() -> Path:
    """A local random-weight pyannote SpeakerDiarization folder (built once, about 0.3 s)."""
    from indomer.backends.diarize import write_test_pipeline

    return write_test_pipeline(_tmpdir("indomer-pyannote-") / "pipeline", segmentation_step=0.5)


def partition(mapping: dict[str, object]) -> set[frozenset[str]]:
    """The groups of keys that share a value (a labelling-independent partition)."""
    groups: dict[object, set[str]] = {}
    for key, value in mapping.items():
        groups.setdefault(value, set()).add(key)
    return {frozenset(g) for g in groups.values()}
