"""Shared fixtures: the same test body runs on CPU and, where present, CUDA."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each available device in turn; CUDA is skipped where absent."""
    return torch.device(request.param)


@pytest.fixture
def one_torch_thread():
    """One torch thread for CPU-heavy tests: two OpenMP threads on two busy cores can be far slower."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
