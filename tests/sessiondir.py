"""One folder per test session that every pytest-xdist worker sees, and a lock to fill it once.

Under xdist each worker has its own ``basetemp`` (``pytest-N/popen-gwK``); their parent is the
session's own folder, fresh for every run. Without xdist the basetemp is already the session's.
A costly fixture (the suite-wide demo build) is made by the first worker that needs it while
the others wait on the lock, then read by all.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from filelock import FileLock


def session_root(tmp_path_factory) -> Path:
    """The folder shared by all workers of this pytest run (never by another run)."""
    base = tmp_path_factory.getbasetemp()
    return base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base


def made_once(tmp_path_factory, name: str, make: Callable[[Path], None]) -> Path:
    """``session_root/name``, made by ``make(folder)`` in the first worker that asks for it."""
    folder = session_root(tmp_path_factory) / name
    with FileLock(str(folder) + ".lock"):
        done = folder / ".made"
        if not done.is_file():
            folder.parent.mkdir(parents=True, exist_ok=True)
            make(folder)
            done.write_text("ok\n")
    return folder
