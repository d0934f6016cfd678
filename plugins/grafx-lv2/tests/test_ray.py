"""An LV2 plug-in on the Ray runner renders what the thread pool renders (fresh instances per item there too)."""

from __future__ import annotations

import pytest
import torch

from grafx_core.blackbox import local_ray_cluster
from grafx_lv2 import lv2_processor


@pytest.fixture(scope="module")
def ray_cluster():
    pytest.importorskip("ray", reason="ray is not installed (pip install grafx-core[ray])")
    with local_ray_cluster(num_cpus=2) as ray:  # joins the core suite's cluster when it ran first
        yield ray


def test_ray_runner_equals_the_thread_pool_forward_and_backward(ray_cluster, require, noise):
    name = require("calf_saturator")
    x, raw = noise(2), {"drive": torch.tensor([[0.3], [-1.0]])}
    results = []
    for runner in ("threads", "ray"):
        box = lv2_processor(name, include=["drive"], block_size=256, runner=runner, workers=2, check=False)
        params = {k: v.clone().requires_grad_() for k, v in raw.items()}
        y = box(x, **params)
        y.pow(2).mean().backward()
        results.append((y.detach(), params["drive"].grad))
    (y_t, g_t), (y_r, g_r) = results
    assert torch.equal(y_r, y_t) and torch.equal(g_r, g_t) and float(g_t.abs().max()) > 0
