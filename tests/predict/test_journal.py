"""``indomer.predict.journal``: the resume journal reads back what an earlier run answered
(dropping a torn last line), refuses a file of another system or split naming ``file:line``,
appends under an exclusive lock and rewrites in dataset order."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from indomer.errors import DataError, UsageError
from indomer.predict.journal import (
    Appender,
    dumps_sidecar,
    read_existing,
    rewrite_in_order,
    sidecar,
)
from indomer.predict.settings import settings

SHA = "ab" * 32
S = settings(endpoint="http://h/v1", model="m", split="validation", modalities="text")


def line(seg_id: str, **over: object) -> str:
    obj = {"id": seg_id, "emotion": "x", "model": "m", "prompt_sha256": SHA, "modalities": "text"}
    obj.update(over)
    return json.dumps(obj) + "\n"


def test_a_missing_file_has_nothing_answered(tmp_path: Path):
    found = read_existing(tmp_path / "p.jsonl", S, SHA, {"a"})
    assert (found.answered, found.torn, found.keep, found.size) == (set(), None, 0, 0)


def test_whole_lines_are_answered_and_a_torn_tail_is_dropped(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    whole = line("a") + "\n" + line("b")
    path.write_text(whole + '{"id": "c", "emo', encoding="utf-8")
    found = read_existing(path, S, SHA, {"a", "b", "c"})
    assert found.answered == {"a", "b"}
    assert found.torn == '{"id": "c", "emo'
    assert found.keep == len(whole.encode()) and found.size == path.stat().st_size


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("not json\n", "p.jsonl:1: not a JSON line"),
        ('{"id": "a"}\n', "p.jsonl:1: expected a line with 'id' and 'emotion'"),
        (line("a", model="other"), "p.jsonl:1: written with model 'other', this run uses 'm'"),
        (line("a", prompt_sha256="cd"), "p.jsonl:1: written with prompt_sha256 'cd'"),
        (line("zz"), "p.jsonl:1: id 'zz' is not in split 'validation'"),
        (line("a") + line("a"), "p.jsonl:2: id 'a' answered twice"),
    ],
)
def test_a_line_from_elsewhere_is_one_error_naming_file_and_line(tmp_path, text, message):
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError) as err:
        read_existing(path, S, SHA, {"a", "b"})
    assert message in str(err.value) and str(path) in str(err.value)


def test_appender_writes_sorted_key_lines_and_holds_an_exclusive_lock(tmp_path: Path):
    path = tmp_path / "sub" / "p.jsonl"
    app = Appender(path)
    try:
        app.write({"id": "a", "emotion": "é"})
        with pytest.raises(UsageError, match="another 'indomer predict' is writing"):
            Appender(path)
        app.truncate(0)
        app.write({"b": 1, "a": 2})
    finally:
        app.close()
    assert path.read_bytes() == b'{"a": 2, "b": 1}\n'
    Appender(path).close()  # the lock went with the handle


def test_rewrite_in_order_follows_the_dataset(tmp_path: Path):
    path = tmp_path / "p.jsonl"
    path.write_text(line("b") + "\n" + line("c") + line("a"), encoding="utf-8")
    rewrite_in_order(path, ["a", "b"])
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["a", "b", "c"]
    before = path.stat().st_mtime_ns, path.stat().st_ino
    rewrite_in_order(path, ["a", "b"])  # already in order: untouched
    assert (path.stat().st_mtime_ns, path.stat().st_ino) == before


def test_sidecar_names_the_system_and_never_the_endpoint():
    from indomer import __version__

    meta = sidecar(S, SHA, {"name": "default", "sha256": "00"})
    assert meta == {
        "command": "predict", "model": "m", "task": "emotion", "split": "validation",
        "modalities": "text", "prompt_sha256": SHA, "versions": {"indomer": __version__},
        "assignment": {"name": "default", "sha256": "00"},
    }  # fmt: skip
    assert "http://h" not in dumps_sidecar(meta)
    assert "assignment" not in sidecar(S, SHA, None)
    assert dumps_sidecar({"b": 1, "a": "é"}) == '{\n  "a": "é",\n  "b": 1\n}\n'
