"""Byte identity with the real stages (ffmpeg, Whisper word timing, resemblyzer, OpenCV): a
demo build killed twice with SIGKILL and resumed writes exactly the files of a clean build,
``build.json`` included (it describes the dataset, not the run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

INDOMER = str(Path(sys.executable).parent / "indomer")
#: Every file a reader of the dataset sees (through the generation links).
DATASET_FILES = ("README.md", "build.json", "croissant.json", "rejected.jsonl")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from demo_build import demo_dataset

    return demo_dataset(tmp_path_factory).parent


def _dataset_bytes(out: Path) -> dict[str, bytes]:
    files = {name: (out / name).read_bytes() for name in DATASET_FILES}
    for sub in ("data", "splits", "figures"):
        for p in sorted((out / sub).iterdir()):
            files[f"{sub}/{p.name}"] = p.read_bytes()
    return files


def _kill_when(proc: subprocess.Popen, done: Path, timeout: float = 300) -> bool:
    """SIGKILL ``proc`` once ``done`` records a finished item; False if it ended first."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        if done.is_file() and len(done.read_text(encoding="utf-8").splitlines()) >= 2:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait(timeout=60)
            return True
        time.sleep(0.05)
    proc.wait(timeout=60)
    return False


def test_a_demo_build_killed_twice_and_resumed_equals_a_clean_build(demo, tmp_path):
    config = demo / "corpus" / "config.yaml"
    out = tmp_path / "resumed"
    command = [INDOMER, "build", str(config), "--out", str(out), "--quiet"]
    kills = 0
    for stage in ("05_align", "07_faces"):  # mid-way through a model stage, twice
        proc = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        kills += _kill_when(proc, out / "work" / stage / "done.jsonl")
    assert kills >= 1  # the build was really interrupted
    res = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert _dataset_bytes(out) == _dataset_bytes(demo / "dataset")
