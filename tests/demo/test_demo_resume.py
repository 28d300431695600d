"""Byte identity with the real stages (ffmpeg, Whisper word timing, resemblyzer, OpenCV): a
demo build killed twice with SIGKILL and resumed writes exactly the files of a clean build,
``build.json`` included (it describes the dataset, not the run)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from indomer.faults import FAULT_ENV

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


def test_a_demo_build_killed_twice_and_resumed_equals_a_clean_build(demo, tmp_path):
    config = demo / "corpus" / "config.yaml"
    out = tmp_path / "resumed"
    command = [INDOMER, "build", str(config), "--out", str(out), "--quiet"]
    # mid-way through a model stage, twice: the runner kills itself right after journaling
    # that stage's first item this run (INDOMER_FAULT), so both kills really happen
    for stage in ("align", "faces"):
        env = {**os.environ, FAULT_ENV: f"journaled:{stage}:1"}
        res = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env, check=False, timeout=900)
        assert res.returncode == -signal.SIGKILL, stage
    res = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900)
    assert res.returncode == 0, res.stderr
    assert _dataset_bytes(out) == _dataset_bytes(demo / "dataset")
