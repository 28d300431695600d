"""The output guard: what a command may write, refused in one line before anything is
written, and a folder output that owns only the files its manifest lists."""

from __future__ import annotations

import json
import os

import pytest

from indomer.errors import UsageError
from indomer.outputs import MANIFEST, Outputs, dataset_above, refuse_same


def make_dataset(folder):
    (folder / ".indomer").mkdir(parents=True)
    (folder / ".indomer" / "FORMAT").write_text("1\n")
    return folder


def test_dataset_above_finds_the_marker_through_links(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    (ds / "train").mkdir()
    assert dataset_above(ds / "train" / "x.parquet") == ds
    assert dataset_above(ds) == ds
    assert dataset_above(tmp_path / "elsewhere" / "p.jsonl") is None
    (tmp_path / "alias").symlink_to(ds / "train")
    assert dataset_above(tmp_path / "alias" / "x") == ds  # spelled outside, resolved inside


def test_a_file_inside_a_dataset_is_refused_unless_the_command_owns_it(tmp_path):
    ds = make_dataset(tmp_path / "ds")
    with pytest.raises(UsageError) as info:
        Outputs().file(ds / "preds.jsonl", "--out")
    assert str(info.value) == (
        f"--out {ds / 'preds.jsonl'}: inside the indomer dataset {ds}, which only its own "
        "commands (build, split, stats --plots DIR/figures) write; choose a path outside it"
    )
    assert Outputs(owner=ds).file(ds / "split.json", "--to") == ds / "split.json"


def test_an_output_that_is_an_input_or_another_output_is_refused(tmp_path):
    preds = tmp_path / "preds.jsonl"
    preds.write_text("{}\n")
    (tmp_path / "hard").hardlink_to(preds)
    guard = Outputs([preds, None, "-"])
    with pytest.raises(UsageError, match=r"is the same file as the input .*preds.jsonl; choose"):
        guard.file(tmp_path / "hard", "--out")
    guard.file(tmp_path / "a.json", "--json")
    assert guard.file(tmp_path / "a.json", "--json") == tmp_path / "a.json"  # asked again: fine
    with pytest.raises(UsageError, match=r"^--report .*a.json: is the same file as --json "):
        guard.file(tmp_path / "sub" / ".." / "a.json", "--report")
    with pytest.raises(UsageError, match=r"^--x .*: is the same file as --y "):
        refuse_same({"--y": tmp_path / "b.json", "--x": tmp_path / "b.json", "--z": None})
    assert guard.file("-", "--out") == type(tmp_path)("-")  # standard output is never a file


def test_a_link_out_of_its_folder_is_refused_and_one_inside_is_followed(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "real.txt").write_text("")
    (tmp_path / "d" / "near").symlink_to(tmp_path / "d" / "real.txt")
    (tmp_path / "d" / "far").symlink_to(tmp_path / "real.txt")
    assert Outputs().file(tmp_path / "d" / "near", "--out") == tmp_path / "d" / "real.txt"
    with pytest.raises(UsageError, match=r"a symbolic link to .*real.txt, outside its folder"):
        Outputs().file(tmp_path / "d" / "far", "--out")
    with pytest.raises(UsageError, match=r": is a folder; name a file$"):
        Outputs().file(tmp_path / "d", "--out")


def test_write_text_is_atomic_and_dash_is_standard_output(tmp_path, capsys):
    guard = Outputs()
    assert guard.write_text(tmp_path / "r.txt", "report\n", "--out") == tmp_path / "r.txt"
    assert (tmp_path / "r.txt").read_text() == "report\n"
    assert [p.name for p in tmp_path.iterdir()] == ["r.txt"]  # no temp file left
    guard.write_text("-", "to the screen", "--out")
    assert capsys.readouterr().out == "to the screen\n"


def test_a_folder_output_owns_only_what_its_manifest_lists(tmp_path):
    to = tmp_path / "export"
    first = Outputs().folder(to, "--to", "export")
    first.write_files({"a.jsonl": b"1\n", "sub/b.jsonl": b"2\n"})
    assert json.loads((to / MANIFEST).read_text()) == {
        "files": ["a.jsonl", "sub/b.jsonl"], "tool": "export"}
    (to / "mine.txt").write_text("the user's")
    again = Outputs().folder(to, "--to", "export")
    again.write_files({"a.jsonl": b"one\n"})
    assert (to / "a.jsonl").read_bytes() == b"one\n"
    assert not (to / "sub").exists()  # no longer written: removed, with its empty folder
    assert (to / "mine.txt").read_text() == "the user's"  # never touched
    with pytest.raises(UsageError, match=r"mine.txt: exists and was not written by export"):
        Outputs().folder(to, "--to", "export").write_files({"mine.txt": b"x"})
    assert (to / "mine.txt").read_text() == "the user's"
    with pytest.raises(UsageError, match=r"holds the output of 'export', not of 'annotate"):
        Outputs().folder(to, "--to", "annotate export").write_files({"t.json": b"{}"})
    with pytest.raises(UsageError, match=r"cannot write '../x' there"):
        Outputs().folder(to, "--to", "export").write_files({"../x": b""})


def test_publish_moves_a_staged_folder_into_place(tmp_path):
    staged = tmp_path / "staged"
    (staged / "train").mkdir(parents=True)
    (staged / "train" / "0.parquet").write_bytes(b"P")
    to = tmp_path / "out"
    names = Outputs().folder(to, "--to", "export").publish(staged)
    assert names == ["train/0.parquet"]
    assert (to / "train" / "0.parquet").read_bytes() == b"P"
    assert not (staged / "train" / "0.parquet").exists()
    (to / "escape").symlink_to(tmp_path)
    os.makedirs(staged / "escape")
    (staged / "escape" / "f").write_bytes(b"")
    with pytest.raises(UsageError, match=r"is a symbolic link leading out of"):
        Outputs().folder(to, "--to", "export").publish(staged)
