"""``indomer.scoring.reader``: references (built dataset or release JSON) and preds.jsonl."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from indomer.dataset import write_split
from indomer.errors import DataError, UsageError
from indomer.labels import TASKS
from indomer.scoring import score_predictions
from indomer.scoring.reader import load_references, read_predictions, resampling_units
from scoring.helpers import release_refs, write_jsonl

# --------------------------------------------------------------------------------------------
# References


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [f"clip_{v}_Cooking_{i}" for v in (1, 2, 3) for i in (1, 2)],
            "source_id": ["1", "1", "2", "2", "3", "3"],
            "speaker_id": ["spk_a", "spk_a", "spk_a", "spk_a", "spk_b", "spk_b"],
            "emotion": ["happiness", "neutral", "sadness", "anger", "neutral", "surprise"],
            "sentiment": ["positive", "neutral", "negative", "negative", "neutral", "positive"],
        }
    )


def test_refs_as_built_dataset(tmp_path):
    out = tmp_path / "ds"
    write_split(out, "validation", _frame())
    write_split(out, "test", _frame().iloc[:2])
    refs = load_references([out])
    assert refs.split == "validation"
    assert len(refs.frame) == 6
    assert refs.has_task("emotion") and not refs.has_task("text_sentiment")
    rows = [{"id": i, "emotion": e} for i, e in zip(_frame()["id"], _frame()["emotion"])]
    rows[0]["emotion"] = "sedih"  # wrong on one clip
    preds = write_jsonl(tmp_path / "p.jsonl", rows)
    r = score_predictions(preds, out, task="emotion", n_resamples=100)
    assert r["n"] == 6 and r["metrics"]["accuracy"] == pytest.approx(5 / 6)
    assert r["bootstrap"]["unit"] == "speaker" and r["bootstrap"]["n_units"] == 2
    seg = score_predictions(preds, out, task="emotion", n_resamples=100, unit="segment")
    boot = seg["bootstrap"]
    assert {key: boot[key] for key in ("n_resamples", "seed", "unit", "n_units")} == {
        "n_resamples": 100,
        "seed": 0,
        "unit": "segment",
        "n_units": 6,
    }
    # the classes of the references, and never more resamples lacking one than lack any
    assert set(boot["lacking_class"]) == {"anger", "happiness", "neutral", "sadness", "surprise"}
    assert max(boot["lacking_class"].values()) <= boot["n_resamples_lacking_a_class"] <= 100
    test = score_predictions(
        write_jsonl(tmp_path / "t.jsonl", rows[:2]), out, split="test", task="emotion"
    )
    assert test["split"] == "test" and test["n"] == 2
    with pytest.raises(UsageError, match="no 'train' split"):
        score_predictions(preds, out, split="train")
    with pytest.raises(UsageError, match="text_sentiment"):
        score_predictions(
            write_jsonl(tmp_path / "ts.jsonl", [{"id": rows[0]["id"], "text_sentiment": "pos"}]),
            out,
            task="text_sentiment",
        )


def test_resampling_units_fallbacks():
    frame = _frame()
    assert resampling_units(frame, "speaker") == (list(frame["speaker_id"]), "speaker")
    frame.loc[0, "speaker_id"] = None
    assert resampling_units(frame, "speaker") == (list(frame["source_id"]), "source_video")
    no_source = frame.drop(columns=["source_id"])
    assert resampling_units(no_source, "speaker") == (
        ["1", "1", "2", "2", "3", "3"],
        "source_video",
    )
    odd = pd.DataFrame({"id": ["a", "b"]})
    with pytest.raises(DataError, match="--bootstrap-unit segment"):
        resampling_units(odd, "speaker")
    assert resampling_units(odd, "segment") == (["a", "b"], "segment")


def test_release_refs_combine_and_check(release_dir, tmp_path):
    refs = load_references(release_refs(release_dir))
    assert refs.split == "validation" and len(refs.frame) == 356
    assert all(refs.has_task(t) for t in TASKS)
    assert refs.frame["id"].is_monotonic_increasing
    with pytest.raises(UsageError, match="'validation' split but --split is 'train'"):
        load_references(release_refs(release_dir), split="train")
    seven = release_dir / "7_Class" / "7_class_val.json"
    with pytest.raises(UsageError, match="is the 'train' split but .* is 'validation'"):
        load_references([seven, release_dir / "3_Class" / "3_class_train.json"])
    records = json.loads((release_dir / "3_Class" / "3_class_val.json").read_text("utf-8"))
    short = tmp_path / "short" / "3_class_val.json"
    short.parent.mkdir()
    short.write_text(json.dumps(records[1:]), encoding="utf-8")
    with pytest.raises(UsageError, match=f"ids differ .*{records[0]['sample_id']}"):
        load_references([seven, short])
    # a sentiment clash between the 7- and 3-class files
    records[0]["label"] = "positif" if records[0]["label"] != "positif" else "negatif"
    bad = tmp_path / "3_class_val.json"
    bad.write_text(json.dumps(records), encoding="utf-8")
    with pytest.raises(DataError, match="sentiment disagrees"):
        load_references([seven, bad])
    with pytest.raises(UsageError, match="no such file"):
        load_references([tmp_path / "nope.json"])
    junk = tmp_path / "junk_val.json"
    junk.write_text("{not json", encoding="utf-8")
    with pytest.raises(DataError, match="junk_val.json:1:2: not valid JSON"):
        load_references([junk])


# --------------------------------------------------------------------------------------------
# Predictions files


def test_read_predictions_keeps_tasks_and_skips_blank_lines(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "emotion": "happy", "raw": "x"}\n\n{"id": "b", "sentiment": null}\n',
        encoding="utf-8",
    )
    preds = read_predictions(path)
    assert preds.rows == {"a": {"emotion": "happy"}, "b": {"sentiment": None}}
    assert preds.lines == {"a": 1, "b": 3}
    assert preds.tasks() == ["emotion", "sentiment"]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "empty file"),
        ("\n\n", "empty file"),
        ('{"id": "a", "emotion": "x"}\n{"id": "b", "emotion": \n', r"p\.jsonl:2: not valid JSON"),
        ('["a", "happy"]\n', r"p\.jsonl:1: expected a JSON object.*list"),
        ('{"emotion": "happy"}\n', r"p\.jsonl:1: no 'id' key"),
        ('{"id": "a", "label": "happy"}\n', r"p\.jsonl:1: no task key"),
        ('{"id": "a", "emotion": 3}\n', r"p\.jsonl:1: emotion: 3 is not of type"),
        ('{"id": 7, "emotion": "happy"}\n', r"p\.jsonl:1: id: 7 is not of type"),
        (
            '{"id": "a", "emotion": "x"}\n{"id": "a", "emotion": "y"}\n',
            r"duplicate ids: a \(lines 1, 2\)",
        ),
    ],
)
def test_read_predictions_errors(tmp_path, text, message):
    path = tmp_path / "p.jsonl"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message):
        read_predictions(path)


def test_read_predictions_accepts_a_byte_order_mark(tmp_path):
    path = tmp_path / "p.jsonl"
    path.write_text(
        '{"id": "a", "emotion": "happy"}\n{"id": "b", "emotion": "sad"}\n', encoding="utf-8-sig"
    )
    assert path.read_bytes().startswith(b"\xef\xbb\xbf")
    preds = read_predictions(path)
    assert preds.rows == {"a": {"emotion": "happy"}, "b": {"emotion": "sad"}}
    assert preds.lines == {"a": 1, "b": 2}
    # a mark on a later line is two files pasted together: named, not guessed
    path.write_bytes(b'{"id": "a", "emotion": "x"}\n\xef\xbb\xbf{"id": "b", "emotion": "y"}\n')
    with pytest.raises(DataError, match=r"p\.jsonl:2: UTF-8 byte-order mark inside the file"):
        read_predictions(path)


def test_release_json_with_a_byte_order_mark(release_dir, tmp_path):
    seven = release_dir / "7_Class" / "7_class_val.json"
    copy = tmp_path / "7_class_val.json"
    copy.write_bytes(b"\xef\xbb\xbf" + seven.read_bytes())
    assert load_references([copy]).frame.equals(load_references([seven]).frame)
