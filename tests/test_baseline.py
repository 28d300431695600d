"""``indomer baseline``: hand-computed truth on a tiny dataset, the issue's figures on the
public release (scored by ``indomer score`` and by scikit-learn), determinism, and one line
for every bad input."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

from indomer.baseline import TFIDF_LR, meta_path, run_baseline
from indomer.cli import main
from indomer.generation import write_dataset
from indomer.scoring import load_references, read_predictions, score_predictions


def _frame(rows: list[tuple[str, str, str | None]], prefix: int) -> pd.DataFrame:
    """(text, emotion, sentiment) rows as a minimal split; ids clip_<prefix+i>_Vlog_1."""
    return pd.DataFrame(
        {
            "id": [f"clip_{prefix + i}_Vlog_1" for i in range(len(rows))],
            "source_id": [str(prefix + i) for i in range(len(rows))],
            "segment_index": [1] * len(rows),
            "topic": ["Vlog"] * len(rows),
            "speaker_id": [f"S{(prefix + i) % 4}" for i in range(len(rows))],
            "text": [r[0] for r in rows],
            "emotion": [r[1] for r in rows],
            "sentiment": [r[2] for r in rows],
        }
    )


TRAIN = [
    ("saya senang sekali hari ini", "happiness", "positive"),
    ("senang dan gembira", "happiness", "positive"),
    ("saya marah sekali", "anger", "negative"),
    ("marah dan kesal", "anger", "negative"),
    ("biasa saja", "neutral", "neutral"),
    # a train row without an emotion label: left out of training, never predicted from
    ("sedih sedih sedih", None, None),
]
VALIDATION = [
    ("aku senang", "happiness", "positive"),
    ("aku marah", "anger", "negative"),
    ("biasa", "neutral", "neutral"),
    (None, "neutral", "neutral"),  # a clip without a transcript still gets a prediction
]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("baseline") / "ds"
    write_dataset(
        out, {"train": _frame(TRAIN, 1), "validation": _frame(VALIDATION, 101)}, {"command": "t"}
    )
    return out


def run(*args: str):
    return CliRunner().invoke(main, ["baseline", *map(str, args)])


def lines(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines()]


def test_majority_is_the_most_frequent_train_label_ties_in_label_order(tiny, tmp_path):
    # train emotions: happiness 2, anger 2, neutral 1 (the unlabelled row does not count);
    # anger comes before happiness in labels.yaml, so the tie goes to anger
    res = run(tiny, "--method", "majority", "--task", "emotion", "--out", tmp_path / "m.jsonl")
    assert res.exit_code == 0, res.output
    got = lines(tmp_path / "m.jsonl")
    assert got == [
        {"id": f"clip_{101 + i}_Vlog_1", "emotion": "anger", "model": "majority"}
        for i in range(len(VALIDATION))
    ]
    meta = json.loads(meta_path(tmp_path / "m.jsonl").read_text())
    assert meta["train_counts"] == {"anger": 2, "happiness": 2, "neutral": 1}
    assert meta["n_train"] == 5 and meta["n_predicted"] == 4
    assert (meta["method"], meta["task"], meta["split"], meta["train_split"]) == (
        "majority",
        "emotion",
        "validation",
        "train",
    )


def test_tfidf_lr_learns_the_words_of_the_train_split_only(tiny, tmp_path):
    preds = tmp_path / "t.jsonl"
    res = run(tiny, "--method", "tfidf-lr", "--task", "sentiment", "--out", preds)
    assert res.exit_code == 0, res.output
    got = {r["id"]: r["sentiment"] for r in lines(preds)}
    assert got["clip_101_Vlog_1"] == "positive"  # "senang"
    assert got["clip_102_Vlog_1"] == "negative"  # "marah"
    assert got["clip_103_Vlog_1"] == "neutral"  # "biasa"
    assert set(got) == {f"clip_{101 + i}_Vlog_1" for i in range(4)}
    meta = json.loads(meta_path(preds).read_text())
    assert meta["settings"] == json.loads(json.dumps(TFIDF_LR))
    assert meta["settings"]["classifier"]["class_weight"] == "balanced"
    assert meta["settings"]["vectorizer"]["ngram_range"] == [1, 2]
    assert "scikit-learn" in meta["versions"]
    # the file is what every system writes: the scorer reads it, "model" is ignored
    assert read_predictions(preds).tasks() == ["sentiment"]


def test_validation_labels_are_never_read(tiny, tmp_path):
    """Relabelling the predicted split changes nothing: only train is learnt from."""
    other = tmp_path / "relabelled"
    flipped = [(t, "sadness", "negative") for t, _, _ in VALIDATION]
    write_dataset(
        other, {"train": _frame(TRAIN, 1), "validation": _frame(flipped, 101)}, {"command": "t"}
    )
    for method in ("majority", "tfidf-lr"):
        a = run(tiny, "--method", method, "--out", tmp_path / f"a-{method}.jsonl")
        b = run(other, "--method", method, "--out", tmp_path / f"b-{method}.jsonl")
        assert a.exit_code == 0 and b.exit_code == 0, a.output + b.output
        assert (tmp_path / f"a-{method}.jsonl").read_bytes() == (
            tmp_path / f"b-{method}.jsonl"
        ).read_bytes()


@pytest.fixture(scope="module")
def release_preds(built: Path, tmp_path_factory) -> dict[tuple[str, str], Path]:
    """Both baselines, both tasks, on the release's validation split, through the CLI."""
    d = tmp_path_factory.mktemp("release_preds")
    out = {}
    for method in ("majority", "tfidf-lr"):
        for task in ("emotion", "sentiment"):
            path = d / f"{method}-{task}.jsonl"
            res = run(built, "--method", method, "--task", task, "--split", "validation",
                      "--train-split", "train", "--out", path, "--quiet")  # fmt: skip
            # --quiet hides progress bars only (DESIGN §4): the summary is on stdout
            assert res.exit_code == 0 and res.stderr == "", res.output
            assert res.stdout.startswith(f"wrote 356 {task} predictions for 'validation'")
            out[method, task] = path
    return out


@pytest.mark.parametrize(("task", "expected"), [("sentiment", 0.416), ("emotion", 0.202)])
def test_tfidf_lr_reproduces_the_issue_figures_on_the_release(release_preds, built, task, expected):
    from sklearn.metrics import f1_score

    path = release_preds["tfidf-lr", task]
    score = score_predictions(path, built, "validation", task, n_resamples=0)
    assert score["n"] == 356 and score["n_invalid"] == 0
    assert abs(score["metrics"]["macro_f1"] - expected) <= 0.01
    # scikit-learn agrees with the scorer on the very same file
    refs = load_references(built, "validation").frame.set_index("id")[task]
    preds = {r["id"]: r[task] for r in lines(path)}
    ids = sorted(preds)
    sk = f1_score([refs[i] for i in ids], [preds[i] for i in ids], average="macro")
    assert score["metrics"]["macro_f1"] == pytest.approx(sk, abs=1e-12)


def test_majority_on_the_release_predicts_neutral(release_preds, built):
    train = pd.read_parquet(next((built / "data").glob("train-*.parquet")), columns=["emotion"])
    top = train["emotion"].value_counts().idxmax()
    emotion = {r["emotion"] for r in lines(release_preds["majority", "emotion"])}
    sentiment = {r["sentiment"] for r in lines(release_preds["majority", "sentiment"])}
    from indomer.labels import label_set

    assert emotion == {label_set("emotion").names[top]} == {"neutral"}
    assert sentiment == {"neutral"}


def test_same_dataset_same_bytes(release_preds, built, tmp_path):
    again = tmp_path / "again.jsonl"
    res = run(built, "--method", "tfidf-lr", "--task", "emotion", "--out", again, "--quiet")
    assert res.exit_code == 0, res.output
    first = release_preds["tfidf-lr", "emotion"]
    assert again.read_bytes() == first.read_bytes()
    assert meta_path(again).read_bytes() == meta_path(first).read_bytes()
    import hashlib

    meta = json.loads(meta_path(again).read_text())
    assert meta["preds_sha256"] == hashlib.sha256(again.read_bytes()).hexdigest()
    assert (
        meta["dataset_build_hash"]
        == json.loads((built / "build.json").read_text())["outputs"]["build_hash"]
    )


def test_library_returns_split_order(tiny):
    result = run_baseline(tiny, "majority", "sentiment")
    assert result.ids == [f"clip_{101 + i}_Vlog_1" for i in range(4)]
    # sentiment train counts: positive 2, negative 2, neutral 1 -> negative (label order)
    assert result.labels == ["negative"] * 4


@pytest.mark.parametrize(
    ("args", "needle"),
    [
        (["--method", "bert"], "unknown method 'bert'; expected one of majority, tfidf-lr"),
        (["--task", "mood"], "unknown task 'mood'; expected one of emotion, sentiment"),
        (["--split", "train"], "--split and --train-split are both 'train'"),
        (["--split", "test"], "no 'test' split (found: train, validation)"),
        (["--train-split", "test"], "no 'test' split (found: train, validation)"),
    ],
)
def test_bad_options_are_one_line(tiny, tmp_path, args, needle):
    res = run(tiny, *args, "--out", tmp_path / "p.jsonl")
    assert res.exit_code == 2, res.output
    (line,) = res.stderr.strip().splitlines()
    assert line.startswith("error: ") and needle in line
    assert not (tmp_path / "p.jsonl").exists()


def test_no_labelled_train_row_and_single_class_are_one_line(tmp_path):
    out = tmp_path / "ds"
    train = [("a", "neutral", "neutral"), ("b", "neutral", "neutral")]
    write_dataset(
        out, {"train": _frame(train, 1), "validation": _frame(VALIDATION, 101)}, {"command": "t"}
    )
    res = run(out, "--method", "tfidf-lr", "--out", tmp_path / "p.jsonl")
    assert res.exit_code == 1
    assert "only one emotion class (neutral)" in res.stderr and "--method majority" in res.stderr
    res = run(out, "--task", "video_sentiment", "--out", tmp_path / "p.jsonl")
    assert res.exit_code == 1
    (line,) = res.stderr.strip().splitlines()
    assert "no 'train' row has a video_sentiment label" in line


def test_missing_dataset_and_folder_out_are_one_line(tiny, tmp_path):
    res = run(tmp_path / "nowhere", "--out", tmp_path / "p.jsonl")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1
    assert "no such dataset folder" in res.stderr
    (tmp_path / "dir").mkdir()
    res = run(tiny, "--method", "majority", "--out", tmp_path / "dir")
    assert res.exit_code == 2 and res.stderr.count("\n") == 1, res.output
    assert res.stderr.startswith("error: ")
