"""Benchmark the face track: decoding, detection and the whole faces stage, on this CPU.

Generates ``--clips`` synthetic talking heads (``indomer.demo.synth.talking_head``, 640x480,
25 fps, ``--seconds`` long; head crops and whole portraits in turn), then measures:

* decode: the sampled gray frames of every clip, two ways: ``cv2.VideoCapture`` (what the
  backend uses; unsampled frames are grabbed, not converted) and an ``ffmpeg`` process
  piping raw gray frames picked by a ``select`` filter (the same frames);
* detect: the Haar cascade alone, in ms per frame, at 480 and 240 rows, with 1 and 2
  OpenCV threads, and whether the boxes are the same with 2 threads as with 1;
* stage: ``indomer.stages.faces.process`` on every clip (decode + detect + summary), as
  sampled frames per second and seconds of video per second of wall time.

    .venv/bin/python tools/bench_faces.py [--clips 4] [--seconds 10] [--sample-fps 5]
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from indomer.backends.faces import load_detector, model_version, sample_frames
from indomer.demo.synth import talking_head
from indomer.rows import Segment
from indomer.stages import faces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

FACES = ("astronaut", "hopper", "astronaut_full", "hopper_full")


def ffmpeg_frames(path: Path, step: int, size: tuple[int, int]) -> np.ndarray:
    """Every ``step``-th frame as gray, through an ffmpeg pipe (explicit argument list)."""
    w, h = size
    cmd = [
        shutil.which("ffmpeg") or "ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error",
        "-i", str(path), "-an", "-sn", "-vf", f"select=not(mod(n\\,{step}))",
        "-fps_mode", "passthrough", "-f", "rawvideo", "-pix_fmt", "gray", "pipe:1",
    ]
    out = subprocess.run(cmd, check=True, capture_output=True).stdout
    return np.frombuffer(out, dtype=np.uint8).reshape(-1, h, w)


def timed(fn, repeat: int = 1) -> float:
    t0 = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - t0) / repeat


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=10.0)
    ap.add_argument("--sample-fps", type=float, default=5.0)
    args = ap.parse_args()

    print(f"cpu: {cpu_model()} x {os.cpu_count()}; {model_version()}")
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        clips = []
        t_gen = time.perf_counter()
        silence = np.zeros(round(16_000 * args.seconds), dtype=np.float32)
        for i in range(args.clips):
            mp4 = Path(tmp) / f"clip_{i}.mp4"
            talking_head(silence, FACES[i % len(FACES)], mp4, seed=i)
            clips.append(mp4)
        print(f"generated {args.clips} clips of {args.seconds:g} s in "
              f"{time.perf_counter() - t_gen:.1f} s")

        # ---- decode: cv2 vs ffmpeg pipe, the same sampled frames
        step = round(25 / args.sample_fps)
        n_sampled = sum(len(list(sample_frames(c, 25 / step))) for c in clips)
        t_cv = timed(lambda: [list(sample_frames(c, 25 / step)) for c in clips], 3)
        t_ff = timed(lambda: [ffmpeg_frames(c, step, (640, 480)) for c in clips], 3)
        total_s = args.clips * args.seconds
        print(f"decode ({n_sampled} sampled frames of {round(total_s * 25)}): "
              f"cv2.VideoCapture {t_cv:.3f} s ({total_s / t_cv:.0f}x real time), "
              f"ffmpeg pipe {t_ff:.3f} s ({total_s / t_ff:.0f}x); cv2 is {t_ff / t_cv:.2f}x faster")

        # ---- detect alone
        frames = [f.gray for c in clips for f in sample_frames(c, args.sample_fps)]
        small = [f.gray for c in clips for f in sample_frames(c, args.sample_fps, max_height=240)]
        for threads in (1, 2):
            det = load_detector(threads=threads)
            for rows, imgs in ((480, frames), (240, small)):
                min_size = round(0.1 * rows)
                t = timed(lambda d=det, im=imgs, m=min_size: [d.detect(g, m) for g in im])
                print(f"detect {rows} rows, {threads} thread(s): {1000 * t / len(imgs):.1f} ms "
                      f"per frame ({len(imgs) / t:.1f} frames/s)")
        one = [load_detector(threads=1).detect(g, 48) for g in frames]
        two = [load_detector(threads=2).detect(g, 48) for g in frames]
        same = all(np.array_equal(a, b) for a, b in zip(one, two))
        print(f"boxes with 2 threads identical to 1 thread: {same}")

        # ---- the stage, as the pipeline runs it (1 thread per process)
        for threads in (1, 2):
            state = faces.setup(faces.Settings(sample_fps=args.sample_fps, threads=threads))
            segs = [
                Segment(id=f"clip_{i}_Bench_1", source_id=str(i), segment_index=1,
                        topic="Bench", start=0.0, end=args.seconds, video_path=str(c))
                for i, c in enumerate(clips)
            ]
            t0 = time.perf_counter()
            out = faces.process(segs, state)
            wall = time.perf_counter() - t0
            n = sum(s.face["frames"] for s in out)
            ok = sum(s.face["detected"] for s in out)
            print(f"stage, {threads} thread(s), {args.sample_fps:g} fps: {n} sampled frames in "
                  f"{wall:.2f} s = {n / wall:.1f} frames/s, {total_s / wall:.2f} s of video per "
                  f"second; one face in {ok}/{n}; flagged {sum(s.face['flagged'] for s in out)}")


if __name__ == "__main__":
    main()
