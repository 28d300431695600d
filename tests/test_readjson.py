"""The one bounded JSON reader: values as json gives them, and every failure one line naming
the file and position, what was expected and how to fix it."""

from __future__ import annotations

import pytest

from indomer.errors import DataError, UsageError
from indomer.readjson import iter_jsonl, loads, read_json


def test_loads_gives_what_json_gives_and_drops_a_byte_order_mark():
    assert loads('{"a": [1, 2.5, "x", null]}', "f.json") == {"a": [1, 2.5, "x", None]}
    assert loads("\ufeff[true]", "f.json") == [True]
    assert loads('"[[[{"', "f.json", max_depth=1) == "[[[{"  # brackets in strings do not nest


def test_a_syntax_error_names_the_line_and_column():
    with pytest.raises(DataError) as info:
        loads('{\n  "a": 1,\n  "b": }\n', "in.json")
    message = str(info.value)
    assert message.startswith("in.json:3:8: not valid JSON (Expecting value")
    assert message.endswith("; fix the file or write it again")


def test_nesting_past_the_bound_is_refused_where_it_starts():
    assert loads("[[[1]]]", "f.json", max_depth=3) == [[[1]]]
    with pytest.raises(DataError, match=r"^f.json:2:4: JSON nested deeper than 3 levels;"):
        loads('[\n [[[1]]]]', "f.json", max_depth=3)
    deep = "[" * 200_000 + "]" * 200_000  # a RecursionError for json.loads
    with pytest.raises(DataError, match="nested deeper than 64 levels"):
        loads(deep, "deep.json")


def test_bytes_that_are_not_utf8_are_one_line():
    with pytest.raises(DataError, match=r"^x.jsonl:4: not UTF-8 \(byte 1: .*save the file as UTF-8$"):
        loads(b'"\xff"', "x.jsonl", lineno=4)


def test_read_json_bounds_the_size_and_names_the_shown_path(tmp_path):
    path = tmp_path / "g" / "build.json"
    path.parent.mkdir()
    path.write_bytes(b"\xef\xbb\xbf" + b'{"n": 1}')
    assert read_json(path) == {"n": 1}
    path.write_text('{"n": }')
    with pytest.raises(DataError, match=r"^OUT/build.json:1:7: not valid JSON"):
        read_json(path, shown="OUT/build.json")
    path.write_text("[" + "0," * 600 + "0]")
    with pytest.raises(DataError, match=r"larger than 0 MiB; this is not a file indomer reads"):
        read_json(path, max_bytes=1000)
    with pytest.raises(UsageError, match=r"nope.json: no such file; check the path$"):
        read_json(tmp_path / "nope.json")
    with pytest.raises(UsageError, match=r": is a folder, expected a JSON file$"):
        read_json(tmp_path)


def test_iter_jsonl_numbers_the_file_lines_and_skips_blank_ones(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_bytes(b'\xef\xbb\xbf{"id": "a"}\n\n  \r\n{"id": "b"}\r\n[1]')
    assert list(iter_jsonl(path)) == [(1, {"id": "a"}), (4, {"id": "b"}), (5, [1])]
    path.write_text('{"id": "a"}\n{"id": \n')
    rows = iter_jsonl(path)
    assert next(rows) == (1, {"id": "a"})
    with pytest.raises(DataError) as info:
        next(rows)
    assert str(info.value).startswith(f"{path}:2: not valid JSON (Expecting value at column 8)")
    assert str(info.value).endswith("expected one JSON value per line")


def test_iter_jsonl_refuses_a_line_past_the_bound(tmp_path):
    path = tmp_path / "long.jsonl"
    path.write_text('{"a": 1}\n"' + "x" * 100 + '"\n')
    with pytest.raises(DataError, match=r"long.jsonl:2: line longer than 0 MiB; expected one"):
        list(iter_jsonl(path, max_line=50))
    with pytest.raises(UsageError, match="is a folder, expected a JSONL file"):
        list(iter_jsonl(tmp_path))
