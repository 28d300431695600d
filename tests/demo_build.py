"""One ``indomer demo`` build per test session, shared by the card, Croissant, plot and round
trip tests (a build takes ~25 s, so modules must not each make their own)."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner


def demo_dataset(tmp_path_factory) -> Path:
    """The raw-mode dataset of ``indomer demo`` (built on first use; tests must not modify it)."""
    root = tmp_path_factory.getbasetemp() / "shared-demo"
    dataset = root / "dataset"
    if (root / "done").is_file():
        return dataset
    from indomer.cli import main

    res = CliRunner().invoke(main, ["demo", str(root), "--quiet"])
    assert res.exit_code == 0, res.output
    (root / "output.txt").write_text(res.output, encoding="utf-8")
    (root / "done").write_text("ok\n")
    return dataset
