"""``indomer export``: one record per clip and task whose answer is the clip's label, a
provenance file naming the shards it read, the same bytes on a rerun, and no writing into
the dataset."""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.labels import label_set


def export(built, to, *extra: str):
    return CliRunner().invoke(main, ["export", str(built), "--format", "ms-swift", "--split",
                                     "validation", "--tasks", "emotion,sentiment", "--to",
                                     str(to), *extra])


def test_records_answer_with_the_labels_of_the_shards(built, tmp_path):
    r = export(built, tmp_path / "swift")
    assert r.exit_code == 0, r.output
    (shard,) = sorted((built / "data").glob("validation-*.parquet"))
    frame = pd.read_parquet(shard)
    lines = (tmp_path / "swift" / "validation.jsonl").read_text("utf-8").splitlines()
    assert len(lines) == 2 * len(frame)
    answers = Counter(json.loads(line)["messages"][-1]["content"] for line in lines)
    want = Counter()
    for task in ("emotion", "sentiment"):
        want.update(label_set(task).names[i] for i in frame[task])
    assert answers == want
    meta = json.loads((tmp_path / "swift" / "export.json").read_text("utf-8"))
    assert meta["records"] == {"emotion": len(frame), "sentiment": len(frame)}
    assert meta["source_shards"] == [
        {"file": shard.name, "sha256": hashlib.sha256(shard.read_bytes()).hexdigest()}
    ]
    first = (tmp_path / "swift" / "validation.jsonl").read_bytes()
    assert export(built, tmp_path / "swift").exit_code == 0
    assert (tmp_path / "swift" / "validation.jsonl").read_bytes() == first


def test_a_folder_inside_the_dataset_is_refused(built):
    r = export(built, built / "records")
    assert r.exit_code == 2
    assert f"{built / 'records'}: inside the dataset {built}; choose a folder outside" in r.output
    assert not (built / "records").exists()
