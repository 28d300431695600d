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


def cpu_step(item: Item, out: Path) -> list:
    _log(out, f"cpu {item.key} start")
    time.sleep(0.3)
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
