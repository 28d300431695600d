"""Global speaker ids, split the way scikit-learn keeps metrics apart from I/O:
:mod:`~indomer.speakers.clustering` (pure numpy: embeddings, average-linkage clustering,
split groups; its docstring says how and why), :mod:`~indomer.speakers.pins` (``speakers.csv``),
:mod:`~indomer.speakers.calibration` (the score -> probability record) and
:mod:`~indomer.speakers.review` (``indomer speakers review``). This module re-exports the
names the stages, commands, tests and tools import."""

from __future__ import annotations

from indomer.speakers.calibration import CALIBRATION_FILE, CALIBRATION_MAX_BYTES, score_model
from indomer.speakers.clustering import (
    BLOCK,
    DENSE_MAX,
    FACE_DIFFERENT,
    FACE_SAME,
    GROUP_PREFIX,
    ID_HEX,
    RESEMBLYZER_LINK_THRESHOLD,
    RESEMBLYZER_THRESHOLD,
    SCREEN_MARGIN,
    SPEAKER_PREFIX,
    ClipVoice,
    Clustering,
    Linking,
    agglomerate,
    cluster_voices,
    decode_embedding,
    derived_id,
    encode_embedding,
    normalize,
    report_unused,
)
from indomer.speakers.pins import Pins, read_overrides
from indomer.speakers.review import format_review, review_record, settle_lines

__all__ = [
    "BLOCK",
    "CALIBRATION_FILE",
    "CALIBRATION_MAX_BYTES",
    "DENSE_MAX",
    "FACE_DIFFERENT",
    "FACE_SAME",
    "GROUP_PREFIX",
    "ID_HEX",
    "RESEMBLYZER_LINK_THRESHOLD",
    "RESEMBLYZER_THRESHOLD",
    "SCREEN_MARGIN",
    "SPEAKER_PREFIX",
    "ClipVoice",
    "Clustering",
    "Linking",
    "Pins",
    "agglomerate",
    "cluster_voices",
    "decode_embedding",
    "derived_id",
    "encode_embedding",
    "format_review",
    "normalize",
    "read_overrides",
    "report_unused",
    "review_record",
    "score_model",
    "settle_lines",
]
