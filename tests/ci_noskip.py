"""No silent skips in CI: a pytest plugin that turns every skip into a failure.

A test that needs an extra skips on a machine without it; that is friendly on a laptop, but in
CI a skip means the suite proved nothing about that feature. So when ``CI=true`` (what CI
services set) or ``INDOMER_NO_SKIP=1`` (what ``.ci/run`` sets), this plugin reports

- a skipped test (``pytest.skip``, ``skipif``, a skipping fixture) as **failed**;
- a skipped module or class (``pytest.importorskip`` or ``pytest.skip(allow_module_level=True)``
  at import time) as a **collection error**, which stops the run (all such errors are listed);
- an xfail (``@pytest.mark.xfail`` that failed, or ``pytest.xfail()``) and an XPASS as
  **failed** too: an expected failure asserts nothing, and ``pytest.xfail("no ffmpeg")``
  is a skip by another name. Fix the test or delete it.

and a run that collected no test at all (exit code 5) exits with 1 (tests failed).

``tests/conftest.py`` registers it; ``tests/test_ci_skips.py`` proves it with ``pytester``.
"""

from __future__ import annotations

import os

import pytest

#: The variables that switch the plugin on; ``CI`` must be exactly ``true`` (GitHub Actions,
#: GitLab CI, CircleCI, Travis...), ``INDOMER_NO_SKIP`` exactly ``1``.
SWITCHES = {"CI": "true", "INDOMER_NO_SKIP": "1"}


def enabled() -> bool:
    """True when skips must fail (``CI=true`` or ``INDOMER_NO_SKIP=1``)."""
    return any(os.environ.get(key, "").strip().lower() == value
               for key, value in SWITCHES.items())


def _reason(longrepr) -> str:
    if isinstance(longrepr, tuple) and len(longrepr) == 3:
        return str(longrepr[2]).removeprefix("Skipped: ")
    return str(longrepr)


def _message(kind: str, reason: str) -> str:
    return (f"{kind} under CI (CI=true / INDOMER_NO_SKIP=1): {reason}\n"
            "CI must run every test: install what it needs (bash tools/install.sh test "
            "installs every extra and ffmpeg), or delete the test.")


def pytest_report_header(config) -> str:
    state = "on: a skip or xfail fails the run" if enabled() else "off"
    return f"indomer no-skip mode (CI=true or INDOMER_NO_SKIP=1): {state}"


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    if not enabled():
        return report
    if hasattr(report, "wasxfail"):  # XFAIL (outcome skipped) or XPASS (outcome passed)
        kind = "xfail" if report.skipped else "xpass"
        reason = report.wasxfail or "(no reason given)"
        del report.wasxfail
        report.outcome = "failed"
        report.longrepr = _message(kind, reason)
    elif report.skipped:
        report.outcome = "failed"
        report.longrepr = _message(f"skipped ({report.when})", _reason(report.longrepr))
    return report


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_make_collect_report(collector):
    report = yield
    if enabled() and report.skipped:
        report.outcome = "failed"
        report.longrepr = _message("module skipped at collection", _reason(report.longrepr))
    return report


_NO_TESTS = pytest.StashKey[bool]()


@pytest.hookimpl(trylast=True)
def pytest_sessionfinish(session, exitstatus):
    if enabled() and exitstatus == pytest.ExitCode.NO_TESTS_COLLECTED:
        session.config.stash[_NO_TESTS] = True
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if config.stash.get(_NO_TESTS, False):
        terminalreporter.write_line(
            "no tests collected under CI (CI=true / INDOMER_NO_SKIP=1): the run fails",
            red=True)
