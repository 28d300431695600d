"""Every failure is one line: click's own usage errors (missing argument, unknown option, bad
choice, negative seed, missing file) come out as ``error: ...; see 'indomer CMD --help'`` with
exit 2, like the errors of the commands themselves, while ``--help`` and ``--version`` work."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from indomer import __version__
from indomer.cli import COMMANDS, main


def invoke(*args: str):
    return CliRunner().invoke(main, list(args), prog_name="indomer")


@pytest.mark.parametrize(
    "args, line",
    [
        (["split"], "missing argument 'OUT'; see 'indomer split --help'"),
        (
            ["split", "out", "--speaker-disjont"],
            ("no such option '--speaker-disjont' (did you mean --speaker-disjoint?); "
             "see 'indomer split --help'"),
        ),
        (
            ["split", "out", "--stratify", "colour"],
            ("invalid value for '--stratify': 'colour' is not one of 'emotion', 'sentiment', "
             "'none'; see 'indomer split --help'"),
        ),
        (
            ["split", "out", "--seed", "-1"],
            "invalid value for '--seed': -1 is not in the range x>=0; see 'indomer split --help'",
        ),
        (
            ["doctor", "no-such-config.yaml"],
            ("invalid value for '[CONFIG]': File 'no-such-config.yaml' does not exist; "
             "see 'indomer doctor --help'"),
        ),
        (["doctor", "--json"], "option '--json' requires an argument; see 'indomer doctor --help'"),
        (
            ["demo", "--jobs", "0"],
            ("invalid value for '--jobs': 0 is not in the range x>=1; "
             "see 'indomer demo --help'"),
        ),
        (["validate"], "missing argument 'OUT'; see 'indomer validate --help'"),
        (["spilt"], "no such command 'spilt' (did you mean split?); see 'indomer --help'"),
        (
            ["--verbose"],
            "no such option '--verbose' (did you mean --version?); see 'indomer --help'",
        ),
    ],
)
def test_usage_errors_are_one_line_with_exit_2(args: list[str], line: str) -> None:
    res = invoke(*args)
    assert res.exit_code == 2
    assert res.stdout == ""
    assert res.stderr == f"error: {line}\n"


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_every_command_refuses_an_unknown_option_on_one_line(command: str) -> None:
    res = invoke(command, "--no-such-option")
    assert res.exit_code == 2
    assert res.stderr.count("\n") == 1 and res.stderr.startswith("error: ")
    assert res.stderr.endswith(f"; see 'indomer {command} --help'\n")
    assert "Usage:" not in res.output


@pytest.mark.parametrize("command", sorted(COMMANDS))
def test_help_still_works_for_every_command(command: str) -> None:
    res = invoke(command, "--help")
    assert res.exit_code == 0, res.output
    assert res.stdout.startswith(f"Usage: indomer {command} ")
    assert res.stderr == ""


def test_version_and_group_help() -> None:
    res = invoke("--version")
    assert (res.exit_code, res.stdout) == (0, f"indomer, version {__version__}\n")
    res = invoke("-h")
    assert res.exit_code == 0
    assert all(f"\n  {name} " in res.stdout for name in COMMANDS)


def test_errors_raised_by_a_command_keep_their_own_line() -> None:
    """An IndomerError from the command body is already one line; the group leaves it be."""
    res = invoke("split", "out")  # no mode: the command's own UsageError
    assert res.exit_code == 2
    assert res.stderr == (
        "error: choose a split mode: --speaker-disjoint (the only mode for now), "
        "or --activate NAME\n"
    )


def test_the_installed_script_prints_one_line_on_stderr(tmp_path: Path) -> None:
    """The real entry point, in a process of its own (no CliRunner in between)."""
    script = Path(sys.executable).with_name("indomer")
    if not script.exists():
        pytest.skip(f"{script}: the console script is not installed (pip install -e .)")
    res = subprocess.run(
        [str(script), "split", str(tmp_path), "--speaker-disjoint", "--seed", "-1"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert res.returncode == 2
    assert res.stdout == ""
    assert res.stderr == (
        "error: invalid value for '--seed': -1 is not in the range x>=0; "
        "see 'indomer split --help'\n"
    )


def test_help_of_every_command_stays_light():
    """``indomer --help`` and every command's ``--help`` import no heavy extra (DESIGN §7.5):
    not torch, Ray, scikit-learn, OpenCV, the openai client or Playwright."""
    import subprocess
    import sys

    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from indomer.cli import COMMANDS, main\n"
        "r = CliRunner()\n"
        "assert r.invoke(main, ['--help']).exit_code == 0\n"
        "for name in COMMANDS:\n"
        "    assert r.invoke(main, [name, '--help']).exit_code == 0, name\n"
        "heavy = ('torch', 'ray', 'sklearn', 'cv2', 'openai', 'playwright', 'whisperx',\n"
        "         'pyannote', 'resemblyzer', 'ai_edge_litert')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
    )
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False, timeout=300)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"
