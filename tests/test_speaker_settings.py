"""``indomer.speaker_settings``: the two checks that need two fields together (a non-default
embedding needs both thresholds; the link threshold never exceeds the id threshold), the
defaults behind null thresholds, and the per-source view that tuning the clustering leaves
alone."""

from __future__ import annotations

from pathlib import Path

import pytest

from indomer.speaker_settings import (
    ITEM_FIELDS,
    Settings,
    calibration_path,
    overrides_path,
)
from indomer.speakers import (
    FACE_DIFFERENT,
    FACE_SAME,
    RESEMBLYZER_LINK_THRESHOLD,
    RESEMBLYZER_THRESHOLD,
)


def test_another_embedding_needs_both_thresholds():
    for kwargs in ({}, {"threshold": 0.7}, {"link_threshold": 0.6}):
        with pytest.raises(ValueError, match=r"^threshold and link_threshold: required with "
                                             r"embedding 'pyannote/wespeaker'"):
            Settings(embedding="pyannote/wespeaker", **kwargs)
    s = Settings(embedding="pyannote/wespeaker", threshold=0.7, link_threshold=0.6)
    assert (s.cluster_threshold, s.cluster_link_threshold) == (0.7, 0.6)


def test_the_link_threshold_must_not_exceed_the_id_threshold():
    with pytest.raises(ValueError, match=r"^link_threshold \(0.9\) must not exceed threshold "
                                         r"\(0.8\)"):
        Settings(threshold=0.8, link_threshold=0.9)
    Settings(threshold=0.8, link_threshold=0.8)  # equal is allowed


def test_null_thresholds_are_the_resemblyzer_defaults():
    s = Settings()
    assert s.cluster_threshold == RESEMBLYZER_THRESHOLD
    assert s.cluster_link_threshold == min(RESEMBLYZER_LINK_THRESHOLD, RESEMBLYZER_THRESHOLD)
    low = Settings(threshold=0.5)  # below the default link: the link follows it down
    assert low.cluster_link_threshold == min(RESEMBLYZER_LINK_THRESHOLD, 0.5)


def test_linking_and_operating_point_carry_the_settings():
    s = Settings(threshold=0.8, link_threshold=0.7, hard_p=0.95)
    lk = s.linking("model")
    assert (lk.threshold, lk.link_threshold, lk.face_same, lk.face_different) == (
        0.8, 0.7, FACE_SAME, FACE_DIFFERENT)
    assert (lk.model, lk.hard_p) == ("model", 0.95)
    no_faces = Settings(faces=False).linking()
    assert (no_faces.face_same, no_faces.face_different) == (None, None)
    assert s.operating_point() == {
        "embedding": "resemblyzer", "threshold": 0.8, "hard_p": 0.95, "face_same": FACE_SAME,
        "face_different": FACE_DIFFERENT, "calibration": {"source": "none", "file": None}}


def test_the_per_source_view_ignores_clustering_fields():
    a = Settings(threshold=0.8, link_threshold=0.7, overrides="s.csv", prior=0.2, faces=False)
    b = Settings(min_voice_seconds=5.0, calibration="c.json", hard_p=0.9)
    assert a.for_items() == b.for_items()
    c = Settings(max_overlap=0.3)
    assert c.for_items() != b.for_items() and "max_overlap" in ITEM_FIELDS


def test_paths_resolve_against_the_config_folder(tmp_path: Path):
    s = Settings(overrides="speakers.csv", calibration="/abs/cal.json")
    assert overrides_path(s, tmp_path) == tmp_path / "speakers.csv"
    assert overrides_path(s) == Path("speakers.csv")
    assert calibration_path(s, tmp_path) == Path("/abs/cal.json")
    assert overrides_path(Settings(), tmp_path) is None
