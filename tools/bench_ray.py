"""Benchmark the Ray engine: its overhead on a real corpus, and the overlap streaming buys.

overhead: the demo corpus (about 100 s of generated video, every real stage) built with
``--engine local --jobs N`` and with ``--engine ray`` on a local Ray of N CPUs, each into a
fresh folder; wall times, their ratio (goal: at most 1.15), and whether the shards are the
same bytes. Ray's start-up is included, as a user meets it.

overlap: a simulated heterogeneous pipeline of 40 videos: a CPU stage (``cut``, plain tasks
on N CPUs) and a "GPU" stage (``align``, one actor holding a custom ``accelerator``
resource), each sleeping a fixed time per video. A barrier runner would need the sum of the
two stages; the slower stage alone is the limit. Goal: within 1.2x of the limit.

    .venv/bin/python tools/bench_ray.py [overhead|overlap|both] [--jobs 2] [--videos 40]
        [--cpu-seconds 0.5] [--gpu-seconds 0.5]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from benchutil import cpu_model

from indomer.stage import Context, Item, ItemStage


def _shards(dataset: Path) -> str:
    h = hashlib.sha256()
    for p in sorted((dataset / "data").glob("*.parquet")):
        h.update(p.name.encode() + p.read_bytes())
    h.update((dataset / "build.json").read_bytes())
    return h.hexdigest()


def overhead(jobs: int, root: Path) -> dict:
    from indomer.demo.corpus import make_corpus
    from indomer.pipeline import run_pipeline

    config = make_corpus(root / "corpus", log=lambda m: None)
    times, digests = {}, {}
    for engine in ("local", "ray"):
        out = root / f"dataset-{engine}"
        t0 = time.perf_counter()
        run_pipeline(config, out, engine=engine, jobs=jobs, quiet=True, log=lambda m: None)
        times[engine] = time.perf_counter() - t0
        digests[engine] = _shards(out)
    return {
        "jobs": jobs,
        "local_s": round(times["local"], 1),
        "ray_s": round(times["ray"], 1),
        "ratio": round(times["ray"] / times["local"], 3),
        "same_shards": digests["local"] == digests["ray"],
    }


# --------------------------------------------------------------------------- overlap

CPU_SECONDS = 0.5
GPU_SECONDS = 0.5


def _seconds(settings: object, ctx: Context) -> float:
    return float(os.environ.get(f"BENCH_{ctx.name.upper()}_SECONDS", "0.5"))


def cpu_work(item: Item, seconds: float) -> list:
    time.sleep(seconds)
    return [item.video]


def gpu_work(item: Item, seconds: float) -> list:
    time.sleep(seconds)
    return [item.video]


def overlap(jobs: int, videos: int, cpu_s: float, gpu_s: float, root: Path) -> dict:
    import ray

    from indomer.pipeline import default_stages, run_pipeline

    (root / "v").mkdir(parents=True)
    lines = ["source_id,url_or_path,topic,license"]
    for i in range(1, videos + 1):
        (root / "v" / f"{i}.mp4").write_bytes(b"x" * 64)
        lines.append(f"{i},v/{i}.mp4,Cooking,CC-BY-4.0")
    (root / "sources.csv").write_text("\n".join(lines) + "\n")
    cfg = {
        "sources": "sources.csv",
        "cut": {"resources": {"num_cpus": 1}},
        "align": {"resources": {"custom": {"accelerator": 1}, "concurrency": 1}},
    }
    (root / "build.yaml").write_text(json.dumps(cfg))
    fetch = next(s for s in default_stages() if s.name == "fetch")
    stages = (
        fetch,
        ItemStage("cut", cpu_work, setup=_seconds),
        ItemStage("align", gpu_work, setup=_seconds, model=True),
    )
    # the workers import this file's stages, and read the per-video seconds
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(Path(__file__).resolve().parent), os.environ.get("PYTHONPATH", "")]
    )
    os.environ["BENCH_CUT_SECONDS"] = str(cpu_s)
    os.environ["BENCH_ALIGN_SECONDS"] = str(gpu_s)
    ray.init(num_cpus=jobs, resources={"accelerator": 1}, include_dashboard=False,
             log_to_driver=False, logging_level="ERROR")
    try:
        t0 = time.perf_counter()
        run_pipeline(root / "build.yaml", root / "out", stages=stages, engine="ray", quiet=True)
        wall = time.perf_counter() - t0
    finally:
        ray.shutdown()
    cpu_stage = videos * cpu_s / jobs
    gpu_stage = videos * gpu_s
    limit = max(cpu_stage, gpu_stage)
    return {
        "videos": videos,
        "cpu_stage_s": round(cpu_stage, 1),
        "gpu_stage_s": round(gpu_stage, 1),
        "barrier_s": round(cpu_stage + gpu_stage, 1),
        "limit_s": round(limit, 1),
        "wall_s": round(wall, 1),
        "wall_over_limit": round(wall / limit, 3),
        "wall_over_barrier": round(wall / (cpu_stage + gpu_stage), 3),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("what", nargs="?", default="both", choices=("overhead", "overlap", "both"))
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--videos", type=int, default=40)
    ap.add_argument("--cpu-seconds", type=float, default=CPU_SECONDS)
    ap.add_argument("--gpu-seconds", type=float, default=GPU_SECONDS)
    args = ap.parse_args()
    print(f"machine: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-ray-") as tmp:
        if args.what in ("overlap", "both"):
            res = overlap(args.jobs, args.videos, args.cpu_seconds, args.gpu_seconds,
                          Path(tmp) / "overlap")
            print("overlap:", json.dumps(res, sort_keys=True))
        if args.what in ("overhead", "both"):
            print("overhead:", json.dumps(overhead(args.jobs, Path(tmp) / "overhead"),
                                          sort_keys=True))


if __name__ == "__main__":
    main()
