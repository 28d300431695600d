"""torch_threads: scoped, so a worker that runs two model stages keeps each one's count."""

from __future__ import annotations

import pytest
import torch

from indomer.backends.torchutil import torch_threads


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
