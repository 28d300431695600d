"""stage.py: what the runner hands a stage (Context: earlier manifests, earlier rejections),
the lazy Settings lookup, and the tool versions that go into fingerprints."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from indomer import stage
from indomer.stage import Context, Stage


def _write(path, rows):
    path.mkdir(parents=True, exist_ok=True)
    (path / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_context_reads_earlier_manifests_and_rejections_in_stage_order(tmp_path):
    dirs = {name: tmp_path / "work" / f"0{i}_{name}"
            for i, name in enumerate(["sources", "fetch", "probe", "segment"])}
    _write(dirs["sources"], [{"kind": "video", "source_id": "1"}])
    (dirs["sources"] / "rejected.jsonl").write_text('{"stage": "sources", "id": "9"}\n')
    (dirs["fetch"]).mkdir(parents=True)
    (dirs["fetch"] / "rejected.jsonl").write_text('{"stage": "fetch", "id": "7"}\n')
    (dirs["probe"]).mkdir(parents=True)
    (dirs["probe"] / "rejected.jsonl").write_text('{"stage": "probe", "id": "5"}\n')
    ctx = Context(name="probe", out=tmp_path, workdir=tmp_path / "work", config=None, dirs=dirs)
    assert ctx.manifest("sources") == [{"kind": "video", "source_id": "1"}]
    # only the stages before this one: probe's own rejections are not "before"
    assert [r["id"] for r in ctx.rejected_before()] == ["9", "7"]


def test_a_context_travels_to_workers_by_pickle(tmp_path):
    import pickle

    ctx = Context(name="cut", out=tmp_path, workdir=tmp_path / "w", config=None,
                  dirs={"cut": tmp_path / "w" / "06_cut"})
    assert pickle.loads(pickle.dumps(ctx)) == ctx


def test_settings_are_imported_only_when_asked():
    import subprocess

    code = ("import sys; from indomer import stage; g = stage.settings_of('cut'); "
            "print('indomer.stages.cut' in sys.modules); c = g(); "
            "print(c.__module__, c.__name__)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.split() == ["False", "indomer.stages.cut", "Settings"]


def test_the_defaults_of_a_stage_are_a_per_item_stage_with_no_extras():
    s = Stage(name="x", run=lambda item, state: [])
    assert s.per_item and not s.model and s.reads is None and s.waiting is None
    assert s.settings() is None and s.tools() == {} and s.inputs(None, {}) == {}
    assert s.setup("SETTINGS", None) == "SETTINGS" and s.outputs_ok(None, []) is True


def test_ffmpeg_version_is_the_first_line_of_ffmpeg_version():
    stage.ffmpeg_version.cache_clear()
    try:
        got = stage.ffmpeg_version()["ffmpeg"]
    finally:
        stage.ffmpeg_version.cache_clear()
    assert got.startswith("ffmpeg version ")


def test_ffmpeg_version_says_missing_without_ffmpeg(monkeypatch):
    monkeypatch.setattr(shutil, "which", lambda name: None)
    stage.ffmpeg_version.cache_clear()
    try:
        assert stage.ffmpeg_version() == {"ffmpeg": "missing"}
    finally:
        stage.ffmpeg_version.cache_clear()


@pytest.mark.parametrize("name", ["fetch", "probe", "segment", "cut", "align", "faces"])
def test_every_per_item_stage_module_exports_a_named_stage(name):
    import importlib

    mod = importlib.import_module(f"indomer.stages.{name}")
    assert isinstance(mod.STAGE, Stage) and mod.STAGE.name == name and mod.STAGE.per_item
