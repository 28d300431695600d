"""``indomer.speakers.review``: the review queue as text, each uncertain pair with the
``speakers.csv`` line that settles it either way (the command end to end is in
tests/commands/test_speakers.py)."""

from __future__ import annotations

import pytest

from indomer.errors import UsageError
from indomer.speakers.review import format_review, review_record, settle_lines

ENTRY = {"source_a": "s1", "source_b": "a_long_source_id_x", "p": 0.5, "expected_reduction": 0.25,
         "voice_cosine": 0.8, "voice_score": 0.7, "face_cosine": None, "seconds_a": 3.0,
         "seconds_b": 12.5, "on_two_sides": True}
RECORD = {
    "operating_point": {"threshold": 0.84, "embedding": "resemblyzer", "hard_p": 0.9,
                        "face_same": None, "calibration": {"source": "ami", "file": "f.json"}},
    "n_speakers": 3, "n_groups": 2, "pairs": [ENTRY], "disagreements": [],
    "warnings": ["few clips"],
}


def test_settle_lines_answer_same_or_different():
    assert settle_lines({"source_a": "1", "source_b": "7"}) == {"same": "1,,7,",
                                                               "different": "1,,,7"}


def test_the_header_says_what_identity_rests_on():
    text = format_review(RECORD)
    assert text.splitlines() == [
        (
            "speaker ids at voice cosine 0.84 (resemblyzer); pairs at p >= 0.9 are kept "
            "together; faces: not used"
        ),
        "calibration: ami (f.json)",
        "3 speakers in 2 groups; 1 uncertain group pairs; 0 voice/face disagreements",
        "no split yet: every uncertain pair could end up on two sides",
        "warning: few clips",
        "nothing to review",
    ]


def test_each_pair_is_a_row_with_its_settling_lines():
    rec = {**RECORD, "review": [ENTRY, ENTRY], "split": {"name": "default",
                                                         "expected_people_on_two_sides": 0.5}}
    lines = format_review(rec, limit=1).splitlines()
    assert lines[3] == "split default: expected people on two sides 0.50"
    assert lines[-4].startswith("  # source a")
    row = lines[-3]
    assert row.startswith("  1 s1")
    assert row.endswith("  yes    s1,,a_long_source_id_x, | s1,,,a_long_source_id_x")
    assert "  0.500  0.250  0.800  0.700      -    3.0   12.5" in row
    assert lines[-1].startswith("p: probability of one person")  # one row: limit=1


def test_a_folder_without_a_build_is_one_usage_line(tmp_path):
    with pytest.raises(UsageError, match="no build.json and no speakers record") as err:
        review_record(tmp_path)
    assert str(err.value).startswith(f"{tmp_path}: ")
