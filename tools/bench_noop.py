"""Benchmark a no-op rebuild: a finished raw-mode build of 2,000 segments, built again.

Every stage finds its fingerprint unchanged and is skipped, so the cost is reading and
hashing the manifests (and the shards, to prove they are still the ones written). The media
stages are light stand-ins (probe fills fixed facts, cut writes a tiny wav per segment); fetch,
the given-segments path of segment, and the merge -> split -> shards tail are the real ones.
Target: under 2 s.

    .venv/bin/python tools/bench_noop.py [--videos 200] [--per-video 10] [--repeat 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import io
import platform
import tempfile
import time
import wave
from dataclasses import dataclass
from pathlib import Path

from indomer import pipeline
from indomer.pipeline import (
    Context,
    DatasetStage,
    Inputs,
    Item,
    ItemStage,
    Produced,
    Stage,
    run_pipeline,
)

EMOTIONS = (
    ("happiness", "positive", 0.6),
    ("sadness", "negative", -0.6),
    ("neutral", "neutral", 0.0),
    ("anger", "negative", -0.8),
)


def light_probe(item: Item, settings: None) -> list:
    return [dataclasses.replace(item.video, duration=600.0, fps=25.0, width=640, height=360)]


@dataclass(frozen=True)
class _Clips:
    folder: Path


def light_cut_setup(settings: None, ctx: Context) -> _Clips:
    return _Clips(ctx.workdir / "clips")


def _wav(n: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        w.writeframes(bytes(2 * n))
    return buf.getvalue()


def light_cut(item: Item, state: _Clips) -> list:
    state.folder.mkdir(parents=True, exist_ok=True)
    out: list = [item.video]
    for seg in item.segments:
        path = state.folder / f"{seg.id}.wav"
        path.write_bytes(_wav(800))
        out.append(dataclasses.replace(seg, audio_path=str(path)))
    return out


def passthrough(item: Item, state: None) -> list:
    return [item.video, *item.segments]


def passthrough_whole(inputs: Inputs, state: None) -> Produced:
    return Produced(inputs.rows())


def stages() -> tuple[Stage, ...]:
    real = {s.name: s for s in pipeline.default_stages()}
    return (
        real["fetch"],
        ItemStage("probe", light_probe),
        ItemStage(
            "segment",
            real["segment"].process,
            setup=real["segment"].setup,
            inputs=real["segment"].inputs,
        ),
        ItemStage("cut", light_cut, setup=light_cut_setup),
        # the model stages pass rows through (their models are not what is measured)
        ItemStage("align", passthrough),
        ItemStage("voices", passthrough),
        ItemStage("faces", passthrough),
        DatasetStage("speakers", passthrough_whole),
        real["merge"],
        real["split"],
        real["shards"],
    )


def make_project(root: Path, videos: int, per_video: int) -> Path:
    (root / "videos").mkdir(parents=True)
    src = ["source_id,url_or_path,topic,license"]
    seg = ["id,source_id,start,end,text"]
    sheet = [
        "id,annotator,role,sentiment_score,emotion,emotion_intensity,"
        + "text_sentiment,audio_sentiment,video_sentiment"
    ]
    for s in range(1, videos + 1):
        (root / "videos" / f"{s}.mp4").write_bytes(b"x" * 4096)
        src.append(f"{s},videos/{s}.mp4,Cooking,CC-BY-4.0")
        for k in range(1, per_video + 1):
            sid = f"clip_{s}_Cooking_{k}"
            seg.append(f"{sid},{s},{3 * k},{3 * k + 2},kalimat nomor {k} dari video {s}")
            emo, sent, score = EMOTIONS[(s * 7 + k) % len(EMOTIONS)]
            for ann in ("ani", "budi", "citra"):
                sheet.append(f"{sid},{ann},annotator,{score},{emo},2,{sent},{sent},{sent}")
    (root / "sources.csv").write_text("\n".join(src) + "\n")
    (root / "segments.csv").write_text("\n".join(seg) + "\n")
    (root / "sheet.csv").write_text("\n".join(sheet) + "\n")
    (root / "build.yaml").write_text(
        "sources: sources.csv\nsegments: segments.csv\nannotations: sheet.csv\n"
        "split:\n  ratios: [0.8, 0.1, 0.1]\n  seed: 0\n"
    )
    return root / "build.yaml"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--videos", type=int, default=200)
    ap.add_argument("--per-video", type=int, default=10)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="indomer-bench-") as tmp:
        cfg = make_project(Path(tmp) / "project", args.videos, args.per_video)
        out = Path(tmp) / "out"
        t0 = time.perf_counter()
        first = run_pipeline(cfg, out, stages=stages(), quiet=True)
        full = time.perf_counter() - t0
        rows = sum(first["rows"].values())
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            again = run_pipeline(cfg, out, stages=stages(), quiet=True)
            times.append(time.perf_counter() - t0)
            skipped = {s["status"] for s in again["stages"]}
            if skipped != {"skipped"}:
                raise SystemExit(f"not a no-op: stage statuses {skipped}")
    print(f"python {platform.python_version()}, {platform.machine()}")
    print(f"first build: {rows} segments from {args.videos} videos in {full:.2f} s")
    print(
        f"no-op rebuild: best {min(times):.3f} s, worst {max(times):.3f} s "
        f"over {args.repeat} runs (target < 2 s)"
    )


if __name__ == "__main__":
    main()
