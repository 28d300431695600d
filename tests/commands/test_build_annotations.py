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


def test_a_clip_without_majority_waits_for_the_expert(release_dir, tmp_path):
    """Two annotators disagree on clip_2_Cooking_3 and no expert settles it: the clip is not
    shipped with the release's label, it waits (as in a raw build); build, stats, validate
    and the card count it; an expert row brings it back."""
    from indomer.split import assignment_of

    sheets = tmp_path / "sheets"
    sheets.mkdir()
    contested = truth.SHEET_HEADER + (
        "clip_2_Cooking_3,A1,annotator,-0.5,sedih,1,negatif,negatif,negatif\n"
        "clip_2_Cooking_3,A2,annotator,-0.7,marah,2,negatif,negatif,negatif\n"
    )
    (sheets / "round1.csv").write_text(contested, encoding="utf-8")
    out = tmp_path / "ds"
    args = ["build", "--release", str(release_dir), "--out", str(out), "--annotations", str(sheets)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert ("1 clip(s) unresolved (no majority and no expert), kept out of the shards until "
            "adjudicated: clip_2_Cooking_3; add an expert row (role=expert)") in res.stderr
    val = read_split(out, "validation")
    assert "clip_2_Cooking_3" not in set(val["id"]) and len(val) == 355
    build = json.loads((out / "build.json").read_text())
    assert build["waiting"] == {"unlabelled": [], "unresolved": ["clip_2_Cooking_3"]}
    # the official split still places the clip's source: it comes back in validation
    official = json.loads((out / "splits" / "official.json").read_text())
    assert "2" in official["assignment"]["validation"]
    assert official["report"]["sizes"] == {"train": 1588, "validation": 355}
    stats = CliRunner().invoke(main, ["stats", str(out)])
    assert stats.exit_code == 0, stats.output
    assert any(ln.split()[:2] == ["unresolved", "1"] for ln in stats.stdout.splitlines())
    valid = CliRunner().invoke(main, ["validate", str(out)])
    assert valid.exit_code == 0, valid.output
    assert ("warning: 1 clip(s) unresolved (no majority; not in the shards); add an expert "
            "row") in valid.stderr
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "- 1 clip(s) are unresolved: the annotator sheets reached no majority" in card
    # the expert settles it: the clip is back, with the expert's label
    (sheets / "round1.csv").write_text(
        contested + "clip_2_Cooking_3,E,expert,-0.4,kesedihan,2,negatif,negatif,negatif\n",
        encoding="utf-8")
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    assert "unresolved (no majority" not in res.stderr
    val = read_split(out, "validation").set_index("id")
    assert val.loc["clip_2_Cooking_3", "emotion"] == "sadness"
    assert bool(val.loc["clip_2_Cooking_3", "adjudicated"])
    assert json.loads((out / "build.json").read_text())["waiting"]["unresolved"] == []
    assert (assignment_of(official, val.reset_index(), "official") == "validation").all()
