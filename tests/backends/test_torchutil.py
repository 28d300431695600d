"""torch_threads: scoped, so a worker that runs two model stages keeps each one's count;
auto_device: what ``--device auto`` becomes, and the extra to install without the library."""

from __future__ import annotations

import pytest
import torch

from indomer.backends.align import resolve_device
from indomer.backends.asr import ct2_device
from indomer.backends.torchutil import auto_device, torch_threads
from indomer.errors import MissingExtraError


def test_the_count_holds_inside_and_comes_back_after():
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    with torch_threads(want):
        assert torch.get_num_threads() == want
    assert torch.get_num_threads() == before


def test_the_count_comes_back_after_an_error():
    before = torch.get_num_threads()
    want = 1 if before != 1 else 2
    with pytest.raises(RuntimeError), torch_threads(want):
        raise RuntimeError("model failed")
    assert torch.get_num_threads() == before


def test_auto_device_asks_the_library_and_passes_other_values_through():
    assert auto_device("auto", "math", lambda m: m.inf > 0, "x", "y") == "cuda"
    assert auto_device("auto", "math", lambda m: False, "x", "y") == "cpu"
    assert auto_device("cpu", "no_such_module_here", lambda m: True, "x", "y") == "cpu"
    assert resolve_device("auto") == ("cuda" if torch.cuda.is_available() else "cpu")
    assert ct2_device("cuda:1") == "cuda:1"


def test_auto_device_without_the_library_names_the_extra():
    with pytest.raises(MissingExtraError, match=r"indomer\[align\]"):
        auto_device("auto", "no_such_module_here", lambda m: True, "faster-whisper", "align")
