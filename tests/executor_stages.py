"""Small per-item stages for tests/test_executors.py, importable by spawned pool workers
(multiprocessing's spawn hands the parent's sys.path, tests/ included, to its children)."""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from indomer.errors import RowRejected
from indomer.rows import Segment
from indomer.stage import Context, Item


def pid_state(settings: object, ctx: Context) -> dict:
    """``setup``: records each call in a file beside OUT (one line per set-up, with the pid)."""
    with open(ctx.out.parent / f"setup-{ctx.name}.log", "a", encoding="utf-8") as fh:
        fh.write(f"{os.getpid()}\n")
    return {"pid": os.getpid(), "suffix": f"+{ctx.name}"}


def append_text(item: Item, state: dict) -> list:
    """Appends the stage's suffix to every segment's text; rejects segment 2 of source "b"
    alone, and the whole of source "x"."""
    if item.key == "x":
        raise RowRejected("x", "no audio stream", "give a file with sound")
    out: list = [item.video]
    for seg in item.segments:
        if seg.source_id == "b" and seg.segment_index == 2:
            out.append(RowRejected(seg.id, "too short", "merge it with its neighbour"))
            continue
        out.append(dataclasses.replace(seg, text=(seg.text or "") + state["suffix"]))
    return out


def not_a_row(item: Item, state: dict) -> list:
    return [item.video, "oops"]


def audio_path_back(item: Item, state: dict) -> list:
    """Gives back each segment with an absolute audio path inside OUT (stages see absolute
    paths; manifests store them relative)."""
    return [item.video, *(dataclasses.replace(s, audio_path=str(Path(state["out"]) / "clips" /
                                                               f"{s.id}.wav"))
                          for s in item.segments)]


def out_state(settings: object, ctx: Context) -> dict:
    return {"out": str(ctx.out)}


def seg(source: str, index: int) -> Segment:
    return Segment(id=f"clip_{source}_Talk_{index}", source_id=source, segment_index=index,
                   topic="Talk", start=float(index), end=float(index) + 1.0, text="t")


def pid_file_then_wait(item: Item, state: dict) -> list:
    """Writes this worker's pid beside OUT, then waits far longer than any test: a worker
    busy on an item when its driver dies (tests/test_executors.py)."""
    out = Path(state["out"])
    (out.parent / f"busy-{os.getpid()}.pid").write_text(str(os.getpid()), encoding="utf-8")
    import time

    time.sleep(600)
    return [item.video]
