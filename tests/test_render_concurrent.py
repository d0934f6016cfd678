"""Stages whose processors declare concurrent_calls run while independent stages render."""

import threading

import pytest
import torch

from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render, create_empty_parameters


class Gain(torch.nn.Module):
    def forward(self, x, gain):
        return x * gain[..., None]

    def parameter_size(self):
        return {"gain": 1}


def _meeting(barrier):
    """A gain that waits for the other branch's black box to be running too."""

    def effect(audio, sample_rate, gain_db):
        barrier.wait(timeout=5)
        return audio * 10 ** (gain_db / 20)

    return effect


def _graph():
    g = Graph()
    for branch in ("a", "b"):
        g.connect(g.add("in"), g.add("gain", f"{branch}_gain"))
        g.connect(f"{branch}_gain", g.add(f"box_{branch}", f"{branch}_box"))
    g.connect("a_box", g.add("out", "out"))
    g.connect("b_box", "out")
    return g


def _boxes(effect, **options):
    spec = [ParameterSpec("gain_db", -12.0, 12.0)]
    return {"gain": Gain(), **{f"box_{b}": BlackBoxProcessor(effect, spec, name=f"box_{b}", workers=1, **options)
                               for b in "ab"}}


def test_independent_black_box_stages_run_at_the_same_time():
    processors = _boxes(_meeting(threading.Barrier(2)), check_determinism=False)
    g = _graph()
    params = create_empty_parameters(g, processors)
    params["gain"]["gain"] = torch.ones(2, 1)
    x = torch.randn(2, 2, 64, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        y, _ = compile_render(g, processors)(params, x)  # one call after the other would break the barrier
    gains = [10 ** (float(processors[f"box_{b}"].natural_parameters(**params[f"box_{b}"])["gain_db"][0].detach()) / 20)
             for b in "ab"]
    torch.testing.assert_close(y[0], x[0] * gains[0] + x[1] * gains[1])


def test_a_concurrent_render_and_its_gradients_equal_a_sequential_ones():
    def effect(audio, sample_rate, gain_db):
        return audio * 10 ** (gain_db / 20)

    g = _graph()
    results = []
    for concurrent in (True, False):
        processors = _boxes(effect, signal_gradient="straight-through")
        for p in processors.values():
            p.concurrent_calls = concurrent
        params = create_empty_parameters(g, processors)
        params["gain"]["gain"] = torch.tensor([[0.5], [2.0]], requires_grad=True)
        params["box_a"]["gain_db"] = torch.tensor([[1.0]], requires_grad=True)
        x = torch.randn(2, 2, 64, generator=torch.Generator().manual_seed(0))
        y, _ = compile_render(g, processors)(params, x)
        y.square().sum().backward()
        results.append((y, params["gain"]["gain"].grad, params["box_a"]["gain_db"].grad))
    for concurrent, sequential in zip(*results):
        assert torch.equal(concurrent, sequential)


def test_a_background_stage_follows_the_callers_grad_mode_and_raises_where_it_is_read():
    def fails(audio, sample_rate, gain_db):
        raise RuntimeError("broken effect")

    spec = [ParameterSpec("gain_db", -12.0, 12.0)]
    processors = {"gain": Gain(), "box_a": BlackBoxProcessor(lambda a, sr, gain_db: a, spec, workers=1),
                  "box_b": BlackBoxProcessor(fails, spec, name="broken", workers=1)}
    g = _graph()
    params = create_empty_parameters(g, processors)
    params["box_a"]["gain_db"].requires_grad_()
    with torch.no_grad():
        with pytest.raises(Exception, match="broken effect"):
            compile_render(g, processors)(params, torch.ones(2, 1, 8))
    processors["box_b"] = BlackBoxProcessor(lambda a, sr, gain_db: a, spec, workers=1)
    with torch.no_grad():
        y, _ = compile_render(g, processors)(params, torch.ones(2, 1, 8))
    assert not y.requires_grad
