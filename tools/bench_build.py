"""How fast a raw build runs against the length of its video, beside the cut bound.

Generates the demo corpus (``indomer demo``'s sources: about 100 s of synthetic talking-head
video), builds it once with ``run_pipeline`` and prints, in one run:

* per stage: its compute seconds (summed over items) and that as seconds per video second;
* the build's wall time and CPU seconds (this process and its workers) and the real-time
  factor (video seconds / wall seconds);
* the cut bound: the same source videos decoded and encoded once each by ffmpeg with the cut
  stage's codec settings, one process at a time. No build can cut faster than that, so
  ``cut compute / bound`` says what the cut stage adds over ffmpeg itself.

    .venv/bin/python tools/bench_build.py [--jobs N] [--device cpu|cuda] [--keep DIR]

``--device cuda`` sets ``align.device: cuda`` (the other stages run as configured).
On a contended machine the wall figures mean little: read the CPU seconds and the ratios.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("PYANNOTE_METRICS_ENABLED", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model


def cpu_seconds() -> float:
    """User + system CPU seconds of this process and its finished children."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    kids = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def video_seconds(paths: list[Path]) -> float:
    from indomer.media import ffprobe

    return sum(float(ffprobe(p)["format"]["duration"]) for p in paths)


def cut_bound(paths: list[Path], out: Path) -> tuple[float, float]:
    """(wall, CPU) seconds to decode and re-encode every source once with the cut settings."""
    from indomer.stages.cut import Settings, _encode_args

    args = _encode_args(Settings())
    c0, t0 = cpu_seconds(), time.perf_counter()
    for i, src in enumerate(paths):
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(src), *args,
                        str(out / f"bound_{i}.mp4")], check=True)
    return time.perf_counter() - t0, cpu_seconds() - c0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--jobs", type=int, default=len(os.sched_getaffinity(0)))
    ap.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    ap.add_argument("--keep", type=Path, help="build here (kept) instead of a temp folder")
    args = ap.parse_args()

    from indomer.demo.corpus import make_corpus
    from indomer.pipeline import run_pipeline

    tmp = tempfile.mkdtemp(prefix="indomer-bench-build-")
    root = args.keep or Path(tmp)
    try:
        corpus = make_corpus(root / "corpus")
        if args.device != "cpu":
            text = corpus.read_text().replace("align: {method: whisper}",
                                              f"align: {{method: whisper, device: {args.device}}}")
            corpus.write_text(text)
        sources = sorted((root / "corpus").rglob("*.mp4"))
        seconds = video_seconds(sources)
        bound_wall, bound_cpu = cut_bound(sources, Path(tmp))
        c0, t0 = cpu_seconds(), time.perf_counter()
        report = run_pipeline(corpus, root / "dataset", jobs=args.jobs, quiet=True)
        wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    finally:
        shutil.rmtree(tmp, ignore_errors=True)  # with --keep, only the bound's files
    print(f"# {cpu_model()}, {len(os.sched_getaffinity(0))} cores usable, --jobs {args.jobs}, "
          f"device {args.device}, {len(sources)} videos, {seconds:.1f} s of video")
    print(f"{'stage':<10}{'compute s':>10}{'s per video s':>15}")
    for s in report["stages"]:
        if s["status"] == "ran":
            print(f"{s['name']:<10}{s['seconds']:>10.2f}{s['seconds'] / seconds:>15.3f}")
    print(f"{'cut bound':<10}{bound_cpu:>10.2f}{bound_cpu / seconds:>15.3f}   "
          f"(ffmpeg decode+encode, one process; wall {bound_wall:.2f} s)")
    print(f"build wall {wall:.1f} s = {seconds / wall:.2f}x real time; "
          f"CPU {cpu:.1f} s = {cpu / seconds:.3f} CPU s per video s")
    print(json.dumps({"video_s": round(seconds, 2), "wall_s": round(wall, 2),
                      "cpu_s": round(cpu, 2), "cut_bound_cpu_s": round(bound_cpu, 2),
                      "jobs": args.jobs, "device": args.device,
                      "stages": {s["name"]: round(s["seconds"], 2) for s in report["stages"]
                                 if s["status"] == "ran"}}, sort_keys=True))


if __name__ == "__main__":
    main()
