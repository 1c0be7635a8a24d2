"""Unit tests use tiny tensors: one intra-op thread is faster than two and is not slowed down
by other processes competing for the cores."""

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_torch_thread():
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
