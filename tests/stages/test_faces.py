"""Faces stage: the face column of talking-head, faceless and two-face clips, against truth."""

from __future__ import annotations

import dataclasses
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from indomer.config import make_settings
from indomer.demo.synth import face_frames, talking_head
from indomer.errors import RowRejected, UsageError
from indomer.rows import Segment
from indomer.stages.faces import Settings, iou, process, setup, summarise, tools

pytest.importorskip("cv2")

FFMPEG = shutil.which("ffmpeg") or "ffmpeg"
FPS = 25


def _write_mp4(path: Path, frames: list[np.ndarray]) -> Path:
    """A video-only H.264 mp4 of BGR frames at 25 fps."""
    h, w = frames[0].shape[:2]
    cmd = [
        FFMPEG,
        "-nostdin",
        "-y",
        "-v",
        "error",
        "-f",
        "rawvideo",
        "-pix_fmt",
        "bgr24",
        "-s",
        f"{w}x{h}",
        "-r",
        str(FPS),
        "-i",
        "pipe:0",
        "-c:v",
        "libx264",
        "-preset",
        "veryfast",
        "-crf",
        "23",
        "-pix_fmt",
        "yuv420p",
        "-threads",
        "1",
        str(path),
    ]
    subprocess.run(cmd, input=b"".join(f.tobytes() for f in frames), check=True)
    return path


def _segment(name: str, video: Path | None) -> Segment:
    return Segment(
        id=f"clip_1_Cooking_{name}",
        source_id="1",
        segment_index=1,
        topic="Cooking",
        start=0.0,
        end=3.0,
        video_path=str(video) if video else None,
    )


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, tuple[Path, list]]:
    """A 3 s talking head (with its true boxes), a blank clip, a noise clip, a two-face clip."""
    folder = tmp_path_factory.mktemp("faces")
    head = folder / "head.mp4"
    truth = talking_head(np.zeros(16_000 * 3, np.float32), "astronaut", head, seed=4)
    blank = _write_mp4(folder / "blank.mp4", [np.full((480, 640, 3), 128, np.uint8)] * 50)
    rng = np.random.default_rng(0)
    noise = _write_mp4(
        folder / "noise.mp4", [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(25)]
    )
    n = 3 * FPS
    left = face_frames("astronaut", n, size=(320, 480), seed=1)
    right = face_frames("hopper", n, size=(320, 480), seed=3)
    two = _write_mp4(folder / "two.mp4", [np.hstack([a, b]) for (a, _), (b, _) in zip(left, right)])
    return {"head": (head, truth), "blank": (blank, []), "noise": (noise, []), "two": (two, [])}


@pytest.fixture(scope="module")
def state():
    return setup(Settings())


# --------------------------------------------------------------------------- summarise (pure)

A = [0.40, 0.20, 0.20, 0.30]
A2 = [0.42, 0.21, 0.20, 0.30]  # a small move: IoU about 0.86 with A
FAR = [0.05, 0.60, 0.10, 0.15]  # elsewhere: IoU 0 with A


def test_summarise_counts_median_continuity_and_flag():
    frames = [[A], [A2], [], [A, FAR], [FAR], [A]]
    face = summarise(frames)
    assert face["frames"] == 6
    assert face["detected"] == 4  # A, A2, FAR, A
    assert face["multiple"] == 1
    # per-coordinate median of the single boxes A, A2, FAR, A
    want = np.median(np.array([A, A2, FAR, A]), axis=0)
    assert face["box"] == pytest.approx(list(want))
    # pairs: (A, A2) linked; (A2, -), (-, 2 faces), (2 faces, FAR) not; (FAR, A) no overlap
    assert face["continuity"] == pytest.approx(1 / 5, abs=1e-6)
    assert face["flagged"] is False  # 4 of 6 single-face samples >= 0.5


def test_summarise_edge_cases():
    empty = summarise([])
    assert empty == {
        "frames": 0,
        "detected": 0,
        "multiple": 0,
        "box": None,
        "continuity": None,
        "flagged": True,
    }
    one = summarise([[A]])
    assert one["continuity"] is None and one["box"] == pytest.approx(A) and not one["flagged"]
    none = summarise([[], [], []])
    assert none["detected"] == 0 and none["box"] is None and none["continuity"] == 0.0
    assert none["flagged"]
    crowd = summarise([[A, FAR]] * 4 + [[A]])
    assert crowd["multiple"] == 4 and crowd["detected"] == 1 and crowd["flagged"]
    # the thresholds are the settings'
    assert summarise([[A], [A2]], min_iou=0.9)["continuity"] == 0.0
    assert not summarise([[A], [], []], min_single=0.3)["flagged"]
    assert summarise([[A], [], []], min_single=0.5)["flagged"]


def test_iou():
    assert iou(A, A) == pytest.approx(1.0)
    assert iou(A, FAR) == 0.0
    assert iou([0, 0, 2, 1], [1, 0, 2, 1]) == pytest.approx(1 / 3)
    assert iou([0, 0, 0, 0], [0, 0, 0, 0]) == 0.0


# --------------------------------------------------------------------------- settings


def test_settings_validate_with_one_line_errors():
    assert Settings().on_no_face == "flag"
    with pytest.raises(UsageError, match="on_no_face"):
        make_settings(Settings, {"on_no_face": "drop"}, "faces")
    with pytest.raises(UsageError, match="sample_fps"):
        Settings(sample_fps=0)
    with pytest.raises(UsageError, match="min_face"):
        Settings(min_face=1.5)
    with pytest.raises(UsageError, match="min_single"):
        Settings(min_single=2)
    cfg = make_settings(Settings, {"sample_fps": 2, "max_height": None}, "faces")
    assert cfg.sample_fps == 2.0 and cfg.max_height is None
    from indomer.config import fingerprint_settings

    assert "threads" not in fingerprint_settings(Settings())
    assert tools()["face_detector"].startswith("opencv ")


# --------------------------------------------------------------------------- the stage


@pytest.mark.slow
def test_talking_head_has_one_continuous_face_at_the_true_place(clips, state):
    mp4, truth = clips["head"]
    seg = _segment("1", mp4)
    (out,) = process([seg], state)
    face = out.face
    assert dataclasses.replace(out, face=None) == seg  # only the face column changes
    assert face["frames"] == 15  # 3 s at 5 fps
    assert face["detected"] >= 0.95 * face["frames"] and face["multiple"] == 0
    assert face["continuity"] >= 0.9 and face["flagged"] is False
    # the median box sits on the median true box (pixels -> fractions of 640 x 480)
    t = np.median(np.array(truth[::5], dtype=float), axis=0) / [640, 480, 640, 480]
    x, y, w, h = face["box"]
    assert iou(face["box"], [t[0], t[1], t[2] - t[0], t[3] - t[1]]) >= 0.5
    assert 0 <= x < x + w <= 1 and 0 <= y < y + h <= 1
    assert process([seg], state)[0].face == face  # deterministic


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blank", "noise"])
def test_clip_without_a_face_is_flagged_or_rejected(clips, state, name):
    mp4, _ = clips[name]
    (out,) = process([_segment(name, mp4)], state)
    assert out.face["detected"] == 0 and out.face["multiple"] == 0
    assert out.face["box"] is None and out.face["flagged"] is True
    strict = setup(Settings(on_no_face="reject"))
    (rej,) = process([_segment(name, mp4)], strict)
    assert isinstance(rej, RowRejected)
    assert rej.row_id == f"clip_1_Cooking_{name}"
    assert "one face in 0 of" in rej.reason and "on_no_face" in rej.fix


@pytest.mark.slow
def test_two_faces_are_counted_and_flagged(clips, state):
    mp4, _ = clips["two"]
    (out,) = process([_segment("2", mp4)], state)
    face = out.face
    assert face["frames"] == 15
    assert face["multiple"] >= 0.95 * face["frames"]
    assert face["detected"] <= 0.05 * face["frames"]
    assert face["flagged"] is True


def test_clip_without_video_and_unreadable_video(tmp_path, state):
    no_video = _segment("3", None)
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"\x00" * 1000)
    missing = tmp_path / "missing.mp4"
    kept, rej_broken, rej_missing = process(
        [no_video, _segment("4", broken), _segment("5", missing)], state
    )
    assert kept == no_video and kept.face is None  # null when no video; not a rejection
    for rej, seg_id in ((rej_broken, "clip_1_Cooking_4"), (rej_missing, "clip_1_Cooking_5")):
        assert isinstance(rej, RowRejected) and rej.row_id == seg_id
        assert "cannot read the video" in rej.reason and "cut stage" in rej.fix
