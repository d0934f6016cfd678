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
    """One intra-op torch thread: small networks and short signals run faster on one, and it is immune
    to other load on the machine (two OpenMP threads on two busy cores measured 10-500x slower)."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


# Cases measured over ~10 s on 2 shared cores (pytest --durations=40); `make test-fast` leaves them out.
SLOW_CASES = (
    "test_script_runs[neural_proxy]",
    "test_script_runs[first_graph]",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name in SLOW_CASES:
            item.add_marker(pytest.mark.slow)
