"""``indomer.manifest``: manifest lines are compact sorted-key JSON sorted by id, read back
as written, with paths inside the build folder stored relative to it."""

from __future__ import annotations

from pathlib import Path

import pytest

from indomer.errors import DataError
from indomer.manifest import (
    canon,
    dumps_row,
    manifest_bytes,
    read_manifest,
    rejected_bytes,
    relocate,
    row_id,
    sha,
    sort_rows,
)


def test_lines_are_compact_sorted_and_keep_utf8():
    assert dumps_row({"b": 1, "a": "é"}) == '{"a":"é","b":1}'
    assert manifest_bytes([{"id": "x"}, {"id": "y"}]) == b'{"id":"x"}\n{"id":"y"}\n'
    assert rejected_bytes([{"id": "x", "reason": "r"}]) == b'{"id":"x","reason":"r"}\n'


def test_rows_sort_by_id_then_kind():
    rows = [{"id": "b"}, {"source_id": "a", "kind": "video"}, {"id": "a", "kind": "segment"}]
    assert [row_id(r) for r in rows] == ["b", "a", "a"]
    assert sort_rows(rows) == [rows[2], rows[1], rows[0]]


def test_write_read_round_trip(tmp_path: Path):
    rows = sort_rows([{"id": "b", "t": "é"}, {"id": "a", "n": [1, 2]}])
    path = tmp_path / "manifest.jsonl"
    path.write_bytes(manifest_bytes(rows) + b"\n")  # a blank line is skipped
    assert read_manifest(path) == rows
    assert read_manifest(tmp_path / "absent.jsonl") == []


def test_a_damaged_line_names_the_file_and_line(tmp_path: Path):
    path = tmp_path / "manifest.jsonl"
    path.write_text('{"id": "a"}\n{"id": \n', encoding="utf-8")
    with pytest.raises(DataError, match=r"manifest\.jsonl:2: not a JSON line .*--force$"):
        read_manifest(path)


def test_relocate_round_trip(tmp_path: Path):
    out = tmp_path / "out"
    stored = {"kind": "segment", "id": "a", "audio_path": "clips/a.wav", "video_path": None,
              "source_path": "/elsewhere/v.mp4"}
    given = relocate(stored, out, absolute=True)
    assert given["audio_path"] == str(out / "clips" / "a.wav")
    assert given["source_path"] == "/elsewhere/v.mp4" and given["video_path"] is None
    assert relocate(given, out, absolute=False) == stored
    assert stored["audio_path"] == "clips/a.wav"  # a copy, not the row itself
    video = {"kind": "video", "path": str(out / "src" / "1.mp4")}
    assert relocate(video, out, absolute=False)["path"] == "src/1.mp4"
    other = {"kind": "note", "path": str(out / "x")}
    assert relocate(other, out, absolute=False) is other


def test_canonical_bytes_hash_the_same_for_equal_objects():
    assert canon({"b": 1, "a": Path("p")}) == b'{"a": "p", "b": 1}'
    assert sha(canon({"a": 1, "b": 2})) == sha(canon({"b": 2, "a": 1}))
    assert sha(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
