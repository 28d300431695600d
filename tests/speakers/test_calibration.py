"""``indomer.speakers.calibration``: a ``speakers calibrate --json`` record becomes the score
model (the prior shift is exact in log-odds), a record for another embedding falls back to the
shipped AMI one with one logged line, and an unreadable file is one data error."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from indomer.errors import DataError
from indomer.speakers.calibration import CALIBRATION_FILE, score_model

SHIPPED = Path(__file__).resolve().parents[2] / "indomer" / "data" / CALIBRATION_FILE


def record(tmp_path: Path, models: dict) -> Path:
    path = tmp_path / "cal.json"
    path.write_text(json.dumps({"source": "mine", "models": models}), encoding="utf-8")
    return path


PROB = {"slope": 12.0, "intercept": -6.0, "prior": 0.2, "min_cohort": 7, "eer": 0.1,
        "same_person": {"mean": 0.8, "sd": 0.1}, "different_people": {"mean": 0.3, "sd": 0}}


def test_a_record_becomes_the_model_and_its_provenance(tmp_path):
    path = record(tmp_path, {"ecapa": {"probability": PROB}})
    model, info = score_model("ecapa", path, face_same=0.6)
    assert (model.slope, model.intercept, model.min_cohort) == (12.0, -6.0, 7)
    assert model.cohort_mean is None and model.face_same == 0.6
    assert model.prior == 0.2 and model.estimate_prior is True
    assert model.same == (0.8, 0.1) and model.different is None  # sd 0 is no density
    assert info["source"] == "mine" and info["file"] == str(path)
    assert info["prior_from"] == "the calibration set" and info["eer"] == 0.1


def test_a_known_prior_shifts_the_intercept_by_the_log_odds(tmp_path):
    path = record(tmp_path, {"ecapa": {"probability": PROB}})
    model, info = score_model("ecapa", path, prior=0.5)
    assert model.intercept == pytest.approx(-6.0 + math.log(1.0) - math.log(0.2 / 0.8))
    assert model.prior == 0.5 and model.estimate_prior is False
    assert info["prior_from"] == "speakers.prior" and info["calibration_prior"] == 0.2


def test_another_embedding_falls_back_to_the_shipped_record_with_one_line(tmp_path):
    shipped = json.loads(SHIPPED.read_text(encoding="utf-8"))
    want = shipped["models"]["resemblyzer"]["probability"]
    path = record(tmp_path, {"ecapa": {"probability": PROB}})
    said: list[str] = []
    model, info = score_model("resemblyzer", path, log=said.append)
    assert model.slope == want["slope"] and info["file"] == f"indomer/data/{CALIBRATION_FILE}"
    assert len(said) == 1 and said[0].startswith(f"{path}: no probability calibration for "
                                                 "embedding 'resemblyzer' (it has ecapa)")
    model, info = score_model("unknown-model", path, log=said.append)
    assert model is None and info == {
        "source": "none: no calibration for this embedding model", "file": None}


@pytest.mark.parametrize(
    ("text", "message"),
    [("{not json", r":1:2: not valid JSON"),
     ("[1, 2]", "expected a JSON object from 'indomer speakers calibrate'")],
)
def test_an_unreadable_record_is_one_data_error(tmp_path, text, message):
    path = tmp_path / "cal.json"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(DataError, match=message) as err:
        score_model("resemblyzer", path)
    assert str(err.value).startswith(f"{path}:") and "\n" not in str(err.value)
    with pytest.raises(DataError, match="cannot read the calibration file"):
        score_model("resemblyzer", tmp_path / "missing.json")
