"""pedalboard effects on the Ray runner render what the thread pool renders, reverb workaround included."""

from __future__ import annotations

import pedalboard
import pytest
import torch

from grafx_core.blackbox import local_ray_cluster
from grafx_pedalboard import pedalboard_chain, pedalboard_processor


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="ray is not installed (pip install grafx-core[ray])")
    with local_ray_cluster(num_cpus=2) as ray:  # joins the core suite's cluster when it ran first
        yield ray


def _render(processor, x, raw):
    raw = {k: v.clone().requires_grad_() for k, v in raw.items()}
    y = processor(x, **raw)
    y.pow(2).mean().backward()
    return y.detach(), {k: v.grad for k, v in raw.items()}


@pytest.mark.parametrize("make", [
    lambda **kw: pedalboard_processor("reverb", **kw),
    lambda **kw: pedalboard_chain(pedalboard.Pedalboard([pedalboard.Compressor(), pedalboard.Distortion()]), **kw),
], ids=["reverb", "compressor-distortion-chain"])
def test_ray_runner_equals_the_thread_pool_with_finite_difference_gradients(ray_cluster, bursts, make):
    threads, ray_box = make(workers=2), make(workers=2, runner="ray")
    x = bursts(3, samples=2205)
    gen = torch.Generator().manual_seed(4)
    raw = {s.name: torch.randn(3, 1, generator=gen) for s in threads.specs if s.differentiable}
    raw.update({s.name: torch.zeros(3, 1) for s in threads.specs if not s.differentiable})
    y_t, g_t = _render(threads, x, raw)
    y_r, g_r = _render(ray_box, x, raw)
    assert torch.equal(y_r, y_t)
    assert all(torch.equal(g_r[k], g_t[k]) for k in g_t)
    assert any(float(g.abs().max()) > 0 for g in g_t.values())
