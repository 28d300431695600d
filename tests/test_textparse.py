"""Free-text label parsing: English and Indonesian answers, negation, ambiguity."""

from __future__ import annotations

import pytest

from indomer.textparse import mentions, parse_label

EMOTION_CASES = [
    # plain names, release strings and aliases, any case or accents
    ("anger", "anger"),
    ("Kebahagiaan", "happiness"),
    ("NETRAL", "neutral"),
    ("  surprise ", "surprise"),
    ("jíjik", "disgust"),
    ("suka cita", "happiness"),
    # English sentences
    ("The speaker sounds happy.", "happiness"),
    ("I think it's anger", "anger"),
    ("Answer: sadness", "sadness"),
    ("The emotion expressed is FEAR!", "fear"),
    ("She seems surprised, really surprised.", "surprise"),
    ("It is not neutral; it is sad.", "sadness"),
    ("Not happy, but sad.", "sadness"),
    ("I'm not sure, maybe disgusted", "disgust"),
    ("The speaker is unhappy", "sadness"),
    # Indonesian sentences
    ("Emosi: sedih", "sadness"),
    ("Pembicara terdengar senang.", "happiness"),
    ("Emosinya adalah kemarahan", "anger"),
    ("Dia merasa takut", "fear"),
    ("Sedihnya terasa sekali", "sadness"),
    ("bukan senang melainkan sedih", "sadness"),
    ("Luar biasa senang!", "happiness"),
    ("Dia kaget", "surprise"),
    ("Ekspresinya datar", "neutral"),
    # invalid: negated, two labels, nothing, not text
    ("not happy", None),
    ("The speaker is not happy.", None),
    ("tidak senang", None),
    ("Dia tidak bahagia", None),
    ("I don't think it's anger", None),
    ("isn't angry at all", None),
    ("not happy or sad", None),
    ("neither happy nor sad", None),
    ("happy or sad", None),
    ("Senang dan sedih", None),
    ("mixed feelings", None),
    ("Emosi: tidak jelas", None),
    ("", None),
    ("4", None),
    (4, None),
    (None, None),
    (["happy"], None),
]

SENTIMENT_CASES = [
    ("positive", "positive"),
    ("Sentimen positif", "positive"),
    ("Sentimen: negatif.", "negative"),
    ("The sentiment is neutral", "neutral"),
    ("NEG", "negative"),
    ("Overall the tone is positive.", "positive"),
    ("tidak positif", None),
    ("not negative", None),
    ("positive and negative", None),
    # an emotion is not a sentiment answer: never inferred across tasks
    ("The speaker sounds happy.", None),
    ("senang", None),
]


@pytest.mark.parametrize(("text", "expected"), EMOTION_CASES)
def test_emotion_answers(text, expected):
    assert parse_label(text, "emotion") == expected


@pytest.mark.parametrize(("text", "expected"), SENTIMENT_CASES)
def test_sentiment_answers(text, expected):
    assert parse_label(text, "sentiment") == expected
    # the modality tasks share the sentiment label set
    assert parse_label(text, "audio_sentiment") == expected


def test_mentions_marks_negation_and_order():
    assert mentions("not happy, but sad", "emotion") == [("happiness", True), ("sadness", False)]
    assert mentions("tidak marah atau sedih", "emotion") == [("anger", True), ("sadness", True)]
    assert mentions("happy happy", "emotion") == [("happiness", False), ("happiness", False)]


def test_every_alias_parses_to_its_label():
    from indomer.labels import label_set

    for task in ("emotion", "sentiment"):
        for alias, name in label_set(task).aliases.items():
            assert parse_label(alias, task) == name
            assert parse_label(f"The answer is {alias}.", task) == name
