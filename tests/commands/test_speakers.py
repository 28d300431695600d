"""``indomer speakers review OUT``: the pairs whose answer lowers the expected people on two
sides most, from a real identity record, on a built dataset and on a build without one."""

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

DIM = 8


def _seg(cid: str, source: str, vec: np.ndarray, face: np.ndarray | None = None) -> Segment:
    v = (vec / np.linalg.norm(vec)).astype(np.float32)
    return Segment(
        id=cid, source_id=source, segment_index=1, topic="Vlog", start=0.0, end=4.0,
        speaker={"embedding": encode_embedding(v), "primary": None, "flagged": False},
        face=None if face is None else {"embedding": encode_embedding(face), "frames": 5},
    )


def _rows() -> list[Segment]:
    """Eight sources: 1 and 2 close voices (uncertain), 3 and 4 close voices but different
    faces, the rest far apart."""
    rng = np.random.default_rng(0)
    base = rng.standard_normal((8, DIM))
    base[1] = base[0] + 0.35 * rng.standard_normal(DIM)
    base[3] = base[2] + 0.1 * rng.standard_normal(DIM)
    f = np.eye(DIM, dtype=np.float32)
    faces = [None, None, f[0], f[1], None, None, None, None]
    return [_seg(f"clip_{k + 1}_Vlog_1", str(k + 1), base[k], faces[k]) for k in range(8)]


def _frame(rows) -> pd.DataFrame:
    n = len(rows)
    return pd.DataFrame({
        "id": [r.id for r in rows], "source_id": [r.source_id for r in rows],
        "segment_index": [1] * n, "topic": ["Vlog"] * n,
        "speaker_id": [r.speaker_id for r in rows], "emotion": ["neutral"] * n,
        "sentiment": ["neutral"] * n,
    })


def test_review_ranks_pairs_with_evidence_and_both_answers(tmp_path, built):
    out_rows, record = identify(_rows(), settings=Settings())
    assert all("embedding" not in (r.face or {}) for r in out_rows)  # never reaches shards
    assert all("voice" not in (r.speaker or {}) for r in out_rows)
    assert record["operating_point"]["calibration"]["source"].startswith("AMI excerpt")
    assert record["pairs"] and all(0 < e["p"] < 1 for e in record["pairs"])
    out = tmp_path / "ds"
    write_dataset(out, {"train": _frame(out_rows)}, {"command": "build CONFIG",
                                                     "speakers": record})
    res = CliRunner().invoke(main, ["split", str(out), "--speaker-disjoint", "--ratios",
                                    "0.5,0.5", "--stratify", "none"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(main, ["speakers", "review", str(out)])
    assert res.exit_code == 0, res.output
    assert "calibration: AMI excerpt" in res.output
    assert "expected people on two sides" in res.output
    res = CliRunner().invoke(main, ["speakers", "review", str(out), "--json", "-"])
    doc = json.loads(res.stdout)
    queue = doc["review"]
    gains = [e["expected_reduction"] for e in queue]
    assert gains == sorted(gains, reverse=True)
    # a pair on two sides gains its whole probability; one on one side gains nothing now
    assert all(e["expected_reduction"] == (e["p"] if e["on_two_sides"] else 0) for e in queue)
    # the stated number counts people, not pairs: never above the pairs' sum (plus the
    # unlisted mass)
    stated = doc["split"]["expected_people_on_two_sides"]
    assert 0 < stated <= sum(gains) + record["pairs_dropped_mass"] + 1e-6
    e = queue[0]
    a, b = e["source_a"], e["source_b"]
    assert e["speakers_csv"] == {"same": f"{a},,{b},", "different": f"{a},,,{b}"}
    for key in ("voice_cosine", "voice_score", "face_cosine", "seconds_a", "seconds_b"):
        assert key in e
    # browse shows the same queue
    from indomer.browse import load

    shown = load(out).payload()["identity"]
    assert shown["total"] == len(queue)
    assert [(x["source_a"], x["source_b"]) for x in shown["review"]] == [
        (x["source_a"], x["source_b"]) for x in queue[:50]]
    assert shown["expected"] == doc["split"]["expected_people_on_two_sides"]
    # a release build has no speaker linking: one line, exit 2
    res = CliRunner().invoke(main, ["speakers", "review", str(built)])
    assert res.exit_code == 2 and len(res.stderr.strip().splitlines()) == 1


def test_review_works_on_a_build_that_wrote_no_dataset(tmp_path):
    _, record = identify(_rows(), settings=Settings())
    out = tmp_path / "ds"
    from indomer.pipeline import default_stages

    # where the runner leaves a finished speakers stage (its folder name is the runner's)
    n = [s.name for s in default_stages()].index("speakers") + 1
    folder = out / "work" / f"{n:02d}_speakers"
    folder.mkdir(parents=True)
    (folder / "identity.json").write_text(json.dumps(record))
    (folder / "fingerprint.json").write_text("{}")
    res = CliRunner().invoke(main, ["speakers", "review", str(out)])
    assert res.exit_code == 0, res.output
    assert "no split yet" in res.output and "|" in res.output
    res = CliRunner().invoke(main, ["speakers", "review", str(tmp_path)])
    assert res.exit_code == 2 and "no build.json and no speakers record" in res.stderr
