"""``indomer stats``: the counts it prints and writes are those of the dataset's shards."""

from __future__ import annotations

import json
from collections import Counter

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.labels import label_set


def shards(out, split: str) -> pd.DataFrame:
    return pd.concat(pd.read_parquet(p) for p in sorted((out / "data").glob(f"{split}-*.parquet")))


def test_json_counts_match_the_shards(built):
    r = CliRunner().invoke(main, ["stats", str(built), "--json", "-"])
    assert r.exit_code == 0, r.output
    doc = json.loads(r.stdout)
    for split in ("train", "validation"):
        frame = shards(built, split)
        got = doc["splits"][split]
        assert got["segments"] == len(frame)
        assert got["videos"] == frame["source_id"].nunique()
        for task in ("emotion", "sentiment"):
            names = label_set(task).names  # shards hold class indices in labels.yaml order
            assert got["classes"][task] == dict(Counter(names[i] for i in frame[task]))
    assert doc["overall"]["segments"] == sum(doc["splits"][s]["segments"] for s in doc["splits"])


def test_the_table_is_printed_and_a_missing_dataset_is_a_usage_error(built, tmp_path):
    r = CliRunner().invoke(main, ["stats", str(built)])
    assert r.exit_code == 0, r.output
    header = r.stdout.splitlines()[0].split()
    assert header == ["overall", "train", "validation"]
    segments = next(line for line in r.stdout.splitlines() if line.startswith("segments"))
    n_train, n_val = len(shards(built, "train")), len(shards(built, "validation"))
    assert segments.split()[1:] == [str(n_train + n_val), str(n_train), str(n_val)]
    r = CliRunner().invoke(main, ["stats", str(tmp_path / "none")])
    assert r.exit_code == 2 and "none" in r.output
