"""Word times count from the clip's start (DESIGN §3, dataset layout 2), and a build folder of
layout 1 (word times in seconds of the source video) is named by every reader and migrated by
the next build into it, without aligning again.

The align stage here is a fake that places each transcript token at known clip times; the
real aligner's base is tested in tests/stages/test_align.py.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pyarrow.parquet as pq
import pytest
import test_pipeline as tp
from click.testing import CliRunner

from indomer import pipeline
from indomer.cli import main
from indomer.errors import DataError
from indomer.pipeline import ItemStage, Stage, rebase_words, run_pipeline

#: Where the fake aligner counts from: "clip" (layout 2) or "source" (what layout 1 stored).
BASE = {"now": "clip"}


def clip_times(n: int) -> list[tuple[float, float]]:
    """The true clip times of a clip's n tokens."""
    return [(round(0.1 + 0.3 * i, 6), round(0.3 + 0.3 * i, 6)) for i in range(n)]


def fake_align(item: pipeline.Item, state: None) -> list:
    out: list = [item.video]
    for seg in item.segments:
        tokens = (seg.text or "").split()
        off = seg.start if BASE["now"] == "source" else 0.0
        words = tuple(
            {"word": t, "start": round(s + off, 6), "end": round(e + off, 6), "score": 0.9}
            for t, (s, e) in zip(tokens, clip_times(len(tokens)), strict=True)
        )
        out.append(dataclasses.replace(seg, words=words))
    return out


def stages() -> tuple[Stage, ...]:
    found = list(tp.fake_stages())
    found[pipeline.STAGES.index("align")] = ItemStage("align", fake_align)
    return tuple(found)


def _words(out: Path) -> dict[str, list[dict]]:
    rows = {}
    for p in sorted((out / "data").glob("*.parquet")):
        for r in pq.read_table(p, columns=["id", "start", "words"]).to_pylist():
            rows[r["id"]] = r["words"]
    return rows


def _problems(out: Path) -> list[str]:
    """validate's problems, less those of the fake clips (no real MP4s)."""
    from indomer.validate import validate

    return [p for p in validate(out)[0] if "not an MP4" not in p]


def _as_layout_1(out: Path) -> None:
    """What an indomer before layout 2 left: FORMAT layout 1, journals without the base."""
    (out / ".indomer/FORMAT").write_text(
        json.dumps({"format": "indomer-dataset", "layout": 1}), encoding="utf-8"
    )
    for done in sorted((out / "work").glob("*/done.jsonl")):
        lines = done.read_text(encoding="utf-8").splitlines()
        head = json.loads(lines[0])
        assert head.pop("words") == "clip"
        done.write_text("\n".join([json.dumps(head), *lines[1:]]) + "\n", encoding="utf-8")


@pytest.fixture
def old_build(tmp_path, monkeypatch):
    """A raw build made the old way: word times in source seconds, layout 1."""
    cfg = tp.make_project(tmp_path / "p")
    out = tmp_path / "out"
    monkeypatch.setitem(BASE, "now", "source")
    run_pipeline(cfg, out, stages=stages(), quiet=True)
    _as_layout_1(out)
    monkeypatch.setitem(BASE, "now", "clip")
    return cfg, out


def test_a_build_stores_word_times_from_the_clip_start(tmp_path):
    cfg = tp.make_project(tmp_path / "p")
    out = tmp_path / "out"
    run_pipeline(cfg, out, stages=stages(), quiet=True)
    words = _words(out)
    later = words["clip_2_Cooking_3"]  # starts at 4.0 s in its source
    assert [(w["start"], w["end"]) for w in later] == clip_times(len(later))
    assert json.loads((out / ".indomer/FORMAT").read_text()) == {
        "format": "indomer-dataset",
        "layout": 2,
    }
    assert _problems(out) == []


def test_readers_name_the_old_layout_and_how_to_migrate(old_build, tmp_path):
    from indomer import annotate, browse
    from indomer.validate import validate

    _, out = old_build
    later = _words(out)["clip_2_Cooking_3"]
    assert later[0]["start"] == pytest.approx(4.1)  # the old form: source seconds
    problems, _ = validate(out)
    assert any("dataset layout 1 (word times in seconds of the source video" in p
               and "indomer build CONFIG.yaml --out" in p for p in problems), problems
    outside = [p for p in problems if "word times outside their clip" in p]
    assert len(outside) == 1 and "clip_2_Cooking_3 ('teks' at 4.10 s in a 1.50 s clip)" in (
        outside[0]
    )
    res = CliRunner().invoke(main, ["validate", str(out)])
    assert res.exit_code == 1 and "dataset layout 1" in res.output
    with pytest.raises(DataError, match="dataset layout 1"):
        browse.load(out)
    with pytest.raises(DataError, match="dataset layout 1"):
        annotate.export(out, tmp_path / "tasks", only="all")
    res = CliRunner().invoke(main, ["split", str(out), "--speaker-disjoint"])
    assert res.exit_code == 1 and "dataset layout 1" in res.output, res.output


def test_the_next_build_migrates_without_aligning_again(old_build, tmp_path):
    from indomer import annotate

    cfg, out = old_build
    logged: list[str] = []
    report = run_pipeline(cfg, out, stages=stages(), log=logged.append)
    assert any("migrated work/" in m for m in logged)
    status = {s["name"]: s for s in report["stages"]}
    assert status["align"]["redone"] == 0  # served from its journal, re-based
    assert status["shards"]["status"] == "ran"
    assert json.loads((out / ".indomer/FORMAT").read_text())["layout"] == 2
    assert _problems(out) == []
    # the same words as a build that never knew layout 1
    fresh = tmp_path / "fresh"
    run_pipeline(cfg, fresh, stages=stages(), quiet=True)
    assert _words(out) == _words(fresh)
    # migration happens once: the next build changes nothing
    again = run_pipeline(cfg, out, stages=stages(), log=logged.append)
    assert {s["status"] for s in again["stages"]} == {"skipped"}
    assert sum("migrated" in m for m in logged) == 1
    # Label Studio tasks show the clip's own times
    annotate.export(out, tmp_path / "tasks", only="all")
    tasks = json.loads((tmp_path / "tasks/tasks.json").read_text())
    data = next(t["data"] for t in tasks if t["data"]["clip_id"] == "clip_2_Cooking_3")
    assert data["word_times"] == "[0.10-0.30] teks  [0.40-0.60] 2  [0.70-0.90] 3"


def test_a_migration_killed_half_way_is_finished_by_the_next_build(old_build):
    """Fingerprints go first, each journal is re-based in one atomic write and marked: a
    kill between two journals leaves stages that rerun, and no journal re-based twice."""
    cfg, out = old_build
    journals = sorted((out / "work").glob("*/done.jsonl"))
    old = {p: p.read_bytes() for p in journals}
    align = next(p for p in journals if p.parent.name.endswith("_align"))
    voices = next(p for p in journals if p.parent.name.endswith("_voices"))
    assert pipeline.migrate_work(out / "work")
    assert not list((out / "work").glob("*/fingerprint.json"))
    migrated = align.read_bytes()
    voices.write_bytes(old[voices])  # killed before this journal was rewritten
    assert pipeline.migrate_work(out / "work")
    assert align.read_bytes() == migrated  # not re-based twice
    assert not pipeline.migrate_work(out / "work")
    run_pipeline(cfg, out, stages=stages(), quiet=True)
    later = _words(out)["clip_2_Cooking_3"]
    assert [(w["start"], w["end"]) for w in later] == clip_times(len(later))


def test_rebase_words_only_moves_timed_words_of_segments():
    row = {
        "kind": "segment",
        "start": 12.5,
        "words": [
            {"word": "a", "start": 12.6, "end": 13.0, "score": 0.5},
            {"word": "b", "start": None, "end": None, "score": None},
        ],
    }
    moved = rebase_words(row)
    assert moved["words"] == [
        {"word": "a", "start": 0.1, "end": 0.5, "score": 0.5},
        {"word": "b", "start": None, "end": None, "score": None},
    ]
    assert row["words"][0]["start"] == 12.6  # the input is not changed
    video = {"kind": "video", "start": 3.0, "words": [{"word": "x", "start": 4.0}]}
    assert rebase_words(video) is video
