"""Shared fixtures: the same test body runs on CPU and, where present, CUDA."""

import pytest
import torch

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


@pytest.fixture(params=DEVICES)
def device(request) -> torch.device:
    """Each available device in turn; CUDA is skipped where absent."""
    return torch.device(request.param)


# Cases measured over ~10 s on 2 shared cores (pytest --durations=30); `make test-fast` leaves them out.
SLOW_CASES = (
    "test_processor_passes_check_processor[cpu-chain]",
    "test_processor_passes_check_processor[cpu-parallel_mix]",
    "test_processor_passes_check_processor[cpu-state_variable_filter]",
    "test_every_processor_built_without_arguments_passes_check_processor_without_options[cpu-graphic_eq]",
    "test_every_processor_built_without_arguments_passes_check_processor_without_options[cpu-crossover]",
    "test_console_render_equals_node_by_node_calls",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name in SLOW_CASES:
            item.add_marker(pytest.mark.slow)
