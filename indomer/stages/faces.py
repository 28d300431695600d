"""Faces stage: a face-track summary of each clip, so one-speaker monologue clips can be told
from clips with nobody (or a crowd) on screen.

IndoMER clips show one speaker talking to the camera. Each clip's video is sampled at
``sample_fps``, dlib's HOG detector (``indomer.backends.faces``; it finds faces on every
skin tone, where OpenCV's Haar cascade missed a Black man in 8 of 11 photos) finds faces in
every sampled frame, and :func:`summarise` (pure, tested on hand-made boxes) reduces them to
the ``face`` column: how many sampled frames show exactly one face, where that face usually
is, whether it stays put from one sample to the next, and whether the clip should be looked
at.
A clip where single-face frames are fewer than ``min_single`` of the samples (no face,
a face only now and then, or two people) is flagged, or with ``on_no_face: reject``
dropped to ``rejected.jsonl``.

With ``identity`` on (the default), the clip's face also gets an identity vector for the
speakers stage, a second signal beside the voice: on up to ``identity_frames`` sampled
frames with exactly one face, spread evenly over the clip, that face is embedded by dlib's
ResNet (``indomer.backends.face_id``); the unit vectors are averaged and normalised into
``face["embedding"]``, base64 of 128 little-endian float32 (``indomer.speakers.
encode_embedding``), or null when no frame showed one face the model could align. The
vector is for the manifests only: the Parquet ``face`` column keeps its fixed struct
(``indomer.dataset.FACE``), and the speakers stage drops the key before the merge.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import numpy as np
from pydantic import Field

from indomer.backends.faces import DEFAULT_CASCADE, DEFAULT_DETECTOR
from indomer.errors import DataError, RowRejected
from indomer.rows import Segment
from indomer.stage import Item, ItemStage, settings_of

#: Decimals kept in the ``face`` column, so the JSON manifests and the Parquet bytes repeat.
DECIMALS = 6
#: Single-face crops held per clip while it is read, for the identity vector (see face_of).
MAX_CROPS = 64


@dataclass(frozen=True)
class Settings:
    """How faces are found and summarised.

    ``sample_fps``: frames analysed per second of video (2.5, every 10th frame at 25 fps,
    catches a turned head or a cut within 0.4 s at half the cost of 5). ``detector``:
    ``hog``, dlib's HOG face detector (finds faces on every skin tone; README, "Faces"), or
    ``haar``, OpenCV 4's Haar cascade, kept for comparison only (it misses darker faces). ``min_face``: the smallest face searched, as
    a fraction of the frame height; HOG sees every frame scaled to ``80 / min_face`` rows (400
    at 0.2: a talking head's face is a fifth of the frame or more; 0.1 finds faces half as
    big at 4x the cost). ``max_height``: for ``haar``, taller frames are scaled down to this
    many rows before detection (null keeps the size). ``cascade``, ``scale_factor``,
    ``min_neighbors``: the Haar cascade and its parameters (``min_neighbors`` 8, not the usual
    5, so a whole portrait gives one box, not two; FIXTURES.md section 2). ``min_iou``:
    consecutive single-face samples whose boxes overlap at least this much count as one
    continuous track. ``min_single``: a clip whose share of single-face samples is below this
    is flagged. ``on_no_face``: ``flag`` keeps a flagged clip (``face.flagged`` true),
    ``reject`` drops it to ``rejected.jsonl``. ``threads``: OpenCV threads per process for
    ``haar`` (not in the fingerprint: the boxes do not depend on it, checked by
    tools/bench_faces.py). ``identity``: add the face identity vector (``face["embedding"]``;
    needs dlib from the ``speakers`` extra). ``identity_frames``: at most this many
    single-face frames per clip are embedded (0.1 s of CPU each, the stage's largest cost
    after detection; the mean of 2 is within cosine 0.999 of the mean of 5 on the test clips,
    and the speakers stage compares sources, each with several clips; a clip without a
    single face gets ``face["embedding"]`` null, and with ``identity`` off the key is absent).
    """

    # the types and bounds are the whole check: the config's pydantic model is built from
    # them (indomer.config.section_model), and so is the published schema
    sample_fps: Annotated[float, Field(gt=0)] = 2.5
    detector: Literal["hog", "haar"] = DEFAULT_DETECTOR
    min_face: Annotated[float, Field(gt=0, lt=1)] = 0.2
    max_height: Annotated[int, Field(ge=24)] | None = 480
    cascade: str = DEFAULT_CASCADE
    scale_factor: Annotated[float, Field(gt=1)] = 1.1
    min_neighbors: Annotated[int, Field(ge=0)] = 8
    min_iou: Annotated[float, Field(ge=0, le=1)] = 0.3
    min_single: Annotated[float, Field(ge=0, le=1)] = 0.5
    on_no_face: Literal["flag", "reject"] = "flag"
    threads: Annotated[int, Field(ge=1)] = field(default=1, metadata={"fingerprint": False})
    identity: bool = True
    identity_frames: Annotated[int, Field(ge=1)] = 2


# --------------------------------------------------------------------------- boxes -> summary


def iou(a: Sequence[float], b: Sequence[float]) -> float:
    """Intersection over union of two ``x, y, w, h`` boxes (0 when either is empty)."""
    ax, ay, aw, ah = (float(v) for v in a)
    bx, by, bw, bh = (float(v) for v in b)
    iw = max(0.0, min(ax + aw, bx + bw) - max(ax, bx))
    ih = max(0.0, min(ay + ah, by + bh) - max(ay, by))
    inter = iw * ih
    union = aw * ah + bw * bh - inter
    return inter / union if union > 0 else 0.0


def summarise(
    frames: Sequence[Any], *, min_iou: float = 0.3, min_single: float = 0.5
) -> dict[str, Any]:
    """The ``face`` column value for one clip from its sampled frames' boxes.

    ``frames``: per sampled frame, its boxes as ``x, y, w, h`` fractions of the frame
    (anything ``np.asarray`` makes ``(n, 4)``). Returns ``frames`` (samples), ``detected``
    (samples with exactly one face), ``multiple`` (samples with more than one), ``box`` (the
    per-coordinate median ``[x, y, w, h]`` of the single faces, fractions of the frame width
    and height; null when there are none), ``continuity`` (share of consecutive sample pairs
    that both hold one face, overlapping with IoU >= ``min_iou``; null under two samples)
    and ``flagged`` (``detected / frames < min_single``; always true with no samples).
    """
    boxes = [np.asarray(f, dtype=np.float64).reshape(-1, 4) for f in frames]
    singles = [b[0] if len(b) == 1 else None for b in boxes]
    n = len(boxes)
    detected = sum(s is not None for s in singles)
    multiple = sum(len(b) > 1 for b in boxes)
    box = None
    if detected:
        median = np.median(np.stack([s for s in singles if s is not None]), axis=0)
        box = [round(float(v), DECIMALS) for v in median]
    continuity = None
    if n >= 2:
        linked = sum(
            a is not None and b is not None and iou(a, b) >= min_iou
            for a, b in itertools.pairwise(singles)
        )
        continuity = round(linked / (n - 1), DECIMALS)
    return {
        "frames": n,
        "detected": detected,
        "multiple": multiple,
        "box": box,
        "continuity": continuity,
        "flagged": n == 0 or detected < min_single * n,
    }


# --------------------------------------------------------------------------- the stage


@dataclass(frozen=True)
class State:
    """What a worker keeps between items: the settings, the loaded detector and, with
    ``identity`` on, the face embedder."""

    settings: Settings
    detector: Any
    embedder: Any = None


def setup(settings: Settings | None = None, ctx: Any = None) -> State:
    """Load the detector (and the face embedder) once per worker (``ctx`` unused: the
    stage writes no files)."""
    from indomer.backends.faces import load_detector

    settings = settings or Settings()
    detector = load_detector(
        settings.detector,
        cascade=settings.cascade,
        scale_factor=settings.scale_factor,
        min_neighbors=settings.min_neighbors,
        threads=settings.threads,
    )
    embedder = None
    if settings.identity:
        from indomer.backends.face_id import load_embedder

        # the embedder re-checks each box with HOG at dlib's threshold: a weak face found on
        # the detector's second look is embedded only if the check confirms it
        embedder = load_embedder()
    return State(settings, detector, embedder)


def tools(settings: Settings | None = None) -> dict[str, str]:
    """The detector version for the fingerprint (dlib's version for HOG; OpenCV's, the
    cascade name and hash for Haar) and, with ``identity`` on, the face embedder's (dlib and
    model package versions, file hashes)."""
    from indomer.backends.faces import model_version

    settings = settings or Settings()
    out = {"face_detector": model_version(settings.detector, settings.cascade)}
    if settings.identity:
        from indomer.backends import face_id

        out["face_identity"] = face_id.model_version()
    return out


def spread(n: int, k: int) -> list[int]:
    """``min(n, k)`` indices into ``range(n)``, evenly spread: the middle of each of ``k``
    equal stretches (so neither end of a clip, where a cut may fall, is favoured)."""
    if n <= 0 or k <= 0:
        return []
    if n <= k:
        return list(range(n))
    return [(2 * i + 1) * n // (2 * k) for i in range(k)]


def identity(crops: Sequence[tuple[np.ndarray, Sequence[float]]], embedder: Any,
             frames: int) -> str | None:
    """``face["embedding"]`` from the single-face crops of one clip (in time order): the
    normalised mean of up to ``frames`` evenly spread crops' unit vectors, as base64
    float32; None when no crop gives a vector."""
    from indomer.backends.face_id import mean_embedding
    from indomer.speakers import encode_embedding

    vectors = [embedder.embed(crops[i][0], crops[i][1], order="bgr")
               for i in spread(len(crops), frames)]
    mean = mean_embedding(vectors)
    return None if mean is None else encode_embedding(mean)


def face_of(segment: Segment, state: State) -> dict[str, Any] | None:
    """The ``face`` value of one clip (None when it has no video); DataError if unreadable."""
    if not segment.video_path:
        return None
    from indomer.backends.faces import detect_video

    s = state.settings
    crops: list[tuple[np.ndarray, Sequence[float]]] = []
    singles = [0, 1]  # single-face frames seen, stride between the ones kept

    def keep(frame: Any, boxes: np.ndarray) -> None:
        # Which frames are embedded is known once the whole clip is read, so the face's
        # surroundings (at most 320 px square) of the single-face frames are kept meanwhile:
        # every one, then every 2nd, 4th, ... once more than MAX_CROPS are held (a long
        # clip still keeps at most MAX_CROPS evenly spread crops, about 20 MB).
        if len(boxes) != 1:
            return
        seen, stride = singles
        singles[0] += 1
        if seen % stride:
            return
        from indomer.backends.face_id import crop_face

        h, w = frame.image.shape[:2]
        crops.append(crop_face(frame.image, boxes[0] * np.array([w, h, w, h])))
        if len(crops) > MAX_CROPS:
            del crops[1::2]
            singles[1] *= 2

    frames = detect_video(
        segment.video_path,
        state.detector,
        sample_fps=s.sample_fps,
        min_face=s.min_face,
        max_height=s.max_height,
        on_frame=keep if state.embedder is not None else None,
    )
    face = summarise([boxes for _, boxes in frames], min_iou=s.min_iou, min_single=s.min_single)
    if state.embedder is not None:
        face["embedding"] = identity(crops, state.embedder, s.identity_frames)
    return face


def process(segments: Iterable[Segment], state: State) -> list[Segment | RowRejected]:
    """Each clip with its ``face`` filled in, or a :class:`RowRejected` in its place when
    its video cannot be read, or it is flagged and ``on_no_face`` is ``reject``."""
    out: list[Segment | RowRejected] = []
    for seg in segments:
        try:
            face = face_of(seg, state)
        except DataError as exc:
            out.append(RowRejected(seg.id, f"cannot read the video for face detection: {exc}",
                                   "re-run the cut stage for this clip (indomer build --force)"))
            continue
        if face is not None and face["flagged"] and state.settings.on_no_face == "reject":
            out.append(RowRejected(
                seg.id,
                f"one face in {face['detected']} of {face['frames']} sampled frames "
                f"({face['multiple']} with several faces)",
                "check the clip shows one speaker, or keep it flagged with "
                "faces.on_no_face: flag",
            ))
            continue
        out.append(dataclasses.replace(seg, face=face))
    return out


__all__ = [
    "Settings",
    "State",
    "face_of",
    "identity",
    "iou",
    "process",
    "setup",
    "spread",
    "summarise",
    "tools",
]


# --------------------------------------------------------------------------- the stage


def _run(item: Item, state: State) -> list:
    """Each clip's face-track summary (the detector is loaded once per worker)."""
    return [item.video, *process(item.segments, state)]


STAGE = ItemStage(
    "faces", _run, settings=settings_of("faces"), setup=setup, tools_for=tools, model=True
)
