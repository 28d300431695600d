"""Shard writing: schema, HF metadata, round trip, atomic replacement, determinism."""

from __future__ import annotations

import json

import pandas as pd
import pyarrow.parquet as pq
import pytest

from indomer import dataset
from indomer.dataset import SCHEMA, read_split, shard_paths, write_split
from indomer.errors import UsageError


def _df(n: int = 5) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"clip_{i % 2}_Cooking_{i + 1}" for i in range(n)][::-1],
            "source_id": [str(i % 2) for i in range(n)][::-1],
            "segment_index": [i + 1 for i in range(n)][::-1],
            "topic": ["Cooking"] * n,
            "text": [f"kata {i}" for i in range(n)][::-1],
            "emotion": (["happiness", "neutral", "fear", "surprise", "anger"] * n)[:n],
            "sentiment": (["positive", "neutral", "negative", "positive", "negative"] * n)[:n],
            "words": [[{"word": "kata", "start": 0.0, "end": None, "score": None}]] * n,
        }
    )


def test_round_trip_keeps_names_nulls_and_sorts_by_id(tmp_path):
    write_split(tmp_path, "train", _df())
    back = read_split(tmp_path, "train")
    assert list(back["id"]) == sorted(_df()["id"])
    assert list(back.columns) == list(SCHEMA.names)
    original = _df().set_index("id")
    for row in back.itertuples():
        assert row.emotion == original.loc[row.id, "emotion"]
    assert back["text_sentiment"].isna().all() and back["audio"].isna().all()
    assert back["words"][0] == [{"word": "kata", "start": 0.0, "end": None, "score": None}]


def test_labels_are_stored_as_classlabel_ids_with_names_in_metadata(tmp_path):
    (path,) = write_split(tmp_path, "validation", _df())
    table = pq.read_table(path)
    assert table.schema.field("emotion").type == "int64"
    by_id = dict(zip(table.column("id").to_pylist(), table.column("emotion").to_pylist()))
    assert by_id["clip_0_Cooking_5"] == 3  # happiness is id 3 in DESIGN order
    assert by_id["clip_0_Cooking_1"] == 0  # anger
    feats = json.loads(table.schema.metadata[b"huggingface"])["info"]["features"]
    assert feats["emotion"]["names"][3] == "happiness"
    assert feats["audio"] == {"sampling_rate": 16000, "decode": True, "_type": "Audio"}


def test_same_rows_give_identical_bytes(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    write_split(a, "train", _df())
    write_split(b, "train", _df().sample(frac=1, random_state=3))
    assert (a / "data/train-00000-of-00001.parquet").read_bytes() == (
        b / "data/train-00000-of-00001.parquet"
    ).read_bytes()


def test_many_shards_when_media_is_large(tmp_path, monkeypatch):
    monkeypatch.setattr(dataset, "MAX_SHARD_BYTES", 2_500)
    df = _df(8)
    df["audio"] = [{"bytes": b"x" * 1000, "path": f"{i}.wav"} for i in df["id"]]
    paths = write_split(tmp_path, "train", df)
    assert [p.name for p in paths] == [f"train-{i:05d}-of-00004.parquet" for i in range(4)]
    assert len(read_split(tmp_path, "train")) == 8


def test_interrupted_write_leaves_old_shards_whole(tmp_path, monkeypatch):
    write_split(tmp_path, "train", _df(3))
    before = {p.name: p.read_bytes() for p in shard_paths(tmp_path, "train")}

    real = dataset.pq.ParquetWriter.write_table

    def boom(self, table, **kwargs):
        real(self, table, **kwargs)  # the first row group reaches the temp file,
        raise KeyboardInterrupt  # then the process "dies"

    monkeypatch.setattr(dataset.pq.ParquetWriter, "write_table", boom)
    with pytest.raises(KeyboardInterrupt):
        write_split(tmp_path, "train", _df(5))
    monkeypatch.undo()
    assert {p.name: p.read_bytes() for p in shard_paths(tmp_path, "train")} == before
    assert len(read_split(tmp_path, "train")) == 3
    # the next write clears the leftover temporary file
    write_split(tmp_path, "train", _df(5))
    assert not (tmp_path / "data" / ".tmp").exists()
    assert len(read_split(tmp_path, "train")) == 5


def test_missing_split_names_what_exists(tmp_path):
    write_split(tmp_path, "train", _df())
    with pytest.raises(UsageError, match=r"no 'test' split \(found: train\)"):
        read_split(tmp_path, "test")
    with pytest.raises(UsageError, match="unknown split"):
        write_split(tmp_path, "dev", _df())


def test_shards_carry_their_provenance_in_parquet_metadata(built, tmp_path):
    """DESIGN §7.6: a shard found alone still says which release and version made it."""
    import shutil

    from indomer import __version__
    from indomer.dataset import read_meta
    from indomer.split import resplit

    meta = read_meta(built)
    assert meta["indomer"] == __version__ and meta["command"] == "build --release"
    assert meta["source"]["verified"] is True
    assert set(meta["source"]["files"]) >= {"Annotations.csv"}
    # a re-split keeps it
    copy = tmp_path / "copy"
    shutil.copytree(built, copy, symlinks=True)
    resplit(copy, ratios=(0.8, 0.2), seed=1, name="s1", warn=lambda m: None)
    assert read_meta(copy) == meta


def test_rejected_jsonl_has_one_style(release_copy, tmp_path):
    """Issue 22: one writer for rejected.jsonl: a release build's file is what
    manifest.rejected_bytes writes for its entries (compact, sorted keys), as a raw build's
    stages and dataset are."""
    import csv

    from indomer.build import build_release
    from indomer.manifest import rejected_bytes

    path = release_copy / "Annotations.csv"
    with path.open(newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    rows[2]["sentiment"] = "bingung"  # an unknown label: one rejected row
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = tmp_path / "ds"
    build_release(str(release_copy), out, log=lambda m: None)
    data = (out / "rejected.jsonl").read_bytes()
    entries = [json.loads(line) for line in data.decode().splitlines()]
    assert [e["reason"] for e in entries if "bingung" in e["reason"]], entries
    assert data == rejected_bytes(entries)
    assert b'", "' not in data and b'": ' not in data


def test_snapshot_reads_rows_and_names_a_damaged_shard(tmp_path):
    """The one reader: rows with label names, a column the shards lack is None, and a
    damaged shard is one DataError line naming the file (exit 1 in every command)."""
    from indomer.dataset import snapshot
    from indomer.errors import DataError

    write_split(tmp_path, "train", _df())
    with snapshot(tmp_path) as snap:
        rows = list(snap.iter_rows("train", ["id", "emotion", "speaker_check", "no_such"]))
        assert [r["id"] for r in rows] == sorted(_df()["id"])
        assert {r["emotion"] for r in rows} <= set(dataset.label_set("emotion").names)
        assert all(r["no_such"] is None and r["speaker_check"] is None for r in rows)
        with pytest.raises(UsageError, match="no 'test' split"):
            list(snap.iter_rows("test"))
    (shard,) = shard_paths(tmp_path, "train")
    shard.write_bytes(shard.read_bytes()[:100])
    with (
        pytest.raises(DataError, match=rf"{shard.name}: not a readable Parquet shard"),
        snapshot(tmp_path) as snap,
    ):
        list(snap.iter_rows("train"))


def test_columns_except_follows_the_schema_order():
    """Readers name the columns they skip, so a column added to the schema reaches them."""
    kept = dataset.columns_except(*dataset.MEDIA_COLUMNS, "words")
    assert kept == tuple(c for c in SCHEMA.names if c not in ("audio", "video", "words"))
    assert kept[:3] == ("id", "source_id", "segment_index")
    with pytest.raises(ValueError, match="not dataset columns: gender"):
        dataset.columns_except("gender")


def test_hf_features_follow_the_schema_column_by_column():
    """The features are derived from SCHEMA, so a new column cannot be left out of them."""
    feats = dataset.hf_features()
    assert tuple(feats) == dataset.COLUMNS
    assert feats["segment_index"] == {"dtype": "int32", "_type": "Value"}
    assert feats["start"] == {"dtype": "float64", "_type": "Value"}
    assert feats["emotion"]["names"][:2] == ["anger", "disgust"]
    assert feats["emotion"]["_type"] == "ClassLabel"
    assert feats["words"] == [
        {name: {"dtype": dt, "_type": "Value"} for name, dt in
         (("word", "string"), ("start", "float64"), ("end", "float64"), ("score", "float64"))}
    ]
    assert feats["face"]["box"] == [{"dtype": "float64", "_type": "Value"}]
    assert feats["audio"] == {"sampling_rate": 16_000, "decode": True, "_type": "Audio"}
    assert feats["video"] == {"decode": True, "_type": "Video"}
    assert feats["speaker_check"]["flagged"] == {"dtype": "bool", "_type": "Value"}
