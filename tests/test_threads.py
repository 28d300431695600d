"""``indomer.threads``: the numerical libraries' thread variables are pinned to one, in this
process and the children it starts."""

from __future__ import annotations

import os
import subprocess
import sys

from indomer.threads import THREAD_VARS, one_thread, pin_threads


def test_pin_threads_sets_each_variable_to_one_for_children(monkeypatch):
    assert THREAD_VARS == ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
    for name in THREAD_VARS:
        monkeypatch.setenv(name, "8")
    pin_threads()
    assert [os.environ[name] for name in THREAD_VARS] == ["1", "1", "1"]
    code = f"import os; print(' '.join(os.environ[n] for n in {THREAD_VARS!r}))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["1", "1", "1"]


def test_one_thread_pins_and_limits_a_loaded_blas(monkeypatch):
    import numpy  # noqa: F401  (a BLAS loaded before the block)
    from threadpoolctl import threadpool_info

    for name in THREAD_VARS:
        monkeypatch.delenv(name, raising=False)
    with one_thread():
        assert all(os.environ[name] == "1" for name in THREAD_VARS)
        assert {pool["num_threads"] for pool in threadpool_info()} <= {1}
