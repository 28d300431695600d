"""``indomer.rows``: a row is a pure value that survives its manifest line (to_json /
from_json), an unknown kind or field is refused, and ids follow the release convention."""

from __future__ import annotations

import json

import pytest

from indomer.rows import SAFE_ID, Segment, Video, from_json, segment_id, to_json


def test_rows_round_trip_through_a_json_line():
    seg = Segment(id="clip_1_A_0", source_id="1", segment_index=0, topic="A", start=0.5,
                  end=2.0, text="halo", words=({"word": "halo", "start": 0.5, "end": 1.0},),
                  speaker={"flagged": False})  # fmt: skip
    line = json.loads(json.dumps(to_json(seg)))
    assert line["kind"] == "segment" and line["words"] == [{"word": "halo", "start": 0.5,
                                                             "end": 1.0}]
    assert from_json(line) == seg  # words come back a tuple: the row stays hashable-equal
    video = Video(source_id="1", topic="A", url="https://x/v.mp4", duration=3.5)
    assert to_json(video)["kind"] == "video"
    assert from_json(to_json(video)) == video


def test_an_unknown_kind_or_field_is_refused():
    with pytest.raises(KeyError):
        from_json({"kind": "audio", "source_id": "1", "topic": "A"})
    with pytest.raises(TypeError, match="colour"):
        from_json({"kind": "video", "source_id": "1", "topic": "A", "colour": "red"})


def test_segment_ids_and_safe_ids():
    assert segment_id("4", "Cooking", 2) == "clip_4_Cooking_2"
    assert SAFE_ID.match("clip_4_Cooking_2") and SAFE_ID.match("a-b")
    for bad in ("../x", ".hidden", "a b", "", "a/b", "x\n"):
        assert not SAFE_ID.match(bad), bad
