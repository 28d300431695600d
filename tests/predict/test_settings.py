"""``indomer.predict.settings``: each option of a run is checked once, a bad one is one
``UsageError`` line naming the option and what it expects, and the good ones are normalised."""

from __future__ import annotations

import pytest

from indomer.errors import UsageError
from indomer.predict.settings import normalise_endpoint, parse_modalities, settings

KEY = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"


def test_modalities_are_put_in_canonical_order():
    assert parse_modalities("video, text") == ("text", "video")
    assert parse_modalities("audio,audio,text,") == ("text", "audio")


@pytest.mark.parametrize("value", ["", " , ", "text,smell"])
def test_unknown_or_empty_modalities_are_one_line(value):
    with pytest.raises(UsageError, match=r"^--modalities .*expected a comma-separated subset"):
        parse_modalities(value)


@pytest.mark.parametrize(
    ("value", "url"),
    [
        ("http://h:8000/v1", "http://h:8000/v1"),
        (" https://h/v1/ ", "https://h/v1"),
        ("http://h:8000/v1/chat/completions/", "http://h:8000/v1"),
    ],
)
def test_endpoint_is_the_api_base(value, url):
    assert normalise_endpoint(value) == url


def test_endpoint_without_a_scheme_is_refused():
    with pytest.raises(UsageError, match=r"^--endpoint 'localhost:8000/v1': expected the API"):
        normalise_endpoint("localhost:8000/v1")


def test_settings_normalise_and_keep_every_choice():
    s = settings(
        endpoint="http://h:1/v1/chat/completions", model=" m ", modalities="video,text",
        concurrency=2, timeout=3, retries=0, max_answer=10,
    )  # fmt: skip
    assert (s.endpoint, s.model, s.modalities) == ("http://h:1/v1", "m", ("text", "video"))
    assert s.url == "http://h:1/v1/chat/completions"
    assert (s.split, s.task, s.concurrency, s.retries, s.max_answer) == ("test", "emotion", 2, 0, 10)
    assert s.timeout == 3.0 and isinstance(s.timeout, float)


@pytest.mark.parametrize(
    ("option", "value", "expected"),
    [
        ("task", "valence", "--task 'valence': expected one of emotion, sentiment"),
        ("model", "  ", "--model: expected the served model's name"),
        ("concurrency", 0, "--concurrency 0: expected at least 1"),
        ("timeout", 0.0, "--timeout 0: expected seconds > 0"),
        ("retries", -1, "--retries -1: expected 0 or more"),
        ("max_answer", 0, "--max-answer 0: expected bytes >= 1"),
    ],
)
def test_each_bad_option_is_one_line_naming_it(option, value, expected):
    kwargs = {"endpoint": "http://h/v1", "model": "m", option: value}
    with pytest.raises(UsageError) as err:
        settings(**kwargs)
    assert str(err.value).startswith(expected) and "\n" not in str(err.value)


def test_a_key_given_as_the_variable_name_is_not_echoed():
    with pytest.raises(UsageError) as err:
        settings(endpoint="http://h/v1", model="m", api_key_env=KEY)
    assert KEY not in str(err.value) and "NAME of an environment variable" in str(err.value)
