"""``indomer annotate export --format csv``: one pre-filled sheet per annotator code, in the
template's columns, with every clip that waits for labels; a rerun replaces only its own
sheets. (Label Studio tasks, import and the server: tests/test_annotate.py and
tests/test_annotate_labelstudio.py.)"""

from __future__ import annotations

import csv
import json
from pathlib import Path

import test_pipeline as tp
from click.testing import CliRunner

from indomer import pipeline
from indomer.cli import main

ROOT = Path(__file__).resolve().parents[2]
CLIPS = [f"clip_{s}_Cooking_{k}" for s in range(1, 5) for k in range(1, 4)]


def waiting_build(tmp_path, monkeypatch):
    """A build of the fake pipeline without sheets: the 12 clips wait for labels."""
    monkeypatch.setattr(pipeline, "default_stages", tp.fake_stages)
    cfg = tp.make_project(tmp_path / "p")
    doc = json.loads(cfg.read_text())
    del doc["annotations"]
    cfg.write_text(json.dumps(doc))
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    return out


def test_csv_sheets_hold_every_waiting_clip_for_each_annotator(tmp_path, monkeypatch):
    out = waiting_build(tmp_path, monkeypatch)
    to = tmp_path / "sheets"
    args = ["annotate", "export", str(out), "--to", str(to), "--format", "csv",
            "--annotators", "A1,B7"]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    template = (ROOT / "annotations" / "template.csv").read_text("utf-8").splitlines()[0]
    for code in ("A1", "B7"):
        with open(to / f"{code}.csv", encoding="utf-8", newline="") as fh:
            rows = list(csv.DictReader(fh))
        header = list(rows[0])
        assert header[: len(template.split(","))] == template.split(",")
        assert [r["id"] for r in rows] == CLIPS
        assert {(r["annotator"], r["role"]) for r in rows} == {(code, "annotator")}
        assert all(not r["emotion"] and not r["sentiment_score"] for r in rows)  # to fill in
    (to / "notes.txt").write_text("mine")
    res = CliRunner().invoke(main, args[:-1] + ["A1"])
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in to.iterdir() if not p.name.startswith(".")) == [
        "A1.csv", "notes.txt"]  # B7's sheet is no longer written: removed; notes stay
