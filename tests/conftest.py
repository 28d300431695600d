"""Shared fixtures: the public release copy beside the repository, and a built dataset."""

from __future__ import annotations

import os
from pathlib import Path

import ci_noskip
import pytest

ROOT = Path(__file__).resolve().parents[1]

# Tests never touch a model hub and never send telemetry (pyannote.audio 4 does by default).
# Tests that talk to the local fake Hub (test_push) scrub the HF_ variables themselves.
for _key, _value in {
    "HF_HUB_OFFLINE": "1",
    "TRANSFORMERS_OFFLINE": "1",
    "PYANNOTE_METRICS_ENABLED": "false",
    "HF_HUB_DISABLE_TELEMETRY": "1",
}.items():
    os.environ[_key] = _value


def pytest_configure(config) -> None:
    # In CI (CI=true, or INDOMER_NO_SKIP=1 from .ci/run) a skip, an xfail or an empty run fails.
    config.pluginmanager.register(ci_noskip, "indomer-ci-noskip")


#: Test files that hold one worker for a minute or more. pytest-xdist hands out whole files
#: in collection order (setup.cfg: ``--dist loadfile --no-loadscope-reorder``), so these go
#: first: the small files then fill the other worker's time instead of one worker finishing a
#: long file alone at the end. Paths are relative to tests/: two folders may hold a test
#: file of one name (tests/test_predict.py and tests/commands/test_predict.py).
LONG_FILES = (
    "test_ray_engine.py",
    "test_annotate_labelstudio.py",
    "test_identity_build.py",
    "demo/test_demo_resume.py",
    "test_predict.py",
    "test_generation.py",
)


def pytest_collection_modifyitems(config, items) -> None:
    rank = {name: i for i, name in enumerate(LONG_FILES)}
    tests = Path(__file__).resolve().parent

    def key(item) -> int:
        path = Path(item.path)
        name = path.relative_to(tests).as_posix() if path.is_relative_to(tests) else path.name
        return rank.get(name, len(LONG_FILES))

    items.sort(key=key)  # stable


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


@pytest.fixture(scope="session")
def built(release_dir: Path, tmp_path_factory) -> Path:
    """The release built once into a session folder (tests must not modify it; copy first)."""
    from indomer.build import build_release

    out = tmp_path_factory.mktemp("built") / "indomer"
    build_release(str(release_dir), out, log=lambda m: None)
    return out


@pytest.fixture
def release_copy(release_dir: Path, tmp_path: Path) -> Path:
    """A writable copy of the release for tests that damage it on purpose."""
    import shutil

    dst = tmp_path / "release"
    shutil.copytree(release_dir, dst)
    for p in dst.rglob("*"):
        p.chmod(0o755 if p.is_dir() else 0o644)
    dst.chmod(0o755)
    return dst
