"""``indomer.scoring`` as a whole: scores of the public release end to end, known truth.

The parts have their mirror files: tests/scoring/test_metrics.py (the metrics core against
scikit-learn, the bootstrap), test_reader.py (references and predictions files) and
test_report.py (the score JSON)."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from scoring.helpers import release_ids, release_refs, write_jsonl

from indomer.errors import DataError
from indomer.labels import label_set
from indomer.scoring import score_predictions
from indomer.scoring.metrics import HEADLINE
from indomer.scoring.report import format_report

# --------------------------------------------------------------------------------------------
# Known truth on the public release


def test_all_neutral_baseline_on_release(release_dir, tmp_path):
    ids = release_ids(release_dir)
    rows = [{"id": i, "emotion": "neutral", "sentiment": "netral"} for i in ids]
    preds = write_jsonl(tmp_path / "preds.jsonl", rows)
    result = score_predictions(preds, release_refs(release_dir), task="all", n_resamples=200)
    assert set(result) == {"emotion", "sentiment"}
    emo, sen = result["emotion"], result["sentiment"]
    assert emo["n"] == sen["n"] == 356
    assert round(emo["metrics"]["macro_f1"], 4) == 0.1211
    assert round(sen["metrics"]["macro_f1"], 4) == 0.2826
    assert emo["split"] == "validation"
    assert emo["per_class"]["neutral"]["support"] == 262
    assert sum(r["support"] for r in emo["per_class"].values()) == 356
    assert emo["confusion"]["labels"] == list(label_set("emotion").names)
    # all-one-class: recall 1 on neutral, 0 elsewhere, over 7 present classes
    assert emo["metrics"]["unweighted_accuracy"] == pytest.approx(1 / 7)
    # the release has no speaker ids: resampling falls back to the 34 source videos
    assert emo["bootstrap"]["unit"] == "source_video"
    assert emo["bootstrap"]["n_units"] == 34
    lo, hi = emo["ci95"]["macro_f1"]
    assert lo <= emo["metrics"]["macro_f1"] <= hi


def test_perfect_predictor_interval_is_exactly_one_on_release(release_dir, tmp_path):
    # validation has a single surprise clip: about a third of the resamples miss its video,
    # and with the old every-class rule they scored surprise as F1 = 0 ([0.60, 1.00])
    records = json.loads((release_dir / "7_Class" / "7_class_val.json").read_text("utf-8"))
    rows = [
        {"id": r["sample_id"], "emotion": r["label"], "sentiment": r["sentiment_label"]}
        for r in records
    ]
    preds = write_jsonl(tmp_path / "preds.jsonl", rows)
    result = score_predictions(preds, release_refs(release_dir), n_resamples=1000)
    for task in ("emotion", "sentiment"):
        r = result[task]
        assert r["metrics"] == dict.fromkeys(HEADLINE, 1.0)
        assert r["ci95"] == {key: [1.0, 1.0] for key in ("macro_f1", "weighted_f1", "accuracy")}
    boot = result["emotion"]["bootstrap"]
    assert result["emotion"]["per_class"]["surprise"]["support"] == 1
    assert boot["lacking_class"]["surprise"] > 100
    assert boot["n_resamples_lacking_a_class"] >= boot["lacking_class"]["surprise"]
    assert boot["lacking_class"]["neutral"] == 0
    assert "resamples lacking a reference class: " in format_report(result)


def test_modality_tasks_from_3_class_file(release_dir, tmp_path):
    records = json.loads((release_dir / "3_Class" / "3_class_val.json").read_text("utf-8"))
    rows = [{"id": r["sample_id"], "audio_sentiment": r["audio_label"]} for r in records]
    preds = write_jsonl(tmp_path / "preds.jsonl", rows)
    result = score_predictions(
        preds,
        [release_dir / "3_Class" / "3_class_val.json"],
        task="audio_sentiment",
        n_resamples=50,
    )
    assert result["metrics"]["macro_f1"] == 1.0
    assert result["ci95"]["accuracy"] == [1.0, 1.0]


def test_missing_invalid_and_unknown_ids(release_dir, tmp_path):
    ids = release_ids(release_dir)
    refs = release_refs(release_dir)
    rows = [{"id": i, "emotion": "neutral"} for i in ids[:-3]]
    rows[0]["emotion"] = "not happy"
    rows[1]["emotion"] = None
    preds = write_jsonl(tmp_path / "p.jsonl", rows)
    with pytest.raises(DataError, match=r"3 of 356 validation ids have no emotion prediction"):
        score_predictions(preds, refs, task="emotion")
    r = score_predictions(preds, refs, task="emotion", allow_missing=True, n_resamples=10)
    assert (r["n"], r["n_missing"], r["n_invalid"]) == (356, 3, 2)
    assert sum(r["confusion"]["missing"]) == 3 and sum(r["confusion"]["invalid"]) == 2
    with pytest.raises(DataError, match=r"no line has a 'sentiment' prediction"):
        score_predictions(preds, refs, task="sentiment", allow_missing=True)
    stray = write_jsonl(tmp_path / "s.jsonl", [*rows, {"id": "clip_999_X_1", "emotion": "x"}])
    with pytest.raises(DataError, match=r"1 ids are not in the 'validation' split: clip_999_X_1"):
        score_predictions(stray, refs, allow_missing=True)


# --------------------------------------------------------------------------- split assignment


def _assigned_dataset(out: Path, validation: list[str]) -> dict:
    """A dataset whose active split is 'my-split', speakers S1..S4, ``validation`` speakers
    in validation; returns the split document's assignment."""
    from indomer.generation import write_dataset

    speakers = ["S1", "S2", "S3", "S4"]
    where = {s: ("validation" if s in validation else "train") for s in speakers}
    frames: dict[str, list] = {"train": [], "validation": []}
    for i in range(16):
        spk = speakers[i % 4]
        frames[where[spk]].append(
            {
                "id": f"clip_{i + 1}_Cooking_1",
                "source_id": str(i + 1),
                "speaker_id": spk,
                "text": f"kata {i}",
                "emotion": ["anger", "happiness"][i % 2],
            }
        )
    assignment = {
        s: sorted(g for g, w in where.items() if w == s) for s in ("train", "validation")
    }
    doc = {"name": "my-split", "group_key": "speaker_id", "assignment": assignment}
    write_dataset(
        out,
        {k: pd.DataFrame(v) for k, v in frames.items()},
        extra={"splits/my-split.json": doc},
    )
    return assignment


def test_scores_name_the_assignment_and_refuse_another(tmp_path: Path):
    """baseline records the split's name and assignment sha256 beside its predictions; score
    and leaderboard carry it and refuse predictions made on another assignment of that name."""
    import hashlib

    from click.testing import CliRunner

    from indomer.cli import main

    assignment = _assigned_dataset(tmp_path / "a", ["S3"])
    want = hashlib.sha256(
        json.dumps(assignment, sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()
    preds = tmp_path / "p" / "majority.jsonl"
    preds.parent.mkdir()
    runner = CliRunner()
    res = runner.invoke(main, ["baseline", str(tmp_path / "a"), "--out", str(preds),
                               "--method", "majority", "--task", "emotion"])  # fmt: skip
    assert res.exit_code == 0, res.output
    side = json.loads(preds.with_name("majority.jsonl.meta.json").read_text())
    assert side["assignment"] == {"name": "my-split", "sha256": want}
    res = runner.invoke(main, ["score", str(preds), "--refs", str(tmp_path / "a"), "--json", "-"])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout[res.stdout.index("{") :])
    assert result["emotion"]["assignment"] == {"name": "my-split", "sha256": want}
    res = runner.invoke(main, ["leaderboard", "--refs", str(tmp_path / "a"), str(preds),
                               "--json", "-"])  # fmt: skip
    assert res.exit_code == 0, res.output
    board = json.loads(res.stdout[res.stdout.index("{") :])
    assert board["assignment"] == {"name": "my-split", "sha256": want}
    # the same ids under another assignment named 'my-split': refused, in one line
    _assigned_dataset(tmp_path / "b", ["S3", "S1"])
    for args in (
        ["score", str(preds), "--refs", str(tmp_path / "b"), "--allow-missing"],
        ["leaderboard", "--refs", str(tmp_path / "b"), str(preds), "--allow-missing"],
    ):
        res = runner.invoke(main, args)
        assert res.exit_code == 1, res.output
        assert "made against split 'my-split' assignment " + want[:12] in res.output
        assert res.output.strip().count("\n") == 0
    # a predictions file without a sidecar is scored as before
    preds.with_name("majority.jsonl.meta.json").unlink()
    res = runner.invoke(main, ["score", str(preds), "--refs", str(tmp_path / "b"),
                               "--allow-missing"])  # fmt: skip
    assert res.exit_code == 0, res.output
