"""Face detection on sampled video frames: OpenCV 4's Haar cascade, frames from cv2's decoder.

The frontal-face Haar cascade ships inside ``opencv-python-headless`` 4.x (``cv2.data``; 5.x
ships no cascades), so the face track needs no hub and no download. FIXTURES.md section 2
measured it on the talking-head fixtures: every frame of the head crops and of the whole
portraits (faces of about 60-130 px at 480 px high) gives exactly one box with
``minNeighbors=8``; at the usual 5 a whole portrait sometimes gains a second, false box.

Frames are decoded by ``cv2.VideoCapture`` (its bundled FFmpeg): ``tools/bench_faces.py``
measured it about twice as fast as piping raw frames out of an ``ffmpeg`` process, which
pays a process start and moves every frame through a pipe. Frames that are not sampled are
only grabbed (decoded, never converted). H.264 decoding is bit-exact, and the detector runs
single-threaded by default, so the same clip gives the same boxes on every machine.
"""

from __future__ import annotations

import hashlib
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

#: The cascade FIXTURES.md measured; any other XML in ``cv2.data.haarcascades`` or a path works.
DEFAULT_CASCADE = "haarcascade_frontalface_default.xml"
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


def model_version(cascade: str = DEFAULT_CASCADE) -> str:
    """``opencv <version> <cascade> <sha256 prefix>`` for fingerprints and build.json."""
    cv2 = _cv2()
    path = cascade_path(cascade)
    digest = hashlib.sha256(path.read_bytes()).hexdigest()[:12]
    return f"opencv {cv2.__version__} {path.name} {digest}"


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
        self.version = model_version(str(self.path))
        self.threads = int(threads)
        self._cv2 = cv2

    def detect(self, gray: np.ndarray, min_size: int) -> np.ndarray:
        """Face boxes ``(n, 4)`` int as ``x, y, w, h`` in pixels of ``gray`` (uint8, H x W),
        sorted left to right, top to bottom; faces smaller than ``min_size`` px are ignored."""
        if gray.ndim != 2 or gray.dtype != np.uint8:
            raise UsageError(f"detect: expected a 2-D uint8 image, got {gray.dtype} {gray.shape}")
        side = max(1, int(min_size))
        if self._cv2.getNumThreads() != self.threads:  # a process-wide setting: ours per call
            self._cv2.setNumThreads(self.threads)
        found = self._cascade.detectMultiScale(
            gray,
            scaleFactor=self.scale_factor,
            minNeighbors=self.min_neighbors,
            minSize=(side, side),
        )
        boxes = np.asarray(found, dtype=np.int64).reshape(-1, 4)
        order = np.lexsort((boxes[:, 3], boxes[:, 2], boxes[:, 1], boxes[:, 0]))
        return boxes[order]


_LOCK = threading.Lock()
_DETECTORS: dict[tuple, FaceDetector] = {}


def load_detector(
    cascade: str = DEFAULT_CASCADE,
    *,
    scale_factor: float = 1.1,
    min_neighbors: int = 8,
    threads: int = 1,
) -> FaceDetector:
    """The process's detector for these parameters (loaded once; about 30 ms)."""
    key = (cascade, float(scale_factor), int(min_neighbors), int(threads))
    with _LOCK:
        if key not in _DETECTORS:
            _DETECTORS[key] = FaceDetector(
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
    row_id: str = "",
    color: bool = False,
) -> Iterator[Frame]:
    """The frames of ``path`` at about ``sample_fps`` (all of them when the video is slower),
    as gray images (and the BGR images too with ``color``); see :func:`sampled` for which
    ones. Raises :class:`DataError` when the file cannot be opened or its frame rate is
    unknown."""
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
                gray = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)
                h, w = gray.shape
                if max_height and h > max_height:
                    size = (max(1, round(w * max_height / h)), int(max_height))
                    gray = cv2.resize(gray, size, interpolation=cv2.INTER_AREA)
                yield Frame(n, float(n / rate), gray, image if color else None)
            n += 1
    finally:
        cap.release()


def detect_video(
    path: str | os.PathLike[str],
    detector: FaceDetector,
    *,
    sample_fps: float = 5.0,
    min_face: float = 0.1,
    max_height: int | None = 480,
    row_id: str = "",
    on_frame: Callable[[Frame, np.ndarray], None] | None = None,
) -> list[tuple[int, np.ndarray]]:
    """Per sampled frame, ``(frame index, boxes)`` with boxes ``(n, 4)`` float as
    ``x, y, w, h`` in fractions of the frame's width and height; ``min_face`` is the
    smallest face searched, as a fraction of the frame height.

    ``on_frame(frame, boxes)``: called for each sampled frame as it is decoded, with its
    BGR image (``frame.image``, the video's own size), so a caller can keep what it needs
    of a frame (a face crop) without this list holding every image."""
    out: list[tuple[int, np.ndarray]] = []
    color = on_frame is not None
    for frame in sample_frames(path, sample_fps, max_height=max_height, row_id=row_id,
                               color=color):
        h, w = frame.gray.shape
        boxes = detector.detect(frame.gray, round(min_face * h)).astype(np.float64)
        boxes /= np.array([w, h, w, h], dtype=np.float64)
        if on_frame is not None:
            on_frame(frame, boxes)
        out.append((frame.index, boxes))
    return out


__all__ = [
    "DEFAULT_CASCADE",
    "FaceDetector",
    "Frame",
    "cascade_path",
    "detect_video",
    "load_detector",
    "model_version",
    "sample_frames",
    "sampled",
    "video_fps",
]
