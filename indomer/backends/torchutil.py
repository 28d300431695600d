"""Torch and device helpers shared by the model backends (voice, diarization, align, ASR),
kept below them so that none imports another."""

from __future__ import annotations

import contextlib
import importlib
from collections.abc import Callable, Iterator
from typing import Any

from indomer.errors import MissingExtraError


def auto_device(
    device: str, module: str, has_gpu: Callable[[Any], bool], package: str, extra: str
) -> str:
    """``auto`` -> ``cuda`` when the library ``module`` that runs the model sees a GPU
    (``has_gpu(module)``), else ``cpu``; any other value passes through. Without the library,
    the :class:`MissingExtraError` naming ``package`` and the ``extra`` that installs it."""
    if device != "auto":
        return device
    try:
        lib = importlib.import_module(module)
    except ImportError:
        raise MissingExtraError(package, extra) from None
    return "cuda" if has_gpu(lib) else "cpu"


@contextlib.contextmanager
def torch_threads(n: int) -> Iterator[None]:
    """Run the block with ``n`` torch intra-op threads, then restore the previous count.

    Scoped rather than process-wide: a worker that also runs another model stage keeps that
    stage's own thread count."""
    import torch

    before = torch.get_num_threads()
    if n == before:
        yield
        return
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


__all__ = ["auto_device", "torch_threads"]
