from __future__ import annotations

import pytest
import truth

from indomer.errors import DataError
from indomer.labels import TASKS, emotion_to_sentiment, fold, label_set, labels_sha256


def test_names_follow_the_design_order():
    assert label_set("emotion").names == truth.EMOTIONS
    for task in ("sentiment", "text_sentiment", "audio_sentiment", "video_sentiment"):
        assert label_set(task).names == ("negative", "neutral", "positive")


@pytest.mark.parametrize(
    ("task", "value", "expected"),
    [
        ("emotion", "kebahagiaan", "happiness"),
        ("emotion", "KEMARAHAN", "anger"),
        ("emotion", "  Sédih ", "sadness"),
        ("emotion", "takut", "fear"),
        ("emotion", "terkejut", "surprise"),
        ("emotion", "jijik", "disgust"),
        ("emotion", "netral", "neutral"),
        ("emotion", "Joy", "happiness"),
        ("sentiment", "negatif", "negative"),
        ("audio_sentiment", "Positif", "positive"),
        ("emotion", "positive", None),
        ("sentiment", "happy", None),
        ("emotion", "", None),
    ],
)
def test_aliases_are_case_and_accent_insensitive(task, value, expected):
    assert label_set(task).canonical(value) == expected


def test_release_strings_round_trip():
    emo = label_set("emotion")
    assert tuple(emo.release[n] for n in emo.names) == truth.EMOTIONS_RELEASE
    for task in TASKS:
        ls = label_set(task)
        assert all(ls.canonical(ls.release[n]) == n for n in ls.names)


def test_require_names_the_place_and_the_choices():
    with pytest.raises(
        DataError, match=r"^preds.jsonl:3: unknown emotion label 'bored'; expected one of anger"
    ):
        label_set("emotion").require("bored", "preds.jsonl:3")


def test_emotion_rule_covers_every_emotion():
    rule = emotion_to_sentiment()
    assert set(rule) == set(label_set("emotion").names)
    assert rule["happiness"] == rule["surprise"] == "positive"
    assert {rule[e] for e in ("anger", "disgust", "fear", "sadness")} == {"negative"}
    assert rule["neutral"] == "neutral"


def test_fold_and_hash_are_stable():
    assert fold("  KéBAHAGIAAN\t") == "kebahagiaan"
    assert len(labels_sha256()) == 64 and labels_sha256() == labels_sha256()


def test_unknown_task():
    with pytest.raises(DataError, match="unknown task"):
        label_set("arousal")
