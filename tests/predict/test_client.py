"""``indomer.predict.client``: the retry policy, answers parsed and capped, and secrets kept
out of messages (the HTTP client end to end is in tests/test_predict.py)."""

from __future__ import annotations

import json

import pytest

from indomer import predict as lib
from indomer.predict.client import Answer, PredictError, Transient, cap_answer, parse_answer, redact

KEY = "sk-test-7f3a9c1e5b2d4f60a8e1c3b5d7f9a2c4"


def test_retry_policy_units():
    import random

    rng = random.Random(0)
    steps = [lib.backoff(a, rng) for a in range(12)]
    for a, s in enumerate(steps):
        top = min(lib.BACKOFF_BASE * 2**a, lib.BACKOFF_MAX)
        assert 0.75 * top <= s <= top
    assert steps == [lib.backoff(a, r) for r in [random.Random(0)] for a in range(12)]
    assert lib.retry_after_seconds({"retry-after": "2"}) == 2.0
    assert lib.retry_after_seconds({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert lib.retry_after_seconds({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}) is None
    assert lib.redact(f"bad key {KEY}\nsee docs", KEY) == "bad key *** see docs"
    assert lib.normalise_endpoint("http://h:8000/v1/chat/completions/") == "http://h:8000/v1"


def test_the_first_choice_content_is_the_answer():
    body = {"choices": [{"message": {"content": "senang"}, "finish_reason": "stop"}, {}]}
    assert parse_answer(json.dumps(body), "w") == Answer("senang", "stop")
    parts = {"choices": [{"message": {"content": [{"type": "text", "text": "a"}, {"text": "b"}]}}]}
    assert parse_answer(json.dumps(parts), "w") == Answer("ab", None)
    odd = {"choices": [{"message": {"content": 7}, "finish_reason": 3}]}
    assert parse_answer(json.dumps(odd), "w") == Answer(None, None)


def test_malformed_json_is_transient_and_no_choices_is_final():
    with pytest.raises(Transient, match=r"^clip a: the answer is not valid JSON"):
        parse_answer("<html>", "clip a")
    for body in ('{"choices": []}', "[1]", '{"error": "x"}'):
        with pytest.raises(PredictError, match=r"^clip a: the answer has no choices"):
            parse_answer(body, "clip a")


def test_answers_are_cut_on_a_character_boundary_and_flagged():
    assert cap_answer(Answer("aé", "stop"), 2) == Answer("a", "stop", True)
    assert cap_answer(Answer("aé", "stop"), 3) == Answer("aé", "stop")
    assert cap_answer(Answer(None, "length"), 0) == Answer(None, "length")


def test_redact_keeps_one_short_line_without_the_secret():
    assert redact("x" * 400, None) == "x" * 297 + "..."
    assert redact("abc key", "abc") == "abc key"  # too short to be a key: left alone
