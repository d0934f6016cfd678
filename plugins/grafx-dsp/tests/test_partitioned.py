"""Uniformly partitioned convolution against scipy's direct convolution and autograd."""

from __future__ import annotations

import random

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_dsp.partitioned import (initial_partitioned_state, partition_size, partition_spectra,
                                   partitioned_block)


def _stream(x: torch.Tensor, h: torch.Tensor, lengths: list[int]) -> torch.Tensor:
    size = partition_size(lengths[0])
    spectra = partition_spectra(h, size)
    head = torch.nn.functional.pad(h, (0, max(0, size - h.shape[-1])))[..., :size]
    state = initial_partitioned_state(x, spectra.shape[-2], size)
    pieces, start = [], 0
    for length in lengths:
        y, state = partitioned_block(x[..., start:start + length], spectra, head, state)
        pieces.append(y)
        start += length
    return torch.cat(pieces, dim=-1)


def _lengths(total: int, rng: random.Random, first: int) -> list[int]:
    lengths = [first]
    while sum(lengths) < total:
        lengths.append(rng.choice([1, 3, 64, 255, 256, 257, first, 2 * first + 5]))
    lengths[-1] -= sum(lengths) - total
    return [n for n in lengths if n > 0]


@pytest.mark.parametrize("seed", range(6))
def test_blocks_of_any_length_equal_one_direct_convolution(seed: int) -> None:
    rng = random.Random(seed)
    taps = rng.choice([1, 200, 256, 257, 3000, 20000])
    generator = torch.Generator().manual_seed(seed)
    h = torch.randn(2, 2, taps, generator=generator, dtype=torch.float64)
    x = torch.randn(2, 1, 9000, generator=generator, dtype=torch.float64)  # mono in, stereo response
    streamed = _stream(x, h, _lengths(x.shape[-1], rng, rng.choice([1, 64, 300, 4096])))
    reference = np.stack([np.stack([scipy.signal.convolve(x[r, 0].numpy(), h[r, c].numpy())[:9000]
                                    for c in range(2)]) for r in range(2)])
    assert streamed.shape == (2, 2, 9000)
    np.testing.assert_allclose(streamed.numpy(), reference, atol=1e-10 * np.abs(reference).max())


def test_float32_blocks_of_4096_match_within_1e_6() -> None:
    generator = torch.Generator().manual_seed(0)
    h = torch.randn(3, 2, 44100, generator=generator) * torch.exp(-torch.arange(44100) / 8000.0) * 0.02
    x = torch.randn(3, 2, 5 * 4096 + 17, generator=generator) * 0.3
    reference = torch.from_numpy(np.stack([np.stack([scipy.signal.fftconvolve(
        x[r, c].double().numpy(), h[r, c].double().numpy())[: x.shape[-1]] for c in range(2)]) for r in range(3)]))
    streamed = _stream(x, h, [4096] * 5 + [17])
    assert float((streamed.double() - reference).abs().max()) <= 1e-6


def test_gradients_flow_to_signal_and_response_within_a_block() -> None:
    generator = torch.Generator().manual_seed(1)
    x = torch.randn(1, 1, 30, generator=generator, dtype=torch.float64, requires_grad=True)
    h = torch.randn(1, 1, 300, generator=generator, dtype=torch.float64, requires_grad=True)
    lengths = [17, 3, 10]
    assert torch.autograd.gradcheck(lambda x, h: _stream(x, h, lengths), (x, h))


def test_a_response_that_grows_during_a_stream_is_refused() -> None:
    x = torch.zeros(1, 1, 256)
    short, long = torch.ones(1, 1, 600), torch.ones(1, 1, 3000)
    state = initial_partitioned_state(x, partition_spectra(short, 256).shape[-2], 256)
    with pytest.raises(ValueError, match="may not grow"):
        partitioned_block(x, partition_spectra(long, 256), long[..., :256], state)
