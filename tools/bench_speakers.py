"""Benchmark the speakers step on this CPU: diarization per minute of audio, and clustering
10,000 clip embeddings into global speaker ids.

* diarize: the random-weight pyannote pipeline of the tests (``write_test_pipeline``:
  PyanNet segmentation + WeSpeakerResNet34 embeddings + VBx, the real architecture, so the
  compute is the real pipeline's) on ``--seconds`` of synthetic Indonesian speech (two demo
  voices taking turns), at ``segmentation_step`` 0.5 (the tests; 1 and 2 torch threads) and
  0.1 (pyannote's default, on a shorter stretch), as seconds of wall time per minute of
  audio.
* cluster: :func:`indomer.speakers.cluster_voices` on synthetic 256-d unit embeddings that
  mimic resemblyzer's geometry (every vector shares a common direction, so different
  speakers sit at 0.6-0.9 cosine; clips of one speaker at about 0.9; source voices of one
  speaker at about 0.98), in three shapes: ``--clips`` clips in ``--sources`` sources (the
  realistic case), every clip its own source (10,000 voices to cluster across), and the same
  at a threshold so low that everything is one component (the worst case: the streamed
  path beyond ``DENSE_MAX``). Reports seconds, peak traced memory, and whether the true
  partition came back.

    .venv/bin/python tools/bench_speakers.py [--clips 10000] [--sources 1000]
        [--speakers 400] [--seconds 60] [--skip-diarize] [--skip-worst]
"""

from __future__ import annotations

import argparse
import itertools
import os
import sys
import tempfile
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

os.environ["PYANNOTE_METRICS_ENABLED"] = "false"
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from indomer.speakers import RESEMBLYZER_THRESHOLD, ClipVoice, cluster_voices, normalize

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

DIM = 256


# --------------------------------------------------------------------------- diarization


def speech(seconds: float) -> np.ndarray:
    """About ``seconds`` of two demo voices taking turns, sentence by sentence."""
    from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak

    parts, total, k = [], 0, 0
    while total < seconds * 16_000:
        voice = VOICES["m3" if k % 2 == 0 else "f4"]
        wav, _ = speak([DEMO_SENTENCES[(3 * k + j) % len(DEMO_SENTENCES)][1] for j in range(3)],
                       voice)
        parts.append(wav)
        total += wav.size
        k += 1
    return np.concatenate(parts)[: int(seconds * 16_000)]


def bench_diarize(seconds: float) -> None:
    from indomer.backends.diarize import diarize_source, load_pipeline, write_test_pipeline

    wav = speech(seconds)
    runs = ((0.5, seconds, 1), (0.5, seconds, 2), (0.1, min(seconds, 20.0), 1))
    with tempfile.TemporaryDirectory(prefix="indomer-bench-") as tmp:
        for step, length, threads in runs:
            folder = write_test_pipeline(Path(tmp) / f"step{step}", segmentation_step=step)
            t0 = time.perf_counter()
            pipeline = load_pipeline(str(folder))
            load = time.perf_counter() - t0
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # random weights
                diarize_source(wav[: 16_000 * 5], pipeline, threads=threads)  # warm-up
                x = wav[: int(length * 16_000)]
                t0 = time.perf_counter()
                turns = diarize_source(x, pipeline, threads=threads)
                took = time.perf_counter() - t0
            minutes = x.size / 16_000 / 60
            print(f"diarize step {step}, {threads} thread(s): {x.size / 16_000:.0f} s of audio "
                  f"in {took:.1f} s = {took / minutes:.1f} s per minute of audio "
                  f"({len(turns)} turns; load {load:.2f} s)")


# --------------------------------------------------------------------------- clustering


def synthetic(n_clips: int, n_sources: int, n_speakers: int, seed: int = 0):
    """Clips, and each clip's true speaker; sources get speakers round-robin, so speaker i
    appears in about n_sources / n_speakers sources."""
    rng = np.random.default_rng(seed)
    common = normalize(rng.standard_normal(DIM))
    centres = normalize(common + 0.55 * normalize(rng.standard_normal((n_speakers, DIM))))
    source_speaker = np.arange(n_sources) % n_speakers
    rng.shuffle(source_speaker)
    channel = 0.08 * normalize(rng.standard_normal((n_sources, DIM)))  # microphone, room
    clip_source = np.sort(np.arange(n_clips) % n_sources)
    noise = 0.3 * normalize(rng.standard_normal((n_clips, DIM)))
    emb = normalize(centres[source_speaker[clip_source]] + channel[clip_source] + noise)
    clips = [ClipVoice(f"clip_{s}_T_{i}", str(s), emb[i].astype(np.float32))
             for i, s in enumerate(clip_source.tolist())]
    truth = {c.id: int(source_speaker[s]) for c, s in zip(clips, clip_source.tolist())}
    return clips, truth, emb, centres


def partition(mapping: dict) -> set:
    groups: dict = {}
    for k, v in mapping.items():
        groups.setdefault(v, set()).add(k)
    return {frozenset(g) for g in groups.values()}


def bench_cluster(name: str, clips: list, truth: dict | None, threshold: float) -> None:
    tracemalloc.start()
    t0 = time.perf_counter()
    res = cluster_voices(clips, threshold)
    took = time.perf_counter() - t0
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    exact = ""
    if truth is not None:
        ok = partition(res.speaker_ids) == partition(truth)
        exact = f", true partition {'recovered exactly' if ok else 'NOT recovered'}"
    print(f"cluster {name}: {len(clips)} clips -> {res.n_speakers} speakers in {took:.2f} s, "
          f"peak traced memory {peak / 2**20:.0f} MiB{exact}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=10_000)
    ap.add_argument("--sources", type=int, default=1_000)
    ap.add_argument("--speakers", type=int, default=400)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--threshold", type=float, default=RESEMBLYZER_THRESHOLD)
    ap.add_argument("--skip-diarize", action="store_true")
    ap.add_argument("--skip-worst", action="store_true")
    args = ap.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores; numpy {np.__version__}")

    clips, truth, emb, centres = synthetic(args.clips, args.sources, args.speakers)
    c = centres @ centres.T
    same = np.array([truth[a.id] == truth[b.id] for a, b in itertools.pairwise(clips)])
    adjacent = np.einsum("ij,ij->i", emb[:-1], emb[1:])
    pct = np.percentile(c[np.triu_indices_from(c, 1)], [50, 99.9]).round(3).tolist()
    print(f"synthetic geometry: different speakers' centres {pct} (median, 99.9th), clips of "
          f"one speaker {np.median(adjacent[same]):.3f} (median)")
    bench_cluster(f"{args.sources} sources", clips, truth, args.threshold)
    singles = [ClipVoice(c.id, c.id, c.embedding) for c in clips]
    bench_cluster("one clip per source", singles, None, args.threshold)
    if not args.skip_worst:
        bench_cluster("one component (threshold 0.3, worst case)", singles, None, 0.3)
    if not args.skip_diarize:
        bench_diarize(args.seconds)


if __name__ == "__main__":
    main()
