"""``indomer leaderboard``: hand-computed and scikit-learn truth on a tiny dataset, exact
agreement with ``indomer score`` (intervals) and ``indomer score --compare`` (p-values) on the
public release, the baselines ranked majority < tfidf-lr with p < 0.05, the JSON schema, bad
input on one line, and ``indomer push --results`` putting the table in the pushed card."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import test_push
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from indomer.baseline import run_baseline, write_baseline
from indomer.cli import main
from indomer.generation import write_dataset
from indomer.leaderboard import format_markdown, leaderboard
from indomer.scoring import load_schema, score_predictions

# The fake Hub and its fixtures, shared with tests/test_push.py (its tests are not re-run here).
hub = test_push.hub
hf_env = test_push.hf_env
out = test_push.out
REPO = test_push.REPO

ROOT = Path(__file__).resolve().parents[1]
SCHEMA = json.loads((ROOT / "schemas" / "leaderboard.schema.json").read_text())

REFS = ["happiness", "anger", "neutral", "neutral", "happiness", "anger"]
SYSTEM_A = ["happiness", "anger", "neutral", "happiness", "happiness", "I have no idea"]
SYSTEM_B = ["neutral"] * 6


def run(*args) -> object:
    return CliRunner().invoke(main, ["leaderboard", *map(str, args)])


def write_preds(path: Path, ids: list[str], labels: list[str | None], task="emotion") -> Path:
    path.write_text("".join(json.dumps({"id": i, task: v}) + "\n" for i, v in zip(ids, labels)))
    return path


def one_error_line(res) -> str:
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1, res.output
    assert lines[0].startswith("error: ")
    return lines[0]


def valid(board: dict) -> bool:
    errors = list(Draft202012Validator(SCHEMA).iter_errors(board))
    assert not errors, errors[0].message
    return True


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    def frame(labels: list[str], prefix: int) -> pd.DataFrame:
        n = len(labels)
        return pd.DataFrame(
            {
                "id": [f"clip_{prefix + i}_Vlog_1" for i in range(n)],
                "source_id": [str(prefix + i) for i in range(n)],
                "segment_index": [1] * n,
                "topic": ["Vlog"] * n,
                "speaker_id": [f"S{i % 3}" for i in range(n)],
                "text": ["kata"] * n,
                "emotion": labels,
            }
        )

    ds = tmp_path_factory.mktemp("lb") / "ds"
    write_dataset(ds, {"train": frame(REFS, 1), "validation": frame(REFS, 101)}, {"command": "t"})
    return ds


def val_ids() -> list[str]:
    return [f"clip_{101 + i}_Vlog_1" for i in range(6)]


def test_hand_computed_row_and_scikit_learn_agree(tiny, tmp_path):
    from sklearn.metrics import accuracy_score, f1_score, recall_score

    a = write_preds(tmp_path / "sys-a.jsonl", val_ids(), SYSTEM_A)
    b = write_preds(tmp_path / "sys-b.jsonl", val_ids(), SYSTEM_B)
    board = leaderboard([b, a], tiny, "validation", n_resamples=200)
    assert valid(board)
    assert [s["name"] for s in board["systems"]] == ["sys-a", "sys-b"]
    assert board["reference"] == "sys-b" and board["n"] == 6 and board["task"] == "emotion"
    row = board["systems"][0]
    # By hand: happiness TP 2 of support 2, predicted 3 -> F1 4/5; anger TP 1, support 2,
    # predicted 1 -> 2/3; neutral the same -> 2/3; one answer names no label (invalid).
    assert row["metrics"]["macro_f1"] == pytest.approx((4 / 5 + 2 / 3 + 2 / 3) / 3)
    assert row["metrics"]["weighted_f1"] == pytest.approx((4 / 5 + 2 / 3 + 2 / 3) / 3)
    assert row["metrics"]["accuracy"] == pytest.approx(4 / 6)
    assert row["metrics"]["unweighted_accuracy"] == pytest.approx((1 + 1 / 2 + 1 / 2) / 3)
    assert (row["n_invalid"], row["n_missing"], row["invalid_rate"]) == (1, 0, pytest.approx(1 / 6))
    # scikit-learn, the invalid answer being no class (labels= the classes present)
    present = ["anger", "happiness", "neutral"]
    pred = [p if p in present else "invalid" for p in SYSTEM_A]
    assert row["metrics"]["macro_f1"] == pytest.approx(
        f1_score(REFS, pred, labels=present, average="macro")
    )
    assert row["metrics"]["weighted_f1"] == pytest.approx(
        f1_score(REFS, pred, labels=present, average="weighted")
    )
    assert row["metrics"]["accuracy"] == pytest.approx(accuracy_score(REFS, pred))
    assert row["metrics"]["unweighted_accuracy"] == pytest.approx(
        recall_score(REFS, pred, labels=present, average="macro")
    )
    ref_row = board["systems"][1]
    assert ref_row["compare"] is None and ref_row["rank"] == 2
    assert ref_row["metrics"]["macro_f1"] == pytest.approx(
        f1_score(REFS, SYSTEM_B, average="macro", zero_division=0)
    )
    assert row["compare"]["reference"] == "sys-b"
    assert row["compare"]["delta"] == pytest.approx(
        row["metrics"]["macro_f1"] - ref_row["metrics"]["macro_f1"]
    )
    # three speakers: no interval or p-value can be trusted, and the JSON says why
    reason = "only 3 speaker units to resample, fewer than 5"
    assert board["ci95_undefined"] == dict.fromkeys(("macro_f1", "weighted_f1", "accuracy"), reason)
    assert row["ci95"] == {"macro_f1": None, "weighted_f1": None, "accuracy": None}
    assert row["compare"]["ci95"] is None and row["compare"]["p_value"] is None
    # per segment (6 units) the intervals stand and hold the point estimate
    by_clip = leaderboard([b, a], tiny, "validation", n_resamples=200, unit="segment")
    assert by_clip["ci95_undefined"] == {}
    lo, hi = by_clip["systems"][0]["ci95"]["macro_f1"]
    assert lo <= row["metrics"]["macro_f1"] <= hi
    assert by_clip["systems"][0]["compare"]["p_value"] is not None


def test_undefined_intervals_and_the_lacking_classes_are_printed(tiny, tmp_path):
    a = write_preds(tmp_path / "sys-a.jsonl", val_ids(), SYSTEM_A)
    b = write_preds(tmp_path / "sys-b.jsonl", val_ids(), SYSTEM_B)
    md = tmp_path / "lb.md"
    res = run("--refs", tiny, b, a, "--markdown", md)
    assert res.exit_code == 0, res.output
    # speakers S0, S1, S2 hold (happiness, neutral), (anger, happiness), (neutral, anger): a
    # resample lacks a class unless it draws two of them, or all three, so by hand the count
    # is the resamples that draw one speaker only
    from indomer.scoring import bootstrap_counts

    counts = bootstrap_counts(3, 1000, np.random.default_rng(0))
    lacking = int(((counts > 0).sum(axis=1) == 1).sum())
    assert f"  resamples lacking a reference class: {lacking} of 1000 (" in res.stdout
    assert "95% CI undefined for macro_f1, weighted_f1, accuracy: only 3 speaker units" in (
        res.stdout
    )
    assert "[undefined]" in res.stdout and "p undefined" in res.stdout
    assert "only 3 speaker units to resample" in md.read_text()
    board = json.loads(run("--refs", tiny, b, a, "--json", "-").stdout)
    assert board["bootstrap"]["n_resamples_lacking_a_class"] == lacking
    assert valid(board)


def test_a_table_written_before_undefined_intervals_still_reads(tiny, tmp_path):
    a = write_preds(tmp_path / "sys-a.jsonl", val_ids(), SYSTEM_A)
    board = leaderboard([a], tiny, "validation", n_resamples=20, unit="segment")
    old = json.loads(json.dumps(board))
    for key in ("lacking_class", "n_resamples_lacking_a_class"):
        del old["bootstrap"][key]
    del old["ci95_undefined"]
    path = tmp_path / "old.json"
    path.write_text(json.dumps(old))
    from indomer.leaderboard import format_table, read_leaderboard

    assert read_leaderboard(path) == old  # push --results still takes it
    assert "resamples lacking" not in format_table(old)
    assert "resamples lacking a reference class: " in format_table(board)


def test_ties_share_a_rank_and_keep_the_command_line_order(tiny, tmp_path):
    a = write_preds(tmp_path / "first.jsonl", val_ids(), SYSTEM_B)
    b = write_preds(tmp_path / "second.jsonl", val_ids(), SYSTEM_A)
    c = write_preds(tmp_path / "third.jsonl", val_ids(), SYSTEM_B)
    board = leaderboard(
        [a, b, c], tiny, "validation", n_resamples=50, reference="third", unit="segment"
    )
    names = [(s["rank"], s["name"]) for s in board["systems"]]
    assert names == [(1, "second"), (2, "first"), (2, "third")]
    first = board["systems"][1]
    # identical to the reference: no difference, nothing to test, p = 1
    assert first["compare"]["delta"] == 0 and first["compare"]["p_value"] == 1.0
    assert first["compare"]["ci95"] == [0.0, 0.0]


@pytest.fixture(scope="module")
def systems(built: Path, tmp_path_factory) -> dict[str, dict[str, Path]]:
    """majority, tfidf-lr and a noisy tfidf-lr (every 7th answer unparseable), both tasks."""
    d = tmp_path_factory.mktemp("systems")
    found: dict[str, dict[str, Path]] = {}
    for task in ("emotion", "sentiment"):
        found[task] = {}
        for method in ("majority", "tfidf-lr"):
            path = d / task / f"{method}.jsonl"
            write_baseline(run_baseline(built, method, task, "validation"), path)
            found[task][method] = path
        noisy = d / task / "noisy.jsonl"
        rows = [json.loads(x) for x in found[task]["tfidf-lr"].read_text().splitlines()]
        for i, row in enumerate(rows):
            if i % 7 == 0:
                row[task] = "hmm, hard to say"
        noisy.write_text("".join(json.dumps(r) + "\n" for r in rows))
        found[task]["noisy"] = noisy
    return found


@pytest.mark.parametrize("task", ["emotion", "sentiment"])
def test_agrees_with_score_and_score_compare(systems, built, task):
    files = systems[task]
    paths = [files["majority"], files["tfidf-lr"], files["noisy"]]
    board = leaderboard(paths, built, "validation", task, n_resamples=300, seed=7)
    assert valid(board)
    assert board["bootstrap"]["unit"] == "source_video" and board["bootstrap"]["n_units"] == 34
    by_name = {s["name"]: s for s in board["systems"]}
    for name, path in (("majority", paths[0]), ("tfidf-lr", paths[1]), ("noisy", paths[2])):
        score = score_predictions(path, built, "validation", task, n_resamples=300, seed=7)
        row = by_name[name]
        assert row["metrics"] == score["metrics"]
        assert row["ci95"] == score["ci95"]  # the very same resamples
        assert row["n_invalid"] == score["n_invalid"]
        if name == "majority":
            continue
        compared = score_predictions(
            path, built, "validation", task, compare=paths[0], n_resamples=300, seed=7
        )["compare"]
        assert row["compare"]["delta"] == pytest.approx(compared["delta"], abs=1e-15)
        assert row["compare"]["ci95"] == compared["ci95"]
        assert row["compare"]["p_value"] == compared["p_value"]
    assert by_name["noisy"]["n_invalid"] == 51 and by_name["noisy"]["invalid_rate"] == 51 / 356


@pytest.mark.parametrize("task", ["emotion", "sentiment"])
def test_release_ranks_majority_below_tfidf_lr_with_a_p_value(systems, built, tmp_path, task):
    files = systems[task]
    js, md = tmp_path / "lb.json", tmp_path / "lb.md"
    res = run(
        "--refs", built, "--split", "validation", files["majority"], files["tfidf-lr"],
        "--json", js, "--markdown", md,
    )  # fmt: skip
    assert res.exit_code == 0, res.output
    board = json.loads(js.read_text())
    assert valid(board)
    top, bottom = board["systems"]
    assert (top["name"], bottom["name"]) == ("tfidf-lr", "majority")
    assert top["metrics"]["macro_f1"] > bottom["metrics"]["macro_f1"]
    assert top["compare"]["reference"] == "majority" and top["compare"]["p_value"] < 0.05
    expected = {"emotion": 0.202, "sentiment": 0.416}[task]
    assert abs(top["metrics"]["macro_f1"] - expected) <= 0.01
    assert (
        board["refs_build_hash"]
        == json.loads((built / "build.json").read_text())["outputs"]["build_hash"]
    )
    assert md.read_text() == format_markdown(board)
    assert "| 1 | tfidf-lr |" in md.read_text() and "| 2 | majority |" in md.read_text()
    # the printed table: best first, the reference marked
    assert res.stdout.index("tfidf-lr") < res.stdout.index("majority  ")
    assert "reference" in res.stdout
    # same inputs, same bytes
    again = tmp_path / "again.json"
    res = run("--refs", built, files["majority"], files["tfidf-lr"], "--json", again)
    assert res.exit_code == 0 and again.read_bytes() == js.read_bytes()


def test_json_to_stdout_and_release_json_refs(systems, built, release_dir):
    release = release_dir / "7_Class" / "7_class_val.json"
    files = systems["emotion"]
    res = run("--refs", release, files["majority"], files["tfidf-lr"], "--json", "-")
    assert res.exit_code == 0, res.output
    board = json.loads(res.stdout)
    assert valid(board) and board["refs_build_hash"] is None
    on_build = leaderboard([files["majority"], files["tfidf-lr"]], built)
    assert [s["metrics"] for s in board["systems"]] == [s["metrics"] for s in on_build["systems"]]


def test_schema_file_is_the_one_the_package_ships():
    assert load_schema("leaderboard") == SCHEMA


def test_a_file_of_another_split_is_named(systems, built, tmp_path):
    train_ids = pd.read_parquet(next((built / "data").glob("train-*.parquet")), columns=["id"])
    wrong = write_preds(tmp_path / "trained.jsonl", train_ids["id"].tolist()[:5], ["happy"] * 5)
    res = run("--refs", built, systems["emotion"]["majority"], wrong)
    assert res.exit_code == 1
    line = one_error_line(res)
    assert str(wrong) in line and "not in the 'validation' split" in line
    assert "predicts another split" in line


def test_bad_input_is_one_line(systems, built, tmp_path):
    maj, lr = systems["emotion"]["majority"], systems["emotion"]["tfidf-lr"]
    sent = systems["sentiment"]["majority"]
    cases = [
        (["--refs", built, "--task", "mood", maj], 2, "unknown task 'mood'"),
        (["--refs", built, "--reference", "gpt", maj, lr], 2, "--reference 'gpt' names none"),
        (["--refs", built, maj, sent], 2, "its system name 'majority' is also that of"),
        (["--refs", built, "--bootstrap", "0", maj], 2, "--bootstrap must be 1 or more"),
        (["--refs", built, "--bootstrap-unit", "video", maj], 2, "unknown bootstrap unit"),
        (["--refs", built, "--split", "test", maj], 2, "no 'test' split"),
    ]
    for args, code, needle in cases:
        res = run(*args)
        assert res.exit_code == code, (args, res.output)
        line = one_error_line(res)
        assert needle in line, line
    # files predicting different tasks; a --task one of them lacks, named
    renamed = tmp_path / "sentiment-majority.jsonl"
    renamed.write_bytes(sent.read_bytes())
    res = run("--refs", built, maj, renamed)
    assert "no task is predicted by every file" in one_error_line(res)
    res = run("--refs", built, "--task", "emotion", maj, renamed)
    line = one_error_line(res)
    assert str(renamed) in line and "no line has a 'emotion' prediction" in line
    # an output over an input is refused
    res = run("--refs", built, maj, "--markdown", maj)
    assert "is the same file as the input" in one_error_line(res)


def test_missing_ids_fail_unless_allowed(tiny, tmp_path):
    part = write_preds(tmp_path / "part.jsonl", val_ids()[:4], REFS[:4])
    res = run("--refs", tiny, part)
    line = one_error_line(res)
    assert "2 of 6 validation ids have no emotion prediction" in line
    assert "--allow-missing" in line
    res = run("--refs", tiny, part, "--allow-missing", "--json", "-")
    assert res.exit_code == 0, res.output
    (row,) = json.loads(res.stdout)["systems"]
    assert row["n_missing"] == 2 and row["n_invalid"] == 0
    assert row["metrics"]["accuracy"] == pytest.approx(4 / 6)


# --------------------------------------------------------------------------- push --results


@pytest.fixture
def board_file(systems, built, tmp_path) -> Path:
    path = tmp_path / "lb.json"
    files = systems["emotion"]
    res = run("--refs", built, files["majority"], files["tfidf-lr"], "--json", path)
    assert res.exit_code == 0, res.output
    return path


def push_cli(*args):
    return CliRunner().invoke(main, ["push", *map(str, args)])


def test_push_puts_the_table_in_the_card_results_section(hf_env, hub, out, board_file):
    local_card = (out / "README.md").read_bytes()
    res = push_cli(out, REPO, "--results", board_file)
    assert res.exit_code == 0, res.output
    card = hub.file_bytes(REPO, "README.md", "main").decode()
    board = json.loads(board_file.read_text())
    assert "\n## Results\n" in card
    assert card.index("\n## Results\n") < card.index("\n## Scoring\n")
    assert "### emotion, validation split (indomer " + board["versions"]["indomer"] + ")" in card
    assert format_markdown(board) in card
    assert "| 1 | tfidf-lr |" in card and "p=0.04" in card
    # only the pushed copy carries it; every other file is the local one
    assert (out / "README.md").read_bytes() == local_card
    assert card.replace(card[card.index("## Results\n") : card.index("## Scoring\n")], "") == (
        local_card.decode()
    )
    remote = test_push.remote_tree(hub)
    assert remote["build.json"] == (out / "build.json").read_bytes()
    # pushed again with the same table: nothing to send; without it: the plain card again
    res = push_cli(out, REPO, "--results", board_file)
    assert res.exit_code == 0 and "nothing to send" in res.stdout, res.output
    res = push_cli(out, REPO)
    assert res.exit_code == 0 and "1 files sent" in res.stdout, res.output
    assert hub.file_bytes(REPO, "README.md", "main") == local_card


def test_push_refuses_a_table_of_another_dataset(hf_env, hub, out, board_file, tmp_path):
    board = json.loads(board_file.read_text())
    board["refs_build_hash"] = None
    other = tmp_path / "release-refs.json"
    other.write_text(json.dumps(board))
    res = push_cli(out, REPO, "--results", other)
    assert res.exit_code == 1
    line = one_error_line(res)
    assert str(other) in line and "release JSON files" in line and "--refs" in line
    board["refs_build_hash"] = "0" * 64
    other.write_text(json.dumps(board))
    assert "computed against 000000000000" in one_error_line(
        push_cli(out, REPO, "--results", other)
    )
    board["refs_build_hash"] = json.loads((out / "build.json").read_text())["outputs"]["build_hash"]
    board["split"] = "test"
    other.write_text(json.dumps(board))
    assert "ranks the 'test' split" in one_error_line(push_cli(out, REPO, "--results", other))
    other.write_text('{"task": "emotion"}')
    line = one_error_line(push_cli(out, REPO, "--results", other))
    assert "not an 'indomer leaderboard --json' file" in line
    res = push_cli(out, REPO, "--results", board_file, "--results", board_file)
    assert "a second emotion table" in one_error_line(res)
    assert hub.commits == []  # refused before anything was sent


def test_card_renders_the_results_it_is_given(built, board_file):
    """render_card(results=...) and the splice push uses give the same card; without results
    the card is the one the build wrote, and a second splice replaces, never duplicates."""
    from indomer import card
    from indomer.generation import shard_manifest, split_catalogue
    from indomer.stats import compute_stats, load_data

    build = json.loads((built / "build.json").read_text())
    split_doc = json.loads((built / build["split"]["file"]).read_text())
    data = load_data(built)
    stats = compute_stats(built, data)
    manifest = shard_manifest(built)
    splits = split_catalogue(built, data.df, build["split"]["file"])
    board = json.loads(board_file.read_text())
    plain = card.render_card(build, stats, manifest, split_doc, [], splits=splits)
    assert plain == (built / "README.md").read_text()
    with_board = card.render_card(build, stats, manifest, split_doc, [], results=[board],
                                  splits=splits)
    assert with_board == card.with_results(plain, [board]) != plain
    other = dict(board, split="train")
    twice = card.with_results(with_board, [other])
    assert twice.count("\n## Results\n") == 1
    assert "### emotion, train split" in twice and "### emotion, validation split" not in twice
    assert card.with_results(twice, []) == plain
