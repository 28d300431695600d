"""The shards stage (:mod:`indomer.stages.shards`): what it declares it reads, and the cheap
checks that decide whether it reruns (clip stats, its files still there)."""

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
