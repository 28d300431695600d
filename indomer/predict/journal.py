"""The resume journal: the predictions file, appended one fsync'd line at a time under an
exclusive lock, read back on a rerun (a torn last line is dropped and its id asked again) and
rewritten in dataset order when the run ends."""

from __future__ import annotations

import fcntl
import json
import os
import threading
from dataclasses import dataclass, field
from pathlib import Path

from indomer.errors import DataError, UsageError
from indomer.predict.settings import Settings
from indomer.sidecar import refuse_other_assignment

# --------------------------------------------------------------------------- the file


@dataclass
class Existing:
    """What a previous run left in the predictions file."""

    answered: set[str] = field(default_factory=set)
    torn: str | None = None  # the torn last line's text, dropped
    keep: int = 0  # bytes of whole lines; anything after them is cut before appending
    size: int = 0


def read_existing(path: Path, s: Settings, sha: str, ids: set[str]) -> Existing:
    """The ids already answered in ``path`` by this model, task, prompt and modalities.

    A last line without its newline is a write cut by a kill: it is reported and its id asked
    again. Any other bad line, an id from elsewhere or a line from another model or prompt
    is one error naming ``file:line`` (mixing two systems in one file would score neither).
    """
    found = Existing()
    if not path.exists():
        return found
    data = path.read_bytes()
    body, nl, tail = data.rpartition(b"\n")
    if not nl:
        body, tail = b"", data
    found.size, found.keep = len(data), len(data) - len(tail)
    if tail.strip():
        found.torn = tail.decode("utf-8", "replace")
    want = {
        "model": s.model,
        "prompt_sha256": sha,
        "modalities": ",".join(s.modalities),
    }
    for lineno, raw in enumerate(body.splitlines(), start=1):
        if not raw.strip():
            continue
        where = f"{path}:{lineno}"
        try:
            obj = json.loads(raw)
        except (ValueError, RecursionError):
            raise DataError(
                f"{where}: not a JSON line; this file was not written by 'indomer predict' or "
                "is damaged; choose another --out"
            ) from None
        if not isinstance(obj, dict) or not isinstance(obj.get("id"), str) or s.task not in obj:
            raise DataError(
                f"{where}: expected a line with 'id' and {s.task!r} (an 'indomer predict "
                f"--task {s.task}' file); choose another --out"
            )
        for key, value in want.items():
            if obj.get(key) != value:
                raise DataError(
                    f"{where}: written with {key} {obj.get(key)!r}, this run uses {value!r}; "
                    "one file holds one system: choose another --out"
                )
        if obj["id"] not in ids:
            raise DataError(
                f"{where}: id {obj['id']!r} is not in split {s.split!r}; this file is from "
                "another split or dataset: choose another --out"
            )
        if obj["id"] in found.answered:
            raise DataError(f"{where}: id {obj['id']!r} answered twice; keep one line, then rerun")
        found.answered.add(obj["id"])
    return found


class Appender:
    """Append-only JSONL with one fsync per line, under an exclusive lock on the file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        created = not path.exists()
        self._fh = open(path, "ab")  # noqa: SIM115  (closed by close())
        try:
            fcntl.flock(self._fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self._fh.close()
            raise UsageError(
                f"{path}: another 'indomer predict' is writing this file; wait for it or "
                "choose another --out"
            ) from None
        if created:
            _fsync_dir(path.parent)
        self._lock = threading.Lock()

    def truncate(self, size: int) -> None:
        with self._lock:
            self._fh.truncate(size)
            os.fsync(self._fh.fileno())

    def write(self, obj: dict) -> None:
        line = json.dumps(obj, sort_keys=True, ensure_ascii=False).encode("utf-8") + b"\n"
        with self._lock:
            self._fh.write(line)
            self._fh.flush()
            os.fsync(self._fh.fileno())

    def close(self) -> None:
        self._fh.close()


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def rewrite_in_order(path: Path, order: list[str]) -> None:
    """Rewrite the predictions file in dataset order, atomically (nothing when already so)."""
    from indomer.fsutil import write_bytes_atomic

    data = path.read_bytes()
    rank = {seg_id: i for i, seg_id in enumerate(order)}
    lines = [ln for ln in data.splitlines() if ln.strip()]
    keyed = sorted(lines, key=lambda ln: rank.get(json.loads(ln)["id"], len(rank)))
    new = b"".join(ln + b"\n" for ln in keyed)
    if new != data:
        write_bytes_atomic(path, new)


# --------------------------------------------------------------------------- the sidecar



def sidecar(s: Settings, sha: str, identity: dict | None) -> dict:
    """The sidecar of a run: the model, task, modalities, prompt and split asked about, and
    the active split's name and assignment sha256, by which ``indomer score`` refuses these
    predictions against another assignment of the same name. No endpoint: a URL may carry
    credentials."""
    from indomer import __version__

    meta: dict = {
        "command": "predict",
        "model": s.model,
        "task": s.task,
        "split": s.split,
        "modalities": ",".join(s.modalities),
        "prompt_sha256": sha,
        "versions": {"indomer": __version__},
    }
    if identity is not None:
        meta["assignment"] = identity
    return meta


def dumps_sidecar(meta: dict) -> str:
    return json.dumps(meta, sort_keys=True, indent=2, ensure_ascii=False) + "\n"


def check_sidecar(identity: dict | None, preds: Path) -> None:
    """Refuse to extend predictions made against another assignment of the dataset's split
    name: one file would hold answers about two different sets of clips."""
    refuse_other_assignment(preds, identity, holder="the dataset now", fix="choose another --out")
