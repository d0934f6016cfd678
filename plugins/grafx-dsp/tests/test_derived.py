"""Per-parameter values kept across a stream's blocks: reused only for the same, unchanged
tensors outside autograd, and streams through them equal one-shot renders, gradients included."""

from __future__ import annotations

import gc

import pytest
import torch

from grafx_core.state import render_in_blocks
from grafx_dsp import Compressor, ParametricEQ, StereoGain
from grafx_dsp import _derived
from grafx_dsp._derived import derived


def _counting() -> tuple[list[int], object]:
    calls: list[int] = []

    def compute(value: torch.Tensor) -> torch.Tensor:
        calls.append(1)
        return value * 2

    return calls, compute


def test_reused_for_the_same_tensor_and_recomputed_after_an_in_place_change() -> None:
    calls, compute = _counting()
    value = torch.tensor([[1.0], [2.0]])
    first = derived("test.same", compute, value)
    assert derived("test.same", compute, value) is first and len(calls) == 1
    assert torch.equal(derived("test.same", compute, value.clone()), first)  # equal values, another tensor
    assert len(calls) == 2
    value.add_(1.0)
    assert torch.equal(derived("test.same", compute, value), torch.tensor([[4.0], [6.0]]))
    assert len(calls) == 3


def test_not_kept_under_autograd_and_gradients_flow() -> None:
    calls, compute = _counting()
    value = torch.tensor([[1.0]], requires_grad=True)
    derived("test.grad", compute, value).sum().backward()
    derived("test.grad", compute, value)
    assert len(calls) == 2
    assert value.grad is not None and float(value.grad) == 2.0


def test_an_entry_goes_with_its_tensor() -> None:
    _, compute = _counting()
    value = torch.ones(3, 1)
    derived("test.freed", compute, value)
    assert any(key[0] == "test.freed" for key in _derived._MEMO)
    del value
    gc.collect()
    assert not any(key[0] == "test.freed" for key in _derived._MEMO)


def _parameters(processor: torch.nn.Module, rows: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    defaults = processor.default_parameters(rows)
    return {name: (value + 0.1 * torch.randn(value.shape, generator=generator)).requires_grad_()
            for name, value in defaults.items()}


@pytest.mark.parametrize("processor", [Compressor(), StereoGain(), ParametricEQ()], ids=type)
def test_streamed_gradients_equal_one_shot_and_reuse_changes_nothing(processor: torch.nn.Module,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    generator = torch.Generator().manual_seed(3)
    x = 0.3 * torch.randn(2, 2, 6000, generator=generator)
    params = _parameters(processor, 2, generator)
    weight = torch.randn(2, 2, 6000, generator=generator)
    (reference := processor(x, **params)).mul(weight).sum().backward()
    expected = {name: value.grad.clone() for name, value in params.items()}
    for value in params.values():
        value.grad = None
    streamed = render_in_blocks(processor, [x], params, [1024, 700])[0]
    streamed.mul(weight).sum().backward()
    assert (streamed - reference).abs().max() <= 1e-6
    for name, value in params.items():
        torch.testing.assert_close(value.grad, expected[name], rtol=1e-4, atol=1e-6, msg=name)
    with torch.no_grad():  # kept values: the same result as computing them every block
        kept = render_in_blocks(processor, [x], params, [1024, 700])[0]
        monkeypatch.setattr(_derived, "SIZE", 0)  # nothing kept
        fresh = render_in_blocks(processor, [x], params, [1024, 700])[0]
    assert torch.equal(kept, fresh)
