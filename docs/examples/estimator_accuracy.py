"""How close each gradient estimator comes to the exact gradient, and what it costs.

Two analytic grafx-dsp processors (a peaking biquad, 3 controls, and a
compressor, 6 controls) are turned into black boxes: numpy in, numpy out,
controls mapped by a sigmoid from raw values into their ranges, exactly as a
pedalboard effect is. Because the effect inside is analytic, autograd through
the same mapping gives the exact gradient to compare with. For 8 nodes of
0.25 s stereo noise and a random incoming gradient, this prints, per
estimator, the mean cosine between estimated and exact gradients of the raw
controls (1: the exact direction) and the cost of the backward pass in
forward passes.

Run: python docs/examples/estimator_accuracy.py
"""

import time

import numpy as np
import torch

from grafx_core import get_processor
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.estimators import SPSA, FiniteDifference

NODES, SAMPLES = 8, 11025
generator = torch.Generator().manual_seed(0)
x = torch.randn(NODES, 2, SAMPLES, generator=generator) * 0.3
incoming = torch.randn(NODES, 2, SAMPLES, generator=generator)  # the gradient arriving from downstream

EFFECTS = {
    "dsp:peak": [ParameterSpec("cutoff_hz", 50.0, 10000.0, scale="log"),
                 ParameterSpec("q", 0.3, 5.0, scale="log"),
                 ParameterSpec("gain_db", -12.0, 12.0)],
    "dsp:compressor": [ParameterSpec("threshold_db", -40.0, 0.0),
                       ParameterSpec("ratio", 1.0, 10.0, scale="log"),
                       ParameterSpec("knee_db", 0.0, 12.0),
                       ParameterSpec("attack_ms", 1.0, 100.0, scale="log"),
                       ParameterSpec("release_ms", 10.0, 1000.0, scale="log"),
                       ParameterSpec("makeup_db", 0.0, 12.0)],
}
ESTIMATORS = {
    "central differences": lambda: FiniteDifference(),
    "forward differences": lambda: FiniteDifference(mode="forward"),
    "SPSA, K=1": lambda: SPSA(samples=1, seed=0),
    "SPSA, K=4": lambda: SPSA(samples=4, seed=0),
    "SPSA, K=16": lambda: SPSA(samples=16, seed=0),
}


def black_box(processor, specs, estimator):
    """``processor`` run item by item on numpy arrays: a black box to grafx-core."""

    def effect(audio, sample_rate, **natural):
        with torch.no_grad():
            params = {k: torch.tensor([[v]], dtype=torch.float32) for k, v in natural.items()}
            return processor(torch.from_numpy(np.array(audio))[None], **params)[0].numpy()

    return BlackBoxProcessor(effect, specs, estimator=estimator, workers=1)


def raw_gradient(run, raw):
    raw = {k: v.detach().clone().requires_grad_() for k, v in raw.items()}
    (run(raw) * incoming).sum().backward()
    return torch.cat([raw[k].grad.reshape(NODES, 1) for k in raw], dim=1)


results = {}
for name, specs in EFFECTS.items():
    processor = get_processor(name)
    raw = {s.name: torch.randn(NODES, 1, generator=generator) * 0.8 for s in specs}
    reference = black_box(processor, specs, FiniteDifference())

    def exact_run(params):
        natural = {k: v.reshape(NODES, 1) for k, v in reference.natural_parameters(**params).items()}
        return processor(x, **natural)

    exact = raw_gradient(exact_run, raw)
    with torch.no_grad():
        start = time.perf_counter()
        reference(x, **raw)
        forward_s = time.perf_counter() - start
    for label, make in ESTIMATORS.items():
        estimated = black_box(processor, specs, make())
        start = time.perf_counter()
        estimate = raw_gradient(lambda params: estimated(x, **params), raw)
        backward_s = time.perf_counter() - start - forward_s  # the forward pass is in the timed call
        cosine = torch.nn.functional.cosine_similarity(estimate, exact, dim=1).mean().item()
        results[name, label] = cosine
        print(f"{name:15s} {label:20s} cosine {cosine:6.3f}   backward {backward_s / forward_s:5.1f} forwards")

# What the documentation states; if a change breaks it, the docs must change too.
for name in EFFECTS:
    assert results[name, "central differences"] > 0.99, results
    assert results[name, "forward differences"] > 0.9, results
    assert results[name, "SPSA, K=16"] > results[name, "SPSA, K=1"], results
