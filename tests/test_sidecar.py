"""sidecar.py: where a predictions file's sidecar lies, and when it records another
assignment of the same split name (the one check predict and score share)."""

from __future__ import annotations

import json

import pytest

from indomer.errors import DataError
from indomer.sidecar import other_assignment, refuse_other_assignment, sidecar_path

IDENTITY = {"name": "official", "sha256": "a" * 64}


def _side(tmp_path, text: str):
    side = sidecar_path(tmp_path / "preds.jsonl")
    side.write_text(text, encoding="utf-8")
    return side


def test_the_sidecar_lies_beside_the_predictions(tmp_path):
    assert sidecar_path(tmp_path / "p.jsonl") == tmp_path / "p.jsonl.meta.json"
    assert sidecar_path("p.jsonl").name == "p.jsonl.meta.json"


def test_another_assignment_of_the_same_split_name_is_named(tmp_path):
    side = _side(tmp_path, json.dumps({"assignment": {"name": "official", "sha256": "b" * 64}}))
    assert other_assignment(side, IDENTITY) == "b" * 64


def test_nothing_to_compare_or_agreement_gives_none(tmp_path):
    same = _side(tmp_path, json.dumps({"assignment": dict(IDENTITY)}))
    assert other_assignment(same, IDENTITY) is None
    assert other_assignment(same, None) is None  # references without an assignment
    other_name = _side(tmp_path, json.dumps({"assignment": {"name": "s1", "sha256": "b"}}))
    assert other_assignment(other_name, IDENTITY) is None
    for text in ("not json", "[1, 2]", json.dumps({"assignment": "x"}), "{}"):
        assert other_assignment(_side(tmp_path, text), IDENTITY) is None, text
    assert other_assignment(tmp_path / "missing.meta.json", IDENTITY) is None


def test_the_refusal_is_one_line_naming_both_assignments_and_the_fix(tmp_path):
    preds = tmp_path / "preds.jsonl"
    _side(tmp_path, json.dumps({"assignment": {"name": "official", "sha256": "b" * 64}}))
    with pytest.raises(DataError) as err:
        refuse_other_assignment(preds, IDENTITY, holder="OUT", fix="choose another --out")
    assert str(err.value) == (
        f"{preds}: made against split 'official' assignment {'b' * 12} (see "
        f"preds.jsonl.meta.json), but OUT holds assignment {'a' * 12} of that name; "
        "choose another --out"
    )
    refuse_other_assignment(preds, None, holder="OUT", fix="x")  # nothing to compare
