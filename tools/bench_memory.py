"""Peak memory of a raw-mode build against the number of sources (target: flat).

For each N in ``--sources`` (default 4, 12, 24) it generates N synthetic source videos
(testsrc2 + pink noise, H.264/AAC, ``--seconds`` long), a segments table with ``--clips``
clips per source, two agreeing annotators, and builds them with the real pipeline
(fetch -> probe -> segment (given) -> cut -> merge -> split -> shards) in a fresh Python
process (the model stages pass rows through: their cost is one model per worker, not per
source). It reports the peak RSS of the build process itself and of its largest child
(pool workers and ffmpeg), from getrusage, so the figure covers every process the build ran.

    .venv/bin/python tools/bench_memory.py [--sources 4,12,24] [--seconds 30] [--clips 10]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_cut import make_source
from benchutil import cpu_model


def passthrough(item, state) -> list:
    return [item.video, *item.segments]


def passthrough_whole(inputs, state):
    from indomer.stage import Produced

    return Produced(inputs.rows())


def child(config: str, out: str, jobs: int) -> None:
    """One build in this process; print its peak RSS and its largest child's."""
    import resource

    from indomer import pipeline
    from indomer.pipeline import DatasetStage, ItemStage, run_pipeline

    # The model stages (align, voices, faces, speakers) load one model per worker whatever
    # the number of sources; they pass rows through here so noise does not feed Whisper.
    real = {s.name: s for s in pipeline.default_stages()}
    real.update(
        align=ItemStage("align", passthrough),
        voices=ItemStage("voices", passthrough),
        faces=ItemStage("faces", passthrough),
        speakers=DatasetStage("speakers", passthrough_whole),
    )
    stages = tuple(real[name] for name in pipeline.STAGES)
    run_pipeline(config, out, stages=stages, jobs=jobs, quiet=True, log=lambda m: None)
    me = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    kids = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    print(json.dumps({"self_mb": me / 1024, "children_mb": kids / 1024}))

EMOTIONS = (("happiness", "positive", 0.6), ("sadness", "negative", -0.6),
            ("neutral", "neutral", 0.0), ("anger", "negative", -0.8))


def make_project(root: Path, n: int, seconds: float, clips: int) -> Path:
    (root / "videos").mkdir(parents=True)
    src = ["source_id,url_or_path,topic,license"]
    seg = ["id,source_id,start,end,text"]
    sheet = [("id,annotator,role,sentiment_score,emotion,emotion_intensity,text_sentiment,"
             "audio_sentiment,video_sentiment")]
    slot = seconds / clips
    for s in range(1, n + 1):
        make_source(root / "videos" / f"v{s}.mp4", seconds, "640x360", 25, seed=s)
        src.append(f"{s},videos/v{s}.mp4,Bench,CC-BY-4.0")
        for k in range(1, clips + 1):
            sid = f"clip_{s}_Bench_{k}"
            start = (k - 1) * slot + 0.1
            seg.append(f"{sid},{s},{start:.3f},{start + slot - 0.3:.3f},teks {s} {k}")
            emo, sent, score = EMOTIONS[(s + k) % len(EMOTIONS)]
            for ann in ("ani", "budi"):
                sheet.append(f"{sid},{ann},annotator,{score},{emo},2,{sent},{sent},{sent}")
    (root / "sources.csv").write_text("\n".join(src) + "\n")
    (root / "segments.csv").write_text("\n".join(seg) + "\n")
    (root / "sheets").mkdir()
    (root / "sheets" / "labels.csv").write_text("\n".join(sheet) + "\n")
    cfg = {"sources": "sources.csv", "segments": "segments.csv", "annotations": ["sheets"],
           "split": {"ratios": [0.5, 0.25, 0.25], "seed": 0}}
    (root / "build.yaml").write_text(json.dumps(cfg))
    return root / "build.yaml"


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3], int(sys.argv[4]))
        return
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sources", default="4,12,24")
    ap.add_argument("--seconds", type=float, default=30.0)
    ap.add_argument("--clips", type=int, default=10)
    ap.add_argument("--jobs", type=int, default=2)
    args = ap.parse_args()
    print(f"machine: {cpu_model()}, python {sys.version.split()[0]}")
    print(f"{'sources':>7} {'clips':>6} {'wall s':>7} {'build MB':>9} {'largest child MB':>17}")
    for n in (int(x) for x in args.sources.split(",")):
        with tempfile.TemporaryDirectory() as tmp:
            cfg = make_project(Path(tmp) / "p", n, args.seconds, args.clips)
            t0 = time.perf_counter()
            res = subprocess.run(
                [sys.executable, __file__, "--child", str(cfg), str(Path(tmp) / "out"),
                 str(args.jobs)],
                capture_output=True, text=True, check=False,
            )
            wall = time.perf_counter() - t0
            if res.returncode != 0:
                sys.exit(f"build of {n} sources failed:\n{res.stderr[-2000:]}")
            fig = json.loads(res.stdout.strip().splitlines()[-1])
            print(f"{n:>7} {n * args.clips:>6} {wall:>7.1f} {fig['self_mb']:>9.0f} "
                  f"{fig['children_mb']:>17.0f}")


if __name__ == "__main__":
    main()
