"""One ``indomer demo`` build per test session, shared by the card, Croissant, plot and round
trip tests, and by every pytest-xdist worker (a build takes ~30 s, so modules must not each
make their own).

It is built with ``--jobs 2`` (stages in spawned pool workers), so tests/demo/test_demo_resume.py
builds the same corpus with ``--jobs 1`` (stages inline in the driver) and compares the bytes:
one more build, not two."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner
from sessiondir import made_once

#: ``--jobs`` of the shared build (not the machine's default, which a one-core runner makes 1).
DEMO_JOBS = 2


def _build(root: Path) -> None:
    from indomer.cli import main

    res = CliRunner().invoke(main, ["demo", str(root), "--quiet", "--jobs", str(DEMO_JOBS)])
    assert res.exit_code == 0, res.output
    (root / "output.txt").write_text(res.output, encoding="utf-8")


def demo_dataset(tmp_path_factory) -> Path:
    """The raw-mode dataset of ``indomer demo`` (built on first use; tests must not modify it)."""
    return made_once(tmp_path_factory, "shared-demo", _build) / "dataset"
