"""Shared fixtures: the same test body runs on CPU and, where present, CUDA."""

import signal
from collections.abc import Callable

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


@pytest.fixture
def interruptible() -> Callable[[], None]:
    """A ``preexec_fn`` for a child process a test interrupts: SIGINT at its default, as a terminal leaves it.

    A shell without job control starts background jobs with SIGINT ignored, and children inherit that,
    so a suite launched that way (``make test &`` in a script) would see Ctrl-C ignored."""
    def restore() -> None:
        signal.signal(signal.SIGINT, signal.SIG_DFL)
    return restore


# The slowest cases of `pytest tests --durations=40` (17-235 s on 2 cores shared with other jobs, about
# 5x a quiet machine's times); `make test-fast` leaves them out.
SLOW_CASES = (
    "test_signal_gradient_is_an_unbiased_vjp",
    "test_ctrl_c_stops_the_fit_with_130_and_saves_the_parameters_fitted_so_far",
    "test_printed_render_command_reproduces_fitted_wav_bit_for_bit",
    "test_fit_recovers_a_hidden_mix_from_held_aside_stems",
    "test_script_runs[neural_proxy]",
    "test_script_runs[estimator_accuracy]",
    "test_script_runs[structure]",
    "test_script_runs[first_graph]",
    "test_gradients_follow_the_device_and_match_a_torch_twin[cpu-finite-difference]",
    "test_importing_grafx_core_loads_no_plugin",
    "test_two_gloo_processes_match_one_process_with_the_global_batch",
    "test_the_gradients_command_prints_a_report_per_processor",
    "test_the_report_classifies_known_controls",
    "test_ctrl_c_ends_a_render_with_two_workers_promptly",
    "test_python_dash_m_lists_the_installed_example_plugin",
    "test_gradient_descent_recovers_a_black_box_drive_and_gain_chain_behind_an_autograd_node",
)


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.name in SLOW_CASES:
            item.add_marker(pytest.mark.slow)
