"""The Haar face detector finds the synthetic talking heads where the synth put them.

(Named test_face_detector.py, not test_faces.py: tests/stages/test_faces.py exists and the
suite has no __init__.py files, so two test modules may not share a basename.)
"""

from __future__ import annotations

import itertools
import math
from pathlib import Path

import numpy as np
import pytest

from indomer.backends.faces import (
    DEFAULT_CASCADE,
    FaceDetector,
    cascade_path,
    detect_video,
    load_detector,
    model_version,
    sample_frames,
    sampled,
    video_fps,
)
from indomer.demo.synth import talking_head
from indomer.errors import DataError, UsageError

cv2 = pytest.importorskip("cv2")

WIDTH, HEIGHT, FPS = 640, 480, 25
SECONDS = 4
SAMPLE_FPS = 10  # not a divisor of 25: frames 0, 3, 5, 8, 10, ... (exercises the sampling)
#: Head crops (faces of 110-190 px) and whole portraits (75-120 px), FIXTURES.md section 2.
CASES = ("astronaut", "hopper", "astronaut_full", "hopper_full")


def _iou_px(box: np.ndarray, truth: tuple[int, int, int, int]) -> float:
    """IoU of a fractional x, y, w, h box (scaled to pixels) and a pixel x0, y0, x1, y1 box."""
    x, y, w, h = box * np.array([WIDTH, HEIGHT, WIDTH, HEIGHT])
    tx0, ty0, tx1, ty1 = truth
    iw = max(0.0, min(x + w, tx1) - max(x, tx0))
    ih = max(0.0, min(y + h, ty1) - max(y, ty0))
    inter = iw * ih
    return inter / (w * h + (tx1 - tx0) * (ty1 - ty0) - inter)


@pytest.fixture(scope="module")
def heads(tmp_path_factory) -> dict[str, tuple[Path, list]]:
    """One 4 s talking-head mp4 per case, with its true face box per video frame."""
    folder = tmp_path_factory.mktemp("heads")
    silence = np.zeros(16_000 * SECONDS, dtype=np.float32)
    out = {}
    for seed, face in enumerate(CASES, start=1):
        mp4 = folder / f"{face}.mp4"
        out[face] = (mp4, talking_head(silence, face, mp4, seed=seed))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("face", CASES)
def test_one_face_per_frame_where_the_synth_put_it(heads, face):
    mp4, truth = heads[face]
    frames = detect_video(mp4, load_detector(), sample_fps=SAMPLE_FPS)
    assert len(frames) == SECONDS * SAMPLE_FPS
    good = [
        index
        for index, boxes in frames
        if len(boxes) == 1 and _iou_px(boxes[0], truth[index]) >= 0.5
    ]
    assert len(good) >= 0.95 * len(frames), (face, len(good), len(frames))


def test_sampling_picks_the_first_frame_of_each_interval(heads):
    mp4, truth = heads["astronaut"]
    n = len(truth)
    assert n == SECONDS * FPS
    # independent oracle: the first frame at or after each sampling time k / rate
    for rate in (SAMPLE_FPS, 5, 2.5):
        want = sorted({math.ceil(k * FPS / rate - 1e-9) for k in range(int(SECONDS * rate))})
        got = [f.index for f in sample_frames(mp4, rate)]
        assert got == want, rate
    every = list(sample_frames(mp4, 50))
    assert [f.index for f in every] == list(range(n))  # faster than the video: all frames
    assert every[7].time == pytest.approx(7 / FPS)
    assert every[0].gray.shape == (HEIGHT, WIDTH) and every[0].gray.dtype == np.uint8
    small = next(sample_frames(mp4, 5, max_height=240))
    assert small.gray.shape == (240, 320)
    assert next(sample_frames(mp4, 5, max_height=None)).gray.shape == (HEIGHT, WIDTH)
    with pytest.raises(UsageError, match="sample_fps"):
        next(sample_frames(mp4, 0))


def test_sampled_is_exact_for_rational_rates():
    from fractions import Fraction

    ntsc = video_fps(30000 / 1001)
    assert ntsc == Fraction(30000, 1001)
    assert video_fps(25.0) == 25
    ratio = Fraction(5) / ntsc
    picks = [n for n in range(3000) if sampled(n, ratio)]
    assert len(picks) == math.ceil(3000 * ratio)  # 5 per second, none lost to rounding
    assert all(b - a in (5, 6) for a, b in itertools.pairwise(picks))


def test_detections_repeat_and_are_sorted(heads):
    mp4, _ = heads["hopper"]
    det = load_detector()
    a = detect_video(mp4, det, sample_fps=2)
    b = detect_video(mp4, det, sample_fps=2)
    assert [i for i, _ in a] == [i for i, _ in b]
    for (_, x), (_, y) in zip(a, b):
        np.testing.assert_array_equal(x, y)
    two = np.hstack([next(sample_frames(mp4, 1)).gray] * 2)
    boxes = det.detect(two, 40)
    assert len(boxes) == 2 and boxes[0, 0] < boxes[1, 0]


def test_detector_is_loaded_once_and_versioned():
    det = load_detector()
    assert load_detector() is det
    assert isinstance(det, FaceDetector)
    assert det.detect(np.full((240, 320), 128, np.uint8), 24).shape == (0, 4)
    version = model_version()
    assert version.startswith(f"opencv {cv2.__version__} {DEFAULT_CASCADE} ")
    assert det.version == version
    assert cascade_path().is_file()


def test_bad_inputs_are_one_line_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        cascade_path("no_such_cascade.xml")
    bad_xml = tmp_path / "bad.xml"
    bad_xml.write_text("<opencv_storage></opencv_storage>\n")
    with pytest.raises(UsageError, match="cannot read this cascade"):
        FaceDetector(str(bad_xml))
    with pytest.raises(UsageError, match="scale_factor"):
        FaceDetector(scale_factor=1.0)
    with pytest.raises(UsageError, match="2-D uint8"):
        load_detector().detect(np.zeros((10, 10, 3), np.uint8), 5)
    garbage = tmp_path / "x.mp4"
    garbage.write_bytes(b"not a video" * 100)
    with pytest.raises(DataError, match="cannot open"):
        list(sample_frames(garbage, 5, row_id="clip_9_X_1"))
