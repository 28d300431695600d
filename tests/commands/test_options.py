"""One meaning per option (DESIGN §4, issue 22 point 5): the same option name has the same type,
default and help in every command; ``--split`` defaults to validation wherever rows are
evaluated or predicted and to train in export; old spellings still work one release with one
warning line; ``predict`` then ``score`` agree on the split without ``--split``; a damaged
reference is a data error (exit 1); summaries go to stdout and warnings to stderr."""

from __future__ import annotations

import collections
import json
from pathlib import Path

import click
import pytest
from click.testing import CliRunner
from openai_server import FakeOpenAI

from indomer.cli import main
from indomer.commands.options import deprecated_alias
from indomer.dataset import read_split, write_split
from indomer.labels import label_set
from indomer.pipeline import STAGES

#: Option names whose meaning is one command's own, each with the reason. Everything else
#: that two commands share must be one definition (indomer/commands/options.py).
OWN_MEANING: dict[str, str] = {
    "--out": "what the command creates (DESIGN §4): a dataset, a predictions file or a "
    "sheets folder; always a required path",
    "--format": "each export has its own formats (ms-swift|llamafactory, labelstudio|csv)",
    "--task": "what a command can do with a task differs: score takes 'all', leaderboard "
    "finds the one task every file predicts, predict asks emotion or sentiment",
    "--model": "the model's name: the one asked (predict) or the one that made --preds "
    "(annotate)",
    "--project": "a Label Studio project's title: created by push, required by pull",
}

#: DESIGN §4: --split defaults to validation where rows are evaluated or predicted, train in
#: export. A new command with --split must be added here.
SPLIT_DEFAULTS = {
    "score": "validation",
    "leaderboard": "validation",
    "predict": "validation",
    "baseline": "validation",
    "export": "train",
}


def invoke(*args: object):
    return CliRunner().invoke(main, [str(a) for a in args], prog_name="indomer")


def commands(cmd: click.Command = main, path: str = "") -> list[tuple[str, click.Command]]:
    """Every leaf command as typed (``annotate export``), with its click object."""
    if isinstance(cmd, click.Group):
        found = []
        for name in cmd.list_commands(click.Context(cmd)):
            sub = cmd.get_command(click.Context(cmd), name)
            assert sub is not None
            found += commands(sub, f"{path} {name}".strip())
        return found
    return [(path, cmd)]


def type_of(param: click.Option) -> tuple:
    """What values an option takes: its click type and the settings that restrict them
    (``multiple`` aside: browse takes several predictions files, annotate one)."""
    t = param.type
    keys = ("choices", "min", "max", "min_open", "max_open", "exists", "file_okay",
            "dir_okay", "allow_dash", "readable", "writable")  # fmt: skip
    return (type(t).__name__, param.is_flag, *(repr(getattr(t, k, None)) for k in keys))


def uses() -> dict[str, list[tuple[str, click.Option]]]:
    """option name -> the (command, option) pairs that take it; hidden old spellings aside."""
    found: dict[str, list[tuple[str, click.Option]]] = collections.defaultdict(list)
    for path, cmd in commands():
        for param in cmd.params:
            if isinstance(param, click.Option) and not param.hidden:
                found[param.opts[0]].append((path, param))
    return found


SHARED = sorted(name for name, where in uses().items() if len(where) > 1)


def test_the_walk_finds_the_shared_options() -> None:
    """The walk sees every command (a broken walk would pass everything)."""
    assert {"--split", "--json", "--seed", "--quiet", "--jobs", "--preds", "--to"} <= set(SHARED)
    assert len(commands()) >= 18


@pytest.mark.parametrize("name", SHARED)
def test_one_option_name_has_one_type_default_and_help(name: str) -> None:
    where = uses()[name]
    if name in OWN_MEANING:
        # still a value everywhere (never a flag in one command), and --out a required path
        assert not any(p.is_flag for _, p in where), name
        if name == "--out":
            assert all(isinstance(p.type, click.Path) and p.required for _, p in where)
        return
    first_cmd, first = where[0]
    for cmd, param in where[1:]:
        assert type_of(param) == type_of(first), f"{name}: {cmd} and {first_cmd} differ in type"
        assert param.help == first.help, f"{name}: {cmd} and {first_cmd} differ in help"
        assert param.metavar == first.metavar, f"{name}: {cmd} and {first_cmd} differ in metavar"
        if name != "--split":  # checked against DESIGN §4 below
            assert param.default == first.default, f"{name}: {cmd} and {first_cmd} differ"


def test_own_meaning_names_are_really_shared() -> None:
    """An OWN_MEANING entry that no two commands take any more is stale."""
    assert sorted(set(OWN_MEANING) - set(SHARED)) == []


def test_split_defaults_follow_design() -> None:
    got = {cmd: param.default for cmd, param in uses()["--split"]}
    assert got == SPLIT_DEFAULTS
    for cmd in ("score", "predict"):
        res = invoke(cmd, "--help")
        assert "[default: validation]" in " ".join(res.stdout.split()), cmd


def test_build_help_names_every_stage() -> None:
    text = " ".join(invoke("build", "--help").stdout.split())
    missing = [stage for stage in STAGES if f" {stage}" not in text.split("Options:")[0]]
    assert missing == []
    assert "--until" in text and "--to " not in text


def test_every_hidden_option_is_an_old_spelling() -> None:
    """Hidden options exist only as the deprecated aliases, each naming its new option."""
    hidden = sorted(
        (path, param.opts[0])
        for path, cmd in commands()
        for param in cmd.params
        if isinstance(param, click.Option) and param.hidden
    )
    assert hidden == [
        ("annotate export", "--predictions"),
        ("annotate import", "--annotators"),
        ("annotate pull", "--annotators"),
        ("annotate push", "--predictions"),
        ("build", "--to"),
    ]


# --------------------------------------------------------------------------- old spellings


def _toy() -> click.Command:
    @click.command()
    @deprecated_alias("--old", "--new", "value")
    @click.option("--new", "value", default="unset")
    def toy(value: str) -> None:
        click.echo(f"value={value}")

    return toy


@pytest.mark.parametrize(
    ("args", "code", "stdout", "stderr"),
    [
        (["--new", "a"], 0, "value=a\n", ""),
        ([], 0, "value=unset\n", ""),
        (
            ["--old", "b"],
            0,
            "value=b\n",
            "warning: --old is deprecated and stops working in indomer 0.3; use --new\n",
        ),
    ],
)
def test_an_old_spelling_works_with_one_warning_line(args, code, stdout, stderr) -> None:
    res = CliRunner().invoke(_toy(), args)
    assert (res.exit_code, res.stdout, res.stderr) == (code, stdout, stderr)


def test_old_and_new_spelling_together_is_a_usage_error() -> None:
    res = CliRunner().invoke(_toy(), ["--old", "b", "--new", "a"])
    assert res.exit_code == 2
    assert "--old is the old spelling of --new; give --new only" in res.stderr


def test_build_to_still_bounds_the_stages(tmp_path: Path) -> None:
    """``build --to STAGE`` reaches the build as --until (here refused by release mode,
    which names the new spelling), after one warning line."""
    res = invoke("build", "--release", tmp_path, "--out", tmp_path / "o", "--to", "cut")
    assert res.exit_code == 2
    assert res.stderr.splitlines() == [
        "warning: --to is deprecated and stops working in indomer 0.3; use --until",
        "error: --until: raw mode only (give CONFIG.yaml)",
    ]
    res = invoke("build", "--release", tmp_path, "--out", tmp_path / "o", "--to", "cut",
                 "--until", "cut")  # fmt: skip
    assert res.exit_code == 2
    assert res.stderr == (
        "error: --to is the old spelling of --until; give --until only; "
        "see 'indomer build --help'\n"
    )


# --------------------------------------------------------------------------- predict → score

MODEL = "qwen2.5-omni-test"


@pytest.fixture(scope="module")
def small(built: Path, tmp_path_factory) -> Path:
    """12 validation clips and 12 train clips of the release (text only)."""
    out = tmp_path_factory.mktemp("opts") / "dataset"
    for split in ("train", "validation"):
        write_split(out, split, read_split(built, split).sort_values("id").iloc[:12])
    return out


def test_predict_then_score_without_split(small: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test")
    rows = read_split(small, "validation").to_dict("records")
    by_text = {r["text"].strip(): label_set("emotion").release[r["emotion"]] for r in rows}

    def answer(req) -> str:
        return next((f"Emosi: {v}." for t, v in by_text.items() if t and t in req.text), "?")

    preds = tmp_path / "preds.jsonl"
    with FakeOpenAI(model=MODEL, api_key="sk-test", answer=answer) as srv:
        res = invoke("predict", small, "--endpoint", srv.url, "--model", MODEL,
                     "--modalities", "text", "--out", preds)  # fmt: skip
        assert res.exit_code == 0, res.output
        asked = len(srv.chat_requests())
        # progress on stderr, the summary on stdout; --quiet hides only the progress
        assert "predict: 12/12 answered" in res.stderr
        assert res.stdout.startswith(f"{preds}: 12 of 12 clips answered")
        quiet = invoke("predict", small, "--endpoint", srv.url, "--model", MODEL, "--quiet",
                       "--modalities", "text", "--out", tmp_path / "quiet.jsonl")  # fmt: skip
        assert (quiet.exit_code, quiet.stderr) == (0, ""), quiet.output
        assert quiet.stdout.startswith(f"{tmp_path / 'quiet.jsonl'}: 12 of 12 clips answered")
    assert asked == 12  # the validation clips, not the train ones
    assert sorted(json.loads(line)["id"] for line in preds.read_text().splitlines()) == sorted(
        r["id"] for r in rows
    )
    res = invoke("score", preds, "--refs", small, "--json", "-")
    assert res.exit_code == 0, res.output
    got = json.loads(res.stdout)["emotion"]
    assert (got["split"], got["n"], got["metrics"]["accuracy"]) == ("validation", 12, 1.0)


# --------------------------------------------------------------------------- exit codes


@pytest.fixture
def damaged(small: Path, tmp_path: Path) -> Path:
    """A copy of ``small`` whose validation shard is cut short."""
    out = tmp_path / "damaged"
    for split in ("train", "validation"):
        write_split(out, split, read_split(small, split))
    (shard,) = sorted((out / "data").glob("validation-*.parquet"))
    data = shard.read_bytes()
    shard.write_bytes(data[: len(data) // 2])
    return out


@pytest.fixture
def majority(small: Path, tmp_path: Path) -> Path:
    preds = tmp_path / "p.jsonl"
    res = invoke("baseline", small, "--method", "majority", "--out", preds)
    assert res.exit_code == 0, res.output
    return preds


@pytest.mark.parametrize("command", ["score", "leaderboard", "stats"])
def test_a_damaged_reference_shard_is_a_data_error(command, damaged, majority) -> None:
    args = {"stats": [damaged]}.get(command, [majority, "--refs", damaged])
    res = invoke(command, *args)
    assert res.exit_code == 1, res.output
    (line,) = res.stderr.splitlines()
    assert line.startswith("error: ") and "validation-00000-of-00001.parquet" in line
    assert "not a readable Parquet shard" in line


@pytest.mark.parametrize("command", ["score", "leaderboard"])
@pytest.mark.parametrize(
    "content", ["{}", "[]", '[{"sample_id": "x", "colour": "red"}]'], ids=["object", "empty", "shape"]
)
def test_a_damaged_release_reference_is_a_data_error(command, content, majority, tmp_path):
    ref = tmp_path / "7_class_val.json"
    ref.write_text(content)
    res = invoke(command, majority, "--refs", ref)
    assert res.exit_code == 1, res.output
    (line,) = res.stderr.splitlines()
    assert line.startswith(f"error: {ref}: ")


# --------------------------------------------------------------------------- output streams


def test_baseline_summary_is_on_stdout_even_quiet(small: Path, tmp_path: Path) -> None:
    preds = tmp_path / "p.jsonl"
    res = invoke("baseline", small, "--method", "majority", "--out", preds, "--quiet")
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert res.stdout.startswith("wrote 12 emotion predictions for 'validation' (majority")


def test_score_table_on_stdout_and_nothing_on_stderr(small, majority) -> None:
    res = invoke("score", majority, "--refs", small)
    assert res.exit_code == 0, res.output
    assert res.stderr == ""
    assert "macro" in res.stdout.lower()


def test_split_summary_on_stdout_and_warning_on_stderr(release_dir: Path, tmp_path: Path):
    """The release lacks speaker ids: split warns on stderr and prints its table on stdout."""
    from indomer.build import build_release

    out = tmp_path / "ds"
    build_release(str(release_dir), out, log=lambda m: None)
    res = invoke("split", out, "--speaker-disjoint")
    assert res.exit_code == 0, res.output
    assert res.stderr and all(line.startswith("warning: ") for line in res.stderr.splitlines())
    assert res.stdout.splitlines()[-1].startswith("wrote ")


def test_validate_warnings_on_stderr_verdict_on_stdout(built: Path) -> None:
    res = invoke("validate", built)
    assert res.stdout == f"{built}: valid\n", res.output
    assert res.stderr  # the release has no speaker ids: leakage is checked by source video
    assert all(line.startswith("warning: ") for line in res.stderr.splitlines())
