"""Named fault points for crash tests: ``INDOMER_FAULT=POINT`` makes the process kill itself
with SIGKILL when it reaches POINT, so a test interrupts a command at an exact step instead
of guessing the moment with sleeps.

Points: ``staged``, ``renamed``, ``switched`` (a dataset generation being committed,
:mod:`indomer.generation`) and ``journaled:STAGE:N`` (the runner has fsync'd the N-th item
this run completed in STAGE's journal, :mod:`indomer.pipeline`).
"""

from __future__ import annotations

import os

FAULT_ENV = "INDOMER_FAULT"


def fault(point: str) -> None:
    """Die here with SIGKILL when ``$INDOMER_FAULT`` names this point (crash tests only)."""
    if os.environ.get(FAULT_ENV) == point:
        import signal

        os.kill(os.getpid(), signal.SIGKILL)


__all__ = ["FAULT_ENV", "fault"]
