"""``indomer predict`` from the command line: ``--dry-run`` shows the first request and counts
the clips without sending or writing anything; bad options are one usage line. (Requests to a
served model: tests/test_predict.py, against a local fake server.)"""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main


def predict(built, out, *extra: str):
    return CliRunner().invoke(main, ["predict", str(built), "--endpoint",
                                     "http://127.0.0.1:9/v1/chat/completions", "--model", "m",
                                     "--split", "validation", "--out", str(out), *extra])


def test_dry_run_prints_the_first_request_and_sends_nothing(built, tmp_path):
    out = tmp_path / "p.jsonl"
    r = predict(built, out, "--modalities", "text", "--dry-run")
    assert r.exit_code == 0, r.output
    first = pd.read_parquet(next((built / "data").glob("validation-*.parquet")),
                            columns=["id", "text"])
    head, _, rest = r.stdout.partition("\n\n")
    assert head.splitlines() == [
        "POST http://127.0.0.1:9/v1/chat/completions",  # a pasted full URL is cut to the base
        "Authorization: Bearer EMPTY",
        "Content-Type: application/json",
    ]
    body = json.loads(rest[: rest.rindex("}") + 1])
    assert body["model"] == "m" and body["temperature"] == 0.0
    user = body["messages"][1]["content"]
    assert [p["type"] for p in user] == ["text"]
    assert user[0]["text"].endswith(first["text"].iloc[0])
    assert f"{len(first)} clip(s) of {len(first)} to ask" in r.output
    assert not out.exists()


def test_a_bad_option_is_one_usage_line(built, tmp_path):
    r = predict(built, tmp_path / "p.jsonl", "--modalities", "smell")
    assert r.exit_code == 2
    assert "--modalities 'smell': expected a comma-separated subset of text, audio, video" in (
        r.output)
