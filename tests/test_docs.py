"""The README's command tour is held against the live CLI (sqlite-utils' tests/test_docs.py is
the model): every command is on the tour, every option a command's ``--help`` lists is on its
tour line, and the tour names no option that does not exist. A command that is a group
(``indomer speakers``) is held by its subcommands, one tour line each (``indomer speakers
calibrate ...``). The CLI is read live, not from a snapshot, so an option added or renamed
anywhere fails here until the tour says so too."""

from __future__ import annotations

import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from indomer.cli import COMMANDS, main

README = Path(__file__).resolve().parent.parent / "README.md"
OPTION_RE = re.compile(r"(?<![\w-])--[a-z0-9][a-z0-9-]*")

#: Options deliberately left off the tour, as (command, option), each with the reason.
#: Keep this short: document an option on the tour rather than adding it here.
OFF_THE_TOUR: frozenset[tuple[str, str]] = frozenset()


def tour_lines(text: str) -> list[str]:
    """The command lines of the fenced block under ``## Tour`` (a trailing ``\\`` continues a
    line onto the next, as in a shell)."""
    after = text.split("\n## Tour\n", 1)
    assert len(after) == 2, "README.md has no '## Tour' heading"
    block = re.search(r"^```[^\n]*\n(.*?)^```", after[1], re.DOTALL | re.MULTILINE)
    assert block, "no fenced block under '## Tour'"
    lines: list[str] = []
    pending = ""
    for raw in block.group(1).splitlines():
        line = pending + raw.strip()
        if line.endswith("\\"):
            pending = line[:-1].rstrip() + " "
            continue
        pending = ""
        if line:
            lines.append(line)
    assert not pending, "the tour's last line ends with a continuation '\\'"
    return lines


def command(name: str) -> click.Command:
    """The command at ``name``, a command path such as ``split`` or ``speakers calibrate``."""
    cmd: click.Command | None = main
    for word in name.split():
        assert isinstance(cmd, click.Group), name
        cmd = cmd.get_command(click.Context(cmd), word)
        assert cmd is not None, name
    assert cmd is not None
    return cmd


def command_paths() -> list[str]:
    """Every command as typed; a group stands for its subcommands (``speakers calibrate``)."""
    paths: list[str] = []
    for name in sorted(COMMANDS):
        cmd = command(name)
        if isinstance(cmd, click.Group):
            paths += [f"{name} {sub}" for sub in cmd.list_commands(click.Context(cmd))]
        else:
            paths.append(name)
    return paths


PATHS = command_paths()


@pytest.fixture(scope="module")
def tour() -> dict[str, str]:
    """command path -> every tour line of that command, joined (build has one per mode)."""
    out: dict[str, str] = {}
    for line in tour_lines(README.read_text(encoding="utf-8")):
        words = line.split()
        assert words[0] == "indomer" and len(words) > 1, f"not a command line: {line!r}"
        key = words[1]
        if key in COMMANDS and isinstance(command(key), click.Group) and len(words) > 2:
            key = f"{key} {words[2]}"
        out[key] = f"{out.get(key, '')} {line}".strip()
    return out


def help_options(name: str) -> set[str]:
    """The long options the live ``--help`` of a command lists (``--help`` itself aside)."""
    res = CliRunner().invoke(main, [*name.split(), "--help"], prog_name="indomer")
    assert res.exit_code == 0, res.output
    names = {
        opt
        for param in command(name).params
        if isinstance(param, click.Option) and not param.hidden
        for opt in (*param.opts, *param.secondary_opts)
        if opt.startswith("--")
    }
    listed = set(OPTION_RE.findall(res.stdout.split("\nOptions:", 1)[-1]))
    assert names <= listed, f"indomer {name} --help does not list {sorted(names - listed)}"
    return names


def test_the_tour_parses() -> None:
    text = "x\n## Tour\n\n```\nindomer a X \\\n    [--b N]\n\nindomer c\n```\n"
    assert tour_lines(text) == ["indomer a X [--b N]", "indomer c"]


@pytest.mark.parametrize("name", PATHS)
def test_every_command_is_on_the_tour(tour: dict[str, str], name: str) -> None:
    assert name in tour, f"README.md's tour has no line for 'indomer {name}'"


def test_the_tour_names_only_real_commands(tour: dict[str, str]) -> None:
    assert sorted(set(tour) - set(PATHS)) == []


@pytest.mark.parametrize("name", sorted({*COMMANDS, *PATHS}))
def test_every_command_has_help(name: str) -> None:
    assert (command(name).help or "").strip(), f"indomer {name} has no docstring"


@pytest.mark.parametrize("name", PATHS)
def test_tour_options_match_help(tour: dict[str, str], name: str) -> None:
    listed = help_options(name)
    on_tour = set(OPTION_RE.findall(tour[name]))
    allowed_off = {opt for cmd, opt in OFF_THE_TOUR if cmd == name}
    missing = sorted(listed - on_tour - allowed_off)
    assert not missing, f"README.md's tour line for 'indomer {name}' lacks {missing}"
    unknown = sorted(on_tour - listed)
    assert not unknown, (
        f"README.md's tour line for 'indomer {name}' names {unknown}, "
        f"which 'indomer {name} --help' does not list"
    )
    assert not allowed_off & on_tour, f"{sorted(allowed_off & on_tour)}: on the tour after all"


@pytest.mark.parametrize("name", PATHS)
def test_json_is_spelled_the_same_everywhere(tour: dict[str, str], name: str) -> None:
    """``--json FILE|-`` in every command that has it (DESIGN §4): the tour says so too."""
    if "--json" in help_options(name):
        assert "[--json FILE|-]" in tour[name]
