"""Word-time accuracy and cost of the align methods on speech with exact word truth.

Generates synthetic Indonesian clips (``indomer.demo.synth.speak``: espeak-ng word by word,
FIXTURES.md section 1 recipe A, so every word's start and end is known to the sample): for
each voice, the twelve demo sentences in three clips of four (about 20 s each), plus one
clip of all twelve (about 60 s: Whisper's 30 s window is crossed). Then it times every word
with:

* ``whisper``: forced alignment of the transcript with the shipped Whisper base
  (``indomer.backends.whisper_align``, the offline default);
* ``whisper`` without the energy step (``path only``): the alignment path's jumps as they
  are, which is what faster-whisper's word timestamps start from;
* ASR matching: faster-whisper word timestamps of what Whisper heard, matched to the
  transcript (``indomer.backends.asr.place_words``; the old whisper method);
* ``wav2vec2`` with a tiny random CTC model (the test model: whisperx.align's code path
  only, its times are meaningless).

and prints, per method, the share of words timed and the median and 95th percentile of the
absolute start and end error (over timed words), with CPU seconds per minute of audio.

    .venv/bin/python tools/bench_align.py [--voices id,m3,f2,f4] [--markdown]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import numpy as np

from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak, write_wav
from indomer.rows import Segment
from indomer.stages import align

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]
SENTENCES = [text for _, text in DEMO_SENTENCES]


def tiny_wav2vec2(folder: Path) -> Path:
    """The tests' random 2-layer wav2vec2 CTC (FIXTURES.md section 7), saved to ``folder``."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    import align_models

    return align_models.tiny_wav2vec2(folder)


def make_clips(folder: Path, voices: list[str], long: bool = True
               ) -> list[tuple[Segment, list[dict]]]:
    """Per voice: three clips of four sentences, and (``long``) one of all twelve."""
    groups = [SENTENCES[0:4], SENTENCES[4:8], SENTENCES[8:12]]
    clips = []
    for voice in voices:
        for k, chosen in enumerate(groups + ([SENTENCES] if long else [])):
            wav, truth = speak(chosen, VOICES[voice])
            name = f"clip_1_Bench{voice.replace('_', '')}_{k + 1}"
            path = folder / f"{name}.wav"
            write_wav(path, wav)
            seg = Segment(id=name, source_id="1", segment_index=k + 1, topic="Bench",
                          start=0.0, end=wav.size / 16_000, text=" ".join(chosen),
                          audio_path=str(path))
            clips.append((seg, [w for s in truth["sentences"] for w in s["words"]]))
    return clips


def errors(rows: list[list[dict]], clips) -> dict:
    """Share timed and |start|/|end| error percentiles (ms) of ``rows`` against the truth."""
    starts, ends, timed, total = [], [], 0, 0
    for words, (_, truth) in zip(rows, clips, strict=True):
        for w, t in zip(words, truth, strict=True):
            total += 1
            if w["start"] is None:
                continue
            timed += 1
            starts.append(abs(w["start"] - t["start"]))
            ends.append(abs(w["end"] - t["end"]))
    out = {"words": total, "timed": timed, "timed_share": round(timed / total, 4)}
    for name, xs in (("start", starts), ("end", ends)):
        if xs:
            out[f"{name}_median_ms"] = round(1000 * float(np.median(xs)))
            out[f"{name}_p95_ms"] = round(1000 * float(np.percentile(xs, 95)))
    return out


def stage_method(name: str, settings: align.Settings, clips, cache: Path) -> dict:
    state = align.setup(settings, cache_dir=cache)
    segs = [seg for seg, _ in clips]
    c0, t0 = time.process_time(), time.perf_counter()
    rows = align.process(segs, state)
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    minutes = sum(s.end - s.start for s in segs) / 60
    out = {"method": name, "cpu_s_per_audio_min": round(cpu / minutes, 2),
           "wall_s_per_audio_min": round(wall / minutes, 2)}
    out.update(errors([list(r.words) for r in rows], clips))
    return out


def asr_matching(clips, cache: Path) -> dict:
    from indomer.backends.asr import load_whisper_words, place_words
    from indomer.textnorm import normalize, token_times

    model = load_whisper_words("whisper-base", device="cpu", cache_dir=cache)
    c0, t0 = time.process_time(), time.perf_counter()
    rows = []
    for seg, _ in clips:
        wav = align.read_wav(seg.audio_path, seg.id)
        norm = normalize(seg.text)
        placed = place_words(norm, model.words(wav), duration=wav.size / 16_000)
        rows.append(token_times(norm, placed))
    cpu, wall = time.process_time() - c0, time.perf_counter() - t0
    minutes = sum(s.end - s.start for s, _ in clips) / 60
    out = {"method": "ASR matching (faster-whisper words)",
           "cpu_s_per_audio_min": round(cpu / minutes, 2),
           "wall_s_per_audio_min": round(wall / minutes, 2)}
    out.update(errors(rows, clips))
    return out


def markdown(results: list[dict]) -> list[str]:
    head = ("| method | words timed | start median / p95 (ms) | end median / p95 (ms) "
            "| CPU s per audio min |")
    lines = [head, "|---|---|---|---|---|"]
    for r in results:
        lines.append(
            f"| {r['method']} | {r['timed']}/{r['words']} ({100 * r['timed_share']:.1f} %) "
            f"| {r.get('start_median_ms', '-')} / {r.get('start_p95_ms', '-')} "
            f"| {r.get('end_median_ms', '-')} / {r.get('end_p95_ms', '-')} "
            f"| {r['cpu_s_per_audio_min']} |")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="id,m3,f2,f4")
    ap.add_argument("--methods", default="whisper,path,asr,wav2vec2")
    ap.add_argument("--no-long", action="store_true", help="leave out the 60 s clips")
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--markdown", action="store_true", help="print the README table")
    args = ap.parse_args()
    methods = args.methods.split(",")
    with tempfile.TemporaryDirectory(prefix="indomer-bench-align-") as tmp:
        root = Path(tmp)
        clips = make_clips(root, args.voices.split(","), long=not args.no_long)
        results = []
        if "whisper" in methods:
            results.append(stage_method("forced (Whisper base, `align.method: whisper`)",
                                        align.Settings(method="whisper", asr=False,
                                                       device=args.device), clips, root))
        if "path" in methods:
            from indomer.backends import whisper_align

            keep = whisper_align.refine
            whisper_align.refine = lambda bounds, shared, mask: list(bounds)
            try:
                results.append(stage_method(
                    "forced, path only (no pause or silence step)",
                    align.Settings(method="whisper", asr=False, device=args.device), clips,
                    root))
            finally:
                whisper_align.refine = keep
        if "asr" in methods:
            results.append(asr_matching(clips, root))
        if "wav2vec2" in methods:
            results.append(stage_method(
                "wav2vec2, tiny random model (code path only)",
                align.Settings(model=str(tiny_wav2vec2(root)), device=args.device,
                               asr=False), clips, root))
    minutes = sum(s.end - s.start for s, _ in clips) / 60
    print(f"# {cpu_model()}, {len(os.sched_getaffinity(0))} cores, {len(clips)} clips, "
          f"{minutes:.2f} min of audio")
    for r in results:
        print(json.dumps(r, sort_keys=True))
    if args.markdown:
        print("\n".join(markdown(results)))


if __name__ == "__main__":
    main()
