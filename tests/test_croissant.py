"""croissant.json: Croissant 1.0 that mlcroissant loads without errors and reads back as the
same records, checksums and label names as the Parquet shards."""

from __future__ import annotations

import hashlib
import json

import pandas as pd
import pytest
from demo_build import demo_dataset

from indomer.dataset import available_splits, read_split

mlc = pytest.importorskip("mlcroissant")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    return demo_dataset(tmp_path_factory)


def _load(out):
    # mlcroissant walks the folder without following links, so it is given the generation
    # the dataset's links lead to (the README says so): the same files, as real folders.
    ds = mlc.Dataset(jsonld=str((out / "croissant.json").resolve()))
    issues = ds.metadata.issues
    assert not issues.errors, issues.report()
    # the only recommendation left unmet: a publication date (a build has none to give)
    assert all("datePublished" in w for w in issues.warnings), issues.report()
    return ds


def _text(v):
    return v.decode("utf-8") if isinstance(v, bytes) else v


def test_release_croissant_describes_the_shards(built):
    doc = json.loads((built / "croissant.json").read_text())
    assert doc["conformsTo"] == "http://mlcommons.org/croissant/1.0"
    assert doc["@type"] == "sc:Dataset" and doc["inLanguage"] == "id"
    files = [d for d in doc["distribution"] if d["@type"] == "cr:FileObject"]
    assert [f["contentUrl"] for f in files] == [
        "data/train-00000-of-00001.parquet",
        "data/validation-00000-of-00001.parquet",
    ]
    for f in files:
        data = (built / f["contentUrl"]).read_bytes()
        assert f["sha256"] == hashlib.sha256(data).hexdigest()
        assert f["contentSize"] == f"{len(data)} B"
        assert f["encodingFormat"] == "application/x-parquet"
    (fileset,) = [d for d in doc["distribution"] if d["@type"] == "cr:FileSet"]
    assert fileset["includes"] == "data/*.parquet"
    records = {r["@id"]: r for r in doc["recordSet"]}
    fields = {f["name"]: f for f in records["segments"]["field"]}
    assert fields["emotion"]["references"] == {"field": {"@id": "emotion_labels/id"}}
    assert fields["video_sentiment"]["references"] == {"field": {"@id": "sentiment_labels/id"}}
    assert "0 anger, 1 disgust, 2 fear" in fields["emotion"]["description"]
    assert records["emotion_labels"]["dataType"] == "sc:Enumeration"
    # the licence text is the card's, the citation the OmniMER paper
    assert "without a stated licence" in doc["license"]
    assert "arXiv:2512.19379" in doc["citeAs"]


def test_mlcroissant_loads_and_reads_the_release_records(built):
    ds = _load(built)
    emo = list(ds.records("emotion_labels"))
    assert [(r["emotion_labels/id"], _text(r["emotion_labels/name"])) for r in emo] == list(
        enumerate(["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"])
    )
    assert [_text(r["emotion_labels/release"]) for r in emo][4] == "netral"
    sent = [_text(r["sentiment_labels/name"]) for r in ds.records("sentiment_labels")]
    assert sent == ["negative", "neutral", "positive"]
    rows = pd.DataFrame(
        {
            "id": _text(r["segments/id"]),
            "split": _text(r["segments/split"]),
            "emotion": r["segments/emotion"],
            "audio_sentiment": r["segments/audio_sentiment"],
            "text": _text(r["segments/text"]),
        }
        for r in ds.records("segments")
    ).set_index("id")
    assert len(rows) == 1944 and rows["split"].value_counts().to_dict() == {
        "train": 1588,
        "validation": 356,
    }
    names = ["anger", "disgust", "fear", "happiness", "neutral", "sadness", "surprise"]
    for split in available_splits(built):
        df = read_split(built, split).set_index("id")
        got = rows[rows["split"] == split].loc[df.index]
        assert [names[i] for i in got["emotion"]] == df["emotion"].tolist()
        assert got["text"].tolist() == df["text"].tolist()
    assert rows.loc["clip_2_Cooking_1", "text"] == "Tentang ikan dan olahannya seperti apa."


def test_mlcroissant_reads_demo_media_bytes_and_three_splits(demo):
    ds = _load(demo)
    assert [_text(r["splits/name"]) for r in ds.records("splits")] == [
        "train",
        "validation",
        "test",
    ]
    records = {_text(r["segments/id"]): r for r in ds.records("segments")}
    assert len(records) == 19
    for split in available_splits(demo):
        df = read_split(demo, split)
        for row in df.itertuples():
            rec = records[row.id]
            assert _text(rec["segments/split"]) == split
            assert rec["segments/audio"] == row.audio["bytes"]
            assert rec["segments/video"] == row.video["bytes"]
            assert (rec["segments/start"], rec["segments/end"]) == (row.start, row.end)
            votes = rec["segments/annotations"]
            assert len(votes) == len(row.annotations)
            assert (
                _text(votes[0]["segments/annotations/annotator"]) == row.annotations[0]["annotator"]
            )
