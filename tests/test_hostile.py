"""Hostile and careless input, command by command (issue 19): every case gives one line (no
traceback) with the exit code of its kind (2 usage, 1 data) and changes nothing.

The dataset is small and written in-process (:func:`indomer.generation.write_dataset`), so the
whole suite runs in seconds; cases that damage a dataset work on a copy.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import shutil
import threading
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from indomer import browse
from indomer.cli import main
from indomer.errors import DataError, UsageError
from indomer.generation import write_dataset

DEEP = "[" * 200_000 + "]" * 200_000


def run(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args])


def one_line(res, code: int, *expected: str) -> str:
    """Exactly one ``error: ...`` line, no traceback, exit ``code``; the line holds ``expected``."""
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    assert res.exit_code == code, res.output
    err = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(err) == 1 and err[0].startswith("error: "), res.stderr
    assert "Traceback" not in res.output
    for text in expected:
        assert text in err[0], err[0]
    return err[0]


def tree(root: Path) -> dict[str, object]:
    """Every entry under ``root`` (links not followed): file bytes' sha256 or link target."""
    out: dict[str, object] = {}
    for dirpath, dirs, files in os.walk(root):
        for name in dirs + files:
            p = Path(dirpath) / name
            rel = str(p.relative_to(root))
            if p.is_symlink():
                out[rel] = ("link", os.readlink(p))
            elif p.is_file():
                out[rel] = hashlib.sha256(p.read_bytes()).hexdigest()
            else:
                out[rel] = "dir"
    return out


def _rows(split: str, n: int, start: int) -> pd.DataFrame:
    emotions = ["anger", "happiness", "neutral", "sadness"]
    sentiment = {"anger": "negative", "happiness": "positive", "neutral": "neutral",
                 "sadness": "negative"}  # fmt: skip
    rows = []
    for i in range(start, start + n):
        emo = emotions[i % 4]
        rows.append(
            {
                "id": f"clip_{i}_Cooking_1",
                "source_id": str(i),
                "segment_index": 1,
                "topic": "Cooking",
                "speaker_id": f"S{i}",
                "start": 0.0,
                "end": 2.0,
                "text": f"saya merasa {emo} hari ini {i}",
                "emotion": emo,
                "sentiment": sentiment[emo],
            }
        )
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def ds(tmp_path_factory) -> Path:
    """A small committed dataset (tests must not change it: each checks it did not)."""
    out = tmp_path_factory.mktemp("hostile") / "ds"
    write_dataset(
        out,
        {"train": _rows("train", 16, 0), "validation": _rows("validation", 8, 100),
         "test": _rows("test", 8, 200)},
        extra={"splits/official.json": {"name": "official", "note": "the user's split"}},
    )  # fmt: skip
    return out


@pytest.fixture
def preds(ds: Path, tmp_path: Path) -> Path:
    path = tmp_path / "preds.jsonl"
    ids = [f"clip_{i}_Cooking_1" for i in range(100, 108)]
    path.write_text("".join(json.dumps({"id": i, "emotion": "happiness"}) + "\n" for i in ids))
    return path


@pytest.fixture
def copy(ds: Path, tmp_path: Path) -> Path:
    """A writable copy of the dataset (its links kept)."""
    dst = tmp_path / "copy"
    shutil.copytree(ds, dst, symlinks=True)
    return dst


def _replace(link: Path, data: bytes) -> None:
    """Write ``data`` to the file behind a dataset link (breaking the generation's hard link)."""
    real = link.resolve()
    real.unlink()
    real.write_bytes(data)


def ls_export(tmp_path: Path, tasks: list) -> Path:
    path = tmp_path / "ls.json"
    path.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    return path


GOOD_TASK = {
    "id": 10,
    "data": {"clip_id": "clip_1_Cooking_1"},
    "annotations": [
        {
            "id": 5,
            "completed_by": 1,
            "result": [
                {"from_name": "emotion", "value": {"choices": ["kebahagiaan"]}},
                {"from_name": "sentiment_score", "value": {"number": 0.5}},
            ],
        }
    ],
}


# --------------------------------------------------------------------------- into a dataset


def test_no_command_writes_into_a_dataset_it_does_not_own(ds, preds, tmp_path):
    before = tree(ds)
    export = ls_export(tmp_path, [GOOD_TASK])
    cases = [
        ("stats", ds, "--json", ds / "splits" / "official.json"),
        ("baseline", ds, "--method", "majority", "--out", ds / "data" / "x.jsonl"),
        ("leaderboard", "--refs", ds, preds, "--json", ds / "build.json"),
        ("leaderboard", "--refs", ds, preds, "--markdown", ds / "README.md"),
        ("speakers", "review", ds, "--json", ds / "build.json"),
        ("annotate", "import", export, "--out", ds / "data"),
        ("annotate", "export", ds, "--to", ds / "data"),
        ("browse", ds, "--html", ds / "page.html"),
        ("score", preds, "--refs", ds, "--json", tmp_path / ".." / tmp_path.name / "x"
         / ".." / ".." / ds.parent.name / "ds" / "build.json"),
        ("export", ds, "--format", "ms-swift", "--to", ds / "data" / "sw"),
        ("stats", ds, "--plots", ds / "data"),
    ]  # fmt: skip
    for args in cases:
        one_line(run(*args), 2, "inside")
        assert tree(ds) == before, args
    assert not (tmp_path / "x").exists()


# --------------------------------------------------------------------------- over an input


def test_no_command_writes_over_its_own_input(ds, preds, tmp_path):
    refs = tmp_path / "7_class_val.json"
    refs.write_text('[{"sample_id": "clip_100_Cooking_1"}]\n')
    rttm = tmp_path / "calib" / "a.rttm"
    rttm.parent.mkdir()
    rttm.write_text("SPEAKER a 1 0.0 3.0 <NA> <NA> spk1 <NA> <NA>\n")
    sheets = tmp_path / "sheets"
    sheets.mkdir()
    (sheets / "A1.csv").write_text(json.dumps([GOOD_TASK]))  # an export that yields A1.csv
    (sheets / "tasks.json").write_text("[]\n")
    (tmp_path / "alias").mkdir()
    (tmp_path / "alias" / "p.jsonl").hardlink_to(preds)  # another name, the same file
    files = [preds, refs, rttm, sheets / "A1.csv", sheets / "tasks.json"]
    before = {p: p.read_bytes() for p in files}
    cases = [
        (("browse", ds, "--preds", preds, "--html", preds), "same file as the input"),
        (("score", preds, "--refs", refs, "--json", refs), "same file as the input"),
        (("score", preds, "--refs", ds, "--json", tmp_path / "alias" / "p.jsonl"),
         "same file as the input"),
        (("speakers", "calibrate", rttm, "--json", rttm), "same file as the input"),
        (("speakers", "calibrate", rttm.parent, "--json", rttm), "same file as the input"),
        (("annotate", "import", sheets / "A1.csv", "--out", sheets), "same file as the input"),
        (("annotate", "export", ds, "--preds", sheets / "tasks.json", "--to", sheets),
         "same file as the input"),
        (("leaderboard", "--refs", ds, preds, "--json", tmp_path / "x.json", "--markdown",
          tmp_path / "x.json"), "is the same file as --json"),
    ]  # fmt: skip
    for args, expected in cases:
        one_line(run(*args), 2, expected)
        assert {p: p.read_bytes() for p in files} == before, args
    assert not (tmp_path / "x.json").exists()


def test_a_link_leaving_its_folder_is_refused(ds, preds, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    victim = outside / "victim.txt"
    victim.write_text("precious\n")
    work = tmp_path / "work"
    work.mkdir()
    (work / "report.json").symlink_to(victim)
    (work / "sw").symlink_to(outside)
    one_line(run("score", preds, "--refs", ds, "--json", work / "report.json"), 2,
             "symbolic link", "outside its folder")  # fmt: skip
    one_line(run("export", ds, "--format", "ms-swift", "--to", work / "sw"), 2,
             "symbolic link")  # fmt: skip
    assert victim.read_text() == "precious\n"
    assert (work / "sw").is_symlink() and sorted(p.name for p in outside.iterdir()) == [
        "victim.txt"
    ]
    assert not list(tmp_path.glob("*.export-old"))


def test_the_lock_file_is_never_followed(copy, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    lock = copy / ".indomer" / "lock"
    lock.unlink(missing_ok=True)
    lock.symlink_to(victim)
    before = tree(copy)
    one_line(run("split", copy, "--speaker-disjoint", "--name", "again"), 2,
             "symbolic link", "lock")  # fmt: skip
    assert victim.read_text() == "precious\n"
    assert tree(copy) == before


# --------------------------------------------------------------------------- folder outputs


def test_an_export_rerun_keeps_the_users_files(ds, tmp_path):
    sw = tmp_path / "sw"
    args = ("export", ds, "--format", "ms-swift", "--tasks", "emotion", "--to", sw)
    assert run(*args).exit_code == 0
    first = tree(sw)
    ckpt = sw / "output" / "checkpoint-100"
    ckpt.mkdir(parents=True)
    (ckpt / "model.safetensors").write_bytes(b"weights")
    (sw / "train.jsonl").write_text("stale\n")  # ours: replaced
    res = run(*args)
    assert res.exit_code == 0, res.output
    assert (ckpt / "model.safetensors").read_bytes() == b"weights"
    after = tree(sw)
    assert {k: v for k, v in after.items() if not k.startswith("output")} == first
    # a different split: the old records file (ours) goes, the checkpoint stays
    res = run("export", ds, "--format", "ms-swift", "--tasks", "emotion", "--split", "test",
              "--to", sw)  # fmt: skip
    assert res.exit_code == 0, res.output
    assert not (sw / "train.jsonl").exists() and (sw / "test.jsonl").is_file()
    assert (ckpt / "model.safetensors").read_bytes() == b"weights"


def test_folder_output_owns_only_its_manifest(tmp_path):
    from indomer.outputs import MANIFEST, Outputs

    folder = tmp_path / "f"
    out = Outputs().folder(folder, "--out", "tool-a")
    out.write_files({"a.csv": b"1", "sub/b.csv": b"2"})
    (folder / "mine.txt").write_text("user")
    out = Outputs().folder(folder, "--out", "tool-a")
    out.write_files({"a.csv": b"3"})
    assert (folder / "a.csv").read_bytes() == b"3"
    assert not (folder / "sub").exists()  # ours, no longer written: removed with its folder
    assert (folder / "mine.txt").read_text() == "user"
    assert json.loads((folder / MANIFEST).read_text()) == {"files": ["a.csv"], "tool": "tool-a"}
    with pytest.raises(UsageError, match="mine.txt: exists and was not written by tool-a"):
        Outputs().folder(folder, "--out", "tool-a").write_files({"mine.txt": b"x"})
    with pytest.raises(UsageError, match="holds the output of 'tool-a'"):
        Outputs().folder(folder, "--out", "tool-b").write_files({"z": b"x"})
    assert (folder / "mine.txt").read_text() == "user"


# --------------------------------------------------------------------------- browse


def test_browse_answers_only_loopback_hosts(ds):
    warnings: list[str] = []
    srv = browse.make_server(ds, port=0, warn=warnings.append)
    try:
        for host in ("127.0.0.1:8765", "localhost:1", "LOCALHOST", "127.5.6.7", "[::1]:80"):
            assert srv.host_allowed(host), host
        for host in ("127.0.0.1.attacker.example:8765", "localhost.attacker.example",
                     "attacker.example", "", None, "[::ffff:127.0.0.1]", "0x7f000001",
                     "127.1", "[::1"):  # fmt: skip
            assert not srv.host_allowed(host), host
        thread = threading.Thread(target=srv.serve_forever, daemon=True)
        thread.start()
        port = srv.server_address[1]
        for host, status in (("127.0.0.1.attacker.example", 403), ("127.0.0.1", 200)):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            conn.request("GET", "/data.json", headers={"Host": f"{host}:{port}"})
            resp = conn.getresponse()
            resp.read()
            conn.close()
            assert resp.status == status, host
        assert srv.request_queue_size == browse.BACKLOG > 5
        assert srv._pool._max_workers == browse.WORKERS
        assert browse.Handler.timeout == browse.IDLE_TIMEOUT
        srv.shutdown()
    finally:
        srv.server_close()
    assert warnings == []


def test_browse_warns_on_a_host_that_is_not_loopback(ds):
    warnings: list[str] = []
    srv = browse.make_server(ds, host="0.0.0.0", port=0, warn=warnings.append)
    srv.server_close()
    assert len(warnings) == 1 and "--host 0.0.0.0: not a loopback address" in warnings[0]


# --------------------------------------------------------------------------- JSON and shards


def test_deep_json_is_one_line_everywhere(ds, copy, tmp_path):
    deep_json = tmp_path / "deep.json"
    deep_json.write_text(DEEP)
    deep_jsonl = tmp_path / "deep.jsonl"
    deep_jsonl.write_text(DEEP + "\n")
    before = tree(ds)
    one_line(run("annotate", "import", deep_json, "--out", tmp_path / "o"), 1,
             "deep.json:1:65: JSON nested deeper than 64 levels")  # fmt: skip
    assert not (tmp_path / "o").exists()
    one_line(run("score", deep_jsonl, "--refs", ds), 1, "deep.jsonl:1: JSON nested deeper")
    one_line(run("leaderboard", "--refs", ds, deep_jsonl), 1, "JSON nested deeper")
    res = run("browse", ds, "--preds", deep_jsonl, "--html", tmp_path / "page.html")
    assert res.exit_code == 0 and "Traceback" not in res.output
    assert "JSON nested deeper" in res.stderr
    assert tree(ds) == before
    _replace(copy / "build.json", DEEP.encode())
    res = run("validate", copy)
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "build.json:1:65: JSON nested deeper than 64 levels" in res.output
    one_line(run("split", copy, "--speaker-disjoint", "--name", "x"), 1, "JSON nested deeper")


def test_a_damaged_shard_is_a_data_error_everywhere(copy, preds, tmp_path):
    shard = min((copy / "data").glob("validation-*.parquet"))
    _replace(shard, shard.read_bytes()[:100])
    for args in (("stats", copy), ("score", preds, "--refs", copy),
                 ("leaderboard", "--refs", copy, preds)):  # fmt: skip
        one_line(run(*args), 1, "not a readable Parquet shard")


def test_the_bounded_reader_names_file_and_position(tmp_path):
    from indomer.readjson import iter_jsonl, loads, read_json

    with pytest.raises(DataError, match=r"^f.json:2:3: not valid JSON \(Expecting value\)"):
        loads('[1,\n  ]', "f.json")
    with pytest.raises(DataError, match=r"^f.json:1:8: JSON nested deeper than 2 levels"):
        loads('{"a": [[1]]}', "f.json", max_depth=2)
    assert loads('{"a": "[[[[[[[["}', "f.json", max_depth=1) == {"a": "[[[[[[[["}
    big = tmp_path / "big.json"
    big.write_text("[" + "1," * 100 + "1]")
    with pytest.raises(DataError, match="larger than 0 MiB"):
        read_json(big, max_bytes=50)
    lines = tmp_path / "p.jsonl"
    lines.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n{"b": \n')
    reader = iter_jsonl(lines)
    assert next(reader) == (1, {"a": 1})
    with pytest.raises(DataError, match=r"p.jsonl:3: not valid JSON \(.* at column 7\)"):
        next(reader)


# --------------------------------------------------------------------------- Label Studio


def test_label_studio_exports_are_read_field_by_field(tmp_path):
    clip = {"clip_id": "clip_1_Cooking_1"}
    tasks = [
        {"id": 1, "data": clip, "annotations": 5},
        {"id": "budi@contoh.id", "data": 3},
        {"id": 3, "data": clip, "annotations": [{"completed_by": 2, "result": 7}]},
        {"id": 4, "data": clip, "annotations": [{"completed_by": 3, "result": [
            {"from_name": "emotion", "value": {"choices": ["siti＠contoh.id"]}},
            {"from_name": "sentiment_score", "value": {"number": 0.5}}]}]},
        {"id": 5, "data": {"clip_id": "x@y.example"}, "annotations": [
            {"completed_by": 1, "result": []}]},
        "not a task",
        {
            **GOOD_TASK,
            "annotations": [{**GOOD_TASK["annotations"][0], "result": [
                *GOOD_TASK["annotations"][0]["result"],
                {"from_name": "note", "value": {"text": ["tanya budi＠contoh.id ya"]}}]}],
        },
    ]  # fmt: skip
    export = ls_export(tmp_path, tasks)
    sheets = tmp_path / "sheets"
    res = run("annotate", "import", export, "--out", sheets)
    assert res.exit_code == 0, res.output
    assert "Traceback" not in res.output
    rejections = (sheets / "import-rejections.jsonl").read_text(encoding="utf-8")
    for leak in ("@", "＠", "contoh", "y.example"):
        assert leak not in rejections and leak not in res.output, leak
    got = {json.loads(x)["task"] for x in rejections.splitlines()}
    assert got == {"1", "#1", "3", "4", "5", "#5"}
    sheet = (sheets / "A1.csv").read_text(encoding="utf-8")
    assert "[e-mail removed]" in sheet and "contoh" not in sheet


def test_redaction_sees_through_look_alikes():
    from indomer.annotate import _redact

    for text in ("budi＠contoh.id", "budi﹫contoh.id", "ｂｕｄｉ@ｃｏｎｔｏｈ.ｉｄ"):
        assert _redact(f"mail {text} now") == "mail [e-mail removed] now", text


def test_a_full_disk_names_the_file_being_written(tmp_path, monkeypatch):
    """ENOSPC surfaces from write()/fsync() with no file name; the line names the target."""
    import errno

    from indomer.commands import os_error_line
    from indomer.fsutil import write_bytes_atomic

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(os, "fsync", full)
    target = tmp_path / "plots" / "topics.png"
    with pytest.raises(OSError) as info:
        write_bytes_atomic(target, b"png")
    assert os_error_line(info.value) == (
        f"{target}: No space left on device; free some space or choose another --out"
    )
    assert list(target.parent.iterdir()) == []  # no temp file left behind
