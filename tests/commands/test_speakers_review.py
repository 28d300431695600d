"""``indomer speakers review OUT``: the pairs near a decision point, from a real clustering."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.generation import write_dataset
from indomer.rows import Segment
from indomer.speakers import encode_embedding
from indomer.stages.speakers import Settings, identify


def _seg(cid: str, source: str, angle: float, face: np.ndarray | None) -> Segment:
    v = np.zeros(8, dtype=np.float32)
    v[0], v[1] = np.cos(np.radians(angle)), np.sin(np.radians(angle))
    return Segment(
        id=cid, source_id=source, segment_index=1, topic="Vlog", start=0.0, end=4.0,
        speaker={"embedding": encode_embedding(v), "primary": None, "flagged": False},
        face=None if face is None else {"embedding": encode_embedding(face), "frames": 5},
    )


def test_review_lists_pairs_with_evidence_and_how_to_pin(tmp_path, built):
    f1, f2 = np.eye(4, dtype=np.float32)[:2]
    rows = [
        _seg("clip_1_Vlog_1", "1", 0, f1),
        _seg("clip_2_Vlog_1", "2", 17, f1),  # 0.956: one person, faces agree
        _seg("clip_3_Vlog_1", "3", 10, f2),  # 0.985 voice, another face: flagged
    ]
    out_rows, record = identify(rows, settings=Settings())
    assert all("embedding" not in (r.face or {}) for r in out_rows)  # never reaches shards
    assert record["disagreements"] and record["disagreements"][0]["flag"] == (
        "voices match, faces differ"
    )
    df = pd.DataFrame(
        {
            "id": [r.id for r in out_rows],
            "source_id": [r.source_id for r in out_rows],
            "segment_index": [1] * 3,
            "topic": ["Vlog"] * 3,
            "speaker_id": [r.speaker_id for r in out_rows],
            "emotion": ["neutral"] * 3,
            "sentiment": ["neutral"] * 3,
        }
    )
    out = tmp_path / "ds"
    write_dataset(out, {"train": df}, {"command": "build CONFIG", "speakers": record})
    res = CliRunner().invoke(main, ["speakers", "review", str(out)])
    assert res.exit_code == 0, res.output
    assert "voices match, faces differ" in res.output
    assert "'A,,,B' if they are not" in res.output
    assert "calibration: AMI excerpt" in res.output
    res = CliRunner().invoke(main, ["speakers", "review", str(out), "--json", "-"])
    doc = json.loads(res.stdout)
    assert {frozenset((e["a"], e["b"])) for e in doc["review"]} >= {frozenset("13")}
    # a release build has no speaker linking: one line, exit 2
    res = CliRunner().invoke(main, ["speakers", "review", str(built)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1
