"""``--engine ray``: the per-item stages on a Ray cluster (an existing engine: Ray places the
work, retries what a dead worker held and moves it between nodes; this module only maps
stages onto Ray tasks and actors).

- Model stages (``ItemStage.model``: align, voices, faces) run as pools of long-lived actors
  that load their model once; the others (fetch, probe, segment, cut: ffmpeg and VAD) run as
  plain tasks, whose worker processes keep a stage set up between items.
- ``STAGE.resources`` in the config (:class:`indomer.config.Resources`) sets what each task
  or actor holds (``num_cpus``, ``num_gpus``, ``memory``, ``custom``), how many run at once
  (``concurrency``) and how many items an actor gets per call (``batch_size``). A stage
  asking for more than any node has is refused before any work starts.
- Streaming: the runner hands each finished item to the next stage at once; here the
  deepest stage's items are dispatched first, so a GPU stage starts on the first video
  while the CPU stages still cut the last ones.
- Faults: a worker killed mid-item (SIGKILL, OOM) has its item retried by Ray
  (``max_retries`` for tasks, ``max_restarts`` + ``max_task_retries`` for actors); the
  runner journals an item only when its result arrives, so none is lost or written twice.

Only paths travel between stages (media stay in OUT, which every node must see at the same
path), and the rows a stage returns do not depend on where it ran: the build is the same
bytes as with ``--engine local``.
"""

from __future__ import annotations

import heapq
import logging
import math
import os
import socket
import uuid
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from indomer.errors import DataError, UsageError
from indomer.executors import Finished, Job, StateCache, run_item
from indomer.logs import log_path, stage_output
from indomer.stage import ItemStage

#: Times Ray reruns an item whose worker died (tasks) or restarts an actor and reruns its call.
MAX_RETRIES = 3
#: Seconds to wait for a cluster's address to answer before giving up.
CONNECT_TIMEOUT = 10.0
INSTALL = "pip install 'indomer[ray]' (or: bash tools/install.sh ray)"


def require_ray() -> Any:
    """The ``ray`` module, or one line naming the extra that installs it."""
    try:
        import ray
    except ImportError:
        raise UsageError(f"--engine ray: Ray is not installed; {INSTALL}") from None
    return ray


def _check_reachable(address: str) -> None:
    """Fail in bounded time, with one line, when nothing listens at HOST:PORT."""
    if address == "auto" or address.startswith("ray://"):
        hostport = address.removeprefix("ray://") if address != "auto" else ""
    else:
        hostport = address
    if not hostport:
        return
    host, sep, port = hostport.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise UsageError(
            f"--address {address!r}: expected HOST:PORT (as 'ray start --head' prints), auto "
            "(the cluster this machine runs), or ray://HOST:PORT"
        )
    try:
        with socket.create_connection((host.strip("[]"), int(port)), timeout=CONNECT_TIMEOUT):
            pass
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, TimeoutError):
            reason = f"no answer in {CONNECT_TIMEOUT:g} s"
        raise UsageError(
            f"--address {address}: no Ray cluster answers there ({reason}); start one with "
            "'ray start --head' and give the address it prints, or leave --address out to "
            "start a local Ray"
        ) from None


#: Words by which Ray says a connection was refused for want of a valid token: Ray 2.52+
#: (``AuthenticationError: ... InvalidAuthToken``, carried inside the ``ConnectionError`` of
#: ``ray.init``) and the gRPC/HTTP forms of earlier token-auth releases.
_AUTH_MARKERS = ("InvalidAuthToken", "AuthenticationError", "Authentication token",
                 "authentication token", "Missing authorization header", "Unauthenticated",
                 "UNAUTHENTICATED")


def auth_refusal(exc: BaseException, address: str) -> str | None:
    """One line saying a cluster refused this driver for want of a token, or None.

    A head started where ``~/.ray/auth_token`` exists enables token authentication by itself
    (Ray 2.59+); a driver without ``RAY_AUTH_MODE=token`` then sends no token and Ray says
    only ``Failed to connect``, the reason sitting in the exception's cause.
    """
    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(f"{type(seen).__name__}: {seen}")
        seen = seen.__cause__ or seen.__context__
    text = "\n".join(chain)
    if not any(marker in text for marker in _AUTH_MARKERS):
        return None
    mode = os.environ.get("RAY_AUTH_MODE", "").strip().lower()
    if mode != "token":
        shown = f"RAY_AUTH_MODE={mode}" if mode else "RAY_AUTH_MODE is unset"
        return (
            f"--address {address}: the cluster requires a Ray authentication token and this "
            f"driver sent none ({shown} here); export RAY_AUTH_MODE=token on this machine "
            "and on every node, with the head's token in ~/.ray/auth_token (or RAY_AUTH_TOKEN), "
            "then run again"
        )
    if "no authentication token was found" in text:
        return (
            f"--address {address}: RAY_AUTH_MODE=token but no Ray authentication token here; "
            "copy the head's ~/.ray/auth_token to this machine (or set RAY_AUTH_TOKEN), then "
            "run again"
        )
    return (
        f"--address {address}: the cluster refused this driver's Ray authentication token "
        "(RAY_AUTH_MODE=token); use the head's token (its ~/.ray/auth_token, or "
        "RAY_AUTH_TOKEN), then run again"
    )


# --------------------------------------------------------------------------- worker side

_CACHE = StateCache()


def _task(job: Job, token: str, key: str, group: list[dict]) -> Finished:
    """A plain task: one item; the worker process keeps the stage set up between items."""
    return run_item(job, _CACHE.state(job, token), key, group)


class _StageWorker:
    """A long-lived worker (Ray actor) of a model stage: loads the model once."""

    def __init__(self, job: Job) -> None:
        self.job = job
        with stage_output(log_path(job.ctx.out)):
            self.state = job.stage.setup(job.settings, job.ctx)

    def run(self, batch: list[tuple[str, list[dict]]]) -> list[Finished]:
        return [run_item(self.job, self.state, key, group) for key, group in batch]


# --------------------------------------------------------------------------- driver side


def _need(opts: dict[str, Any], actor: bool) -> dict[str, float]:
    """What one task or actor of a stage needs from one node (Ray's resource names)."""
    need: dict[str, float] = {}
    cpus = opts.get("num_cpus", None if actor else 1.0)
    if cpus:
        need["CPU"] = float(cpus)
    if opts.get("num_gpus"):
        need["GPU"] = float(opts["num_gpus"])
    if opts.get("memory"):
        need["memory"] = float(opts["memory"])
    for name, amount in opts.get("resources", {}).items():
        if amount:
            need[name] = float(amount)
    return need


def _describe(need: dict[str, float]) -> str:
    """``CPU 2, GPU 1, memory 4.0 GiB`` (Ray's own bookkeeping keys left out)."""
    parts = []
    for k, v in sorted(need.items()):
        if k.startswith("node:") or k == "object_store_memory":
            continue
        parts.append(f"{k} {v / 2**30:.1f} GiB" if k == "memory" else f"{k} {v:g}")
    return ", ".join(parts) or "nothing"


@dataclass
class _Run:
    """One stage of the chain on the cluster."""

    job: Job
    ref: Any
    actor: bool
    opts: dict[str, Any]
    capacity: int
    batch_size: int
    queue: list[tuple[str, list[dict]]] = field(default_factory=list)
    actors: list[Any] = field(default_factory=list)
    idle: list[Any] = field(default_factory=list)
    running: int = 0


class RayExecutor:
    """Runs the items of a streaming chain on Ray (see the module docstring)."""

    def __init__(self, *, address: str | None, resources: dict, jobs: int = 1,
                 log: Callable[[str], None] | None = None) -> None:
        self.address = address
        self.resources = resources
        self.jobs = jobs
        self.log = log
        self.ray: Any = None
        self._started_here = False
        self._runs: list[_Run] = []
        self._inflight: dict[Any, tuple[int, Any, list[str]]] = {}
        self._done: deque[Finished] = deque()
        self._token = ""
        self._remote_task: Any = None
        self._remote_actor: Any = None

    # ------------------------------------------------------------------ connection

    def start(self, stages: Sequence[tuple[ItemStage, Any]]) -> None:
        ray = require_ray()
        self.ray = ray
        if self.address is not None:
            _check_reachable(self.address)
        if not ray.is_initialized():
            kwargs: dict[str, Any] = {
                "include_dashboard": False,
                "log_to_driver": False,
                "logging_level": logging.ERROR,
                "namespace": "indomer",
            }
            if self.address is None and self.jobs > 1:
                kwargs["num_cpus"] = self.jobs
            # Ray 2.52+ raises its own AuthenticationError before connecting when token
            # mode is on and no token is found; older Ray has no such class
            refused = getattr(ray.exceptions, "AuthenticationError", ConnectionError)
            try:
                ray.init(address=self.address, **kwargs)
            except (ConnectionError, refused) as exc:
                where = self.address or "(none)"
                auth = auth_refusal(exc, where)
                if auth is not None:
                    raise UsageError(auth) from None
                first = str(exc).strip().split(". ")[0].rstrip(".")
                raise UsageError(
                    f"--address {where}: {first}; start a cluster with 'ray start --head' "
                    "and give the address it prints, or leave --address out to start a local Ray"
                ) from None
            self._started_here = True
        self._remote_task = ray.remote(_task)
        self._remote_actor = ray.remote(_StageWorker)
        self._check_placeable(stages)

    def _nodes(self) -> list[dict[str, float]]:
        return [n.get("Resources", {}) for n in self.ray.nodes() if n.get("Alive")]

    def _check_placeable(self, stages: Sequence[tuple[ItemStage, Any]]) -> None:
        """A stage no node can ever run is refused now, not after hours of other work."""
        nodes = self._nodes()
        for stage, _ in stages:
            res = self.resources.get(stage.name)
            if res is None:
                continue
            need = _need(res.ray_options(), stage.model)
            if not any(all(node.get(k, 0.0) >= v for k, v in need.items()) for node in nodes):
                have = "; ".join(_describe(n) for n in nodes)
                raise UsageError(
                    f"{stage.name}.resources: asks each worker for {_describe(need)}, which no "
                    f"node of the Ray cluster has (nodes: {have or 'none'}); lower it, or add a "
                    "node that has it"
                )

    def _capacity(self, stage: ItemStage, opts: dict[str, Any], actor: bool, wanted: int | None) -> int:
        """How many workers of the stage the cluster holds at once (at least one)."""
        totals: dict[str, float] = {}
        for node in self._nodes():
            for k, v in node.items():
                totals[k] = totals.get(k, 0.0) + v
        need = _need(opts, actor)
        if actor and "CPU" not in need:
            need["CPU"] = 1.0  # an actor holds no CPU while it runs, but one to be placed
        fits = min((math.floor(totals.get(k, 0.0) / v + 1e-9) for k, v in need.items()),
                   default=1)
        fits = max(1, fits)
        if wanted is not None and wanted > fits:
            if self.log is not None:
                self.log(f"{stage.name}: concurrency {wanted}, but the cluster holds {fits} "
                         "at once; using that")
            return fits
        return wanted if wanted is not None else fits

    # ------------------------------------------------------------------ the chain

    def open(self, jobs: Sequence[Job]) -> None:
        ray = self.ray
        self.close()
        self._token = uuid.uuid4().hex
        for job in jobs:
            res = job.resources
            opts = res.ray_options() if res is not None else {}
            actor = job.stage.model
            capacity = self._capacity(job.stage, opts, actor, res.concurrency if res else None)
            run = _Run(job, ray.put(job), actor, opts, capacity,
                       res.batch_size if res is not None else 1)
            if actor:
                cls = self._remote_actor.options(
                    max_restarts=MAX_RETRIES, max_task_retries=MAX_RETRIES, **opts
                )
                # the job by value: an actor restarted after a crash must not depend on an
                # object-store copy staying alive (ray-project/ray#53727)
                run.actors = [cls.remote(job) for _ in range(capacity)]
                run.idle = list(run.actors)
            self._runs.append(run)

    def submit(self, slot: int, key: str, rows: list[dict]) -> None:
        heapq.heappush(self._runs[slot].queue, (key, rows))

    def pending(self) -> int:
        queued = sum(len(r.queue) for r in self._runs)
        return queued + sum(len(keys) for _, _, keys in self._inflight.values()) + len(self._done)

    def _dispatch(self) -> None:
        """Fill free workers, deepest stage first (items move on before new ones start)."""
        for slot in range(len(self._runs) - 1, -1, -1):
            run = self._runs[slot]
            if run.actor:
                while run.queue and run.idle:
                    actor = run.idle.pop()
                    batch = [heapq.heappop(run.queue) for _ in range(min(run.batch_size,
                                                                         len(run.queue)))]
                    ref = actor.run.remote(batch)
                    self._inflight[ref] = (slot, actor, [k for k, _ in batch])
            else:
                task = self._remote_task.options(max_retries=MAX_RETRIES, **run.opts)
                while run.queue and run.running < run.capacity:
                    key, rows = heapq.heappop(run.queue)
                    ref = task.remote(run.ref, self._token, key, rows)
                    self._inflight[ref] = (slot, None, [key])
                    run.running += 1

    def next_finished(self) -> Finished:
        ray = self.ray
        if not self._done:
            self._dispatch()
            ready, _ = ray.wait(list(self._inflight), num_returns=1)
            ref = ready[0]
            slot, actor, keys = self._inflight.pop(ref)
            run = self._runs[slot]
            if actor is None:
                run.running -= 1
            try:
                result = ray.get(ref)
            except ray.exceptions.RayTaskError as exc:
                cause = getattr(exc, "cause", None)
                if isinstance(cause, BaseException):
                    raise cause from None
                raise
            except (ray.exceptions.RayActorError, ray.exceptions.WorkerCrashedError,
                    ray.exceptions.ObjectLostError) as exc:
                first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
                raise DataError(
                    f"{run.job.stage.name}: {', '.join(keys)}: the Ray worker died "
                    f"{MAX_RETRIES + 1} times running it ({type(exc).__name__}: {first[:200]}); "
                    "see the Ray logs (ray logs, or /tmp/ray/session_latest/logs) and rerun: "
                    "finished items are kept"
                ) from None
            if actor is not None:
                run.idle.append(actor)
            self._done.extend(result if isinstance(result, list) else [result])
        return self._done.popleft()

    def close(self) -> None:
        ray = self.ray
        if ray is not None and ray.is_initialized():
            for ref, (_, actor, _) in list(self._inflight.items()):
                if actor is None:  # actors' calls end with the actors, below
                    ray.cancel(ref, force=True)  # the item is redone by the next run
            for run in self._runs:
                for actor in run.actors:
                    ray.kill(actor)
        self._runs = []
        self._inflight = {}
        self._done.clear()

    def shutdown(self) -> None:
        self.close()
        if self._started_here and self.ray is not None and self.ray.is_initialized():
            self.ray.shutdown()


__all__ = ["INSTALL", "MAX_RETRIES", "RayExecutor", "require_ray"]
