"""``--jobs`` defaults to the CPUs the process may use, in build and demo."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

import indomer.demo.corpus
import indomer.pipeline
from indomer.cli import main
from indomer.commands import default_jobs


@pytest.fixture
def three_cpus(monkeypatch):
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: {0, 2, 5})


def test_default_jobs_is_the_affinity_not_the_machine(three_cpus):
    assert default_jobs() == 3


def _capture(monkeypatch, module, name):
    seen = {}

    def fake(*args, **kwargs):
        seen.update(kwargs)
        raise SystemExit(0)

    monkeypatch.setattr(module, name, fake)
    return seen


@pytest.mark.parametrize("given, expected", [([], 3), (["--jobs", "1"], 1), (["--jobs", "7"], 7)])
def test_build_and_demo_pass_the_default_or_the_given_jobs(three_cpus, monkeypatch, tmp_path,
                                                           given, expected):
    seen = _capture(monkeypatch, indomer.pipeline, "run_pipeline")
    config = tmp_path / "c.yaml"
    config.write_text("sources: s.csv\n")
    CliRunner().invoke(main, ["build", str(config), "--out", str(tmp_path / "o"), *given])
    assert seen["jobs"] == expected
    seen = _capture(monkeypatch, indomer.demo.corpus, "run_demo")
    CliRunner().invoke(main, ["demo", str(tmp_path / "d"), *given])
    assert seen["jobs"] == expected


def test_release_mode_still_refuses_jobs(tmp_path):
    res = CliRunner().invoke(main, ["build", "--release", str(tmp_path), "--out",
                                    str(tmp_path / "o"), "--jobs", "2"])
    assert res.exit_code == 2 and "--jobs" in res.output and "raw mode only" in res.output
