"""groups.py: the leakage unit of each row, which the split keeps on one side."""

from __future__ import annotations

import pandas as pd
import pytest

from indomer.errors import DataError
from indomer.groups import GROUP_KEY, group_column, with_groups


def _df(**cols) -> pd.DataFrame:
    n = len(next(iter(cols.values())))
    return pd.DataFrame({"id": [f"clip_{i}" for i in range(n)], **cols})


def test_speaker_ids_are_the_unit_when_every_row_has_one():
    key, groups, missing = group_column(_df(speaker_id=["a", "b", "a"], source_id=["1", "2", "3"]))
    assert (key, list(groups), missing) == ("speaker_id", ["a", "b", "a"], 0)


def test_rows_without_a_speaker_fall_back_to_their_source():
    key, groups, missing = group_column(_df(speaker_id=["a", None, " "], source_id=["1", "2", "2"]))
    assert (key, list(groups), missing) == ("speaker_id", ["a", "source:2", "source:2"], 2)


def test_without_any_speaker_the_source_is_the_unit():
    key, groups, missing = group_column(_df(speaker_id=[None, None], source_id=["1", "2"]))
    assert (key, list(groups), missing) == ("source_id", ["1", "2"], 2)


def test_linked_groups_win_over_speaker_ids():
    df = _df(speaker_id=["a", "b", "c"], source_id=["1", "2", "3"],
             speaker_group=["g1", "g1", None])
    key, groups, missing = group_column(df)
    assert (key, list(groups), missing) == (GROUP_KEY, ["g1", "g1", "source:3"], 0)


def test_a_row_with_neither_speaker_nor_source_is_an_error():
    with pytest.raises(DataError, match="clip_1: no speaker_id and no source_id"):
        group_column(_df(speaker_id=["a", None], source_id=["1", None]))


def test_with_groups_maps_speakers_to_their_group_and_keeps_the_rest():
    df = _df(speaker_id=["a", "b", "c", None], source_id=["1", "2", "3", "4"])
    got = with_groups(df, {"groups": {"g1": ["a", "b"]}})
    assert list(got[GROUP_KEY][:3]) == ["g1", "g1", "c"] and pd.isna(got[GROUP_KEY][3])
    assert with_groups(df, None) is df and with_groups(df, {"groups": {}}) is df
