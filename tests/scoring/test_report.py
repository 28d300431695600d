"""``indomer.scoring.report``: the score JSON validates against its schema, byte for byte."""

from __future__ import annotations

import numpy as np
from jsonschema import Draft202012Validator

from indomer.labels import label_set
from indomer.scoring import score_predictions
from indomer.scoring.reader import load_schema
from indomer.scoring.report import dump_json
from scoring.helpers import release_ids, release_refs, write_jsonl


def test_score_json_validates_and_is_deterministic(release_dir, tmp_path):
    ids = release_ids(release_dir)
    rng = np.random.default_rng(0)
    emo = list(label_set("emotion").names)
    rows = [{"id": i, "emotion": str(rng.choice(emo)), "video_sentiment": "positif"} for i in ids]
    other = write_jsonl(tmp_path / "o.jsonl", [{**r, "emotion": "neutral"} for r in rows])
    preds = write_jsonl(tmp_path / "p.jsonl", rows)
    kwargs = {"compare": other, "n_resamples": 200, "seed": 5}
    a = score_predictions(preds, release_refs(release_dir), **kwargs)
    b = score_predictions(preds, release_refs(release_dir), **kwargs)
    assert dump_json(a) == dump_json(b)
    assert set(a) == {"emotion", "video_sentiment"}
    validator = Draft202012Validator(load_schema("score"))
    validator.validate(a)
    validator.validate(a["emotion"])
    assert a["emotion"]["compare"]["other"] == "o.jsonl"
    single = score_predictions(preds, release_refs(release_dir), task="emotion", **kwargs)
    assert single == a["emotion"]
