"""Executors: what runs the per-item stages. The runner hands them items and takes back
finished items; nothing else in the runner knows which engine runs.

- :class:`InlineExecutor`: this process, one item at a time (``--jobs 1``).
- :class:`PoolExecutor`: a local process pool (``--jobs N``); each worker sets a stage up
  (loads its model) the first time it gets one of its items, then keeps it.
- ``indomer.ray_engine.RayExecutor``: a Ray cluster (``--engine ray``), built on this module;
  the runner picks one (``pipeline.make_executor``).

All of them stream: an item finished by one stage is handed straight to the next, and the
deepest stage's items go first, so cutting, aligning and embedding overlap across videos.
The rows a stage returns do not depend on the executor, so neither does any byte of the
build (manifests, journals, fingerprints, shards).
"""

from __future__ import annotations

import heapq
import json
import os
import threading
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from indomer.errors import RowRejected
from indomer.logs import log_path, stage_output
from indomer.manifest import dumps_row, relocate
from indomer.rows import Segment, Video, from_json, to_json
from indomer.stage import Context, Item, ItemStage


@dataclass(frozen=True)
class Job:
    """One per-item stage of a streaming chain, as a worker needs it (picklable)."""

    slot: int
    stage: ItemStage
    settings: Any
    ctx: Context
    resources: Any = None  # indomer.config.Resources (Ray only)


@dataclass(frozen=True)
class Finished:
    """One item done by one stage: its output rows (JSON, paths relative) and rejections."""

    slot: int
    key: str
    rows: list[dict]
    rejected: list[dict]
    seconds: float = 0.0  # the stage's compute time on this item (not in any output)


class Executor(Protocol):
    """The seam between the runner and an engine."""

    def start(self, stages: Sequence[tuple[ItemStage, Any]]) -> None:
        """Before any work: connect, and check every stage can ever be placed."""

    def open(self, jobs: Sequence[Job]) -> None:
        """The stages of one streaming chain (slots 0..n-1)."""

    def submit(self, slot: int, key: str, rows: list[dict]) -> None:
        """Queue one item (its rows as manifest JSON) for the stage in ``slot``."""

    def pending(self) -> int:
        """Items submitted and not yet returned by :meth:`next_finished`."""

    def next_finished(self) -> Finished:
        """Block until an item is done; raise what a stage raised (not RowRejected)."""

    def close(self) -> None:
        """End the chain: drop what is queued, release the workers."""

    def shutdown(self) -> None:
        """End the run (disconnect from a cluster this executor started)."""


# --------------------------------------------------------------------------- worker side


def rejection(stage: str, exc: RowRejected) -> dict:
    entry = {"stage": stage, "id": exc.row_id, "reason": exc.reason, "fix": exc.fix}
    where = getattr(exc, "where", None)
    if where:
        entry["where"] = where
    return entry


def run_item(job: Job, state: Any, key: str, group: list[dict]) -> Finished:
    """Run ``job``'s stage on one item (rows as JSON) with its set-up ``state``."""
    stage, ctx = job.stage, job.ctx
    rows = [from_json(relocate(o, ctx.out, absolute=True)) for o in group]
    video = next(r for r in rows if isinstance(r, Video))
    item = Item(key, video, tuple(r for r in rows if isinstance(r, Segment)))
    t0 = time.perf_counter()
    try:
        with stage_output(log_path(ctx.out)):
            result = stage.process(item, state)
    except RowRejected as exc:
        return Finished(job.slot, key, [], [rejection(stage.name, exc)],
                        time.perf_counter() - t0)
    out_rows, rejected = [], []
    for r in result:
        if isinstance(r, RowRejected):
            rejected.append(rejection(stage.name, r))
        elif isinstance(r, (Video, Segment)):
            # JSON round trip: what the next stage gets equals what a manifest reread gives
            out_rows.append(json.loads(dumps_row(relocate(to_json(r), ctx.out, absolute=False))))
        else:
            raise TypeError(f"stage {stage.name} returned {type(r).__name__}, not a row")
    return Finished(job.slot, key, out_rows, rejected, time.perf_counter() - t0)


class StateCache:
    """A worker's set-up stages: each stage's ``setup`` (model loading) runs once per
    process, the first time the process gets one of its items."""

    def __init__(self) -> None:
        self._states: dict[tuple[str, int], Any] = {}

    def state(self, job: Job, token: str) -> Any:
        k = (token, job.slot)
        if k not in self._states:
            # one run at a time per process: drop the states of an earlier chain or run
            for old in [o for o in self._states if o[0] != token]:
                del self._states[old]
            with stage_output(log_path(job.ctx.out)):
                self._states[k] = job.stage.setup(job.settings, job.ctx)
        return self._states[k]


def _priority(slot: int, key: str) -> tuple[int, str]:
    """Deepest stage first, then by key: items move on before new ones start."""
    return (-slot, key)


# --------------------------------------------------------------------------- in process


class InlineExecutor:
    """One item at a time in this process (``--jobs 1``), deepest stage first."""

    def __init__(self) -> None:
        self._jobs: list[Job] = []
        self._queue: list[tuple[tuple[int, str], list[dict]]] = []
        self._cache = StateCache()
        self._token = 0

    def start(self, stages: Sequence[tuple[ItemStage, Any]]) -> None:
        pass

    def open(self, jobs: Sequence[Job]) -> None:
        self._jobs = list(jobs)
        self._queue = []
        self._token += 1

    def submit(self, slot: int, key: str, rows: list[dict]) -> None:
        heapq.heappush(self._queue, (_priority(slot, key), rows))

    def pending(self) -> int:
        return len(self._queue)

    def next_finished(self) -> Finished:
        (neg_slot, key), rows = heapq.heappop(self._queue)
        job = self._jobs[-neg_slot]
        return run_item(job, self._cache.state(job, str(self._token)), key, rows)

    def close(self) -> None:
        self._queue = []

    def shutdown(self) -> None:
        pass


# --------------------------------------------------------------------------- process pool

_POOL: dict[str, Any] = {}

#: How often a pool worker looks whether its driver is still there (seconds).
PARENT_POLL_S = 0.5


def exit_with_parent(parent: int | None = None) -> None:
    """Pool initializer part: end this worker when the process that spawned it is gone.

    A driver killed by SIGKILL (or the OOM killer) closes nothing: its spawned workers wait
    on the call queue for ever, each holding the queue's write end and the
    resource_tracker's pipe, so neither ever sees end-of-file. A daemon thread notices the
    worker was re-parented and leaves at once (``os._exit``: nothing of the dead run is
    worth finishing; the journal holds what was done)."""
    parent = os.getppid() if parent is None else parent

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(PARENT_POLL_S)
        os._exit(1)

    threading.Thread(target=watch, name="indomer-parent-watch", daemon=True).start()


def _init_pool(jobs: list[Job], token: str) -> None:
    """Pool initializer: the chain's jobs; states are set up lazily (:class:`StateCache`)."""
    exit_with_parent()
    _POOL["jobs"] = jobs
    _POOL["token"] = token
    _POOL["cache"] = StateCache()


def _pool_item(slot: int, key: str, group: list[dict]) -> Finished:
    job = _POOL["jobs"][slot]
    return run_item(job, _POOL["cache"].state(job, _POOL["token"]), key, group)


class PoolExecutor:
    """A local process pool of ``jobs`` workers (spawned, so no state leaks from the
    driver). At most ``jobs`` items are in the pool at once; the rest wait here, deepest
    stage first, so an item finished by one stage is the next to run on the following one."""

    def __init__(self, jobs: int) -> None:
        self.jobs = jobs
        self._pool: Any = None
        self._queue: list[tuple[tuple[int, str], list[dict]]] = []
        self._running: dict[Any, tuple[int, str]] = {}
        self._done: deque[Finished] = deque()
        self._opened = 0
        self._exiting: list[threading.Thread] = []  # waiting for closed pools' workers

    def start(self, stages: Sequence[tuple[ItemStage, Any]]) -> None:
        pass

    def open(self, jobs: Sequence[Job]) -> None:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        self.close()
        self._opened += 1
        self._pool = ProcessPoolExecutor(
            max_workers=self.jobs,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=_init_pool,
            initargs=(list(jobs), str(self._opened)),
        )

    def submit(self, slot: int, key: str, rows: list[dict]) -> None:
        heapq.heappush(self._queue, (_priority(slot, key), rows))

    def pending(self) -> int:
        return len(self._queue) + len(self._running) + len(self._done)

    def _fill(self) -> None:
        while self._queue and len(self._running) < self.jobs:
            (neg_slot, key), rows = heapq.heappop(self._queue)
            fut = self._pool.submit(_pool_item, -neg_slot, key, rows)
            self._running[fut] = (-neg_slot, key)

    def next_finished(self) -> Finished:
        from concurrent.futures import FIRST_COMPLETED, wait

        if not self._done:
            self._fill()
            finished, _ = wait(list(self._running), return_when=FIRST_COMPLETED)
            for fut in sorted(finished, key=lambda f: self._running[f]):
                del self._running[fut]
                self._done.append(fut.result())
        return self._done.popleft()

    def close(self) -> None:
        self._queue = []
        self._done.clear()
        if self._pool is not None:
            for fut in self._running:
                fut.cancel()
            pool, self._pool = self._pool, None
            if self._running:
                pool.shutdown(wait=True, cancel_futures=True)
            else:
                # Idle workers exit on their own; with their models loaded that takes about
                # a second, which the driver spends on the whole-dataset stages meanwhile.
                # shutdown() waits for them, so no worker outlives the run.
                waiter = threading.Thread(target=pool.shutdown, kwargs={"wait": True},
                                          name="indomer-pool-exit", daemon=True)
                waiter.start()
                self._exiting.append(waiter)
        self._running = {}

    def shutdown(self) -> None:
        self.close()
        for waiter in self._exiting:
            waiter.join()
        self._exiting = []


__all__ = [
    "Executor", "Finished", "InlineExecutor", "Job", "PoolExecutor", "exit_with_parent",
    "run_item",
]
