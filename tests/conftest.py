"""Shared fixtures: the public release copy beside the repository, and a built dataset."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def _release_dir() -> Path:
    env = os.environ.get("INDOMER_RELEASE")
    return Path(env) if env else ROOT.parent / "shared" / "indomer-release"


@pytest.fixture(scope="session")
def release_dir() -> Path:
    """The public IndoMER annotation release (read-only; never copied into the repo)."""
    path = _release_dir()
    if not (path / "Annotations.csv").is_file():
        pytest.fail(f"IndoMER release not found at {path}; set INDOMER_RELEASE")
    return path
