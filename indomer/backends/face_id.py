"""Face identity embeddings: dlib's ResNet face recognition model on a tracked face box.

A second signal for speaker ids beside the voice (``indomer.speakers``): the face of a
clip's single speaker, as a unit 128-d vector. The face box comes from the faces stage's
detector (``indomer.backends.faces``: dlib's HOG, or the Haar cascade); it becomes a dlib
rectangle, dlib's 5-point landmark model places the eye corners and the nose in it, and the
ResNet computes the descriptor of the face aligned on those points
(``compute_face_descriptor`` with no jitter: the same pixels give the same bytes). Both
models ship in the ``face-recognition-models`` package and run on the prebuilt ``dlib-bin``
wheels, so nothing is downloaded or compiled.

A box is checked before it is embedded: dlib's HOG frontal-face detector must find a face
overlapping it (on the box's surroundings scaled to a fixed size, about 10 ms). The landmark
model and the ResNet turn any pixels into a vector, a wall or a false Haar box included;
:meth:`FaceEmbedder.embed` returns None for those instead, and for faces the HOG model
cannot align (turned far away from the camera), whose vectors are unreliable anyway.

Licences (read from the packages and from https://github.com/davisking/dlib-models):

* dlib (the ``dlib-bin`` wheels): Boost Software License 1.0.
* ``face-recognition-models`` 0.3.0 (Adam Geitgey's packaging): its LICENSE is CC0 1.0, and
  the dlib-models README says Davis King released the model files into the public domain.
  ``dlib_face_recognition_resnet_model_v1.dat`` was trained on about 3 million faces
  (FaceScrub, the VGG face data set and web images) and
  ``shape_predictor_5_face_landmarks.dat`` on dlib's own 5-point data set (7198 faces
  annotated by Davis King); the README puts no use restriction on either (FaceScrub and
  VGG Face were collected for research; nothing of them ships but the weights). The
  package also ships ``shape_predictor_68_face_landmarks.dat``, trained on iBUG 300-W,
  whose licence excludes commercial use: this module never loads it.

Measured (tests/backends/test_face_id.py has the numbers): the same photo rescaled,
brightened, turned by a few degrees or JPEG re-encoded stays at cosine 0.975-0.999; the
same person in different photos 0.930-1.0; different people 0.72-0.90 (dlib's descriptors
share a large common component, so unrelated faces are far from cosine 0). About 0.92
separates one person from two, with margins of only 0.01-0.02 either way.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Iterable, Sequence
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Literal

import numpy as np

from indomer.backends.faces import frontal_face_detector
from indomer.errors import MissingExtraError, UsageError
from indomer.identity import unit_vector as unit

#: Length of a face descriptor.
DIM = 128
#: The package that ships the model files, and the two files used (never the 68-point one).
MODEL_PACKAGE = "face_recognition_models"
RECOGNITION_MODEL = "dlib_face_recognition_resnet_model_v1.dat"
LANDMARK_MODEL = "shape_predictor_5_face_landmarks.dat"
#: The checked box is scaled to this many pixels wide before the HOG detector looks at it
#: (its window finds faces of about 80 px and up), with :data:`CONTEXT` of the box's size
#: around it on every side.
CHECK_SIDE = 120
CONTEXT = 0.5
#: A HOG face must overlap the Haar box at least this much (IoU) to confirm it.
CHECK_IOU = 0.3


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise MissingExtraError("dlib-bin", "speakers") from None
    return dlib


def model_dir() -> Path:
    """The folder of the model files, found without importing the package (its
    ``__init__`` imports the deprecated ``pkg_resources``)."""
    spec = importlib.util.find_spec(MODEL_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise MissingExtraError("face-recognition-models", "speakers")
    return Path(next(iter(spec.submodule_search_locations))) / "models"


def model_files() -> dict[str, Path]:
    """``{"recognition": path, "landmarks": path}``; a missing file names the extra."""
    folder = model_dir()
    files = {"recognition": folder / RECOGNITION_MODEL, "landmarks": folder / LANDMARK_MODEL}
    for path in files.values():
        if not path.is_file():
            raise MissingExtraError(f"face-recognition-models ({path.name})", "speakers")
    return files


_VERSION_LOCK = threading.Lock()
_VERSIONS: dict[tuple, str] = {}


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:12]


def model_version() -> str:
    """``dlib <v> face-recognition-models <v> <file> <sha256 prefix> <file> <prefix>`` for
    fingerprints and build.json (the 31 MB are hashed once per process)."""
    dlib = _dlib()
    files = model_files()
    key = tuple((str(p), p.stat().st_size, p.stat().st_mtime_ns) for p in files.values())
    with _VERSION_LOCK:
        if key not in _VERSIONS:
            try:
                package = version("face-recognition-models")
            except PackageNotFoundError:
                package = "unknown"
            parts = [f"dlib {dlib.__version__}", f"face-recognition-models {package}"]
            parts += [f"{p.name} {_digest(p)}" for p in files.values()]
            _VERSIONS[key] = " ".join(parts)
        return _VERSIONS[key]


def _box_iou(a: Sequence[float], b: Sequence[float]) -> float:
    ax, ay, aw, ah = a
    bx, by, bw, bh = b
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def mean_embedding(vectors: Iterable[np.ndarray | None]) -> np.ndarray | None:
    """The normalised mean of the unit vectors given (Nones skipped); None when none."""
    kept = [np.asarray(v, dtype=np.float64).ravel() for v in vectors if v is not None]
    if not kept:
        return None
    return unit(np.mean(np.stack(kept), axis=0))


def _rgb(image: np.ndarray, order: str) -> np.ndarray:
    """A C-contiguous uint8 H x W x 3 RGB copy-or-view of ``image`` (gray is repeated)."""
    img = np.asarray(image)
    if img.dtype != np.uint8:
        raise UsageError(f"face embedding: expected a uint8 image, got {img.dtype}")
    if img.ndim == 2:
        img = np.repeat(img[:, :, None], 3, axis=2)
    elif img.ndim == 3 and img.shape[2] in (3, 4):
        img = img[:, :, :3]
        if order == "bgr":
            img = img[:, :, ::-1]
    else:
        raise UsageError(f"face embedding: expected an H x W (x 3) image, got {img.shape}")
    return np.ascontiguousarray(img)


def _cv():
    from indomer.backends.faces import _cv2

    return _cv2()


def crop_face(
    image: np.ndarray, box: Sequence[float], *, margin: float = CONTEXT, side: int = 160
) -> tuple[np.ndarray, tuple[float, float, float, float]]:
    """The face's surroundings (``margin`` of the box size on every side, clipped to the
    image), scaled down so the box is at most ``side`` px wide, and the box in that crop.

    What a caller keeps of a frame it may embed later: a few hundred kB instead of the
    frame. Embedding the crop gives nearly the vector of the whole frame (cosine 0.996 for
    Hopper's 222 px face scaled to 160 px: the ResNet sees a 150 px chip of the face and
    its surroundings anyway).
    """
    cv2 = _cv()
    img = np.asarray(image)
    h, w = img.shape[:2]
    x, y, bw, bh = (float(v) for v in box)
    x0, y0 = max(0, int(np.floor(x - margin * bw))), max(0, int(np.floor(y - margin * bh)))
    x1 = min(w, int(np.ceil(x + bw + margin * bw)))
    y1 = min(h, int(np.ceil(y + bh + margin * bh)))
    crop = img[y0:y1, x0:x1]
    inner = (x - x0, y - y0, bw, bh)
    scale = min(1.0, side / bw) if bw > 0 else 1.0
    if scale < 1.0 and crop.size:
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        crop = cv2.resize(crop, size, interpolation=cv2.INTER_AREA)
        inner = tuple(v * scale for v in inner)
    return np.ascontiguousarray(crop), inner  # type: ignore[return-value]


class FaceEmbedder:
    """dlib's 5-point landmarks + ResNet descriptor, and the HOG check of the box.

    ``jitter``: dlib's ``num_jitters`` (0: one pass on the aligned face; more averages
    randomly shifted copies, about ``jitter`` times slower). ``check``: confirm each box
    with the HOG detector first (None when it finds no face there).
    """

    def __init__(self, *, jitter: int = 0, check: bool = True) -> None:
        dlib = _dlib()
        if jitter < 0:
            raise UsageError(f"face embedding: jitter must be >= 0, got {jitter}")
        files = model_files()
        self._dlib = dlib
        self._shape = dlib.shape_predictor(str(files["landmarks"]))
        self._net = dlib.face_recognition_model_v1(str(files["recognition"]))
        self._hog, self._hog_lock = frontal_face_detector() if check else (None, None)
        self.jitter = int(jitter)
        self.version = model_version()
        # dlib's objects are not documented as thread-safe: one call at a time
        self._lock = threading.Lock()

    def has_face(self, rgb: np.ndarray, box: Sequence[float]) -> bool:
        """Whether the HOG detector finds a face overlapping ``box`` (x, y, w, h px) in
        ``rgb``, looking at the box's surroundings scaled so the box is
        :data:`CHECK_SIDE` px wide."""
        cv2 = _cv()
        x, y, w, h = box
        if w <= 0 or h <= 0:
            return False
        scale = CHECK_SIDE / w
        x0, y0 = max(0, int(np.floor(x - CONTEXT * w))), max(0, int(np.floor(y - CONTEXT * h)))
        x1 = min(rgb.shape[1], int(np.ceil(x + w + CONTEXT * w)))
        y1 = min(rgb.shape[0], int(np.ceil(y + h + CONTEXT * h)))
        crop = rgb[y0:y1, x0:x1]
        if crop.size == 0:
            return False
        size = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
        interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
        crop = np.ascontiguousarray(cv2.resize(crop, size, interpolation=interp))
        target = ((x - x0) * scale, (y - y0) * scale, w * scale, h * scale)
        with self._hog_lock:
            rects = list(self._hog(crop, 0))
        for r in rects:
            found = (r.left(), r.top(), r.width(), r.height())
            if _box_iou(found, target) >= CHECK_IOU:
                return True
        return False

    def embed(
        self,
        image: np.ndarray,
        box: Sequence[float],
        *,
        order: Literal["rgb", "bgr"] = "rgb",
    ) -> np.ndarray | None:
        """The unit 128-d float32 descriptor of the face in ``box`` (``x, y, w, h`` in
        pixels of ``image``: uint8 RGB, BGR with ``order="bgr"`` as OpenCV decodes, or
        gray), or None when the box holds no face the models can align."""
        if order not in ("rgb", "bgr"):
            raise UsageError(f"face embedding: order must be rgb or bgr, got {order!r}")
        rgb = _rgb(image, order)
        x, y, w, h = (float(v) for v in box)
        if w < 1 or h < 1:
            return None
        # dlib's rectangles include their right and bottom edges
        rect = self._dlib.rectangle(round(x), round(y), round(x + w) - 1, round(y + h) - 1)
        with self._lock:
            if self._hog is not None and not self.has_face(rgb, (x, y, w, h)):
                return None
            shape = self._shape(rgb, rect)
            vector = self._net.compute_face_descriptor(rgb, shape, self.jitter)
        return unit(np.asarray(vector, dtype=np.float64))


_LOCK = threading.Lock()
_EMBEDDERS: dict[tuple, FaceEmbedder] = {}


def load_embedder(*, jitter: int = 0, check: bool = True) -> FaceEmbedder:
    """The process's embedder (the models load once: about 0.6 s, 32 MB of files)."""
    key = (int(jitter), bool(check))
    with _LOCK:
        if key not in _EMBEDDERS:
            _EMBEDDERS[key] = FaceEmbedder(jitter=jitter, check=check)
        return _EMBEDDERS[key]


def embed(
    image: np.ndarray, box: Sequence[float], *, order: Literal["rgb", "bgr"] = "rgb"
) -> np.ndarray | None:
    """:meth:`FaceEmbedder.embed` with the process's default embedder."""
    return load_embedder().embed(image, box, order=order)


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    """Cosine similarity of two vectors (0 when either is zero)."""
    a = np.asarray(a, dtype=np.float64).ravel()
    b = np.asarray(b, dtype=np.float64).ravel()
    den = float(np.linalg.norm(a) * np.linalg.norm(b))
    return float(a @ b / den) if den else 0.0


__all__ = [
    "DIM",
    "LANDMARK_MODEL",
    "RECOGNITION_MODEL",
    "FaceEmbedder",
    "cosine",
    "crop_face",
    "embed",
    "load_embedder",
    "mean_embedding",
    "model_dir",
    "model_files",
    "model_version",
    "unit",
]
