"""Small stages for the Ray engine tests (importable by Ray workers: the test cluster puts
tests/ on their PYTHONPATH).

- a stage that kills its own worker process with SIGKILL the first time it sees one item
  (a marker file beside OUT says it already did), as a node losing a worker mid-item;
- stages that append "STAGE KEY start|end" to a log file, so tests see the order in which
  items moved through the stages (appends of one short line are atomic).
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

from indomer.stage import Context, Item, Stage


def _out(settings: object, ctx: Context) -> Path:
    return ctx.out


def _killer(name: str, victim: str):
    def run(item: Item, out: Path) -> list:
        marker = out.parent / f"killed-{name}-{item.key}"
        if item.key == victim and not marker.exists():
            marker.write_text(f"{os.getpid()}\n")
            os.kill(os.getpid(), signal.SIGKILL)
        return [item.video, *item.segments]

    return run


def kill_probe(item: Item, out: Path) -> list:
    return _killer("probe", "2")(item, out)


def kill_align(item: Item, out: Path) -> list:
    return _killer("align", "3")(item, out)


def _log(out: Path, line: str) -> None:
    with open(out.parent / "order.log", "a", encoding="utf-8") as fh:
        fh.write(line + "\n")


def _lines(out: Path) -> list[str]:
    path = out.parent / "order.log"
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


#: How many items the streaming test runs through ``cpu_step``.
CPU_ITEMS = 5


def cpu_step(item: Item, out: Path) -> list:
    """The last item of the CPU stage ends only once a GPU step has started (or after 120 s).

    Streaming lets the GPU stage start on the first finished item while the CPU stage still
    runs, so the wait ends at once, however slowly the GPU actor starts on a loaded machine; a
    barrier between stages would hold every GPU start back, the wait would time out, and the
    order the test reads would show it. Order, not time."""
    _log(out, f"cpu {item.key} start")
    ended = sum(line.startswith("cpu") and line.endswith("end") for line in _lines(out))
    if ended == CPU_ITEMS - 1:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not any(
                line.startswith("gpu") for line in _lines(out)):
            time.sleep(0.05)
    _log(out, f"cpu {item.key} end")
    return [item.video, *item.segments]


def gpu_step(item: Item, out: Path) -> list:
    _log(out, f"gpu {item.key} start")
    _log(out, f"gpu {item.key} end")
    return [item.video, *item.segments]


def replace(stages: tuple[Stage, ...], **runs) -> tuple[Stage, ...]:
    """``stages`` with the named (item) ones' ``process`` replaced (setup gives them OUT)."""
    import dataclasses

    out = []
    for s in stages:
        if s.name in runs:
            run, model = runs[s.name]
            s = dataclasses.replace(s, process=run, setup=_out, model=model, settings=_none)
        out.append(s)
    return tuple(out)


def _none() -> None:
    return None
