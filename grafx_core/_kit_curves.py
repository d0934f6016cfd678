"""The conformance kit's check of moving controls (``time-varying`` in :data:`grafx_core.testing.CHECKS`).

For every control a processor declares time-varying, at the kit's drawn
inputs: the control given as a constant curve renders what the plain value
renders (to ``1e-6`` of the larger of the input's and the output's peak); a moving curve renders a batch as
the nodes one by one; and for an autograd processor, the gradient of a fixed
random loss with respect to a few control frames (first, middle, last; frames
expanded by :func:`grafx_core.curve_to_samples`; one element per node) agrees
with float64 central differences.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from ._kit_inputs import draw_parameter
from .curves import curve_frames, curve_to_samples
from .description import describe

__all__ = ["check_time_varying", "CONSTANT_CURVE_TOLERANCE"]

CONSTANT_CURVE_TOLERANCE = 1e-6
"""How far a constant curve's render may be from the plain value's, relative to the output's peak."""

FD_STEP = 1e-4
"""The central differences' step, relative to the frame's value (at least 1): float64 rounding
spoils steps much below it."""


def _curve_params(checker: Any, index: int, curve: torch.Tensor) -> list[torch.Tensor]:
    params = list(checker.params)
    params[index] = curve
    return params


def check_time_varying(checker: Any) -> None:
    """Run the checks of the module's description on ``checker`` (a ``testing._Checker`` after ``output``)."""
    moving = describe(checker.processor).time_varying()
    if not moving:
        return
    positions = {path: i for i, (path, _) in enumerate(checker.layout)}
    samples = checker.samples
    hop = max(1, samples // 4)
    frames = curve_frames(samples, hop)
    gen = torch.Generator().manual_seed(checker.seed + 2)
    for path in moving:
        name = ".".join(path)
        if path not in positions:
            checker.fail("time-varying", f"declares {name!r} time-varying, but parameter_size() has no {name!r}")
        i = positions[path]
        base = checker.params[i]
        constant = base.unsqueeze(-1).expand(*base.shape, samples)
        with torch.no_grad():
            outs, _ = checker.call(checker.signals, _curve_params(checker, i, constant), check="time-varying")
        inputs = max((float(s.abs().max()) for s in checker.signals), default=1.0)
        for outlet, static, curved in zip(checker.outlets, checker.outputs, outs):
            # Relative to the larger of input and output: a filter's rounding is the input's size
            # even where a later stage (a soft clipper) shrinks the output.
            scale = max(float(static.abs().max()), inputs, 1.0)
            error = float((static - curved).abs().max())
            if not error <= CONSTANT_CURVE_TOLERANCE * scale:
                checker.fail("time-varying", f"control {name!r} given as a constant curve [nodes, *shape, samples] "
                                             f"renders outlet {outlet!r} {error:.3g} away from the plain value "
                                             f"(allowed {CONSTANT_CURVE_TOLERANCE:g} x peak {scale:.3g})")
        noise = torch.randn(*base.shape, frames, generator=gen, dtype=torch.float64)
        control = draw_parameter(noise, checker.ranges.get(path), base.detach().to(torch.float64, copy=True).cpu()
                                 .unsqueeze(-1), checker.perturbation).to(base.device, base.dtype)
        _check_batch(checker, i, name, curve_to_samples(control, samples, hop))
        if checker.kind == "autograd" and ".".join(path) not in checker.frozen:
            _check_frame_gradients(checker, i, name, control, hop)


def _check_batch(checker: Any, index: int, name: str, values: torch.Tensor) -> None:
    with torch.no_grad():
        batched, _ = checker.call(checker.signals, _curve_params(checker, index, values), check="time-varying")
        rows = [checker.call([s[n:n + 1] for s in checker.signals],
                             [p[n:n + 1] for p in _curve_params(checker, index, values)], check="time-varying")[0]
                for n in range(checker.nodes)]
    for k, outlet in enumerate(checker.outlets):
        checker.assert_close("time-varying", batched[k], torch.cat([row[k] for row in rows]),
                             f"with control {name!r} moving, outlet {outlet!r} of a batch differs from the nodes "
                             "rendered one by one")


def _check_frame_gradients(checker: Any, index: int, name: str, control: torch.Tensor, hop: int) -> None:
    processor = copy.deepcopy(checker.processor).to(torch.float64)
    signals = [s.detach().to(torch.float64) for s in checker.signals]
    params = [p.detach().to(torch.float64) for p in checker.params]
    frames = control.detach().to(torch.float64)
    weights = [w.to(torch.float64) for w in checker.weights()[:len(checker.outlets)]]
    samples = checker.samples

    def loss(curve: torch.Tensor) -> torch.Tensor:
        values = _curve_params(checker, index, curve_to_samples(curve, samples, hop))
        values = [v if j == index else params[j] for j, v in enumerate(values)]
        outs, _ = checker.call(signals, values, processor, check="time-varying")
        return checker.node_losses(list(outs), weights).sum()

    leaf = frames.clone().requires_grad_()
    gradient = torch.autograd.grad(loss(leaf), leaf)[0]
    count = frames.shape[-1]
    flat = frames.reshape(-1, count)
    for frame in sorted({0, count // 2, count - 1}):
        for element in (0,):  # the first element of the first node: the rows are independent (batch-consistency)
            step = FD_STEP * max(float(flat[element, frame].abs()), 1.0)
            plus, minus = flat.clone(), flat.clone()
            plus[element, frame] += step
            minus[element, frame] -= step
            with torch.no_grad():
                reference = float(loss(plus.reshape(frames.shape)) - loss(minus.reshape(frames.shape))) / (2 * step)
            exact = float(gradient.reshape(-1, count)[element, frame])
            if abs(exact - reference) > 1e-3 * abs(reference) + 1e-6 * max(1.0, float(gradient.abs().max())):
                checker.fail("time-varying", f"the gradient of control {name!r} at curve frame {frame} (element "
                                             f"{element}) is {exact:.6g}; float64 central differences give "
                                             f"{reference:.6g}")
