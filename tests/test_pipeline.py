"""The pipeline runner: skip, resume after kill -9, --jobs, --from/--to, rejections, tail.

The media stages (probe, segment, cut) are written elsewhere; here they are small fakes
registered through ``run_pipeline(..., stages=...)``, with the real fetch, the given-segments
path of the segment stage and the real merge -> split -> shards tail.
"""

from __future__ import annotations

import dataclasses
import io
import json
import os
import signal
import subprocess
import sys
import time
import wave
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from indomer import pipeline
from indomer.cli import main
from indomer.errors import DataError, RowRejected, UsageError
from indomer.faults import FAULT_ENV
from indomer.generation import LockedError
from indomer.pipeline import DatasetStage, ItemStage, Produced, Stage, run_pipeline

EMOTIONS = ("happiness", "sadness", "neutral", "anger")
SENT = {
    "happiness": ("positive", 0.6),
    "sadness": ("negative", -0.6),
    "neutral": ("neutral", 0.0),
    "anger": ("negative", -0.8),
}


# --------------------------------------------------------------------------- fakes


@dataclass(frozen=True)
class FakeSettings:
    """Settings of the fake stages: a per-item sleep and a file counting calls."""

    sleep: float = field(default=0.0, metadata={"fingerprint": False})
    calls: str | None = field(default=None, metadata={"fingerprint": False})
    duration: float = 10.0
    fail: tuple = ()


def fake_settings() -> type:
    return FakeSettings


def _count(settings: FakeSettings, stage: str, key: str) -> None:
    if settings.calls:
        with open(f"{settings.calls}.pids", "a", encoding="utf-8") as fh:
            fh.write(f"{os.getpid()}\n")
        with open(settings.calls, "a", encoding="utf-8") as fh:
            fh.write(f"{stage} {key}\n")
            fh.flush()
            os.fsync(fh.fileno())


def fake_probe(item: pipeline.Item, settings: FakeSettings) -> list:
    _count(settings, "probe", item.key)
    if item.key in settings.fail:
        raise RowRejected(item.key, "no video stream", "check the file plays")
    time.sleep(settings.sleep)
    return [
        dataclasses.replace(
            item.video,
            duration=settings.duration,
            fps=25.0,
            width=64,
            height=48,
            video_codec="h264",
            audio_codec="aac",
            sample_rate=16000,
        )
    ]


def _wav(seconds: float, seed: int) -> bytes:
    buf = io.BytesIO()
    with wave.open(buf, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(16000)
        n = int(seconds * 1600)  # a tenth of the real length keeps the fixture small
        w.writeframes(bytes((seed + i) % 256 for i in range(2 * n)))
    return buf.getvalue()


@dataclass(frozen=True)
class CutState:
    settings: FakeSettings
    clips: Path


def fake_cut_setup(settings: FakeSettings, ctx: pipeline.Context) -> CutState:
    return CutState(settings, ctx.workdir / "clips")


def fake_cut(item: pipeline.Item, state: CutState) -> list:
    _count(state.settings, "cut", item.key)
    time.sleep(state.settings.sleep)
    state.clips.mkdir(parents=True, exist_ok=True)
    out: list = [item.video]
    for seg in item.segments:
        wav = state.clips / f"{seg.id}.wav"
        mp4 = state.clips / f"{seg.id}.mp4"
        wav.write_bytes(_wav(seg.end - seg.start, seg.segment_index))
        mp4.write_bytes(f"fake mp4 {seg.id}".encode())
        out.append(dataclasses.replace(seg, audio_path=str(wav), video_path=str(mp4)))
    return out


_REAL_STAGES = pipeline.default_stages


def passthrough(item: pipeline.Item, state: None) -> list:
    return [item.video, *item.segments]


def passthrough_whole(inputs: pipeline.Inputs, state: None) -> Produced:
    return Produced(inputs.rows())


def fake_stages() -> tuple[Stage, ...]:
    real = {s.name: s for s in _REAL_STAGES()}
    return (
        real["fetch"],
        ItemStage("probe", fake_probe, settings=fake_settings),
        ItemStage(
            "segment",
            real["segment"].process,
            setup=real["segment"].setup,
            inputs=real["segment"].inputs,
        ),
        ItemStage("cut", fake_cut, settings=fake_settings, setup=fake_cut_setup),
        # the model stages (align, voices, faces, speakers) have their own tests
        *(
            ItemStage(name, passthrough)
            if name != "speakers"
            else DatasetStage(name, passthrough_whole)
            for name in pipeline.STAGES[pipeline.STAGES.index("cut") + 1 : -3]
        ),
        real["merge"],
        real["split"],
        real["shards"],
    )


# --------------------------------------------------------------------------- project


def make_project(
    root: Path,
    n_sources: int = 4,
    per_source: int = 3,
    probe: dict | None = None,
    cut: dict | None = None,
    split: dict | None = None,
) -> Path:
    """A raw project: local "videos", segments, transcripts, two annotators, a config."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "videos").mkdir(exist_ok=True)
    src_lines = ["source_id,url_or_path,topic,license"]
    seg_lines = ["id,source_id,start,end,text"]
    sheet = [
        "id,annotator,role,sentiment_score,emotion,emotion_intensity,text_sentiment,"
        + "audio_sentiment,video_sentiment"
    ]
    tr = ["id,text"]
    for s in range(1, n_sources + 1):
        (root / "videos" / f"v{s}.mp4").write_bytes(f"video {s}".encode() * 100)
        src_lines.append(f"{s},videos/v{s}.mp4,Cooking,CC-BY-4.0")
        for k in range(1, per_source + 1):
            sid = f"clip_{s}_Cooking_{k}"
            seg_lines.append(f"{sid},{s},{2 * k - 2}.0,{2 * k - 0.5},teks {s} {k}")
            emo = EMOTIONS[(s + k) % len(EMOTIONS)]
            sent, score = SENT[emo]
            for ann in ("ani", "budi"):
                sheet.append(f"{sid},{ann},annotator,{score},{emo},2,{sent},{sent},{sent}")
            if k == 1:
                tr.append(f"{sid},Transkrip manual {s}.")
    (root / "sources.csv").write_text("\n".join(src_lines) + "\n")
    (root / "segments.csv").write_text("\n".join(seg_lines) + "\n")
    (root / "transcripts.csv").write_text("\n".join(tr) + "\n")
    (root / "sheets").mkdir(exist_ok=True)
    (root / "sheets" / "labels.csv").write_text("\n".join(sheet) + "\n")
    cfg = {
        "sources": "sources.csv",
        "segments": "segments.csv",
        "transcripts": "transcripts.csv",
        "annotations": ["sheets"],
        "split": split or {"ratios": [0.5, 0.25, 0.25], "seed": 0},
        "probe": probe or {},
        "cut": cut or {},
    }
    (root / "build.yaml").write_text(json.dumps(cfg))  # JSON is YAML
    return root / "build.yaml"


def _files(folder: Path, under: str = "") -> dict[str, bytes]:
    """Every file as a reader sees it: through the dataset's links, not under .indomer/."""
    base = folder / under if under else folder
    found = {}
    for dirpath, dirs, files in os.walk(base, followlinks=True):
        dirs[:] = [d for d in dirs if d != ".indomer"]
        for name in files:
            p = Path(dirpath) / name
            found[p.relative_to(folder).as_posix()] = p.read_bytes()
    return dict(sorted(found.items()))


def _outputs(out: Path) -> dict[str, bytes]:
    """What must not depend on how the build got there: shards, manifests, clips, rejects."""
    keep = {}
    for rel, data in _files(out).items():
        top = rel.startswith(("data/", "splits/")) or rel in ("rejected.jsonl", "build.json")
        manifest = rel.startswith("work/") and rel.endswith(("manifest.jsonl", "rejected.jsonl"))
        media = "/clips/" in rel or "/media/" in rel
        if top or manifest or media:
            keep[rel] = data
    return keep


def _calls(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def _build(cfg: Path, out: Path, **kw) -> dict:
    return run_pipeline(cfg, out, stages=fake_stages(), quiet=True, **kw)


def _status(report: dict) -> dict[str, str]:
    return {s["name"]: s["status"] for s in report["stages"]}


# --------------------------------------------------------------------------- tests


def test_full_build_writes_a_loadable_dataset_and_a_noop_rebuild_skips(tmp_path):
    calls = tmp_path / "calls.txt"
    cfg = make_project(tmp_path / "p", probe={"calls": str(calls)}, cut={"calls": str(calls)})
    out = tmp_path / "out"
    report = _build(cfg, out)
    assert set(_status(report).values()) == {"ran"}
    assert report["rows"] == {"train": 6, "validation": 3, "test": 3}
    assert [s["name"] for s in report["stages"]] == list(pipeline.STAGES)
    tables = {s: pq.read_table(out / f"data/{s}-00000-of-00001.parquet") for s in report["rows"]}
    rows = {r["id"]: r for t in tables.values() for r in t.to_pylist()}
    r = rows["clip_2_Cooking_1"]
    assert r["text"] == "Transkrip manual 2."  # transcripts.csv wins over segments.csv text
    assert rows["clip_2_Cooking_2"]["text"] == "teks 2 2"
    assert (r["start"], r["end"], r["segment_index"], r["source_id"]) == (0.0, 1.5, 1, "2")
    assert r["audio"]["path"] == "clip_2_Cooking_1.wav" and r["audio"]["bytes"][:4] == b"RIFF"
    assert r["video"]["bytes"] == b"fake mp4 clip_2_Cooking_1"
    assert {v["annotator"] for v in r["annotations"]} == {"ani", "budi"}
    # sources are grouped: no source video in two splits
    where = {}
    for split, t in tables.items():
        for src in t.column("source_id").to_pylist():
            assert where.setdefault(src, split) == split
    build = json.loads((out / "build.json").read_text())
    assert build["rows"] == report["rows"] and build["rejected"] == 0
    assert set(build["inputs"]) == {
        "build.yaml",
        "sources.csv",
        "segments.csv",
        "transcripts.csv",
        "sheets/labels.csv",
    }
    assert (
        build["sources"]["1"]["sha256"]
        == __import__("hashlib").sha256(b"video 1" * 100).hexdigest()
    )
    assert build["stages"]["probe"]["stats"]["kept"] == 4
    assert build["split"] == {
        "name": "speaker-disjoint",
        "file": "splits/speaker-disjoint.json",
    }
    assert (out / "README.md").is_file() and (out / "rejected.jsonl").read_text() == ""
    manifest = (out / "work/04_cut/manifest.jsonl").read_text().splitlines()
    ids = [pipeline.row_id(json.loads(line)) for line in manifest]
    assert ids == sorted(ids)
    assert any('"audio_path":"work/04_cut/clips/clip_1_Cooking_1.wav"' in m for m in manifest)
    # the stage contract: each whole-dataset stage's declared documents are in its folder
    for n, stage in enumerate(fake_stages(), start=1):
        for file in getattr(stage, "outputs", ()):
            assert (out / "work" / f"{n:02d}_{stage.name}" / file).is_file(), (stage.name, file)
    assert {s.name: s.outputs for s in fake_stages() if isinstance(s, DatasetStage)} == {
        "speakers": (), "merge": ("labels.json",), "split": ("split.json",), "shards": ()}

    n_calls = len(_calls(calls))
    before = _files(out)
    again = _build(cfg, out)
    assert set(_status(again).values()) == {"skipped"}
    assert len(_calls(calls)) == n_calls  # nothing redone
    assert _files(out) == before  # and nothing rewritten


def test_two_builds_are_byte_identical_and_jobs_do_not_change_the_result(tmp_path):
    calls = tmp_path / "calls.txt"
    cfg = make_project(tmp_path / "p", probe={"calls": str(calls), "sleep": 0.05})
    _build(cfg, tmp_path / "a")
    assert set(_calls(Path(f"{calls}.pids"))) == {str(os.getpid())}
    Path(f"{calls}.pids").unlink()
    _build(cfg, tmp_path / "b", jobs=2)
    pids = set(_calls(Path(f"{calls}.pids")))
    assert pids and str(os.getpid()) not in pids  # pool workers did the work
    a, b = _outputs(tmp_path / "a"), _outputs(tmp_path / "b")
    assert any(k.startswith("data/") for k in a)
    assert a == b


def test_changes_redo_only_what_they_touch(tmp_path):
    calls = tmp_path / "calls.txt"
    cfg = make_project(tmp_path / "p", probe={"calls": str(calls)}, cut={"calls": str(calls)})
    out = tmp_path / "out"
    _build(cfg, out)
    # one source file changes: fetch, probe and cut redo that source only
    (tmp_path / "p/videos/v3.mp4").write_bytes(b"a new cut of video 3")
    n = len(_calls(calls))
    report = _build(cfg, out)
    redone = {s["name"]: s["redone"] for s in report["stages"]}
    assert redone["fetch"] == 1 and redone["probe"] == 1 and redone["cut"] == 1
    assert _calls(calls)[n:] == ["probe 3", "cut 3"]
    assert json.loads((out / "build.json").read_text())["sources"]["3"]["sha256"] == (
        __import__("hashlib").sha256(b"a new cut of video 3").hexdigest()
    )
    # a setting that changes the output reruns the stage for every item
    text = json.loads(cfg.read_text())
    text["probe"]["duration"] = 9.0
    cfg.write_text(json.dumps(text))
    n = len(_calls(calls))
    report = _build(cfg, out)
    assert _status(report)["fetch"] == "skipped"
    assert sorted(c for c in _calls(calls)[n:] if c.startswith("probe")) == [
        f"probe {i}" for i in range(1, 5)
    ]
    # a setting marked fingerprint=False (sleep) changes nothing
    text["probe"]["sleep"] = 0.001
    cfg.write_text(json.dumps(text))
    report = _build(cfg, out)
    assert _status(report)["probe"] == "skipped"
    # --force reruns, and the result is the same
    before = _outputs(out)
    report = _build(cfg, out, force=True)
    assert set(_status(report).values()) == {"ran"}
    assert _outputs(out) == before


def test_rejections_are_recorded_and_the_others_continue(tmp_path):
    cfg = make_project(tmp_path / "p", n_sources=5, probe={"fail": ["2"]})
    sources = tmp_path / "p/sources.csv"
    sources.write_text(
        sources.read_text()
        + "../evil,videos/v1.mp4,Cooking,x\n"
        + "7,ftp://example.org/v.mp4,Cooking,x\n"
        + "8,videos/missing.mp4,Cooking,x\n"
        + "1,videos/v1.mp4,Cooking,dup\n"
    )
    sheet = tmp_path / "p/sheets/labels.csv"
    lines = sheet.read_text().splitlines()
    # clip_4_Cooking_3 loses its labels; a label for an unknown clip appears
    lines = [ln for ln in lines if not ln.startswith("clip_4_Cooking_3,")]
    lines.append("clip_9_Cooking_1,ani,annotator,0.5,happiness,2,positive,positive,positive")
    sheet.write_text("\n".join(lines) + "\n")
    out = tmp_path / "out"
    report = _build(cfg, out)
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    got = {(e["stage"], e["id"]): e for e in rejected}
    assert got[("fetch", "../evil")]["reason"].startswith("unsafe source_id")
    assert "ftp" in got[("fetch", "7")]["reason"]
    assert got[("fetch", "8")]["reason"].startswith("no such file")
    assert got[("fetch", "1")]["where"] == "sources.csv:10"
    assert got[("probe", "2")] == {
        "stage": "probe",
        "id": "2",
        "reason": "no video stream",
        "fix": "check the file plays",
    }
    # a clip no sheet labels yet waits for labels: not a rejection (issue 11), not in a shard
    assert ("merge", "clip_4_Cooking_3") not in got
    assert report["waiting"]["count"] == 1 and not report["waiting"]["halt"]
    assert "does not have" in got[("merge", "clip_9_Cooking_1")]["reason"]
    assert all(set(e) >= {"stage", "id", "reason", "fix"} for e in rejected)
    assert sum(report["rows"].values()) == 5 * 3 - 3 - 1  # source 2 and one unlabelled clip
    assert json.loads((out / "build.json").read_text())["rejected"] == len(rejected)
    assert {r["stage"] for r in report["rejected_by_reason"]} == {"fetch", "probe", "merge"}

    with pytest.raises(DataError, match=r"^fetch: sources.csv:10: 1: duplicate source_id"):
        _build(cfg, tmp_path / "strict", strict=True)
    sources.write_text("\n".join(sources.read_text().splitlines()[:-1]) + "\n")
    with pytest.raises(DataError, match=r"^fetch: \.\./evil: unsafe source_id .*--strict\)$"):
        _build(cfg, tmp_path / "strict", strict=True)


def test_overlapping_given_timestamps_reject_both_rows_by_name(tmp_path):
    cfg = make_project(tmp_path / "p", n_sources=3)
    segs = tmp_path / "p/segments.csv"
    # clip_2_Cooking_2 (2.0-3.5 s) now starts inside clip_2_Cooking_1 (0.0-1.5 -> 0.0-2.5)
    text = segs.read_text().replace("clip_2_Cooking_1,2,0.0,1.5", "clip_2_Cooking_1,2,0.0,2.5")
    segs.write_text(text)
    out = tmp_path / "out"
    report = _build(cfg, out)
    rejected = [json.loads(x) for x in (out / "rejected.jsonl").read_text().splitlines()]
    seg = {e["id"]: e for e in rejected if e["stage"] == "segment"}
    assert set(seg) == {"clip_2_Cooking_1", "clip_2_Cooking_2"}
    assert seg["clip_2_Cooking_1"]["reason"] == "0-2.5 s overlaps clip_2_Cooking_2 (2-3.5 s)"
    assert seg["clip_2_Cooking_2"]["reason"] == "2-3.5 s overlaps clip_2_Cooking_1 (0-2.5 s)"
    assert "do not overlap" in seg["clip_2_Cooking_2"]["fix"]
    # the good clips, including the third of the same video, are kept
    assert sum(report["rows"].values()) == 3 * 3 - 2
    # the validated config travels in every shard's metadata (DESIGN §7.6)
    from indomer.dataset import read_meta

    meta = read_meta(out)
    assert meta["config"]["split"] == {"ratios": [0.5, 0.25, 0.25], "seed": 0}
    assert meta["config"]["segments"] == "segments.csv"


def test_from_and_to_run_a_slice(tmp_path):
    cfg = make_project(tmp_path / "p")
    out = tmp_path / "out"
    with pytest.raises(UsageError, match="earlier stage fetch has not finished"):
        _build(cfg, out, start="cut")
    before_merge = pipeline.STAGES[pipeline.STAGES.index("merge") - 1]
    report = _build(cfg, out, stop=before_merge)
    assert _status(report)["cut"] == "ran" and _status(report)["merge"] == "not run"
    assert not (out / "data").exists() and not (out / "build.json").exists()
    report = _build(cfg, out, start="merge")
    tail = ("merge", "split", "shards")
    assert _status(report) == {s: "ran" if s in tail else "kept" for s in pipeline.STAGES}
    with pytest.raises(UsageError, match="--from 'nope'"):
        _build(cfg, out, start="nope")
    with pytest.raises(UsageError, match="comes after"):
        _build(cfg, out, start="split", stop="fetch")


def test_a_second_build_into_the_same_folder_waits_its_turn(tmp_path):
    import fcntl

    cfg = make_project(tmp_path / "p")
    out = tmp_path / "out"
    _build(cfg, out, stop="fetch")
    with open(out / ".indomer" / "lock", "a+b") as fh:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX)  # as a running build holds it
        with pytest.raises(LockedError, match="locked by another indomer command"):
            _build(cfg, out)
    assert _build(cfg, out)["rows"]  # the lock went with its holder


def test_out_dir_that_is_not_a_build_is_refused(tmp_path):
    cfg = make_project(tmp_path / "p")
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep")
    with pytest.raises(UsageError, match=r"not empty \(notes.txt\) and not an indomer dataset"):
        _build(cfg, mine)
    assert (mine / "notes.txt").read_text() == "keep"


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
import test_pipeline as tp
from indomer.pipeline import run_pipeline
run_pipeline({cfg!r}, {out!r}, stages=tp.fake_stages(), quiet=True)
"""


def test_kill_9_mid_stage_redoes_only_items_in_flight(tmp_path):
    calls = tmp_path / "calls.txt"
    cfg = make_project(tmp_path / "p", n_sources=6, probe={"calls": str(calls)})
    out = tmp_path / "out"
    script = KILL_SCRIPT.format(tests=str(Path(__file__).parent), cfg=str(cfg), out=str(out))
    # killed by the runner itself right after it journaled its 2nd probe item: no guessing
    # the moment, whatever the machine's speed
    env = {**os.environ, FAULT_ENV: "journaled:probe:2"}
    proc = subprocess.run([sys.executable, "-c", script], env=env, check=False, timeout=120)
    done = out / "work/02_probe/done.jsonl"
    assert proc.returncode == -signal.SIGKILL
    recorded = {json.loads(x)["key"] for x in done.read_text().splitlines()[1:]}
    fetched = out / "work/01_fetch/done.jsonl"
    recorded_fetch = {json.loads(x)["key"] for x in fetched.read_text().splitlines()[1:]}
    assert len(recorded) == 2
    assert recorded <= recorded_fetch
    assert not (out / "work/02_probe/manifest.jsonl").exists()
    first = _calls(calls)

    report = _build(cfg, out)
    # the stages stream (an item is probed as soon as it is fetched), so fetch had not
    # finished as a whole either: it redoes only the items its journal lacks
    fetch = next(s for s in report["stages"] if s["name"] == "fetch")
    assert (fetch["items"], fetch["redone"]) == (6, 6 - len(recorded_fetch))
    redone = [c.split()[1] for c in _calls(calls)[len(first) :] if c.startswith("probe")]
    assert not set(redone) & recorded  # nothing recorded done is redone
    assert sorted(redone) == sorted({str(i) for i in range(1, 7)} - recorded)

    clean = tmp_path / "clean"
    _build(cfg, clean)
    assert _outputs(out) == _outputs(clean)  # build.json included: it describes the dataset


def test_cli_raw_mode(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "default_stages", fake_stages)
    cfg = make_project(tmp_path / "p")
    out = tmp_path / "out"
    runner = CliRunner()
    res = runner.invoke(main, ["build", str(cfg), "--out", str(out), "--quiet", "--jobs", "1"])
    assert res.exit_code == 0, res.output
    assert res.output.startswith("built 12 rows (train 6, validation 3, test 3)")
    res = runner.invoke(main, ["build", str(cfg), "--out", str(out)])
    assert res.exit_code == 0, res.output
    assert "shards    skipped" in res.output and "0 stage(s) ran" in res.output
    res = runner.invoke(main, ["build", "--out", str(out)])
    assert res.exit_code == 2 and "not neither" in res.output
    res = runner.invoke(main, ["build", str(cfg), "--release", "x", "--out", str(out)])
    assert res.exit_code == 2 and "not both" in res.output
    res = runner.invoke(main, ["build", "--release", "x", "--jobs", "2", "--out", str(out)])
    assert res.exit_code == 2 and "--jobs: raw mode only" in res.output
    bad = tmp_path / "p/bad.yaml"
    bad.write_text("sources: sources.csv\nannotations: sheets\nfetch:\n  max_hieght: 480\n")
    res = runner.invoke(main, ["build", str(bad), "--out", str(tmp_path / "o2")])
    assert res.exit_code == 2
    assert res.output == (
        f"error: {bad}:4: fetch.max_hieght: unknown setting; the fetch stage knows "
        "max_height, retries, socket_timeout\n"
    )


def test_progress_on_a_stderr_that_is_not_a_terminal_is_plain_lines(tmp_path, monkeypatch):
    monkeypatch.setattr(pipeline, "default_stages", fake_stages)
    cfg = make_project(tmp_path / "p")
    res = CliRunner().invoke(main, ["build", str(cfg), "--out", str(tmp_path / "out")])
    assert res.exit_code == 0, res.output
    # CliRunner's stderr is no terminal: no carriage returns or cursor moves, one line per bar
    assert "\r" not in res.stderr and "\x1b" not in res.stderr
    lines = res.stderr.splitlines()
    assert "fetch: 4/4 videos" in lines and "cut: 4/4 videos" in lines, res.stderr
    bar = pipeline._LineProgress(10, 0, "align", "video", interval=0.0)
    buf = io.StringIO()
    monkeypatch.setattr(sys, "stderr", buf)
    bar.update(3)
    bar.close()  # nothing new since the update's line: no second line
    bar.update(0)
    assert buf.getvalue() == "align: 3/10 videos\n"


# --------------------------------------------------------------------------- architecture


def _imports(path: Path) -> set[str]:
    import ast

    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom) and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_stages_never_import_the_runner_or_each_other():
    stages = Path(pipeline.__file__).parent / "stages"
    names = {p.stem for p in stages.glob("*.py")} - {"__init__"}
    assert {"fetch", "probe", "segment", "cut", "align", "faces", "speakers"} <= names
    runner = {"indomer.pipeline", "indomer.build", "indomer.executors", "indomer.ray_engine"}
    for path in sorted(stages.glob("*.py")):
        found = _imports(path)
        assert not found & runner, f"{path.name} imports {sorted(found & runner)}"
        others = {f"indomer.stages.{n}" for n in names - {path.stem}}
        assert not found & others, f"{path.name} imports {sorted(found & others)}"


def test_the_runner_holds_no_stage_specific_code():
    """pipeline.py names the stages only to list them (default_stages); each stage's glue
    lives in its module as STAGE."""
    import ast

    tree = ast.parse(Path(pipeline.__file__).read_text(encoding="utf-8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name != "default_stages":
            for sub in ast.walk(node):
                if isinstance(sub, ast.ImportFrom) and (sub.module or "").startswith(
                    ("indomer.stages", "indomer.backends")
                ):
                    pytest.fail(f"pipeline.{node.name} imports {sub.module}")
            # nor does it name a stage (a row's kind "segment" compared is not a stage)
            kinds = {id(c) for sub in ast.walk(node) if isinstance(sub, ast.Compare)
                     for c in sub.comparators if isinstance(c, ast.Constant)}
            for sub in ast.walk(node):
                if (isinstance(sub, ast.Constant) and sub.value in pipeline.STAGES
                        and id(sub) not in kinds):
                    pytest.fail(f"pipeline.{node.name} names the {sub.value} stage")
    assert [s.name for s in pipeline.default_stages()] == list(pipeline.STAGES)
