"""Fixtures shared by the search-space tests."""

import pytest
import torch


@pytest.fixture
def one_torch_thread():
    """Tiny networks: one thread is fastest, and immune to a busy machine's other processes."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
