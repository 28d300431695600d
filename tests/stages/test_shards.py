"""The shards stage (:mod:`indomer.stages.shards`): what it declares it reads, and the cheap
checks that decide whether it reruns (clip stats, its files still there), and a small build's
shards read back by pyarrow."""

from __future__ import annotations

import os

from indomer.stage import Context, Inputs
from indomer.stages import shards
from indomer.tail import IDENTITY, LABELS, SPLIT


def test_it_reads_the_merge_and_split_and_needs_their_documents():
    assert shards.STAGE.reads == ("merge", "split")
    assert set(shards.STAGE.needs) == {LABELS, SPLIT, IDENTITY} and shards.STAGE.outputs == ()


def test_the_media_salt_follows_the_clip_files(tmp_path):
    clip = tmp_path / "work" / "c.wav"
    clip.parent.mkdir()
    clip.write_bytes(b"RIFF")
    inputs = Inputs({"merge": [{"id": "c", "audio_path": "work/c.wav", "video_path": None}]})
    first = shards.media_salt(inputs, tmp_path)
    assert shards.media_salt(inputs, tmp_path) == first
    os.utime(clip, ns=(1, 1))
    touched = shards.media_salt(inputs, tmp_path)
    assert touched != first
    clip.unlink()
    assert shards.media_salt(inputs, tmp_path) not in (first, touched)


def test_its_outputs_are_ok_only_while_every_file_is_unchanged(tmp_path):
    ctx = Context("shards", tmp_path, tmp_path / "work", None)
    assert not shards.shards_ok(ctx, [])  # no build.json: rerun
    (tmp_path / "build.json").write_text("{}")
    (tmp_path / "data").mkdir()
    shard = tmp_path / "data" / "x.parquet"
    shard.write_bytes(b"abc")
    row = {"id": "data/x.parquet", **shards._digest_bytes(shard)}
    assert shards.shards_ok(ctx, [row])
    shard.write_bytes(b"abd")
    assert not shards.shards_ok(ctx, [row])


def test_a_small_build_lists_the_shards_it_wrote_and_pyarrow_reads_them(tmp_path):
    """Through the real tail on the fake per-clip stages of tests/test_pipeline.py: the shards
    stage's listing holds each shard and the split document with their digests, the rows
    sit in the splits the split stage chose, with the clip bytes embedded."""
    import hashlib
    import json

    import pyarrow.parquet as pq
    import test_pipeline as tp

    from indomer.pipeline import STAGES

    out = tmp_path / "out"
    report = tp._build(tp.make_project(tmp_path / "p", n_sources=4, per_source=2), out)
    assert report["rows"] == {"train": 4, "validation": 2, "test": 2}
    work = out / "work" / f"{STAGES.index('shards') + 1:02d}_shards"
    cut = out / "work" / f"{STAGES.index('cut') + 1:02d}_cut"
    listing = [json.loads(line) for line in (work / "manifest.jsonl").read_text().splitlines()]
    names = sorted(r["id"] for r in listing)
    assert names == [*(f"data/{s}-00000-of-00001.parquet" for s in ("test", "train",
                                                                      "validation")),
                     "splits/speaker-disjoint.json"]  # fmt: skip
    for r in listing:
        data = (out / r["id"]).read_bytes()
        assert (r["sha256"], r["bytes"]) == (hashlib.sha256(data).hexdigest(), len(data))
    ctx = Context("shards", out, out / "work", None)
    assert shards.shards_ok(ctx, listing)
    doc = json.loads((out / "splits" / "speaker-disjoint.json").read_text())
    for split, n in report["rows"].items():
        rows = pq.read_table(out / f"data/{split}-00000-of-00001.parquet").to_pylist()
        assert len(rows) == n
        assert {r["source_id"] for r in rows} == set(doc["assignment"][split])
        for r in rows:
            clip = cut / "clips" / f"{r['id']}.wav"
            assert r["audio"] == {"bytes": clip.read_bytes(), "path": f"{r['id']}.wav"}
    shard = out / listing[0]["id"]
    shard.write_bytes(shard.read_bytes()[:-1] + b"\0")
    assert not shards.shards_ok(ctx, listing)  # a changed shard reruns the stage
