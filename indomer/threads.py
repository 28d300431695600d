"""One thread per numerical library in a build, set before the libraries load.

OpenBLAS, OpenMP (CTranslate2, torch) and MKL read their thread counts from the environment
once, when they load, and some of their results depend on it: a matrix product sums in
another order on two threads, so the Whisper aligner's word scores change with the count.
Pool and Ray workers start after the runner has pinned the variables; a build with
``--jobs 1`` runs its stages in the driver, whose libraries may have loaded earlier (pandas
loads numpy while the config is read). So the CLI pins them before a build or demo command
imports anything, and the runner pins them again, and limits an already loaded BLAS where
``threadpoolctl`` is installed, for callers of the library.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

#: The variables each library reads at load time, all set to 1 (a worker per core runs
#: beside them, so more threads per worker would only contend).
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pin_threads() -> None:
    """Set every variable of :data:`THREAD_VARS` to 1 in this process and its children."""
    for name in THREAD_VARS:
        os.environ[name] = "1"


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """:func:`pin_threads`, and hold an already loaded BLAS or OpenMP to one thread inside."""
    pin_threads()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # without it only libraries loaded from now on are pinned
        yield
        return
    with threadpool_limits(limits=1):
        yield
