"""``indomer baseline``: the majority baseline answers the most frequent train label for
every clip of the predicted split, and records its settings beside the predictions."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.labels import label_set


def names(built, split: str, task: str) -> list[str]:
    (shard,) = sorted((built / "data").glob(f"{split}-*.parquet"))
    return [label_set(task).names[i] for i in pd.read_parquet(shard, columns=[task])[task]]


def test_majority_predicts_the_most_frequent_train_label(built, tmp_path):
    out = tmp_path / "maj.jsonl"
    r = CliRunner().invoke(main, ["baseline", str(built), "--method", "majority", "--task",
                                  "sentiment", "--out", str(out)])
    assert r.exit_code == 0, r.output
    (top, _), = Counter(names(built, "train", "sentiment")).most_common(1)
    rows = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    (shard,) = sorted((built / "data").glob("validation-*.parquet"))
    ids = pd.read_parquet(shard, columns=["id"])["id"].tolist()
    assert [row["id"] for row in rows] == ids  # every clip of the split, in dataset order
    assert {row["sentiment"] for row in rows} == {top}
    assert {row["model"] for row in rows} == {"majority"}
    meta = json.loads((tmp_path / "maj.jsonl.meta.json").read_text("utf-8"))
    assert meta["method"] == "majority"
    assert f"{len(ids)} sentiment predictions for 'validation'" in r.output


def test_predicting_the_split_it_learns_from_is_refused(built, tmp_path):
    r = CliRunner().invoke(main, ["baseline", str(built), "--method", "majority", "--split",
                                  "train", "--out", str(tmp_path / "p.jsonl")])
    assert r.exit_code == 2, r.output
    assert not (tmp_path / "p.jsonl").exists()
