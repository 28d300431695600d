"""``indomer.commands`` (the package's own code): an error becomes one ``error:`` line and
its exit code (1 data and filesystem, 2 usage), an OS error names the path and a fix, and
JSON goes to a file atomically or to stdout."""

from __future__ import annotations

import errno
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from indomer.commands import emit_json, guarded, os_error_line
from indomer.errors import DataError, UsageError


def command_raising(exc: BaseException) -> click.Command:
    @click.command()
    @guarded
    def cmd() -> None:
        raise exc

    return cmd


@pytest.mark.parametrize(
    ("exc", "code", "line"),
    [
        (DataError("a.csv:3: bad label"), 1, "error: a.csv:3: bad label"),
        (UsageError("--split x: unknown"), 2, "error: --split x: unknown"),
        (OSError(errno.EACCES, "Permission denied", "/d/f"), 1,
         "error: /d/f: Permission denied; check the permissions, or choose another location"),
        (RecursionError(), 1,
         "error: an input is nested too deeply to read; check the files given"),
    ],
)
def test_guarded_turns_an_error_into_one_line_and_its_code(exc, code, line):
    res = CliRunner().invoke(command_raising(exc), [])
    assert res.exit_code == code
    assert res.stderr.splitlines() == [line] and res.stdout == ""


def test_a_damaged_parquet_is_a_data_error():
    import pyarrow

    res = CliRunner().invoke(command_raising(pyarrow.ArrowInvalid("bad\nmagic")), [])
    assert res.exit_code == 1
    assert res.stderr.startswith("error: a Parquet file is damaged (bad magic); run 'indomer "
                                 "validate OUT'")


def test_a_bug_is_not_hidden():
    res = CliRunner().invoke(command_raising(KeyError("x")), [])
    assert isinstance(res.exception, KeyError)


def test_os_error_lines_name_the_path_the_cause_and_a_fix(tmp_path: Path):
    both = OSError(errno.EXDEV, "Invalid cross-device link", "/a", None, "/b")
    assert os_error_line(both) == "/a -> /b: Invalid cross-device link; check the path and try again"
    nameless = OSError(errno.ENOSPC, "No space left on device")
    assert os_error_line(nameless) == (
        "(unknown path): No space left on device; free some space or choose another --out")
    (tmp_path / "f").write_text("x")
    over_a_file = OSError(errno.EEXIST, "File exists", str(tmp_path / "f"))
    assert os_error_line(over_a_file) == (
        f"{tmp_path / 'f'}: a file, where a folder is expected; a file stands where a folder "
        "is expected; move it or choose another path")


def test_emit_json_writes_a_file_or_stdout(tmp_path: Path, capsys):
    emit_json(None, '{"a": 1}\n')  # no --json: nothing
    emit_json(tmp_path / "r.json", '{"a": 1}\n')
    assert json.loads((tmp_path / "r.json").read_text()) == {"a": 1}
    emit_json(Path("-"), '{"b": 2}\n')
    assert capsys.readouterr().out == '{"b": 2}\n'
    src = tmp_path / "in.jsonl"
    src.write_text("x")
    with pytest.raises(UsageError, match="--json"):
        emit_json(src, "{}\n", inputs=(src,))  # never over an input
    assert src.read_text() == "x"
