"""``indomer.speakers.pins``: speakers.csv pins read back, each bad line one error naming it."""

from __future__ import annotations

import pytest

from indomer.errors import DataError
from indomer.speakers.pins import read_overrides

# --------------------------------------------------------------------------- speakers.csv


def test_read_overrides(tmp_path):
    p = tmp_path / "speakers.csv"
    p.write_text(
        "source_id,id,speaker_id\n1,,alice\n,clip_4_Cooking_2,bob\n\n1,,alice\n", encoding="utf-8"
    )
    pins = read_overrides(p)
    assert pins.sources == {"1": ("alice", f"{p}:2")}
    assert pins.clips == {"clip_4_Cooking_2": ("bob", f"{p}:3")}
    q = tmp_path / "by_source.csv"
    q.write_text("source_id,speaker_id\n7,carol\n", encoding="utf-8")
    assert read_overrides(q).sources == {"7": ("carol", f"{q}:2")}


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("source_id,speaker_id\n1,../x\n", r":2: speaker_id '../x' is not a safe id"),
        ("source_id,speaker_id\n1 2,alice\n", r":2: source_id '1 2' is not a safe id"),
        (
            "source_id,id,speaker_id\n1,clip_1_A_1,alice\n",
            r":2: fill exactly one of source_id and id \(found both\)",
        ),
        ("source_id,id,speaker_id\n,,alice\n", r":2: fill exactly one .*\(found neither\)"),
        ("source_id,speaker_id\n1,\n", r":2: speaker_id is empty"),
        ("source_id,speaker_id\n1,alice,extra\n", r":2: wrong number of cells"),
        ("speaker_id\nalice\n", r":1: needs a source_id or an id column"),
        ("source_id,name\n1,alice\n", r":1: needs a speaker_id, same_as or not_same_as column"),
        ("source_id,speaker_id,nme\n1,alice,x\n", r":1: unknown column\(s\) nme"),
        ("source_id,same_as\n1,1\n", r":2: source 1 is linked to itself"),
        ("id,not_same_as\nclip_1_A_1,2\n", r":2: same_as / not_same_as link source videos"),
    ],
)
def test_read_overrides_errors_name_the_line(tmp_path, text, error):
    p = tmp_path / "speakers.csv"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=error) as err:
        read_overrides(p)
    assert str(err.value).startswith(str(p))
