"""stage.py: the two stage kinds and their contract (checked on every stage of the real
pipeline), what the runner hands a stage (Context: earlier manifests, earlier rejections;
Inputs), the lazy Settings lookup, and the tool versions that go into fingerprints."""

from __future__ import annotations

import json
import shutil
import sys

import pytest

from indomer import pipeline, stage
from indomer.stage import Context, DatasetStage, Inputs, ItemStage, Produced


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


def test_a_folder_setup_gives_the_stage_its_folder_and_travels_by_pickle(tmp_path):
    """fetch and cut share one setup: the settings and one folder of the build's work dir."""
    import pickle

    from indomer.stages import cut, fetch

    ctx = Context(name="cut", out=tmp_path, workdir=tmp_path / "w", config=None)
    setup = pickle.loads(pickle.dumps(stage.folder_setup("clips")))
    assert setup("S", ctx) == stage.FolderState("S", tmp_path / "w" / "clips")
    assert cut.STAGE.setup("S", ctx).folder == tmp_path / "w" / "clips"
    assert fetch.STAGE.setup("S", ctx).folder == tmp_path / "w" / "media"


def test_settings_are_imported_only_when_asked():
    import subprocess

    code = ("import sys; from indomer import stage; g = stage.settings_of('cut'); "
            "print('indomer.stages.cut' in sys.modules); c = g(); "
            "print(c.__module__, c.__name__)")
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert res.stdout.split() == ["False", "indomer.stages.cut", "Settings"]


def test_the_defaults_of_each_kind_of_stage():
    s = ItemStage(name="x", process=lambda item, state: [])
    assert not s.model and s.reads is None and s.waiting is None and s.salt is None
    assert s.settings() is None and s.tools() == {} and s.inputs(None, {}) == {}
    assert s.setup("SETTINGS", None) == "SETTINGS" and s.outputs_ok(None, []) is True
    assert s.unit == "video" and s.section is None
    d = DatasetStage(name="y", process=lambda inputs, state: Produced([]))
    assert d.needs == () and d.outputs == () and d.salt is None and d.unit == "segment"
    assert d.setup("SETTINGS", None) == "SETTINGS"
    assert not isinstance(s, DatasetStage) and not isinstance(d, ItemStage)


def test_inputs_are_the_read_manifests_and_the_declared_documents():
    inputs = Inputs({"a": [{"id": "1"}], "b": [{"id": "2"}, {"id": "3"}]}, {"a/x.json": None})
    assert inputs["b"] == [{"id": "2"}, {"id": "3"}] and inputs.get("c", []) == []
    assert [r["id"] for r in inputs.rows()] == ["1", "2", "3"]
    assert inputs.documents == {"a/x.json": None}


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


# --------------------------------------------------------------------------- the contract


def _params(fn) -> list[str]:
    import inspect

    return list(inspect.signature(fn).parameters)


@pytest.mark.parametrize("name", pipeline.STAGES)
def test_every_stage_of_the_pipeline_keeps_the_contract(name):
    """The pipeline is the modules of STAGES, in order, each exporting a STAGE of that name
    of one of the two kinds, with the kind's process signature; a whole-dataset stage reads
    and needs only what earlier stages declare."""
    import importlib

    stages = pipeline.default_stages()
    names = [s.name for s in stages]
    stage = stages[names.index(name)]
    assert importlib.import_module(f"indomer.stages.{name}").STAGE is stage
    assert stage.name == name
    earlier = {s.name: s for s in stages[: names.index(name)]}
    if isinstance(stage, ItemStage):
        assert _params(stage.process) == ["item", "state"]
        assert not hasattr(stage, "outputs") and not hasattr(stage, "needs")
    else:
        assert isinstance(stage, DatasetStage)
        assert _params(stage.process) == ["inputs", "state"]
        assert not stage.model if hasattr(stage, "model") else True
        for ref in stage.needs:
            owner, _, file = ref.partition("/")
            assert owner in earlier, f"{name} needs {ref}: no earlier {owner} stage"
            assert file in earlier[owner].outputs, f"{owner} does not declare {file}"
    for read in stage.reads or ():
        assert read == "sources" or read in earlier, f"{name} reads {read}"
    if stage.section is not None:
        assert stage.configure is not None  # settings from another section: built by it


def test_the_kinds_of_the_pipeline_are_per_item_first_then_whole_dataset():
    kinds = [type(s).__name__ for s in pipeline.default_stages()]
    assert kinds == ["ItemStage"] * 7 + ["DatasetStage"] * 4


def test_the_speakers_stage_returns_exactly_its_declared_document():
    import numpy as np

    from indomer.rows import Segment, to_json
    from indomer.speakers import encode_embedding
    from indomer.stages import speakers

    rng = np.random.default_rng(0)
    rows = [to_json(Segment(id=f"clip_{k}_T_1", source_id=str(k), segment_index=1, topic="T",
                            start=0.0, end=5.0,
                            speaker={"embedding": encode_embedding(rng.standard_normal(256)),
                                     "primary": None, "flagged": False}))
            for k in range(1, 4)]
    got = speakers.STAGE.process(Inputs({"voices": rows}),
                                 speakers.ClusterState(speakers.Settings(), None))
    assert set(got.documents) == set(speakers.STAGE.outputs) == {"identity.json"}
    assert got.documents["identity.json"]["n_speakers"] == 3
    assert all(r["speaker_id"] and "embedding" not in r["speaker"] for r in got.rows)
