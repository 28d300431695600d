"""Face detection on sampled video frames: dlib's HOG detector (default) or OpenCV 4's Haar
cascade, frames from cv2's decoder.

The default is dlib's frontal-face HOG detector (``dlib.get_frontal_face_detector()``, from
the ``dlib-bin`` wheel of the ``speakers`` extra; its model is compiled into dlib, so nothing
is downloaded). OpenCV's Haar cascade, the detector before it, fails on darker skin: on the
photos of dlib's example set ``johns`` (five people, 11 photos each, which ``bash
tools/install.sh test`` puts in ``.cache/johns``) it finds the one Black man in 3 of 11
photos, the four white men in 9-11 of 11; HOG finds all 55 (the README has the table). dlib's CNN detector (``mmod_human_face_detector.dat``) also finds all
55 but costs 0.6 s per 240-row video frame and 1.2 s per 320-row one on this CPU, about 80-100
times HOG's.

HOG's window finds faces of about :data:`HOG_FACE` px and larger (the image pyramid shrinks
bigger ones to it), so each frame is scaled, up or down, to ``HOG_FACE / min_face`` rows:
the smallest face wanted then just fills the window, and the cost follows from ``min_face``
(about 19 ms per frame at 0.2, i.e. 400 rows, on this machine's CPU).

The Haar cascade stays available (``detector: haar``) for comparison; it ships inside
``opencv-python-headless`` 4.x (``cv2.data``; 5.x ships no cascades).

Frames are decoded by ``cv2.VideoCapture`` (its bundled FFmpeg): ``tools/bench_faces.py``
measured it about twice as fast as piping raw frames out of an ``ffmpeg`` process, which
pays a process start and moves every frame through a pipe. Frames that are not sampled are
only grabbed (decoded, never converted). H.264 decoding is bit-exact, and both detectors run
single-threaded, so the same clip gives the same boxes on every machine.
"""

from __future__ import annotations

import hashlib
import math
import os
import sys
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from indomer.errors import DataError, MissingExtraError, UsageError

#: The detectors: dlib's HOG model (default) and OpenCV's Haar cascade (kept for comparison).
DETECTORS = ("hog", "haar")
DEFAULT_DETECTOR = "hog"
#: The cascade FIXTURES.md measured; any other XML in ``cv2.data.haarcascades`` or a path works.
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
#: Side in pixels of the smallest face dlib's HOG detector finds (its 80 x 80 window).
HOG_FACE = 80
#: A frame where no face reaches dlib's threshold gets a second look this much lower, and a
#: lone face found there counts (faces already found are never joined by weaker ones, so
#: crowds are not overcounted). Measured: the demo's faces score -0.25 and up in every
#: sampled frame (lfw26, a blurry LFW crop, is the one under 0); on 23 faceless images of
#: scikit-image at three sizes the first lone false box scores -0.48. Lowering dlib's
#: threshold instead would add false second boxes beside real faces (at -0.2, 1 of the 165
#: johns frames).
HOG_SECOND_LOOK = -0.35
#: Frame rates are rationals (30000/1001); cv2 reports a float, snapped to this denominator.
_FPS_DENOMINATOR = 1001


def _cv2() -> Any:
    """The cv2 module, or the error naming the extra; OpenCV 5 is refused (no cascades).

    Before the first import, OpenCV's and its FFmpeg's log levels default to errors only
    (``OPENCV_LOG_LEVEL``, ``OPENCV_FFMPEG_LOGLEVEL``; a value the user set wins): an
    unreadable clip is reported once, as a rejection, not as C-level warnings on stderr.
    """
    if "cv2" not in sys.modules:
        os.environ.setdefault("OPENCV_LOG_LEVEL", "ERROR")
        os.environ.setdefault("OPENCV_FFMPEG_LOGLEVEL", "-8")  # AV_LOG_QUIET
    try:
        import cv2
    except ImportError:
        raise MissingExtraError("opencv-python-headless", "speakers") from None
    if not hasattr(cv2, "CascadeClassifier"):
        raise UsageError(
            f"OpenCV {cv2.__version__} has no CascadeClassifier (OpenCV 5 dropped the Haar "
            "cascades); install OpenCV 4: pip install 'opencv-python-headless>=4.9,<5'"
        )
    return cv2


def cascade_path(cascade: str = DEFAULT_CASCADE) -> Path:
    """The cascade XML: a path as given, else a file name in ``cv2.data.haarcascades``."""
    given = Path(cascade).expanduser()
    if given.is_file():
        return given
    cv2 = _cv2()
    folder = getattr(getattr(cv2, "data", None), "haarcascades", "")
    path = Path(folder) / cascade if folder else given
    if not path.is_file():
        raise UsageError(
            f"face cascade {cascade!r} not found (looked in {folder or 'cv2.data'}); name a "
            "cascade that OpenCV 4 ships (haarcascade_frontalface_default.xml) or give a path "
            "to one, and make sure OpenCV is 4.x: pip install 'opencv-python-headless>=4.9,<5'"
        )
    return path


def _dlib() -> Any:
    try:
        import dlib
    except ImportError:
        raise MissingExtraError("dlib-bin", "speakers") from None
    return dlib


_HOG: list[Any] = []
_HOG_LOCK = threading.Lock()


def frontal_face_detector() -> tuple[Any, threading.Lock]:
    """dlib's HOG frontal face detector, one per process, and the lock every call to it
    holds (dlib's objects are not documented as thread-safe). Building one costs about
    0.7 CPU s, and both the faces detector and the face embedder's check use it."""
    with _HOG_LOCK:
        if not _HOG:
            _HOG.append(_dlib().get_frontal_face_detector())
    return _HOG[0], _HOG_LOCK


def _check_detector(detector: str) -> None:
    if detector not in DETECTORS:
        raise UsageError(f"face detector {detector!r} is unknown; use one of "
                         f"{', '.join(DETECTORS)} (hog: dlib, the default)")


def model_version(detector: str = DEFAULT_DETECTOR, cascade: str = DEFAULT_CASCADE) -> str:
    """The detector's identity for fingerprints and build.json: ``dlib <version> hog
    frontal_face_detector second_look <threshold>`` (the model is compiled into dlib, so its
    version names it), or ``opencv <version> <cascade> <sha256 prefix>``."""
    _check_detector(detector)
    if detector == "hog":
        return (f"dlib {_dlib().__version__} hog frontal_face_detector second_look "
                f"{HOG_SECOND_LOOK:g}")
    cv2 = _cv2()
    path = cascade_path(cascade)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"opencv {cv2.__version__} {path.name} {digest}"


def _sorted(boxes: np.ndarray) -> np.ndarray:
    """Boxes ``(n, 4)`` int64 sorted left to right, top to bottom (then by size)."""
    boxes = np.asarray(boxes, dtype=np.int64).reshape(-1, 4)
    order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0]))
    return boxes[order]


def _check_gray(gray: np.ndarray) -> None:
    if gray.ndim != 2 or gray.dtype != np.uint8:
        raise UsageError(f"detect: expected a 2-D uint8 image, got {gray.dtype} {gray.shape}")


class HogDetector:
    """dlib's frontal-face HOG detector at its trained threshold, with a second look at frames
    without a face (:data:`HOG_SECOND_LOOK`); :meth:`detect` returns boxes in pixels.

    It finds faces of :data:`HOG_FACE` px and up, whatever the skin tone (see the module
    docstring); :meth:`rows` scales the frames so that the smallest face wanted is that big.
    """

    name = "hog"

    def __init__(self) -> None:
        self._hog, self._lock = frontal_face_detector()  # one call at a time, process-wide
        self.version = model_version("hog")

    @staticmethod
    def rows(min_face: float) -> int:
        """The rows every frame is scaled to, up or down: ``HOG_FACE / min_face``, so that
        a face of ``min_face`` of the frame height fills the detector's window (the cost
        grows with the pixels, so with ``1 / min_face ** 2``)."""
        return max(HOG_FACE, math.ceil(HOG_FACE / min_face - 1e-9))

    def detect(self, gray: np.ndarray, min_size: int = 0) -> np.ndarray:
        """Face boxes ``(n, 4)`` int as ``x, y, w, h`` in pixels of ``gray`` (uint8, H x W),
        clipped to the image and sorted left to right, top to bottom. ``min_size``: boxes
        with a side under it are dropped (the window already sets about :data:`HOG_FACE`)."""
        _check_gray(gray)
        h, w = gray.shape
        with self._lock:
            rects, scores, _ = self._hog.run(np.ascontiguousarray(gray), 0, HOG_SECOND_LOOK)
        found = [r for r, score in zip(rects, scores) if score >= 0.0]
        if not found and len(rects) == 1:  # the second look (HOG_SECOND_LOOK)
            found = list(rects)
        boxes = []
        for r in found:
            x0, y0 = max(0, r.left()), max(0, r.top())
            x1, y1 = min(w, r.right() + 1), min(h, r.bottom() + 1)
            if x1 - x0 >= max(1, min_size) and y1 - y0 >= max(1, min_size):
                boxes.append((x0, y0, x1 - x0, y1 - y0))
        return _sorted(np.array(boxes, dtype=np.int64))


class FaceDetector:
    """A Haar cascade with fixed parameters; :meth:`detect` returns boxes in pixels.

    ``threads``: OpenCV's worker threads while this detector runs (a process-wide setting,
    so it is applied on each call; 1 by default: the pipeline parallelises over processes).
    """

    def __init__(
        self,
        cascade: str = DEFAULT_CASCADE,
        *,
        scale_factor: float = 1.1,
        min_neighbors: int = 8,
        threads: int = 1,
    ) -> None:
        cv2 = _cv2()
        if scale_factor <= 1.0:
            raise UsageError(f"face scale_factor must be > 1, got {scale_factor}")
        if min_neighbors < 0:
            raise UsageError(f"face min_neighbors must be >= 0, got {min_neighbors}")
        self.path = cascade_path(cascade)
        try:
            self._cascade = cv2.CascadeClassifier(str(self.path))
            unreadable = self._cascade.empty()
        except (cv2.error, SystemError):  # a malformed XML raises inside the constructor
            unreadable = True
        if unreadable:
            raise UsageError(f"{self.path}: OpenCV cannot read this cascade XML; give a Haar "
                             "cascade file such as haarcascade_frontalface_default.xml")
        self.scale_factor = float(scale_factor)
        self.min_neighbors = int(min_neighbors)
        self.version = model_version("haar", str(self.path))
        self.threads = int(threads)
        self._cv2 = cv2

    name = "haar"

    @staticmethod
    def rows(min_face: float) -> int | None:
        """None: frames keep their size, only scaled down to ``max_height`` when taller (the
        cascade's 24 px window finds small faces without scaling up)."""
        return None

    def detect(self, gray: np.ndarray, min_size: int) -> np.ndarray:
        """Face boxes ``(n, 4)`` int as ``x, y, w, h`` in pixels of ``gray`` (uint8, H x W),
        sorted left to right, top to bottom; faces smaller than ``min_size`` px are ignored."""
        _check_gray(gray)
        side = max(1, int(min_size))
        if self._cv2.getNumThreads() != self.threads:  # a process-wide setting: ours per call
            self._cv2.setNumThreads(self.threads)
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
        )
        return _sorted(np.asarray(found, dtype=np.int64))


#: The Haar cascade's class under its own name (``FaceDetector`` is its older name).
HaarDetector = FaceDetector
Detector = HogDetector | FaceDetector

_LOCK = threading.Lock()
_DETECTORS: dict[tuple, Detector] = {}


def load_detector(
    detector: str = DEFAULT_DETECTOR,
    *,
    cascade: str = DEFAULT_CASCADE,
    scale_factor: float = 1.1,
    min_neighbors: int = 8,
    threads: int = 1,
) -> Detector:
    """The process's detector for these parameters, loaded once (HOG about 10 ms, the
    cascade about 30 ms); ``cascade``, ``scale_factor``, ``min_neighbors`` and ``threads``
    are the Haar cascade's."""
    _check_detector(detector)
    if detector == "hog":
        key: tuple = ("hog",)
    else:
        key = ("haar", cascade, float(scale_factor), int(min_neighbors), int(threads))
    with _LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = HogDetector() if detector == "hog" else FaceDetector(
                cascade, scale_factor=scale_factor, min_neighbors=min_neighbors, threads=threads
            )
        return _DETECTORS[key]


# --------------------------------------------------------------------------- frames


@dataclass(frozen=True)
class Frame:
    """One sampled frame: its index in the video, its time (index / fps) and the gray image,
    scaled down to at most ``max_height`` rows; ``image``: the decoded BGR frame at the
    video's own size, when asked for (``color=True``), else None."""

    index: int
    time: float
    gray: np.ndarray
    image: np.ndarray | None = None


def sampled(n: int, ratio: Fraction) -> bool:
    """Whether frame ``n`` is sampled at ``ratio`` = sample rate / video rate: the first frame
    of each sampling interval, i.e. where ``floor(n * ratio)`` steps up (exact arithmetic)."""
    if ratio >= 1 or n == 0:
        return True
    return (n * ratio.numerator) // ratio.denominator > (
        (n - 1) * ratio.numerator
    ) // ratio.denominator


def video_fps(value: float) -> Fraction:
    """A reported frame rate as a rational (25.0 -> 25, 29.97002997 -> 30000/1001)."""
    return Fraction(value).limit_denominator(_FPS_DENOMINATOR)


def sample_frames(
    path: str | os.PathLike[str],
    sample_fps: float,
    *,
    max_height: int | None = 480,
    height: int | None = None,
    row_id: str = "",
    color: bool = False,
) -> Iterator[Frame]:
    """The frames of ``path`` at about ``sample_fps`` (all of them when the video is slower),
    as gray images (and the BGR images too with ``color``); see :func:`sampled` for which
    ones. The gray image is scaled to ``height`` rows, up or down, when given, else down to
    ``max_height`` when taller. Raises :class:`DataError` when the file cannot be opened or
    its frame rate is unknown."""
    cv2 = _cv2()
    if sample_fps <= 0:
        raise UsageError(f"sample_fps must be > 0, got {sample_fps}")
    who = f"{row_id}: " if row_id else ""
    if not os.path.isfile(path):
        raise DataError(f"{who}{path}: no such video file; re-run the cut stage")
    cap = cv2.VideoCapture(os.fspath(path), cv2.CAP_FFMPEG)
    try:
        if not cap.isOpened():
            raise DataError(f"{who}{path}: OpenCV cannot open this video; check that it is a "
                            "playable mp4 (re-run the cut stage)")
        fps = cap.get(cv2.CAP_PROP_FPS)
        if not fps or not np.isfinite(fps) or fps <= 0:
            raise DataError(f"{who}{path}: the video reports no frame rate; re-encode it at a "
                            "constant frame rate (ffmpeg -i IN -fps_mode cfr OUT.mp4)")
        rate = video_fps(fps)
        ratio = Fraction(sample_fps).limit_denominator(_FPS_DENOMINATOR) / rate
        n = 0
        while cap.grab():
            if sampled(n, ratio):
                ok, image = cap.retrieve()
                if not ok:
                    raise DataError(f"{who}{path}: frame {n} cannot be decoded; re-run the "
                                    "cut stage or check the source video")
                gray = scale_gray(cv2.cvtColor(image, cv2.COLOR_BGR2GRAY), height, max_height)
                yield Frame(n, float(n / rate), gray, image if color else None)
            n += 1
    finally:
        cap.release()


def scale_gray(gray: np.ndarray, rows: int | None, max_height: int | None = None) -> np.ndarray:
    """``gray`` scaled to ``rows`` rows (up or down; aspect kept) when given, else down to
    ``max_height`` when taller; unchanged otherwise."""
    cv2 = _cv2()
    h, w = gray.shape[:2]
    target = rows or (max_height if max_height and h > max_height else h)
    if target == h:
        return gray
    size = (max(1, round(w * target / h)), int(target))
    interp = cv2.INTER_AREA if target < h else cv2.INTER_LINEAR
    return cv2.resize(gray, size, interpolation=interp)


def detect_image(
    gray: np.ndarray,
    detector: Detector,
    *,
    min_face: float = 0.2,
    max_height: int | None = 480,
    scaled: bool = False,
) -> np.ndarray:
    """Face boxes ``(n, 4)`` float as ``x, y, w, h`` in fractions of the image's width and
    height, found as the faces stage finds them in a frame: scaled to the detector's rows
    (:meth:`HogDetector.rows`; for Haar down to ``max_height``), faces under ``min_face`` of
    the height ignored. ``scaled``: ``gray`` is already at those rows (video frames are
    scaled while decoded)."""
    rows = detector.rows(min_face)
    if not scaled:
        gray = scale_gray(gray, rows, max_height)
    h, w = gray.shape
    # the HOG window already sets the smallest face; a min_size would drop a face whose box
    # is clipped at the frame's edge
    side = 0 if rows else round(min_face * h)
    boxes = detector.detect(gray, side).astype(np.float64)
    return boxes / np.array([w, h, w, h], dtype=np.float64)


def detect_video(
    path: str | os.PathLike[str],
    detector: Detector,
    *,
    sample_fps: float = 5.0,
    min_face: float = 0.2,
    max_height: int | None = 480,
    row_id: str = "",
    on_frame: Callable[[Frame, np.ndarray], None] | None = None,
) -> list[tuple[int, np.ndarray]]:
    """Per sampled frame, ``(frame index, boxes)`` with boxes as :func:`detect_image` gives
    them (fractions of the frame); ``min_face`` is the smallest face searched, as a fraction
    of the frame height (it sets the rows the HOG detector sees; ``max_height`` bounds the
    Haar cascade's).

    ``on_frame(frame, boxes)``: called for each sampled frame as it is decoded, with its
    BGR image (``frame.image``, the video's own size), so a caller can keep what it needs
    of a frame (a face crop) without this list holding every image."""
    out: list[tuple[int, np.ndarray]] = []
    color = on_frame is not None
    height = detector.rows(min_face)
    for frame in sample_frames(path, sample_fps, max_height=max_height, height=height,
                               row_id=row_id, color=color):
        boxes = detect_image(frame.gray, detector, min_face=min_face, max_height=max_height,
                             scaled=True)
        if on_frame is not None:
            on_frame(frame, boxes)
        out.append((frame.index, boxes))
    return out


__all__ = [
    "DEFAULT_CASCADE",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "HOG_FACE",
    "HOG_SECOND_LOOK",
    "Detector",
    "FaceDetector",
    "Frame",
    "HaarDetector",
    "HogDetector",
    "cascade_path",
    "detect_image",
    "detect_video",
    "load_detector",
    "model_version",
    "sample_frames",
    "sampled",
    "scale_gray",
    "video_fps",
]
