"""``indomer score`` end to end: exit codes, one-line errors, JSON contract, no torch."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from jsonschema import Draft202012Validator

from indomer.cli import main
from indomer.scoring import load_schema


@pytest.fixture(scope="module")
def val(release_dir) -> dict:
    seven = release_dir / "7_Class" / "7_class_val.json"
    three = release_dir / "3_Class" / "3_class_val.json"
    records = json.loads(seven.read_text("utf-8"))
    return {"refs": [str(seven), str(three)], "records": records}


def refs_args(val: dict) -> list[str]:
    return [arg for ref in val["refs"] for arg in ("--refs", ref)]


def write(path: Path, rows: list) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return str(path)


def answers(val: dict, emotion: str = "netral") -> list[dict]:
    return [
        {"id": r["sample_id"], "emotion": emotion, "sentiment": r["sentiment_label"]}
        for r in val["records"]
    ]


def run(*args: str):
    return CliRunner().invoke(main, ["score", *args])


def test_scores_and_writes_valid_json(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    out = tmp_path / "score.json"
    r = run(preds, *refs_args(val), "--json", str(out), "--bootstrap", "200")
    assert r.exit_code == 0, r.output
    assert "macro_f1" in r.stdout and "0.1211" in r.stdout
    assert "confusion (rows: reference, columns: prediction)" in r.stdout
    doc = json.loads(out.read_text("utf-8"))
    Draft202012Validator(load_schema("score")).validate(doc)
    assert set(doc) == {"emotion", "sentiment"}
    assert doc["sentiment"]["metrics"]["macro_f1"] == 1.0
    # same inputs and seed give the same bytes
    again = tmp_path / "again.json"
    run(preds, *refs_args(val), "--json", str(again), "--bootstrap", "200")
    assert again.read_bytes() == out.read_bytes()
    assert out.read_text("utf-8") == json.dumps(doc, sort_keys=True, indent=2) + "\n"


def test_single_task_compare_and_json_to_stdout(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    other = write(tmp_path / "o.jsonl", answers(val, emotion="I think the speaker is sad"))
    r = run(
        preds,
        *refs_args(val),
        "--task",
        "emotion",
        "--compare",
        other,
        "--json",
        "-",
        "--bootstrap",
        "100",
        "--seed",
        "3",
        "--bootstrap-unit",
        "segment",
    )
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    Draft202012Validator(load_schema("score")).validate(doc)
    assert doc["task"] == "emotion"
    boot = doc["bootstrap"]
    assert {key: boot[key] for key in ("n_resamples", "seed", "unit", "n_units")} == {
        "n_resamples": 100,
        "seed": 3,
        "unit": "segment",
        "n_units": 356,
    }
    assert set(boot["lacking_class"]) == {
        name for name, row in doc["per_class"].items() if row["support"] > 0
    }
    assert doc["compare"]["other"] == "o.jsonl"
    assert doc["compare"]["delta"] == pytest.approx(
        doc["metrics"]["macro_f1"] - doc["compare"]["macro_f1"]
    )


def test_report_says_how_many_resamples_lacked_a_class(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    out = tmp_path / "s.json"
    r = run(preds, *refs_args(val), "--task", "emotion", "--json", str(out), "--seed", "1")
    assert r.exit_code == 0, r.output
    boot = json.loads(out.read_text("utf-8"))["bootstrap"]
    n = boot["n_resamples_lacking_a_class"]
    assert boot["lacking_class"]["surprise"] > 0  # one surprise clip in validation
    lines = [ln for ln in r.stdout.splitlines() if "resamples lacking a reference class" in ln]
    assert len(lines) == 1
    assert lines[0].strip().startswith(f"resamples lacking a reference class: {n} of 1000 (")
    assert f"surprise {boot['lacking_class']['surprise']}" in lines[0]


def test_json_dash_writes_only_the_json_to_stdout(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    r = run(preds, *refs_args(val), "--task", "sentiment", "--json", "-", "--bootstrap", "20")
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    Draft202012Validator(load_schema("score")).validate(doc)
    assert doc["task"] == "sentiment" and doc["metrics"]["macro_f1"] == 1.0
    assert r.stdout == json.dumps(doc, sort_keys=True, indent=2) + "\n"
    assert not (tmp_path / "-").exists()


def test_json_refuses_to_overwrite_an_input(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    other = write(tmp_path / "o.jsonl", answers(val, emotion="sedih"))
    before = {path: Path(path).read_bytes() for path in (preds, other)}
    for target in (preds, other, str(tmp_path / "." / "p.jsonl")):
        r = run(preds, *refs_args(val), "--compare", other, "--json", target, "--bootstrap", "10")
        assert r.exit_code == 2, r.output
        assert r.stderr.startswith("error: --json ") and r.stderr.count("\n") == 1, r.stderr
        assert "is the same file as the input" in r.stderr
        assert r.stdout == ""
    assert {path: Path(path).read_bytes() for path in (preds, other)} == before


def test_negative_seed_is_a_one_line_usage_error(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    r = run(preds, *refs_args(val), "--seed", "-1")
    assert r.exit_code == 2, r.output
    assert r.stderr.count("\n") == 1 and "--seed" in r.stderr, r.stderr
    assert "-1" in r.stderr and r.stdout == ""


def test_predictions_with_a_byte_order_mark(val, tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text("".join(json.dumps(a) + "\n" for a in answers(val)), encoding="utf-8-sig")
    r = run(str(path), *refs_args(val), "--task", "sentiment", "--json", "-", "--bootstrap", "0")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["metrics"]["accuracy"] == 1.0


def test_allow_missing(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val)[:-2])
    r = run(preds, *refs_args(val), "--task", "emotion")
    assert r.exit_code == 1
    assert r.stderr.count("\n") == 1 and "2 of 356 validation ids have no emotion" in r.stderr
    r = run(preds, *refs_args(val), "--task", "emotion", "--allow-missing", "--json", "-")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n_missing"] == 2


DATA_ERRORS = [
    ("empty", "", "empty file"),
    ("malformed", '{"id": "x", "emotion": "happy"}\n{"id": \n', "p.jsonl:2: not valid JSON"),
    ("not an object", '"happy"\n', "p.jsonl:1: expected a JSON object"),
    ("no id", '{"emotion": "happy"}\n', "p.jsonl:1: no 'id' key"),
]


@pytest.mark.parametrize(("case", "text", "message"), DATA_ERRORS, ids=[c[0] for c in DATA_ERRORS])
def test_bad_files_exit_1_with_one_line(val, tmp_path, case, text, message):
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8")
    r = run(str(path), *refs_args(val))
    assert r.exit_code == 1, r.output
    assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1
    assert message in r.stderr
    assert r.stdout == ""


def test_bad_ids_exit_1_with_one_line(val, tmp_path):
    rows = answers(val)
    cases = {
        "duplicate ids": [*rows, rows[5]],
        "ids are not in the 'validation' split: clip_0_Nope_1": [
            *rows,
            {"id": "clip_0_Nope_1", "emotion": "x"},
        ],
        "no line has a 'video_sentiment' prediction": rows,
    }
    for message, lines in cases.items():
        preds = write(tmp_path / "p.jsonl", lines)
        task = ["--task", "video_sentiment"] if "video" in message else []
        r = run(preds, *refs_args(val), *task)
        assert r.exit_code == 1, r.output
        assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr


def test_usage_errors_exit_2(val, tmp_path, release_dir):
    preds = write(tmp_path / "p.jsonl", answers(val))
    seven = str(release_dir / "7_Class" / "7_class_val.json")
    corrupt = tmp_path / "corrupt"
    (corrupt / "data").mkdir(parents=True)
    (corrupt / "data" / "validation-00000-of-00001.parquet").write_bytes(b"not parquet")
    cases = [
        ([preds, *refs_args(val), "--task", "mood"], "unknown task 'mood'"),
        ([preds, *refs_args(val), "--bootstrap-unit", "video"], "unknown bootstrap unit"),
        ([preds, "--refs", seven, "--split", "test"], "--split is 'test'"),
        ([preds, "--refs", str(tmp_path / "nowhere")], "no such file or directory"),
        ([preds, "--refs", str(tmp_path)], "no 'validation' split"),
        ([str(tmp_path / "absent.jsonl"), *refs_args(val)], "cannot read predictions"),
        ([preds, *refs_args(val), "--bootstrap", "-1"], "--bootstrap must be 0"),
    ]
    for args, message in cases:
        r = run(*args)
        assert r.exit_code == 2, (args, r.output)
        assert r.stderr.count("\n") == 1 and message in r.stderr, r.stderr
    # a damaged reference shard is a data error, exit 1, as in every other command
    r = run(preds, "--refs", str(corrupt))
    assert r.exit_code == 1, r.output
    assert r.stderr.count("\n") == 1 and "not a readable Parquet shard" in r.stderr, r.stderr
    # a task the references lack
    five = write(tmp_path / "t.jsonl", [{**a, "text_sentiment": "netral"} for a in answers(val)])
    r = run(five, "--refs", seven)
    assert r.exit_code == 2 and "no text_sentiment references" in r.stderr


def test_help_lists_options():
    r = CliRunner().invoke(main, ["score", "--help"])
    assert r.exit_code == 0
    for opt in (
        "--refs",
        "--split",
        "--task",
        "--json",
        "--compare",
        "--allow-missing",
        "--bootstrap",
        "--seed",
        "--bootstrap-unit",
    ):
        assert opt in r.stdout


def test_score_never_imports_torch(val, tmp_path):
    preds = write(tmp_path / "p.jsonl", answers(val))
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "import indomer.cli\n"
        f"r = CliRunner().invoke(indomer.cli.main, ['score', {preds!r}, *{refs_args(val)!r},"
        " '--bootstrap', '20'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert 'torch' not in sys.modules, 'indomer score imported torch'\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], check=False, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
