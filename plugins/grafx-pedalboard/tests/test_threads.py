"""Thread pool and reset: outputs identical to a sequential run and independent of what ran before."""

from __future__ import annotations

import warnings

import numpy as np
import pedalboard
import pytest
import torch

from grafx_core.estimators import NonDifferentiableParameterWarning
from grafx_pedalboard import EFFECTS, pedalboard_chain, pedalboard_processor

IMPULSE = np.exp(-np.arange(500) / 80.0) * np.random.default_rng(5).standard_normal(500) * 0.2


def make(name: str, **kwargs):
    options = {"impulse_response": IMPULSE} if name == "convolution" else {}
    return pedalboard_processor(name, **options, **kwargs)


def alternating(processor, rows: int) -> dict[str, torch.Tensor]:
    """Raw parameters ``[rows, 1]`` alternating between two settings A and B (A, B, A, B, ...)."""
    signs = torch.tensor([(-1.0) ** r for r in range(rows)]).unsqueeze(1)
    return {s.name: 0.8 * signs * (1 if i % 2 else -1) for i, s in enumerate(processor.specs)}


@pytest.mark.parametrize("name", sorted(EFFECTS))
def test_outputs_never_depend_on_what_ran_before(bursts, name):
    # one worker: the same effect instance renders A, B, A, B in turn
    processor = make(name, workers=1)
    x = bursts(1, samples=4410).expand(4, -1, -1)
    raw = alternating(processor, 4)
    y = processor(x, **raw)
    torch.testing.assert_close(y[0], y[2], rtol=0, atol=0)
    torch.testing.assert_close(y[1], y[3], rtol=0, atol=0)
    alone = make(name, workers=1)(x[1:2], **{k: v[1:2] for k, v in raw.items()})
    torch.testing.assert_close(y[1:2], alone, rtol=0, atol=0)


def test_a_reverb_dry_level_change_does_not_leak_into_the_next_item(bursts):
    # pedalboard smooths Reverb.dry_level across calls even with reset=True; the
    # processor gives every item a new Reverb, so its output matches a fresh one
    x = bursts(1)[0].numpy()
    used = pedalboard.Reverb(dry_level=0.9)
    used(x, 44100)
    used.dry_level = 0.1
    assert not np.array_equal(used(x, 44100), pedalboard.Reverb(dry_level=0.1)(x, 44100))
    processor = make("reverb", workers=1)
    raw = processor.raw_parameters(dry_level=[0.9, 0.1])
    raw = {**{k: torch.tensor([[v], [v]]) for k, v in processor.default_parameters().items()}, **raw}
    y = processor(bursts(1).expand(2, -1, -1), **raw)
    alone = make("reverb", workers=1)(bursts(1), **{k: v[1:] for k, v in raw.items()})
    torch.testing.assert_close(y[1:], alone, rtol=0, atol=0)


def test_a_board_holding_a_reverb_does_not_carry_dry_level_into_the_next_item(bursts):
    # the same workaround inside a board: a nested Reverb makes every item rebuild the board
    board = pedalboard.Pedalboard([pedalboard.Gain(), pedalboard.Chain([pedalboard.Reverb()])])
    processor = pedalboard_chain(board, workers=1)
    raw = {k: torch.full((3, 1), v) for k, v in processor.default_parameters().items()}
    raw.update(processor.raw_parameters(reverb_dry_level=[0.9, 0.1, 0.9]))
    y = processor(bursts(1).expand(3, -1, -1), **raw)
    torch.testing.assert_close(y[0], y[2], rtol=0, atol=0)
    alone = pedalboard_chain(board, workers=1)(bursts(1), **{k: v[1:2] for k, v in raw.items()})
    torch.testing.assert_close(y[1:2], alone, rtol=0, atol=0)


@pytest.mark.parametrize("name, estimator", [("compressor", None), ("reverb", None), ("chorus", None),
                                             ("phaser", None), ("delay", None), ("reverb", "spsa")])
def test_threads_give_exactly_the_sequential_outputs_and_gradients(bursts, name, estimator):
    x = bursts(6, samples=4410)
    results = []
    for workers in (1, 2):
        options = {"estimator": estimator, "estimator_options": {"seed": 1}} if estimator else {}
        processor = make(name, workers=workers, **options)
        gen = torch.Generator().manual_seed(4)
        raw = {s.name: torch.randn(6, 1, generator=gen).requires_grad_() for s in processor.specs}
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NonDifferentiableParameterWarning)
            y = processor(x, **raw)
        (y * torch.linspace(-1, 1, y.shape[-1])).sum().backward()
        results.append((y.detach(), {k: v.grad for k, v in raw.items()}))
    (y1, g1), (y2, g2) = results
    torch.testing.assert_close(y1, y2, rtol=0, atol=0)
    for k in g1:
        torch.testing.assert_close(g1[k], g2[k], rtol=0, atol=0)


def test_each_worker_thread_owns_its_effect_instance(bursts):
    made = []

    def board():
        made.append(pedalboard.Pedalboard([pedalboard.Compressor(threshold_db=-20), pedalboard.Gain(-3)]))
        return made[-1]

    processor = pedalboard_chain(board, workers=2)
    del made[:]  # the template the chain read its controls from
    raw = {k: torch.full((8, 1), v) for k, v in processor.default_parameters().items()}
    processor(bursts(8, samples=2205), **raw)
    processor(bursts(8, samples=2205), **raw)
    # 16 items: at most one board per worker thread (the pool may reuse an idle thread), kept between calls
    assert 1 <= len(made) <= 2
