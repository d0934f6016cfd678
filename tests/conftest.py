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
def bell_after_level() -> Callable[[dict[str, float]], tuple]:
    """A factory of a two-node black-box chain whose optimum is known: a level (``level_db``, -12..6 dB, hidden
    at 0) into a textbook peaking biquad (RBJ's cookbook through ``scipy.signal.lfilter``), whose controls are
    named by the caller (the keys of ``hidden``, in the order centre in Hz 20-8000 log, boost in dB -12..12,
    Q 0.3-10 log; a test declares the centre with or without its unit this way). It returns
    ``(graph, processors, plan, sources, loss)``, the loss's target rendered at ``hidden`` from 8,192 samples
    of seeded noise."""
    import numpy as np
    import scipy.signal

    from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render
    from grafx_core.fitting import SpectralLoss

    def make(hidden: dict[str, float]) -> tuple:
        centre_name, boost_name, q_name = hidden

        def bell(audio: np.ndarray, sample_rate: float, **controls: float) -> np.ndarray:
            a, w = 10 ** (controls[boost_name] / 40), 2 * np.pi * controls[centre_name] / sample_rate
            alpha = np.sin(w) / (2 * controls[q_name])
            b = [1 + alpha * a, -2 * np.cos(w), 1 - alpha * a]
            den = [1 + alpha / a, -2 * np.cos(w), 1 - alpha / a]
            return scipy.signal.lfilter(b, den, audio, axis=-1).astype(np.float32)

        def level(audio: np.ndarray, sample_rate: float, level_db: float) -> np.ndarray:
            return (10 ** (level_db / 20) * audio).astype(np.float32)

        bell_box = BlackBoxProcessor(bell, [ParameterSpec(centre_name, 20.0, 8000.0, scale="log"),
                                            ParameterSpec(boost_name, -12.0, 12.0),
                                            ParameterSpec(q_name, 0.3, 10.0, scale="log")],
                                     workers=1, check_determinism=False)
        level_box = BlackBoxProcessor(level, [ParameterSpec("level_db", -12.0, 6.0)], workers=1,
                                      check_determinism=False)
        graph = Graph()
        source, a, b, out = graph.add("in"), graph.add("level"), graph.add("bell"), graph.add("out")
        graph.connect(source, a)
        graph.connect(a, b)
        graph.connect(b, out)
        processors = {"level": level_box, "bell": bell_box}
        plan = compile_render(graph, processors)
        sources = (0.3 * torch.randn(1, 1, 8192, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
        settings = {"level": level_box.raw_parameters(level_db=[0.0]),
                    "bell": bell_box.raw_parameters(**{k: [v] for k, v in hidden.items()})}
        with torch.no_grad():
            loss = SpectralLoss(plan(settings, sources)[0][0], (256, 1024))
        return graph, processors, plan, sources, loss

    return make


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
