"""A built folder read back by every reader a user may pick: Hugging Face ``datasets`` (with
ClassLabel names, decodable Audio and Video), pandas, polars and DuckDB, all agreeing."""

from __future__ import annotations

import io
import wave
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from demo_build import demo_dataset

from indomer.dataset import available_splits, shard_paths

EMOTIONS = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
SCALARS = ["id", "source_id", "segment_index", "topic", "text", "emotion", "sentiment"]
SCALARS += ["text_sentiment", "audio_sentiment", "video_sentiment", "start", "end"]


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_dataset(tmp_path_factory)


def _pandas(out: Path, split: str) -> pd.DataFrame:
    """The reference: pandas over the split's shards (ClassLabel ids as plain ints)."""
    return pd.concat(
        [pd.read_parquet(p) for p in shard_paths(out, split)], ignore_index=True
    ).sort_values("id", ignore_index=True)


def _same(a: list, b: list) -> bool:
    def norm(v):
        if v is None or (isinstance(v, float) and np.isnan(v)):
            return None
        return v.item() if isinstance(v, np.generic) else v

    return [norm(v) for v in a] == [norm(v) for v in b]


# --------------------------------------------------------------------------- datasets


@pytest.mark.parametrize("loader", ["folder", "parquet"])
def test_datasets_gives_classlabel_names_for_the_demo(demo, loader):
    datasets = pytest.importorskip("datasets")
    if loader == "folder":
        ds = datasets.load_dataset(str(demo))
    else:
        files = {s: [str(p) for p in shard_paths(demo, s)] for s in available_splits(demo)}
        ds = datasets.load_dataset("parquet", data_files=files)
    assert {k: len(v) for k, v in ds.items()} == {"train": 9, "validation": 5, "test": 5}
    feats = ds["train"].features
    assert feats["emotion"].names == EMOTIONS
    assert feats["text_sentiment"].names == ["negative", "neutral", "positive"]
    assert type(feats["audio"]).__name__ == "Audio" and feats["audio"].sampling_rate == 16000
    assert type(feats["video"]).__name__ == "Video"
    for split in ds:
        ref = _pandas(demo, split)
        got = ds[split].select_columns(["id", "emotion", "sentiment", "text"]).to_pandas()
        got = got.sort_values("id", ignore_index=True)
        assert [EMOTIONS[i] for i in got["emotion"]] == [EMOTIONS[i] for i in ref["emotion"]]
        assert got["text"].tolist() == ref["text"].tolist()


def _torchcodec():
    pytest.importorskip("torch")
    pytest.importorskip("torchcodec", reason="datasets decodes media through torchcodec")


def test_audio_decodes_to_16khz_arrays_matching_the_wav(demo):
    datasets = pytest.importorskip("datasets")
    _torchcodec()
    ds = datasets.load_dataset(str(demo), split="validation")
    raw = {r["id"]: r for r in _pandas(demo, "validation").to_dict("records")}
    for row in ds:
        audio = row["audio"]
        assert audio["sampling_rate"] == 16000
        array = np.asarray(audio["array"])
        with wave.open(io.BytesIO(raw[row["id"]]["audio"]["bytes"])) as w:
            frames = w.readframes(w.getnframes())
            assert (w.getframerate(), w.getnchannels(), w.getsampwidth()) == (16000, 1, 2)
        pcm = np.frombuffer(frames, dtype="<i2").astype(np.float32) / 32768.0
        assert array.ndim == 1 and array.shape == pcm.shape
        assert np.abs(array - pcm).max() < 1e-4
        assert abs(len(array) / 16000 - (row["end"] - row["start"])) <= 1 / 25


def test_video_decodes_to_frames_of_the_clip_length(demo):
    datasets = pytest.importorskip("datasets")
    _torchcodec()
    ds = datasets.load_dataset(str(demo), split="test")
    for row in ds:
        video = row["video"]
        meta = video.metadata
        assert meta.codec == "h264" and meta.num_frames > 0
        assert abs(meta.duration_seconds - (row["end"] - row["start"])) <= 0.1
        frame = video.get_frame_at(0).data
        assert tuple(frame.shape) == (3, meta.height, meta.width) and str(frame.dtype) == (
            "torch.uint8"
        )
        assert int(frame.float().std()) > 0  # a picture, not a blank frame


# --------------------------------------------------------------------------- other readers


@pytest.mark.parametrize("which", ["release", "demo"])
def test_polars_and_duckdb_read_what_pandas_reads(which, built, demo):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    out = built if which == "release" else demo
    for split in available_splits(out):
        ref = _pandas(out, split)
        paths = [str(p) for p in shard_paths(out, split)]
        got_pl = pl.read_parquet(paths).sort("id")
        con = duckdb.connect()
        got_db = con.execute(
            f"SELECT * EXCLUDE (audio, video) FROM read_parquet({paths!r}) ORDER BY id"
        ).df()
        assert len(got_pl) == len(got_db) == len(ref) > 0
        for col in SCALARS:
            want = ref[col].tolist()
            assert _same(got_pl[col].to_list(), want), (split, col, "polars")
            assert _same(got_db[col].tolist(), want), (split, col, "duckdb")
        # nested columns: the same number of votes per row in every reader
        n_votes = [0 if v is None else len(v) for v in ref["annotations"]]
        assert [0 if v is None else len(v) for v in got_pl["annotations"].to_list()] == n_votes
        db_votes = con.execute(
            f"SELECT coalesce(len(annotations), 0) FROM read_parquet({paths!r}) ORDER BY id"
        ).fetchall()
        assert [r[0] for r in db_votes] == n_votes
        con.close()
    if which == "release":
        total = duckdb.sql(
            f"SELECT emotion, count(*) AS n FROM read_parquet('{out}/data/*.parquet') "
            "GROUP BY emotion ORDER BY emotion"
        ).fetchall()
        assert total == [(0, 82), (1, 38), (2, 9), (3, 317), (4, 1316), (5, 174), (6, 8)]


def test_media_bytes_agree_between_pandas_polars_and_duckdb(demo):
    pl = pytest.importorskip("polars")
    duckdb = pytest.importorskip("duckdb")
    paths = [str(p) for p in shard_paths(demo, "train")]
    ref = _pandas(demo, "train")
    got_pl = pl.read_parquet(paths).sort("id")
    got_db = duckdb.connect().execute(
        f"SELECT audio.bytes AS a, video.bytes AS v FROM read_parquet({paths!r}) ORDER BY id"
    )
    rows = got_db.fetchall()
    for i, r in enumerate(ref.to_dict("records")):
        assert got_pl["audio"][i]["bytes"] == r["audio"]["bytes"] == bytes(rows[i][0])
        assert got_pl["video"][i]["bytes"] == r["video"]["bytes"] == bytes(rows[i][1])
        assert r["video"]["bytes"][4:8] == b"ftyp"
