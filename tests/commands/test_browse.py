"""``indomer browse --html``: one self-contained page whose inlined data holds every clip of
the dataset with its labels, and a system's answers when given."""

from __future__ import annotations

import json
import re

import pandas as pd
from click.testing import CliRunner

from indomer.cli import main
from indomer.labels import label_set


def page_data(path) -> dict:
    text = path.read_text("utf-8")
    m = re.search(r'<script type="application/json" id="indomer-data"[^>]*>(.*?)</script>',
                  text, re.DOTALL)
    assert m, "no inlined data"
    return json.loads(m.group(1))


def test_the_page_inlines_every_clip_with_its_labels_and_a_systems_answers(built, tmp_path):
    frames = {s: pd.read_parquet(next((built / "data").glob(f"{s}-*.parquet")))
              for s in ("train", "validation")}
    val = frames["validation"]
    preds = tmp_path / "sys.jsonl"
    preds.write_text("".join(json.dumps({"id": i, "emotion": "anger"}) + "\n"
                             for i in val["id"]), encoding="utf-8")
    page = tmp_path / "page.html"
    r = CliRunner().invoke(main, ["browse", str(built), "--html", str(page),
                                  "--preds", str(preds)])
    assert r.exit_code == 0, r.output
    data = page_data(page)
    clips = {c["id"]: c for c in data["clips"]}
    assert len(clips) == sum(len(f) for f in frames.values())
    names = label_set("emotion").names
    for split, frame in frames.items():
        for row in frame.head(25).itertuples():
            clip = clips[row.id]
            assert (clip["split"], clip["emotion"], clip["text"]) == (
                split, names[row.emotion], row.text)
    assert len(data["systems"]) == 1
    assert "sys" in json.dumps(data["systems"][0])


def test_html_to_a_folder_is_refused(built, tmp_path):
    r = CliRunner().invoke(main, ["browse", str(built), "--html", str(tmp_path)])
    assert r.exit_code == 2, r.output
    assert f"invalid value for '--html': File '{tmp_path}' is a directory" in r.output
