"""Byte identity with the real stages (ffmpeg, Whisper word timing, resemblyzer, OpenCV): a
demo build killed twice with SIGKILL and resumed writes exactly the files of a clean build,
``build.json`` included (it describes the dataset, not the run).

The resumed build also runs with ``--jobs 1`` and the clean one (the suite-wide demo,
tests/demo_build.py) with ``--jobs 2``, so the same comparison holds the jobs to their
promise: with ``--jobs 1`` the stages run inline in the driver, which has loaded numpy
(OpenBLAS) and the CLI's other libraries before the runner could pin their thread counts;
with ``--jobs 2`` they run in spawned workers that start with the pinned environment.
Whisper's features go through a BLAS matrix product whose sums depend on the thread count, so
the word scores once came out different. Each run here is the real ``indomer`` program, as a
user runs it, with no thread variables set."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from demo_build import DEMO_JOBS

from indomer.faults import FAULT_ENV

INDOMER = str(Path(sys.executable).parent / "indomer")
#: Thread variables a user's shell may or may not set: the builds here start without them.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
#: Every file a reader of the dataset sees (through the generation links).
DATASET_FILES = ("README.md", "build.json", "croissant.json", "rejected.jsonl")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    from demo_build import demo_dataset

    return demo_dataset(tmp_path_factory).parent


def _dataset_bytes(out: Path) -> dict[str, bytes]:
    """The dataset's files and every stage manifest (the word scores are in align's)."""
    files = {name: (out / name).read_bytes() for name in DATASET_FILES}
    for sub in ("data", "splits", "figures"):
        for p in sorted((out / sub).iterdir()):
            files[f"{sub}/{p.name}"] = p.read_bytes()
    for p in sorted(out.glob("work/*/manifest.jsonl")):
        files[p.relative_to(out).as_posix()] = p.read_bytes()
    assert any(k.startswith("data/") for k in files) and any("_align/" in k for k in files)
    return files


def test_a_demo_build_killed_twice_and_resumed_with_other_jobs_equals_a_clean_build(demo, tmp_path):
    config = demo / "corpus" / "config.yaml"
    out = tmp_path / "resumed"
    jobs = "1" if DEMO_JOBS != 1 else "2"  # the other --jobs than the clean build's
    command = [INDOMER, "build", str(config), "--out", str(out), "--quiet", "--jobs", jobs]
    plain = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    # mid-way through a model stage, twice: the runner kills itself right after journaling
    # that stage's first item this run (INDOMER_FAULT), so both kills really happen
    for stage in ("align", "faces"):
        env = {**plain, FAULT_ENV: f"journaled:{stage}:1"}
        res = subprocess.run(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                             env=env, check=False, timeout=900)
        assert res.returncode == -signal.SIGKILL, stage
    res = subprocess.run(command, check=False, capture_output=True, text=True, timeout=900,
                         env=plain)
    assert res.returncode == 0, res.stderr
    resumed, clean = _dataset_bytes(out), _dataset_bytes(demo / "dataset")
    assert sorted(resumed) == sorted(clean)
    assert [k for k in clean if resumed[k] != clean[k]] == []
