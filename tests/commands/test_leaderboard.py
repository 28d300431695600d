"""``indomer leaderboard``: systems ranked by macro-F1 with the numbers ``indomer score``
gives, checked on two systems whose scores are known by hand."""

from __future__ import annotations

import json

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.labels import label_set


def write_preds(path, ids, labels) -> str:
    path.write_text("".join(json.dumps({"id": i, "emotion": y}) + "\n"
                            for i, y in zip(ids, labels)), encoding="utf-8")
    return str(path)


def test_a_perfect_system_ranks_above_the_majority_one(built, tmp_path):
    (shard,) = sorted((built / "data").glob("validation-*.parquet"))
    frame = pd.read_parquet(shard, columns=["id", "emotion"])
    truth = [label_set("emotion").names[i] for i in frame["emotion"]]
    ids = frame["id"].tolist()
    majority = write_preds(tmp_path / "majority.jsonl", ids, ["neutral"] * len(ids))
    perfect = write_preds(tmp_path / "perfect.jsonl", ids, truth)
    r = CliRunner().invoke(main, ["leaderboard", majority, perfect, "--refs", str(built),
                                  "--json", "-", "--bootstrap", "20"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    assert doc["n"] == len(ids) and doc["split"] == "validation" and doc["task"] == "emotion"
    by_name = {s["name"]: s for s in doc["systems"]}
    assert by_name["perfect"]["rank"] == 1 and by_name["majority"]["rank"] == 2
    assert by_name["perfect"]["metrics"]["macro_f1"] == 1.0
    # majority: accuracy is the neutral share; macro-F1 is neutral's F1 over the classes present
    share = truth.count("neutral") / len(truth)
    f1 = 2 * truth.count("neutral") / (truth.count("neutral") + len(truth))
    assert abs(by_name["majority"]["metrics"]["accuracy"] - share) < 1e-12
    assert abs(by_name["majority"]["metrics"]["macro_f1"] - f1 / len(set(truth))) < 1e-12


def test_a_file_predicting_another_split_is_a_data_error(built, tmp_path):
    preds = write_preds(tmp_path / "p.jsonl", ["clip_nope_X_1"], ["neutral"])
    r = CliRunner().invoke(main, ["leaderboard", preds, "--refs", str(built)])
    assert r.exit_code == 1, r.output
    assert "p.jsonl" in r.output and "clip_nope_X_1" in r.output
