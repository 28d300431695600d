"""``indomer demo`` end to end: the real pipeline on the synthetic corpus, against its truth."""

from __future__ import annotations

import csv
import io
import json
import wave

import pytest
from click.testing import CliRunner

from indomer.cli import main
from indomer.dataset import available_splits, read_split


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "d"
    res = CliRunner().invoke(main, ["demo", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out, res.output


def _all(dataset):
    import pandas as pd

    return pd.concat([read_split(dataset, s) for s in available_splits(dataset)], ignore_index=True)


def test_demo_builds_a_valid_dataset_matching_the_truth(demo):
    out, output = demo
    assert "validate " in output and ": valid" in output
    assert "baseline: predict the train majority" in output and "macro_f1" in output
    truth = json.loads((out / "corpus" / "truth.json").read_text())
    df = _all(out / "dataset").set_index("id")
    assert sorted(df.index) == sorted(truth)
    with open(out / "corpus" / "transcripts.csv", encoding="utf-8", newline="") as fh:
        transcripts = {r["id"]: r["text"] for r in csv.DictReader(fh)}
    for seg, t in truth.items():
        row = df.loc[seg]
        assert abs(row["start"] - t["start"]) <= 0.25 and abs(row["end"] - t["end"]) <= 0.25, seg
        assert row["emotion"] == t["emotion"], seg  # majority or expert recovers the intent
        assert row["text"] == transcripts[seg]
    # every third segment had three different annotator votes: the expert decided
    assert int(df["adjudicated"].sum()) == 7
    assert set(available_splits(out / "dataset")) == {"train", "validation", "test"}


def test_demo_clips_are_embedded_media_of_the_right_length(demo):
    out, _ = demo
    df = _all(out / "dataset")
    for row in df.itertuples():
        with wave.open(io.BytesIO(row.audio["bytes"])) as w:
            assert (w.getframerate(), w.getnchannels()) == (16000, 1)
            assert abs(w.getnframes() / 16000 - (row.end - row.start)) <= 1 / 25
        assert row.video["bytes"][4:8] == b"ftyp"


def test_rebuilding_the_demo_is_a_no_op(demo):
    from indomer.pipeline import run_pipeline

    out, _ = demo
    shards = {p.name: p.read_bytes() for p in (out / "dataset" / "data").glob("*.parquet")}
    report = run_pipeline(out / "corpus" / "config.yaml", out / "dataset", quiet=True, log=lambda m: None)
    assert {s["status"] for s in report["stages"]} == {"skipped"}, report["stages"]
    assert {p.name: p.read_bytes() for p in (out / "dataset" / "data").glob("*.parquet")} == shards
