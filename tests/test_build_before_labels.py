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
