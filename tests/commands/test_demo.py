"""``indomer demo``: the command's own part around :func:`indomer.demo.corpus.run_demo` (the
corpus and build themselves are tested in tests/demo/): its defaults, the summary on stdout
with progress on stderr, and exit 1 when the built demo has problems."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import indomer.demo.corpus
from indomer.cli import main


@pytest.fixture
def calls(monkeypatch, tmp_path):
    seen: list[tuple[Path, dict]] = []
    problems: list[str] = []

    def fake(out, **kwargs):
        seen.append((out, kwargs))
        kwargs["log"]("summary line")
        kwargs["progress"]("progress line")
        return {"problems": problems, "dataset": Path(out) / "dataset",
                "corpus": Path(out) / "corpus"}

    monkeypatch.setattr(indomer.demo.corpus, "run_demo", fake)
    monkeypatch.chdir(tmp_path)
    return seen, problems


def test_the_defaults_and_the_closing_line(calls):
    seen, _ = calls
    res = CliRunner().invoke(main, ["demo", "--jobs", "2"])
    assert res.exit_code == 0, res.output
    ((out, kwargs),) = seen
    assert out == Path("indomer-demo")
    assert (kwargs["jobs"], kwargs["engine"], kwargs["address"], kwargs["quiet"]) == (
        2, "local", None, False)
    assert res.stdout.splitlines() == [
        "summary line",
        "demo dataset: indomer-demo/dataset (config: indomer-demo/corpus/config.yaml)",
    ]
    assert res.stderr.splitlines() == ["progress line"]


def test_problems_in_the_built_demo_exit_1(calls):
    seen, problems = calls
    problems.append("validate: 1 problem")
    res = CliRunner().invoke(main, ["demo", "out", "--quiet", "--jobs", "1"])
    assert res.exit_code == 1
    assert seen[0][0] == Path("out") and seen[0][1]["quiet"] is True
    assert "demo dataset:" not in res.stdout
