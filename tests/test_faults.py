"""Named fault points: the process dies by SIGKILL exactly at the point $INDOMER_FAULT names,
and nowhere else."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

from indomer.faults import FAULT_ENV

SCRIPT = (
    "import sys\n"
    "from indomer.faults import fault\n"
    "for point in ('staged', 'renamed', 'switched'):\n"
    "    fault(point)\n"
    "    print(point, flush=True)\n"
)


def run(point: str | None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != FAULT_ENV}
    if point is not None:
        env[FAULT_ENV] = point
    return subprocess.run([sys.executable, "-c", SCRIPT], env=env, capture_output=True,
                          text=True, check=False, timeout=60)


def test_the_named_point_kills_the_process_there():
    res = run("renamed")
    assert res.returncode == -signal.SIGKILL
    assert res.stdout.split() == ["staged"]  # it got past the first point, not the second


def test_other_or_no_points_do_nothing():
    for point in (None, "journaled:align:1", "Renamed"):
        res = run(point)
        assert res.returncode == 0, res.stderr
        assert res.stdout.split() == ["staged", "renamed", "switched"]
