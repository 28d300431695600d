"""Named fault points for crash tests: ``INDOMER_FAULT=POINT`` makes the process kill itself
with SIGKILL when it reaches POINT, so a test interrupts a command at an exact step instead
of guessing the moment with sleeps.

Points: ``staged``, ``renamed``, ``switched`` (a dataset generation being committed,
:mod:`indomer.generation`) and ``journaled:STAGE:N`` (the runner has fsync'd the N-th item
this run completed in STAGE's journal, :mod:`indomer.pipeline`), ``snapshot`` (a command
has pinned the generation it reads) and ``read`` (the reader is about to hand out the next
batch of rows, :class:`indomer.dataset.Snapshot`).

In-process tests run code at a point instead (:func:`at`): e.g. commit a ``split`` while
``export`` is between two reads of its dataset, at an exact step and without sleeps.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator

FAULT_ENV = "INDOMER_FAULT"
_HOOKS: dict[str, Callable[[], None]] = {}


@contextlib.contextmanager
def at(point: str, action: Callable[[], None]) -> Iterator[None]:
    """Run ``action`` each time this process reaches ``point`` (in-process tests only)."""
    _HOOKS[point] = action
    try:
        yield
    finally:
        _HOOKS.pop(point, None)


def fault(point: str) -> None:
    """Die here with SIGKILL when ``$INDOMER_FAULT`` names this point (crash tests only),
    or run the action a test registered for it with :func:`at`."""
    hook = _HOOKS.get(point)
    if hook is not None:
        hook()
    if os.environ.get(FAULT_ENV) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["FAULT_ENV", "at", "fault"]
