"""Build before labels (issue 11): a raw build without annotator sheets runs every per-clip
stage, keeps the clips in the manifests, rejects nothing for "no labels yet", writes no
shards, and says how to export the clips; adding sheets reruns only merge, split, shards."""

from __future__ import annotations

import json

import test_pipeline as tp
from click.testing import CliRunner

from indomer import pipeline
from indomer.cli import main


def _without_sheets(cfg):
    doc = json.loads(cfg.read_text())
    del doc["annotations"]
    cfg.write_text(json.dumps(doc))
    return doc


def test_build_without_sheets_stops_after_merge_and_says_how_to_export(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "default_stages", tp.fake_stages)
    cfg = tp.make_project(tmp_path / "p")
    doc = _without_sheets(cfg)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    last = res.output.strip().splitlines()[-1]
    assert last == (
        f"12 clip(s) wait for labels (nothing to split or shard yet); export them with: "
        f"indomer annotate export {out} --to DIR"
    )
    assert "stopped after merge" in res.output
    # every clip is in the merge manifest, none rejected, no dataset generation yet
    merge = pipeline.read_manifest(out / "work/09_merge/manifest.jsonl")
    assert sorted(r["id"] for r in merge if r["kind"] == "segment") == [
        f"clip_{s}_Cooking_{k}" for s in range(1, 5) for k in range(1, 4)
    ]
    assert all(r.get("audio_path") for r in merge if r["kind"] == "segment")
    rejected = (out / "work/rejected.jsonl").read_text()
    assert "label" not in rejected
    assert not (out / "build.json").exists() and not (out / "data").exists()
    assert not (out / "work/10_split/fingerprint.json").exists()
    labels = json.loads((out / "work/09_merge/labels.json").read_text())
    assert len(labels["waiting"]) == 12

    # the sheets arrive: only merge, split and shards run
    doc["annotations"] = ["sheets"]
    cfg.write_text(json.dumps(doc))
    report = pipeline.run_pipeline(cfg, out, quiet=True)
    status = {s["name"]: s["status"] for s in report["stages"]}
    assert {n for n, s in status.items() if s == "ran"} == {"merge", "split", "shards"}
    assert report["waiting"] is None and sum(report["rows"].values()) == 12


def test_schema_and_config_accept_a_config_without_annotations(tmp_path):
    from indomer.config import load_config

    cfg = tp.make_project(tmp_path / "p")
    _without_sheets(cfg)
    assert load_config(cfg).annotations == ()


def _split_votes(cfg, seg_id: str) -> None:
    """The two annotators of ``seg_id`` disagree on every field: no majority anywhere."""
    sheet = cfg.parent / "sheets/labels.csv"
    lines = sheet.read_text().splitlines()
    for i, line in enumerate(lines):
        if line.startswith(f"{seg_id},budi,"):
            ani = next(x for x in lines if x.startswith(f"{seg_id},ani,")).split(",")
            other = "anger" if ani[4] != "anger" else "happiness"
            score = "0.6" if other == "happiness" else "-0.8"
            mood = "positive" if other == "happiness" else "negative"
            lines[i] = f"{seg_id},budi,annotator,{score},{other},2,{mood},{mood},{mood}"
    sheet.write_text("\n".join(lines) + "\n")


def test_unresolved_clips_wait_for_the_expert(tmp_path, monkeypatch):
    """Issue 20 point 2: a clip without a majority stays out of the shards until the expert
    settles it; the build, stats, the card and validate count it."""
    import pyarrow.parquet as pq

    from indomer import annotate

    monkeypatch.setattr(pipeline, "default_stages", tp.fake_stages)
    cfg = tp.make_project(tmp_path / "p")
    seg = "clip_2_Cooking_2"
    _split_votes(cfg, seg)
    out = tmp_path / "out"
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert lines[-1] == (
        f"1 clip(s) unresolved (no majority); export them for an expert with: "
        f"indomer annotate export {out} --to DIR --only unresolved"
    )
    assert any(x.startswith("0 clip(s) unlabelled, 1 unresolved") for x in lines), lines
    assert any(x.startswith("built 11 rows") for x in lines), lines
    shards = sorted((out / "data").glob("*.parquet"))
    ids = {i for p in shards for i in pq.read_table(p)["id"].to_pylist()}
    assert len(ids) == 11 and seg not in ids
    build = json.loads((out / "build.json").read_text())
    assert build["waiting"] == {"unlabelled": [], "unresolved": [seg]}
    merge = pipeline.read_manifest(out / "work/09_merge/manifest.jsonl")
    held = [r for r in merge if r.get("id") == seg]
    assert held[0]["kind"] == "unresolved" and held[0]["emotion"] is None
    assert {v["annotator"] for v in held[0]["annotations"]} == {"ani", "budi"}
    # stats, card and validate count it
    res = CliRunner().invoke(main, ["stats", str(out), "--json", "-"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.output)["waiting"] == {"unlabelled": 0, "unresolved": 1}
    res = CliRunner().invoke(main, ["stats", str(out)])
    row = next(x for x in res.output.splitlines() if x.strip().startswith("unresolved"))
    assert row.split()[1] == "1"
    card = (out / "README.md").read_text()
    assert "1 clip(s) are unresolved: the annotators reached no majority" in card
    from indomer.validate import validate

    _, warnings = validate(out)  # (the fake clips are no real MP4s: those problems aside)
    assert (
        f"1 clip(s) unresolved (no majority; not in the shards); export them for an expert "
        f"with: indomer annotate export {out} --to DIR --only unresolved"
    ) in warnings
    # the expert's export holds exactly it, with the votes; unlabelled holds nothing
    clips = annotate.select(annotate.read_clips(out), "unresolved")
    assert [c.id for c in clips] == [seg]
    assert annotate.select(annotate.read_clips(out), "unlabelled") == []

    # the expert settles it: the clip joins the shards, nothing waits
    sheet = cfg.parent / "sheets/labels.csv"
    sheet.write_text(
        sheet.read_text() + f"{seg},ratna,expert,-0.8,anger,3,negative,negative,negative\n"
    )
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(out), "--quiet"])
    assert res.exit_code == 0, res.output
    lines = res.output.strip().splitlines()
    assert any(x.startswith("built 12 rows") for x in lines), lines
    assert any(x.startswith("0 clip(s) unlabelled, 0 unresolved") for x in lines), lines
    assert not any("export them for an expert" in x for x in lines), lines
    build = json.loads((out / "build.json").read_text())
    assert build["waiting"] == {"unlabelled": [], "unresolved": []}
    rows = [r for p in (out / "data").glob("*.parquet") for r in pq.read_table(p).to_pylist()]
    settled = next(r for r in rows if r["id"] == seg)
    assert settled["adjudicated"] is True and settled["emotion"] is not None


def test_a_field_nobody_voted_on_does_not_hold_a_clip_back(tmp_path):
    from indomer.merge import contested_ids, merge_sheets

    sheet = tmp_path / "s.csv"
    sheet.write_text(
        "id,annotator,role,sentiment_score,emotion,emotion_intensity,text_sentiment,"
        "audio_sentiment,video_sentiment\n"
        "a,A1,annotator,0.6,happy,2,positive,positive,\n"
        "a,A2,annotator,0.6,happy,2,positive,positive,\n"
        "b,A1,annotator,0.6,happy,2,positive,positive,positive\n"
        "b,A2,annotator,-0.6,sad,2,negative,negative,negative\n"
        "c,A1,annotator,0.6,happy,2,positive,positive,positive\n"
        "c,A2,annotator,0.6,happy,2,positive,positive,positive\n"
        "c,E1,expert,-0.6,sad,2,negative,negative,negative\n"
    )
    result = merge_sheets([sheet])
    assert result.segments["a"].video_sentiment is None  # unresolved, but nobody voted
    assert contested_ids(result.unresolved) == ["b"]
