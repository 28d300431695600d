"""The house style is enforced by the suite: ``ruff check`` must be clean."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_ruff_is_clean():
    ruff = shutil.which("ruff") or str(Path(sys.executable).with_name("ruff"))
    if not Path(ruff).exists():
        pytest.skip("ruff not installed (it is in the test extra)")
    res = subprocess.run([ruff, "check", str(ROOT)], check=False, capture_output=True, text=True)
    assert res.returncode == 0, res.stdout + res.stderr
