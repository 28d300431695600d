"""tail.py: what both build modes share: one sheet merge with one rejection style, one
build.json shape, the declared documents' names, and the closing lines read from them."""

from __future__ import annotations

import inspect
from pathlib import Path

from indomer import tail
from indomer.merge import SHEET_COLUMNS

SHEET = "\n".join([
    ",".join(SHEET_COLUMNS),
    "clip_1_A_1,A1,annotator,0.6,happiness,2,positive,positive,neutral",
    "clip_1_A_1,A2,annotator,0.8,senang,3,positif,positif,netral",
    "clip_1_A_2,A1,annotator,0.2,bosan,1,neutral,neutral,neutral",  # line 4: no such label
    "clip_9_A_1,A1,annotator,0.5,happiness,2,positive,positive,positive",  # not in the build
]) + "\n"


def test_merge_sheets_rejects_bad_rows_by_file_line_and_unknown_ids(tmp_path):
    sheets = tmp_path / "deep" / "sheets"
    sheets.mkdir(parents=True)
    (sheets / "round1.csv").write_text(SHEET, encoding="utf-8")
    result, rejected = tail.merge_sheets([sheets], {"clip_1_A_1", "clip_1_A_2"}, "not here",
                                         "check it")
    assert set(result.segments) == {"clip_1_A_1", "clip_9_A_1"}
    assert result.segments["clip_1_A_1"].emotion == "happiness"
    bad, unknown = rejected
    # one style in both modes: stage, id, reason, fix, and where as the sheet's base name:line
    assert set(bad) == {"stage", "id", "reason", "fix", "where"}
    assert (bad["stage"], bad["id"], bad["where"]) == ("merge", "clip_1_A_2", "round1.csv:4")
    assert "bosan" in bad["reason"] and str(tmp_path) not in str(rejected)
    assert unknown == {"stage": "merge", "id": "clip_9_A_1", "reason": "not here",
                       "fix": "check it", "where": "annotator sheets"}


def test_no_sheets_label_nothing_and_reject_nothing():
    result, rejected = tail.merge_sheets(None, {"clip_1_A_1"}, "x", "y")
    assert result.segments == {} and rejected == []


def test_provenance_has_one_shape_whatever_the_mode_fills():
    common = {"command": "c", "source": {"kind": "k"}, "config": {}, "inputs": {},
              "versions": {}, "rejected": 0, "warnings": [], "media": None, "agreement": None,
              "rule_violations": [], "repaired_texts": []}
    bare = tail.provenance(**common)
    full = tail.provenance(**common, text_sources={"manual": 2}, machine_text=["a"],
                           sources={"1": {}}, stages={"cut": {}},
                           waiting={"unlabelled": ["b"], "unresolved": []})
    assert set(bare) == set(full)
    assert bare["waiting"] == {"unlabelled": [], "unresolved": []} and bare["sources"] == {}
    assert bare["speakers"] is None  # the key is there whether the speakers stage ran or not
    assert tail.provenance(**common, speakers={"n_speakers": 1})["speakers"]["n_speakers"] == 1


def test_both_modes_end_in_the_same_functions():
    from indomer import build
    from indomer.stages import merge, shards

    for mod in (build, shards):
        src = inspect.getsource(mod)
        assert "tail.provenance(" in src or "provenance(\n" in src
        assert "commit_generation(" in src and "writing(" not in src
    assert "merge_sheets(" in inspect.getsource(merge)
    assert "merge_sheets(" in inspect.getsource(build.apply_annotations)


def test_document_input_hashes_an_earlier_stage_document_when_the_stage_is_there():
    dirs = {"speakers": Path("/w/08_speakers")}
    assert tail.document_input(tail.IDENTITY, "identity", None, dirs) == {
        "identity": Path("/w/08_speakers/identity.json")}
    assert tail.document_input(tail.IDENTITY, "identity", None, {}) == {}


def test_closing_lines_come_from_the_declared_documents():
    labels = {"agreement": {}, "waiting": ["a", "b", "c"], "unresolved_clips": ["c"]}
    assert tail.labels_summary({tail.LABELS: labels}) == [
        ("2 clip(s) unlabelled, 1 unresolved (annotators reached no majority and no expert "
         "decided)")]
    assert tail.labels_summary({}) == []
    warned, lines = tail.identity_summary({tail.IDENTITY: {"warnings": ["w1"]},
                                           tail.SPLIT: {"warning": "w2", "document": {}}})
    assert warned == ["warning: w1", "warning: w2"] and lines == []


def test_release_and_raw_builds_write_the_same_keys(built, tmp_path_factory):
    """Issue 22, one tail: a release build and a raw build (the demo) write the same
    build.json keys, the same shard key-value metadata (and the same keys inside indomer's),
    and split documents of one shape, made by one builder (the release's with method
    official and nothing drawn)."""
    import json

    import pyarrow.parquet as pq
    from demo_build import demo_dataset

    from indomer.dataset import read_meta

    demo = demo_dataset(tmp_path_factory)

    def keys(out: Path) -> tuple:
        build = json.loads((out / "build.json").read_text(encoding="utf-8"))
        shard = min((out / "data").glob("*.parquet"))
        return set(build), set(pq.read_metadata(shard).metadata), set(read_meta(out))

    assert keys(built) == keys(demo)
    assert set(read_meta(built)) == set(tail.SHARD_META_KEYS)
    assert read_meta(built)["command"] == "build --release"
    assert read_meta(demo)["command"] == "build CONFIG"
    official = json.loads((built / "splits" / "official.json").read_text(encoding="utf-8"))
    name = json.loads((demo / "build.json").read_text(encoding="utf-8"))["split"]["name"]
    drawn = json.loads((demo / "splits" / f"{name}.json").read_text(encoding="utf-8"))
    identity = {"linking", "expected_people_on_two_sides", "risk_pairs"}  # speakers linked
    assert set(official) == set(drawn) - identity
    assert official["method"] == "official" and drawn["method"] == "speaker-disjoint"
    assert (official["seed"], official["ratios"], official["size_tolerance"]) == (None,) * 3
    assert official["assignment"]["train"] and official["assignment"]["validation"]
