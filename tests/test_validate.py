"""``indomer validate`` finds each kind of damage and passes a clean build."""

from __future__ import annotations

import shutil

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
from click.testing import CliRunner

from indomer.cli import main
from indomer.dataset import read_split, write_split
from indomer.validate import validate


def _copy(built, tmp_path):
    out = tmp_path / "copy"
    shutil.copytree(built, out, symlinks=True)
    return out


def test_clean_build_is_valid(built):
    problems, warnings = validate(built)
    assert problems == []
    assert any("no speaker_id" in w for w in warnings)
    res = CliRunner().invoke(main, ["validate", str(built)])
    assert res.exit_code == 0 and res.output.strip().endswith("valid")


def test_leakage_and_duplicates_are_found(built, tmp_path):
    out = _copy(built, tmp_path)
    val = read_split(out, "validation")
    train = read_split(out, "train")
    moved = train[train["source_id"] == "1"].copy()
    write_split(out, "validation", pd.concat([val, moved.iloc[:1]], ignore_index=True))
    problems, _ = validate(out)
    assert any("source_id in more than one split (leakage): 1" in p for p in problems)
    assert any(p.startswith("duplicate ids: clip_1_Cooking_") for p in problems)
    assert any("sha256 differs from build.json" in p for p in problems)
    res = CliRunner().invoke(main, ["validate", str(out)])
    assert res.exit_code == 1


def test_label_out_of_range_stray_file_and_bad_audio(built, tmp_path):
    out = _copy(built, tmp_path)
    path = out / "data/validation-00000-of-00001.parquet"
    table = pq.read_table(path)
    emo = table.column("emotion").to_pylist()
    emo[0] = 9
    table = table.set_column(
        table.schema.get_field_index("emotion"), "emotion", pa.array(emo, pa.int64())
    )
    audio = [None] * table.num_rows
    audio[1] = {"bytes": b"RIFF not really", "path": "x.wav"}
    table = table.set_column(
        table.schema.get_field_index("audio"),
        table.schema.field("audio"),
        pa.array(audio, table.schema.field("audio").type),
    )
    pq.write_table(table, path)
    (out / "data/validation.parquet.bak").write_bytes(b"")
    problems, _ = validate(out)
    joined = "\n".join(problems)
    assert "emotion id 9 outside 0..6" in joined
    assert "audio not a PCM WAV" in joined
    assert "validation.parquet.bak: not named" in joined


def test_missing_build_json(built, tmp_path):
    out = _copy(built, tmp_path)
    (out / "build.json").unlink()
    problems, _ = validate(out)
    assert problems == [f"{out / 'build.json'}: missing; rebuild with 'indomer build'"]


def _small(tmp_path, check) -> object:
    from indomer.generation import write_dataset

    df = pd.DataFrame(
        {"id": ["clip_1_A_1"], "source_id": ["1"], "speaker_id": ["S1"], "text": ["kata"],
         "emotion": ["neutral"], "sentiment": ["neutral"], "speaker_check": [check]}
    )  # fmt: skip
    out = tmp_path / "ds"
    write_dataset(out, {"train": df}, {"command": "test"})
    return out


def test_speaker_check_values_are_checked(tmp_path):
    good = {"n_speakers": 2, "primary_share": 0.6, "overlap": 0.1, "flagged": True}
    assert not [p for p in validate(_small(tmp_path / "a", good))[0] if "speaker_check" in p]
    bad = {**good, "primary_share": 1.5}
    problems, _ = validate(_small(tmp_path / "b", bad))
    assert any("clip_1_A_1: speaker_check primary_share 1.5 outside 0..1" in p for p in problems)


def test_shards_without_the_newer_column_are_valid_with_a_warning(tmp_path):
    import json

    out = _small(tmp_path, None)
    for shard in (out / "data").glob("*.parquet"):  # as an older indomer wrote them
        table = pq.read_table(shard).drop_columns(["speaker_check"])
        meta = dict(table.schema.metadata)
        hf = json.loads(meta[b"huggingface"])
        del hf["info"]["features"]["speaker_check"]
        meta[b"huggingface"] = json.dumps(hf).encode()
        target = shard.resolve()
        target.unlink()
        pq.write_table(table.replace_schema_metadata(meta), target)
    problems, warnings = validate(out)
    assert not [p for p in problems if "schema" in p or "feature" in p], problems
    assert any("no speaker_check column" in w for w in warnings), warnings
