"""The conformance kit on processors that conform and on deliberately broken ones."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from grafx_core.errors import ConformanceError
from grafx_core.estimators import SPSA, FiniteDifference, with_estimator
from grafx_core.testing import CHECKS, check_processor
from grafx_example_plugin import Crossfade, MidSide, SoftClip

ALL_AUTOGRAD = ["protocol", "parameter-size", "output", "finite", "batch-consistency", "gradient-flow", "gradcheck"]


class Gain(nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * torch.pow(10.0, gain_db / 20.0)[:, :, None]


class SplitWithAux(nn.Module):
    """Two outlets, nested parameters and an aux dict: the protocol's corners."""

    outlets = ("dry", "wet")

    def parameter_size(self):
        return {"mix": 1, "tone": {"coef": (2, 3)}}

    def default_parameters(self):
        return {"tone": {"coef": [[0.1, 0.2, 0.3], [0.0, -0.1, 0.1]]}}

    def forward(self, x, mix, tone):
        wet = x * torch.sigmoid(mix)[:, :, None] + tone["coef"].sum((1, 2))[:, None, None] * x.pow(3)
        return x[:, :1], wet, {"energy": wet.pow(2).mean((1, 2)), "stats": {"peak": wet.abs().amax(2)}}


def test_conforming_processors_pass_every_check_on_each_device(device):
    assert check_processor(SoftClip(), device=device) == ALL_AUTOGRAD
    assert check_processor(Crossfade(), channels={"a": 2, "b": 1}, device=device) == ALL_AUTOGRAD
    assert check_processor(MidSide(), device=device) == ALL_AUTOGRAD
    assert check_processor(SplitWithAux(), num_nodes=2, num_samples=64, device=device) == ALL_AUTOGRAD


@pytest.mark.parametrize("estimator", [FiniteDifference, SPSA])
def test_estimator_backed_processors_agree_with_finite_differences(estimator):
    processor = with_estimator(Gain(), estimator(seed=1))
    assert check_processor(processor)[-2:] == ["gradient-flow", "estimator-agreement"]


class _ScaledGradient(torch.autograd.Function):
    """``x * g`` whose backward multiplies the parameter's gradient by ``factor``."""

    @staticmethod
    def forward(ctx, x, gain, factor):
        ctx.save_for_backward(x, gain)
        ctx.factor = factor
        return x * gain[:, :, None]

    @staticmethod
    def backward(ctx, grad):
        x, gain = ctx.saved_tensors
        return grad * gain[:, :, None], ctx.factor * (grad * x).sum((1, 2))[:, None], None


def _broken(kind="autograd", size=None, forward=None, defaults=None, inlets=("main",), own_parameter=False):
    """A one-off processor class with the given pieces."""

    class Broken(nn.Module):
        gradient_kind = kind

        def __init__(self):
            super().__init__()
            self.inlets = inlets
            if own_parameter:
                self.weight = nn.Parameter(torch.ones(1))

        def parameter_size(self):
            return {"gain": 1} if size is None else size

        if defaults is not None:
            def default_parameters(self):
                return defaults

    Broken.forward = forward or (lambda self, x, gain: x * gain[:, :, None])
    return Broken()


BROKEN = {
    "owns an nn.Parameter": (_broken(own_parameter=True), "protocol", "holds nn.Parameters ['weight']"),
    "unknown gradient kind": (_broken(kind="magic"), "protocol", "gradient_kind 'magic'"),
    "size names a parameter forward lacks": (
        _broken(size={"gain_db": 1}), "parameter-size", "declares ['gain_db'], which forward does not accept"),
    "forward requires an undeclared parameter": (
        _broken(forward=lambda self, x, gain, bias: x), "parameter-size", "forward requires ['bias']"),
    "more inlets than forward takes": (
        _broken(inlets=("a", "b")), "parameter-size",
        "forward's argument 'gain' would receive the signal of inlet 'b'"),
    "defaults for an undeclared parameter": (
        _broken(defaults={"gain": 1.0, "bias": 0.0}), "parameter-size", "default_parameters() has 'bias'"),
    "defaults of the wrong shape": (
        _broken(defaults={"gain": [1.0, 2.0]}), "parameter-size", "does not fit its shape (1,)"),
    "two outputs for one outlet": (
        _broken(forward=lambda self, x, gain: (x, x)), "output", "expected one tensor per outlet ('main',)"),
    "shortens the signal": (
        _broken(forward=lambda self, x, gain: x[..., 1:] * gain[:, :, None]), "output", "expected [3, channels, 256]"),
    "hard-codes float64": (
        _broken(forward=lambda self, x, gain: x.double() * gain[:, :, None]), "output", "torch.float64 on cpu"),
    "aux without a node dimension": (
        _broken(forward=lambda self, x, gain: (x * gain[:, :, None], {"level": x.mean(0)})), "output",
        "aux value 'level' is (2, 256); expected a tensor [3, ...] or a scalar"),
    "raises inside forward": (
        _broken(forward=lambda self, x, gain: x @ gain), "output", "forward raised RuntimeError"),
    "NaN for valid parameters": (
        _broken(forward=lambda self, x, gain: x * torch.log(gain)[:, :, None]), "finite", "outlet 'main' has NaN"),
    "normalises by the batch peak": (
        _broken(forward=lambda self, x, gain: x * gain[:, :, None] / x.abs().max()), "batch-consistency",
        "differs from the nodes rendered one by one"),
    "detaches a parameter": (
        _broken(forward=lambda self, x, gain: x * gain.detach()[:, :, None]), "gradient-flow",
        "parameter 'gain' gets no gradient"),
    "detaches its input": (
        _broken(forward=lambda self, x, gain: x.detach() * gain[:, :, None]), "gradient-flow",
        "inlet 'main' gets no gradient"),
    "wrong autograd backward": (
        _broken(forward=lambda self, x, gain: _ScaledGradient.apply(x, gain, 1.5)), "gradcheck",
        "float64 gradcheck failed"),
    "estimate of the wrong sign": (
        _broken(kind="finite-difference", forward=lambda self, x, gain: _ScaledGradient.apply(x, gain, -1.0)),
        "estimator-agreement", "cosine similarity -1.000"),
    "estimate of the wrong size": (
        _broken(kind="finite-difference", forward=lambda self, x, gain: _ScaledGradient.apply(x, gain, 2.0)),
        "estimator-agreement", "differs from the reference's"),
    "spsa estimate of the wrong sign": (
        _broken(kind="spsa", forward=lambda self, x, gain: _ScaledGradient.apply(x, gain, -1.0)),
        "estimator-agreement", "the spsa gradient has cosine similarity -1.000"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_broken_processor_fails_the_right_check_with_a_reason(case):
    processor, check, fragment = BROKEN[case]
    with pytest.raises(ConformanceError) as excinfo:
        check_processor(processor)
    assert excinfo.value.check == check
    assert str(excinfo.value).startswith(f"[{check}] Broken: ")
    assert fragment in str(excinfo.value)


def test_exemptions_and_skips_are_explicit():
    detaches = BROKEN["detaches a parameter"][0]
    assert "gradient-flow" in check_processor(detaches, nondifferentiable=["gain"])
    unbatched = BROKEN["normalises by the batch peak"][0]
    assert "batch-consistency" not in check_processor(unbatched, skip=["batch-consistency"])
    with pytest.raises(ValueError, match="only .* can be skipped"):
        check_processor(Gain(), skip=["output"])
    assert CHECKS[-2:] == ("estimator-agreement", "streaming")


class _Echo(torch.nn.Module):
    """y[n] = x[n] + 0.5 x[n - 3], with its last three input samples as state (or, broken, forgotten)."""

    def __init__(self, forgets: bool = False) -> None:
        super().__init__()
        self.forgets = forgets

    def parameter_size(self) -> dict:
        return {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + 0.5 * torch.nn.functional.pad(x, (3, 0))[..., : x.shape[-1]]

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], x.shape[1], 3)

    def forward_stateful(self, state: torch.Tensor, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        line = torch.cat([torch.zeros_like(state) if self.forgets else state, x], dim=-1)
        return x + 0.5 * line[..., : x.shape[-1]], line[..., -3:]


def test_streaming_check_runs_for_a_stateful_processor_and_catches_lost_state():
    assert check_processor(_Echo())[-1] == "streaming"
    with pytest.raises(ConformanceError, match=r"\[streaming\] _Echo: outlet 'main' rendered in blocks of \[1, 63\]"):
        check_processor(_Echo(forgets=True))


class _MovingEcho(_Echo):
    """:class:`_Echo` times a gain that may move (a curve ``[rows, 1, samples]``); the broken one holds
    each block's mean gain in its block path (right for constant gains only)."""

    def __init__(self, holds: bool = False) -> None:
        super().__init__()
        self.holds = holds

    def parameter_size(self) -> dict:
        return {"gain": 1}

    def controls(self) -> dict:
        from grafx_core import Control

        return {"gain": Control(shape=(1,), low=0.0, high=2.0, default=(1.0,), time_varying=True)}

    @staticmethod
    def _scale(y: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:
        return y * (gain if gain.dim() == 3 else gain[..., None])

    def forward(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return self._scale(super().forward(x), gain)

    def forward_stateful(self, state: torch.Tensor, x: torch.Tensor,  # type: ignore[override]
                         gain: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, line = super().forward_stateful(state, x)
        if self.holds and gain.dim() == 3:
            gain = gain.mean(dim=-1, keepdim=True)
        return self._scale(y, gain), line

    def initial_state(self, x: torch.Tensor, gain: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        return super().initial_state(x)


def test_streaming_check_hands_each_block_its_part_of_a_moving_control():
    # Constant parameters cannot tell a block path that holds a moving control still from a right one.
    assert check_processor(_MovingEcho())[-1] == "streaming"
    with pytest.raises(ConformanceError, match=r"\[streaming\] _MovingEcho: outlet 'main' rendered in blocks of "
                                               r"\[100, 37\] with gain moving"):
        check_processor(_MovingEcho(holds=True))


def test_no_gradient_checks_for_gradient_kind_none():
    frozen = _broken(kind="none", forward=lambda self, x, gain: (x * gain[:, :, None]).detach())
    assert check_processor(frozen) == ["protocol", "parameter-size", "output", "finite", "batch-consistency"]


def test_kit_exempts_controls_a_black_box_declares_non_differentiable():
    import numpy as np

    from grafx_core import BlackBoxProcessor, ParameterSpec, StraightThrough

    def quantise(audio, sample_rate, bits):
        steps = 2.0 ** np.round(bits)
        return np.round(audio * steps) / steps

    box = BlackBoxProcessor(quantise, [ParameterSpec("bits", 2.0, 12.0, default=8.0, differentiable=False)],
                            estimator=StraightThrough(), name="quantise")
    assert box.nondifferentiable_parameters == ("bits",)
    ran = check_processor(box)
    assert "batch-consistency" in ran
