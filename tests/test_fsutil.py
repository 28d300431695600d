"""``indomer.fsutil``: an atomic write leaves the old file or the new one, never half of
either nor a temp file, names the file meant when it fails, and the house JSON is one form."""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from pathlib import Path

import pytest

from indomer import fsutil
from indomer.fsutil import (
    dumps,
    file_digest,
    sha256_file,
    write_bytes_atomic,
    write_json_atomic,
    write_text_atomic,
)


def test_a_write_replaces_the_file_whole_with_the_umask_mode(tmp_path: Path):
    path = tmp_path / "sub" / "f.bin"
    write_bytes_atomic(path, b"old")
    inode = path.stat().st_ino
    write_bytes_atomic(path, b"new!")
    assert path.read_bytes() == b"new!" and path.stat().st_ino != inode  # renamed over
    mask = os.umask(0)
    os.umask(mask)
    assert stat.S_IMODE(path.stat().st_mode) == 0o666 & ~mask
    assert sorted(p.name for p in path.parent.iterdir()) == ["f.bin"]


def test_a_failed_write_leaves_the_old_file_and_names_the_new_one(tmp_path, monkeypatch):
    path = tmp_path / "f.json"
    path.write_bytes(b"old")

    def full(fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fsutil.os, "fsync", full)
    with pytest.raises(OSError) as err:
        write_bytes_atomic(path, b"new")
    assert (err.value.errno, err.value.filename) == (errno.ENOSPC, str(path))
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["f.json"]  # no temp file left


def test_an_interrupted_write_leaves_no_temp_file(tmp_path, monkeypatch):
    def interrupted(src, dst):
        raise KeyboardInterrupt

    monkeypatch.setattr(fsutil.os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text_atomic(tmp_path / "f.txt", "x")
    assert list(tmp_path.iterdir()) == []


def test_house_json_is_sorted_indented_utf8_with_a_newline(tmp_path: Path):
    assert dumps({"b": [1], "a": "é"}) == '{\n  "a": "é",\n  "b": [\n    1\n  ]\n}\n'
    write_json_atomic(tmp_path / "x.json", {"b": 1, "a": "é"})
    assert (tmp_path / "x.json").read_bytes() == '{\n  "a": "é",\n  "b": 1\n}\n'.encode()


def test_digests_read_the_file_in_blocks(tmp_path: Path):
    data = bytes(range(256)) * 5000  # over one 1 MiB block
    path = tmp_path / "big"
    path.write_bytes(data)
    assert sha256_file(path) == hashlib.sha256(data).hexdigest()
    assert file_digest(path) == {"sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
