"""``indomer build --annotations``: annotator sheets override release labels, votes are kept."""

from __future__ import annotations

import json

import truth
from click.testing import CliRunner

from indomer.cli import main
from indomer.dataset import read_split

#: clip_2_Cooking_1: a majority (happiness); clip_2_Cooking_2: the expert decides (sadness);
#: then a bad row, rejected with its line while the rest still merge.
SHEET = truth.SHEET + "clip_2_Cooking_3,A1,annotator,0.2,bosan,1,netral,netral,netral\n"


def test_sheets_override_labels_and_keep_votes(release_dir, tmp_path):
    sheet = tmp_path / "sheets" / "round1.csv"
    sheet.parent.mkdir()
    sheet.write_text(SHEET, encoding="utf-8")
    out = tmp_path / "ds"
    res = CliRunner().invoke(
        main,
        ["build", "--release", str(release_dir), "--out", str(out), "--annotations", str(sheet.parent)],
    )
    assert res.exit_code == 0, res.output
    assert "round1.csv:9" in res.output and "bosan" in res.output
    val = read_split(out, "validation").set_index("id")
    one, two = val.loc["clip_2_Cooking_1"], val.loc["clip_2_Cooking_2"]
    assert (one["emotion"], one["sentiment"], bool(one["adjudicated"])) == ("happiness", "positive", False)
    assert one["emotion_intensity"] == 3  # median of 2 and 3, half up
    assert one["video_sentiment"] == "positive" and one["text_sentiment"] == "positive"
    assert (two["emotion"], bool(two["adjudicated"])) == ("sadness", True)
    votes = {(v["annotator"], v["field"]): v["value"] for v in one["annotations"]}
    assert votes[("A2", "emotion")] == "happiness" and votes[("A3", "sentiment_score")] == "0.0"
    # segments without sheets keep the release labels and have no votes
    assert val.loc["clip_2_Cooking_4", "annotations"] is None
    build = json.loads((out / "build.json").read_text())
    assert "annotations/round1.csv" in build["inputs"]
    assert build["agreement"]["emotion"]["items"] == 2
    # by hand, the annotators' emotions (h h n) and (s a n): Fleiss' P = 1/6, Pe = 10/36,
    # kappa = -4/26; Krippendorff Do = 5/6, De = 26/30, alpha = 1/26
    assert (
        "agreement emotion: Fleiss' kappa -0.154, Krippendorff's alpha 0.038 "
        "(nominal; 2 items, 3 annotators)"
    ) in res.stdout.splitlines()
    assert build["rejected"] == 1
    rejected = [json.loads(line) for line in (out / "rejected.jsonl").read_text().splitlines()]
    assert rejected[0]["where"] == "round1.csv:9" and str(tmp_path) not in json.dumps(rejected)
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "| emotion | " in card and "Krippendorff's alpha" in card
