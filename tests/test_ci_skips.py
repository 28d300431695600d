"""CI cannot pass by skipping: the no-skip plugin (tests/ci_noskip.py) and .ci/run.

Each case runs a tiny suite with pytest's ``pytester`` and the plugin, with the switch on and
off, and reads the outcomes and the exit code.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
from pathlib import Path

import ci_noskip
import pytest

pytest_plugins = ["pytester"]

ROOT = Path(__file__).resolve().parents[1]

SUITE = {
    "test_skips": """
        import pytest

        def test_passes():
            assert True

        def test_skips_inside():
            pytest.skip("needs ffmpeg")

        @pytest.mark.skipif(True, reason="needs torch")
        def test_skipif():
            pass

        @pytest.fixture
        def media():
            pytest.skip("no media fixture")

        def test_skipping_fixture(media):
            pass

        @pytest.mark.xfail(reason="known bug")
        def test_xfail():
            assert False

        @pytest.mark.xfail(reason="flaky")
        def test_xpass():
            assert True

        def test_imperative_xfail():
            pytest.xfail("no GPU here")
    """,
}
MODULE_SKIP = {
    "test_needs_extra": """
        import pytest

        pytest.importorskip("indomer_no_such_module_xyz")

        def test_never_runs():
            pass
    """,
}


@pytest.fixture
def switch(monkeypatch):
    """Set exactly one of the switches (or none) for the inner run."""

    def set_(name: str | None, value: str = "") -> None:
        for key in ci_noskip.SWITCHES:
            monkeypatch.delenv(key, raising=False)
        if name is not None:
            monkeypatch.setenv(name, value)

    return set_


def _pytest(pytester, *args: str):
    return pytester.runpytest("-p", "no:cacheprovider", "-rA", *args, plugins=[ci_noskip])


def _run(pytester, files: dict[str, str]):
    pytester.makepyfile(**files)
    return _pytest(pytester)


def _says(result, *patterns: str) -> None:
    for pattern in patterns:  # in any order
        result.stdout.fnmatch_lines([pattern])


def test_without_the_switch_skips_and_xfails_stay_what_they_are(pytester, switch):
    switch(None)
    result = _run(pytester, SUITE)
    result.assert_outcomes(passed=1, skipped=3, xfailed=2, xpassed=1)
    assert result.ret == pytest.ExitCode.OK
    result.stdout.fnmatch_lines(["*no-skip mode*: off"])


@pytest.mark.parametrize(("name", "value"), [("CI", "true"), ("CI", "TRUE"),
                                             ("INDOMER_NO_SKIP", "1")])
def test_under_ci_every_skip_and_xfail_fails(pytester, switch, name, value):
    switch(name, value)
    result = _run(pytester, SUITE)
    # skipif and the skipping fixture skip in setup: a failed setup is an error
    result.assert_outcomes(passed=1, failed=4, errors=2)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    _says(result,
          "*no-skip mode*: on*",
          "*skipped (call) under CI*needs ffmpeg*",
          "*skipped (setup) under CI*needs torch*",
          "*skipped (setup) under CI*no media fixture*",
          "*xfail under CI*known bug*",
          "*xpass under CI*flaky*",
          "*xfail under CI*no GPU here*")
    passed = [line for line in result.outlines if line.startswith("PASSED")]
    assert passed == ["PASSED test_skips.py::test_passes"]


@pytest.mark.parametrize(("name", "value"), [("CI", "false"), ("CI", ""),
                                             ("INDOMER_NO_SKIP", "0")])
def test_other_values_leave_the_switch_off(pytester, switch, name, value):
    switch(name, value)
    result = _run(pytester, SUITE)
    result.assert_outcomes(passed=1, skipped=3, xfailed=2, xpassed=1)
    assert result.ret == pytest.ExitCode.OK


def test_a_module_skipped_at_import_is_a_collection_error_under_ci(pytester, switch):
    switch(None)
    quiet = _run(pytester, MODULE_SKIP)
    quiet.assert_outcomes(skipped=1)
    assert quiet.ret == pytest.ExitCode.NO_TESTS_COLLECTED

    switch("CI", "true")
    loud = _pytest(pytester)
    loud.assert_outcomes(errors=1)
    assert loud.ret == pytest.ExitCode.INTERRUPTED
    _says(loud, "*module skipped at collection under CI*indomer_no_such_module_xyz*")


def test_no_tests_collected_fails_under_ci(pytester, switch):
    pytester.makepyfile(test_empty="X = 1\n")
    switch(None)
    assert _pytest(pytester).ret == pytest.ExitCode.NO_TESTS_COLLECTED
    switch("INDOMER_NO_SKIP", "1")
    result = _pytest(pytester)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    _says(result, "*no tests collected under CI*")


def test_under_xdist_a_skip_in_a_worker_still_fails(pytester, switch, monkeypatch):
    """The suite runs on pytest-xdist workers (setup.cfg): each worker loads the conftest that
    registers the plugin, so a skip inside a worker reaches the controller as a failure."""
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(ROOT / "tests"), *filter(None, [os.environ.get("PYTHONPATH")])]))
    pytester.makeconftest("""
        import ci_noskip

        def pytest_configure(config):
            config.pluginmanager.register(ci_noskip, "indomer-ci-noskip")
    """)
    pytester.makepyfile(**SUITE)
    switch("INDOMER_NO_SKIP", "1")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.assert_outcomes(passed=1, failed=4, errors=2)  # skips in setup are errors
    switch(None)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1, skipped=3, xfailed=2, xpassed=1)


def test_the_suite_registers_the_plugin(request):
    assert request.config.pluginmanager.get_plugin("indomer-ci-noskip") is ci_noskip


# --------------------------------------------------------------------------- .ci/run


def _fake_checkout(tmp_path: Path, pytest_rc: int) -> Path:
    """A copy of .ci/run beside a stub install script and a stub python that records its
    environment and arguments, then exits with ``pytest_rc``."""
    root = tmp_path / "repo"
    (root / ".ci").mkdir(parents=True)
    (root / "tools").mkdir()
    (root / ".venv" / "bin").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "run", root / ".ci" / "run")
    (root / "tools" / "install.sh").write_text("echo install \"$@\" > install.args\n")
    python = root / ".venv" / "bin" / "python"
    python.write_text(
        "#!/bin/sh\n"
        "echo \"$@\" > pytest.args\n"
        "echo \"CI=$CI INDOMER_NO_SKIP=$INDOMER_NO_SKIP\" > pytest.env\n"
        f"exit {pytest_rc}\n"
    )
    python.chmod(python.stat().st_mode | stat.S_IXUSR)
    return root


@pytest.mark.parametrize(("pytest_rc", "ci_rc"), [(0, 0), (1, 1), (2, 2), (5, 1)])
def test_ci_run_switches_the_plugin_on_and_fails_when_nothing_ran(tmp_path, pytest_rc, ci_rc):
    root = _fake_checkout(tmp_path, pytest_rc)
    env = {k: v for k, v in os.environ.items() if k not in ci_noskip.SWITCHES}
    res = subprocess.run(["bash", str(root / ".ci" / "run")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False)
    assert res.returncode == ci_rc, res.stdout + res.stderr
    assert (root / "install.args").read_text().split() == ["install", "test"]
    assert (root / "pytest.args").read_text().split()[:2] == ["-m", "pytest"]
    assert "INDOMER_NO_SKIP=1" in (root / "pytest.env").read_text().split()
    if pytest_rc == 5:
        assert "no tests" in res.stderr


@pytest.mark.parametrize("args", [["-k", "scoring"], ["-m", "not slow"], ["--deselect=tests/x.py"],
                                  ["--ignore=tests/test_cli.py"], ["tests/test_cli.py"], ["--lf"]])
def test_ci_run_refuses_anything_that_deselects(tmp_path, args):
    root = _fake_checkout(tmp_path, 0)
    env = {k: v for k, v in os.environ.items() if k not in ci_noskip.SWITCHES}
    res = subprocess.run(["bash", str(root / ".ci" / "run"), *args], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2, res.stdout + res.stderr
    assert "would deselect tests" in res.stderr
    assert not (root / "install.args").exists() and not (root / "pytest.args").exists()


def test_ci_run_refuses_deselection_through_pytest_addopts(tmp_path):
    root = _fake_checkout(tmp_path, 0)
    env = {k: v for k, v in os.environ.items() if k not in ci_noskip.SWITCHES}
    env["PYTEST_ADDOPTS"] = "-q -k scoring"
    res = subprocess.run(["bash", str(root / ".ci" / "run")], cwd=tmp_path, env=env,
                         capture_output=True, text=True, check=False)
    assert res.returncode == 2 and "'-k'" in res.stderr, res.stdout + res.stderr


def test_ci_run_passes_report_options_on(tmp_path):
    root = _fake_checkout(tmp_path, 0)
    env = {k: v for k, v in os.environ.items() if k not in ci_noskip.SWITCHES}
    res = subprocess.run(["bash", str(root / ".ci" / "run"), "-v", "--durations=5"], cwd=tmp_path,
                         env=env, capture_output=True, text=True, check=False)
    assert res.returncode == 0, res.stdout + res.stderr
    assert (root / "pytest.args").read_text().split() == ["-m", "pytest", "-v", "--durations=5"]
