"""Starting a fit where the answer is likely: least-squares faders and pans, transfer-function EQs."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy.optimize import nnls

pytest.importorskip("grafx_dsp")

from grafx_core import processors_for_graph  # noqa: E402
from grafx_core.demo.multitrack import synthesise_multitrack  # noqa: E402
from grafx_core.fitting.console import build_console  # noqa: E402
from grafx_core.fitting.initial import initialise, least_squares_weights, loudest_excerpt  # noqa: E402
from grafx_core.plan import compile_render  # noqa: E402

RATE = 22050


def test_least_squares_weights_equal_scipy_nnls_on_the_full_system():
    generator = torch.Generator().manual_seed(0)
    basis = torch.randn(5, 4000, generator=generator, dtype=torch.float64)
    target = torch.tensor([0.5, 0.0, 2.0, -1.0, 0.3], dtype=torch.float64) @ basis
    target = target + 0.1 * torch.randn(4000, generator=generator, dtype=torch.float64)
    ours = least_squares_weights(basis, target)
    theirs = nnls(basis.T.numpy(), target.numpy())[0]
    np.testing.assert_allclose(ours, theirs, atol=1e-8)
    assert ours.min() >= 0 and ours[3] == 0


@pytest.mark.slow
def test_faders_and_pans_of_a_hidden_mix_are_found_before_any_gradient_step():
    names, stems = synthesise_multitrack(4, 1.0, RATE, seed=4)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    plan = compile_render(console.graph, processors)
    start = console.start_parameters(processors)
    hidden = {t: {k: v.clone() for k, v in p.items()} for t, p in start.items()}
    gains, pans = torch.tensor([[-9.0], [-2.0], [-14.0], [-5.0]]), torch.tensor([[0.0], [-0.5], [0.4], [0.8]])
    hidden["dsp:stereo_gain"]["gain_db"], hidden["dsp:stereo_gain"]["pan"] = gains, pans
    render = lambda p, s: plan(p, s)[0][0]  # noqa: E731
    with torch.no_grad():
        target = render(hidden, stems)
    found = initialise(console.graph, names, processors, start, stems, target, RATE, render)
    assert found.chosen.startswith("waveform least squares")
    assert found.losses[found.chosen] < 0.2 * found.losses["defaults"]
    faders = found.parameters["dsp:stereo_gain"]
    assert torch.allclose(faders["gain_db"], gains, atol=0.5)
    assert torch.allclose(faders["pan"], pans, atol=0.05)


def test_a_graph_that_is_not_a_built_console_keeps_its_start():
    names, stems = synthesise_multitrack(2, 0.5, RATE, seed=1)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    plan = compile_render(console.graph, processors)
    start = console.start_parameters(processors)
    found = initialise(console.graph, ["other", "names"], processors, start, stems, stems.sum(0), RATE,
                       lambda p, s: plan(p, s)[0][0])
    assert found.chosen == "defaults" and found.renders == 1


def test_the_loudest_excerpt_is_where_the_target_is_loudest():
    target = torch.zeros(2, 10 * RATE)
    target[:, 6 * RATE:7 * RATE] = 1.0
    stems = torch.arange(10 * RATE, dtype=torch.float32).expand(3, 2, -1)
    part, excerpt = loudest_excerpt(stems, target, RATE, 2.0)
    assert excerpt.shape[-1] == part.shape[-1] == 2 * RATE and float(excerpt.sum()) == 2 * RATE
    assert 5 * RATE <= int(part[0, 0, 0]) <= 6 * RATE
