"""``indomer build --release`` end to end, read back by pyarrow and Hugging Face datasets."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import truth
from click.testing import CliRunner

from indomer.cli import main


def _files(out):
    """Every file as a reader sees it: through the dataset's links, not under .indomer/."""
    found = {}
    for dirpath, dirs, files in os.walk(out, followlinks=True):
        dirs[:] = [d for d in dirs if d != ".indomer"]
        for name in files:
            p = Path(dirpath) / name
            found[p.relative_to(out).as_posix()] = p.read_bytes()
    return dict(sorted(found.items()))


def test_build_writes_the_documented_layout(built):
    names = set(_files(built))
    assert {
        "README.md",
        "build.json",
        "rejected.jsonl",
        "splits/official.json",
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
    } <= names
    assert (built / "rejected.jsonl").read_text() == ""
    build = json.loads((built / "build.json").read_text())
    assert build["rows"] == {"train": 1588, "validation": 356}
    assert len(build["repaired_texts"]) == 15
    assert build["split"] == {"name": "official", "file": "splits/official.json"}
    assert set(build["inputs"]) == {
        "Annotations.csv",
        "7_Class/7_class_train.json",
        "7_Class/7_class_val.json",
        "3_Class/3_class_train.json",
        "3_Class/3_class_val.json",
    }
    official = json.loads((built / "splits/official.json").read_text())
    assert (
        len(official["assignment"]["train"]) == 173
        and len(official["assignment"]["validation"]) == 34
    )
    assert not set(official["assignment"]["train"]) & set(official["assignment"]["validation"])


def test_load_dataset_gives_classlabel_names_in_design_order(built):
    datasets = pytest.importorskip("datasets")
    ds = datasets.load_dataset(str(built))
    assert {k: len(v) for k, v in ds.items()} == {"train": 1588, "validation": 356}
    assert tuple(ds["train"].features["emotion"].names) == truth.EMOTIONS
    assert ds["validation"].features["video_sentiment"].names == ["negative", "neutral", "positive"]
    emo = ds["validation"].features["emotion"]
    counts = Counter(emo.int2str(i) for i in ds["validation"]["emotion"])
    assert counts == truth.VAL_EMOTION
    row = ds["validation"].filter(lambda r: r["id"] == "clip_2_Cooking_1")[0]
    assert row["text"] == "Tentang ikan dan olahannya seperti apa." and row["source_id"] == "2"


def test_card_numbers_come_from_the_shards(built):
    card = (built / "README.md").read_text(encoding="utf-8")
    header = card.split("---\n")[1]
    assert "num_examples: 1588" in header and "num_examples: 356" in header
    rows = {
        s: pq.ParquetFile(built / f"data/{s}-00000-of-00001.parquet").metadata.num_rows
        for s in ("train", "validation")
    }
    assert re.search(
        rf"\| segments \| {sum(rows.values())} \| {rows['train']} \| {rows['validation']} \|", card
    )
    assert "| source videos | 207 | 173 | 34 |" in card
    assert "| fear | ketakutan | 5 | 4 | 9 |" in card
    assert "- 15 transcripts in `Annotations.csv` are GBK mojibake" in card


def test_two_builds_are_byte_identical(release_dir, built, tmp_path):
    result = CliRunner().invoke(
        main, ["build", "--release", str(release_dir), "--out", str(tmp_path / "b")]
    )
    assert result.exit_code == 0, result.output
    assert "built 1944 rows (train 1588, validation 356)" in result.output
    assert _files(tmp_path / "b") == _files(built)


def test_rebuild_in_place_replaces_and_refuses_foreign_folders(release_dir, tmp_path):
    out = tmp_path / "o"
    runner = CliRunner()
    assert (
        runner.invoke(main, ["build", "--release", str(release_dir), "--out", str(out)]).exit_code
        == 0
    )
    (out / "data" / "test-00000-of-00001.parquet").write_bytes(
        (out / "data" / "validation-00000-of-00001.parquet").read_bytes()
    )
    assert (
        runner.invoke(main, ["build", "--release", str(release_dir), "--out", str(out)]).exit_code
        == 0
    )
    assert not (out / "data" / "test-00000-of-00001.parquet").exists()
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    res = runner.invoke(main, ["build", "--release", str(release_dir), "--out", str(foreign)])
    assert res.exit_code == 2
    assert res.output.strip().endswith(
        "not empty (notes.txt) and not an indomer dataset; choose an empty or new --out folder"
    )
    assert (foreign / "notes.txt").read_text() == "keep me"


def test_bad_release_path_is_a_usage_error(tmp_path):
    res = CliRunner().invoke(
        main, ["build", "--release", str(tmp_path), "--out", str(tmp_path / "o")]
    )
    assert res.exit_code == 2
    assert res.output.count("\n") == 1 and "no Annotations.csv" in res.output


def test_help_and_commands_do_not_import_torch(built):
    code = (
        "import sys\n"
        "from click.testing import CliRunner\n"
        "from indomer.cli import main\n"
        "r = CliRunner().invoke(main, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        f"r = CliRunner().invoke(main, ['stats', {str(built)!r}])\n"
        "assert r.exit_code == 0, r.output\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'whisperx', 'cv2')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_all_neutral_baseline_on_the_built_dataset(built, tmp_path):
    from indomer.dataset import read_split

    ids = read_split(built, "validation", columns=["id"])["id"]
    preds = tmp_path / "neutral.jsonl"
    preds.write_text(
        "".join(
            json.dumps({"id": i, "emotion": "netral", "sentiment": "neutral"}) + "\n" for i in ids
        )
    )
    out = tmp_path / "s.json"
    res = CliRunner().invoke(main, ["score", str(preds), "--refs", str(built), "--json", str(out)])
    assert res.exit_code == 0, res.output
    scores = json.loads(out.read_text())
    assert round(scores["emotion"]["metrics"]["macro_f1"], 4) == 0.1211
    assert round(scores["sentiment"]["metrics"]["macro_f1"], 4) == 0.2826
    assert scores["emotion"]["n"] == 356 and scores["emotion"]["split"] == "validation"
