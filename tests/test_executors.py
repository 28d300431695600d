"""Executors (indomer/executors.py): the in-process and process-pool engines give the same
rows, rejections and order, set a stage up once per worker, and refuse what is not a row.
The Ray engine is held to the same results in tests/test_ray_engine.py."""

from __future__ import annotations

import json
import os

import executor_stages as st
import pytest

from indomer.executors import InlineExecutor, Job, PoolExecutor, run_item
from indomer.manifest import relocate
from indomer.rows import Video, to_json
from indomer.stage import Context, ItemStage


def _ctx(tmp_path, name: str) -> Context:
    out = tmp_path / "OUT"
    out.mkdir(exist_ok=True)
    return Context(name=name, out=out, workdir=out / "work", config=None)


def _job(tmp_path, slot: int, name: str, run=st.append_text, setup=st.pid_state) -> Job:
    stage = ItemStage(name=name, process=run, setup=setup)
    return Job(slot=slot, stage=stage, settings=None, ctx=_ctx(tmp_path, name))


def _group(source: str, n: int) -> list[dict]:
    rows = [Video(source_id=source, topic="Talk"), *(st.seg(source, i) for i in range(1, n + 1))]
    return [to_json(r) for r in rows]


def _texts(finished) -> dict[str, str]:
    return {r["id"]: r["text"] for r in finished.rows if r["kind"] == "segment"}


def test_run_item_applies_the_stage_and_splits_out_rejections(tmp_path):
    job = _job(tmp_path, 0, "probe")
    done = run_item(job, {"suffix": "+p"}, "b", _group("b", 3))
    assert done.slot == 0 and done.key == "b"
    assert _texts(done) == {"clip_b_Talk_1": "t+p", "clip_b_Talk_3": "t+p"}
    assert done.rejected == [{"stage": "probe", "id": "clip_b_Talk_2", "reason": "too short",
                              "fix": "merge it with its neighbour"}]
    # rows come back as a manifest would give them: plain JSON, the kind first-class
    assert json.loads(json.dumps(done.rows)) == done.rows


def test_run_item_rejects_a_whole_item_with_one_entry(tmp_path):
    done = run_item(_job(tmp_path, 0, "probe"), {"suffix": "+p"}, "x", _group("x", 2))
    assert done.rows == []
    assert done.rejected == [{"stage": "probe", "id": "x", "reason": "no audio stream",
                              "fix": "give a file with sound"}]


def test_run_item_refuses_something_that_is_not_a_row(tmp_path):
    with pytest.raises(TypeError, match="stage probe returned str, not a row"):
        run_item(_job(tmp_path, 0, "probe", run=st.not_a_row), {}, "a", _group("a", 1))


def test_run_item_stores_paths_relative_and_hands_them_absolute(tmp_path):
    job = _job(tmp_path, 0, "cut", run=st.audio_path_back, setup=st.out_state)
    out = job.ctx.out
    done = run_item(job, {"out": str(out)}, "a", _group("a", 1))
    seg = next(r for r in done.rows if r["kind"] == "segment")
    assert seg["audio_path"] == "clips/clip_a_Talk_1.wav"
    assert relocate(seg, out, absolute=True)["audio_path"] == str(out / "clips/clip_a_Talk_1.wav")


def _drain(executor, jobs: list[Job], items: dict[str, list[dict]]) -> list:
    """Streams every item through the chain as the runner does: a finished item goes on to
    the next slot; returns (slot, key) in completion order and the last slot's results."""
    executor.open(jobs)
    for key in sorted(items):
        executor.submit(0, key, items[key])
    order, last = [], {}
    try:
        while executor.pending():
            done = executor.next_finished()
            order.append((done.slot, done.key))
            if done.slot + 1 < len(jobs) and done.rows:
                executor.submit(done.slot + 1, done.key, done.rows)
            elif done.slot + 1 == len(jobs):
                last[done.key] = done
    finally:
        executor.close()
    return [order, last]


ITEMS = {"a": _group("a", 2), "b": _group("b", 3), "c": _group("c", 1), "x": _group("x", 1)}


def test_inline_runs_the_deepest_stage_first_and_sets_up_once(tmp_path):
    jobs = [_job(tmp_path, 0, "probe"), _job(tmp_path, 1, "align")]
    ex = InlineExecutor()
    order, last = _drain(ex, jobs, ITEMS)
    # an item that finished stage 0 runs stage 1 before the next item starts stage 0
    assert order == [(0, "a"), (1, "a"), (0, "b"), (1, "b"), (0, "c"), (1, "c"), (0, "x")]
    assert _texts(last["b"]) == {"clip_b_Talk_1": "t+probe+align",
                                 "clip_b_Talk_3": "t+probe+align"}
    assert "x" not in last  # rejected whole at stage 0, never reaches stage 1
    for name in ("probe", "align"):  # one set-up per stage for the whole chain
        assert len((tmp_path / f"setup-{name}.log").read_text().split()) == 1


def test_a_pool_gives_the_same_rows_and_rejections_as_inline(tmp_path):
    inline_dir, pool_dir = tmp_path / "inline", tmp_path / "pool"
    inline_dir.mkdir()
    pool_dir.mkdir()

    def chain(d):
        return [_job(d, 0, "probe"), _job(d, 1, "align")]

    _, inline = _drain(InlineExecutor(), chain(inline_dir), ITEMS)
    pool = PoolExecutor(2)
    try:
        order, pooled = _drain(pool, chain(pool_dir), ITEMS)
    finally:
        pool.shutdown()
    assert sorted(order) == sorted([(0, k) for k in ITEMS] + [(1, k) for k in "abc"])
    assert {k: (d.rows, d.rejected) for k, d in pooled.items()} == \
        {k: (d.rows, d.rejected) for k, d in inline.items()}
    # set up at most once per worker process and stage, never in the driver
    for name in ("probe", "align"):
        pids = (pool_dir / f"setup-{name}.log").read_text().split()
        assert len(pids) == len(set(pids)) <= 2
        assert str(os.getpid()) not in pids


def test_a_pool_raises_what_a_stage_raised(tmp_path):
    pool = PoolExecutor(1)
    try:
        pool.open([_job(tmp_path, 0, "probe", run=st.not_a_row)])
        pool.submit(0, "a", _group("a", 1))
        with pytest.raises(TypeError, match="not a row"):
            pool.next_finished()
    finally:
        pool.shutdown()


_ORPHAN_DRIVER = """
import os, signal, sys, time
from pathlib import Path
import executor_stages as st
from indomer.executors import Job, PoolExecutor
from indomer.rows import Video, to_json
from indomer.stage import Context, ItemStage

tmp = Path(sys.argv[1])
out = tmp / "OUT"
out.mkdir()
ctx = Context(name="probe", out=out, workdir=out / "work", config=None)
job = Job(slot=0, stage=ItemStage(name="probe", process=st.pid_file_then_wait,
                                  setup=st.out_state), settings=None, ctx=ctx)
pool = PoolExecutor(2)
pool.open([job])
for key in ("a", "b", "c"):  # two busy workers, one item still queued
    pool.submit(0, key, [to_json(Video(source_id=key, topic="Talk"))])
pool._fill()
deadline = time.monotonic() + 120
while len(list(tmp.glob("busy-*.pid"))) < 2 and time.monotonic() < deadline:
    time.sleep(0.05)
os.kill(os.getpid(), signal.SIGKILL)  # as a user's kill -9 or the OOM killer would
"""


def _alive(pid: int) -> bool:
    """A process that still runs (a zombie waiting for a reaper has ended)."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as fh:
            return fh.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_pool_workers_end_when_their_driver_is_killed(tmp_path):
    """A SIGKILLed driver must not leave its workers (and their model memory) running for ever:
    before, both busy workers and the resource tracker outlived it, orphaned to init."""
    import subprocess
    import sys
    import time

    tests_dir = os.path.dirname(os.path.abspath(__file__))
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(
        p for p in (tests_dir, os.environ.get("PYTHONPATH", "")) if p)}
    # the driver's stderr goes to a file: orphans holding a pipe would keep run() waiting
    err = tmp_path / "driver.err"
    with err.open("wb") as fh:
        res = subprocess.run([sys.executable, "-c", _ORPHAN_DRIVER, str(tmp_path)], env=env,
                             stdout=subprocess.DEVNULL, stderr=fh, timeout=180, check=False)
    assert res.returncode == -9, err.read_text()
    pids = [int(p.read_text()) for p in tmp_path.glob("busy-*.pid")]
    assert len(pids) == 2, err.read_text()
    deadline = time.monotonic() + 60  # the workers poll every 0.5 s; they sleep 600 s
    while any(_alive(p) for p in pids) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [p for p in pids if _alive(p)]
    for p in left:  # do not leak them into the rest of the suite when the test fails
        os.kill(p, 9)
    assert left == [], f"workers {left} outlived their killed driver"
