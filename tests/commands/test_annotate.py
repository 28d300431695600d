"""``indomer annotate export --format csv``: one pre-filled sheet per annotator code, in the
template's columns, with every clip that waits for labels; a rerun replaces only its own
sheets. (Label Studio tasks, import and the server: tests/test_annotate.py and
tests/test_annotate_labelstudio.py.)"""

from __future__ import annotations

import csv
from pathlib import Path

from click.testing import CliRunner
from test_annotate import CLIPS, waiting_build  # noqa: F401

from indomer.cli import main

ROOT = Path(__file__).resolve().parents[2]


# waiting_build: test_annotate's fixture (the fake pipeline built without sheets, 12 clips
# waiting), imported above; pytest hands it in by this parameter name.
def test_csv_sheets_hold_every_waiting_clip_for_each_annotator(waiting_build, tmp_path):  # noqa: F811
    _, out, _ = waiting_build
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
