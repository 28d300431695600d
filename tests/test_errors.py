"""``indomer.errors``: each error kind carries its exit code (1 data, 2 usage) and one line
that starts with the file:line or row id and says how to fix it."""

from __future__ import annotations

import pytest

from indomer.errors import (
    DataError,
    IndomerError,
    MissingExtraError,
    RowRejected,
    UsageError,
    first_few,
    require_columns,
)


def test_exit_codes_split_data_from_usage():
    assert (IndomerError.exit_code, DataError.exit_code) == (1, 1)
    assert (UsageError.exit_code, MissingExtraError.exit_code) == (2, 2)
    assert issubclass(DataError, IndomerError) and issubclass(RowRejected, IndomerError)


def test_a_missing_extra_names_the_pip_line():
    err = MissingExtraError("openai", "predict")
    assert str(err) == "openai is not installed; install it with: pip install 'indomer[predict]'"


def test_first_few_counts_the_rest():
    assert first_few([]) == ""
    assert first_few(range(5)) == "0, 1, 2, 3, 4"
    assert first_few(range(8)) == "0, 1, 2, 3, 4 (and 3 more)"
    assert first_few("abc", n=1) == "a (and 2 more)"


def test_require_columns_names_the_first_line_and_the_header():
    require_columns("t.csv", ["id", "x"], ["id"], "id,x")  # all there: no error
    with pytest.raises(DataError) as err:
        require_columns("t.csv", ["x"], ["id", "x", "label"], "id,x,label")
    assert str(err.value) == "t.csv:1: missing column(s) id, label; expected header id,x,label"


def test_a_rejected_row_is_one_line_with_its_parts():
    err = RowRejected("clip_1_A_2", "no audio stream", "re-encode the source")
    assert str(err) == "clip_1_A_2: no audio stream; re-encode the source"
    assert (err.row_id, err.reason, err.fix) == ("clip_1_A_2", "no audio stream",
                                                 "re-encode the source")
    assert err.exit_code == 1
