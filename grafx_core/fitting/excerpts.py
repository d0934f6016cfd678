"""Fitting long material on excerpts, each rendered after a warm-up with its real preceding state.

A step of an ordinary fit renders the stems it fits from silence, with an
autograd graph as long as they are: an hour-long session cannot be fitted
that way, and a short excerpt rendered from silence lacks the reverb tails,
compressor envelopes and filter memories the music before it leaves. An
:class:`ExcerptObjective` fits ``count`` fixed excerpts of the material (the
loudest one, or excerpts spread evenly over it), each rendered by
:func:`grafx_core.render_excerpt` after ``warmup`` samples of the material
before it, streamed without gradient so that only the processors' states are
kept. Memory is that of the excerpts' autograd graphs and one warm-up block,
whatever the material's length; the excerpts are the same at every step, so
losses of different steps compare (the fit keeps the best).

The gradient is the excerpts' own (truncated back-propagation): exact for
parameters that act after every processor with memory, and for the rest it
leaves out how the parameters shaped the states the excerpts start from.
``warmup_gradient=True`` follows that too, at the memory of the warm-up's
autograd graph: the gradient of the same windows cut from one whole render,
once the warm-up outlasts every processor's memory.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from ..errors import GrafxError
from ..excerpts import render_excerpt
from ..plan import RenderPlan
from ..spectral_loss import SpectralLoss
from ..state import require_streamable
from .excerpt import loudest_start
from .latent import is_black_box

__all__ = ["ExcerptObjective", "excerpt_starts", "warmed_excerpts"]


def excerpt_starts(target: torch.Tensor, length: int, count: int, hop: int) -> list[int]:
    """Where the excerpts of ``length`` samples of ``target`` ``[channels, samples]`` begin.

    One excerpt: where the target is loudest (its power over ``length``
    samples, searched every ``hop`` samples). Several: evenly spread, the
    ``k``-th centred at ``(k + 1/2) / count`` of the material.
    """
    total = target.shape[-1]
    if count == 1:
        return [loudest_start(target, length, hop)]
    return [min(max(0, int((k + 0.5) * total / count) - length // 2), total - length) for k in range(count)]


class ExcerptObjective:
    """``render`` and ``loss`` for :func:`~grafx_core.fitting.optimise` on excerpts with warm-up.

    ``render(parameters)`` renders every excerpt after its warm-up and joins
    them in time, ``[channels, count * length]``; ``loss(mix)`` is the mean
    :class:`~grafx_core.fitting.SpectralLoss` of each excerpt against the same
    window of the target.

    Args:
        plan: the console's compiled plan; every processor streams and none is a black box.
        sources: the stems ``[stems, channels, samples]`` (or the plan's ``[num_in, channels, samples]``).
        target: the mix to fit, ``[channels, samples]``.
        length: samples per excerpt (all of the material when longer).
        warmup: samples of material rendered before each excerpt (``None``: all of it).
        count: how many excerpts (see :func:`excerpt_starts`).
        hop: the search step of the loudest excerpt, in samples.
        block_size: samples per warm-up block.
        warmup_gradient: see the module's description.

    Raises:
        GrafxError: a processor cannot stream or is a black box (named), or
            ``length``, ``warmup`` or ``count`` is not positive.
    """

    def __init__(self, plan: RenderPlan, sources: torch.Tensor, target: torch.Tensor, length: int,
                 warmup: int | None, count: int = 1, hop: int = 4410, block_size: int = 4096,
                 warmup_gradient: bool = False) -> None:
        if length < 1 or count < 1 or (warmup is not None and warmup < 0):
            raise GrafxError(f"excerpts: length and count must be >= 1 and warmup >= 0, got {length}, {count}, "
                             f"{warmup}")
        for node_type, processor in plan.processors.items():
            if node_type not in plan.graph.node_types():
                continue
            require_streamable(processor, f"node type {node_type!r}")
            if is_black_box(processor):
                raise GrafxError(f"node type {node_type!r} is a black box, which gives no gradient block by block: "
                                 "fit a console with black boxes without --warmup (one-shot renders)")
        self.plan, self.sources, self.warmup = plan, sources, warmup
        self.length = min(length, target.shape[-1])
        self.block_size, self.warmup_gradient = block_size, warmup_gradient
        self.starts = excerpt_starts(target, self.length, count, hop)
        # The STFT sizes of the fit's loss that fit inside an excerpt.
        self.fft_sizes = tuple(n for n in (256, 1024, 4096) if n < self.length) or (max(2, self.length // 2),)
        self._losses = [SpectralLoss(target[..., s:s + self.length], self.fft_sizes) for s in self.starts]

    def render(self, parameters: Mapping[str, Any]) -> torch.Tensor:
        """Every excerpt of the first output, after its warm-up, joined in time: ``[channels, count * length]``."""
        pieces = [render_excerpt(self.plan, parameters, self.sources, start, self.length, warmup=self.warmup,
                                 block_size=self.block_size, warmup_gradient=self.warmup_gradient)[0]
                  for start in self.starts]
        return torch.cat(pieces, dim=-1)

    def loss(self, mix: torch.Tensor) -> torch.Tensor:
        """The mean spectral loss of the excerpts of ``mix`` (as :meth:`render` joins them), a scalar."""
        parts = mix.split(self.length, dim=-1)
        return sum((loss(part) for loss, part in zip(self._losses, parts)), mix.new_zeros(())) / len(parts)

    def __call__(self, mix: torch.Tensor) -> torch.Tensor:
        return self.loss(mix)


def warmed_excerpts(plan: RenderPlan, sources: torch.Tensor, target: torch.Tensor, sample_rate: int,
                    excerpt_seconds: float | None, warmup_seconds: float, count: int, warmup_gradient: bool,
                    out: Any) -> ExcerptObjective:
    """The :class:`ExcerptObjective` of a fit (``grafx-core fit --warmup``), its choice printed to ``out``.

    Raises:
        GrafxError: see :class:`ExcerptObjective`.
    """
    total = target.shape[-1]
    length = total if excerpt_seconds is None else int(round(excerpt_seconds * sample_rate))
    windows = ExcerptObjective(plan, sources, target, length, int(round(warmup_seconds * sample_rate)), count,
                               hop=max(int(0.1 * sample_rate), 1), warmup_gradient=warmup_gradient)
    where = ", ".join(f"{s / sample_rate:.1f} s" for s in windows.starts)
    print(f"  steps fit {len(windows.starts)} excerpt(s) of {windows.length / sample_rate:.1f} s (at {where}) of "
          f"{total / sample_rate:.1f} s, each after {warmup_seconds:g} s of warm-up with the processors' state "
          f"carried ({'gradient through the warm-up' if warmup_gradient else 'no gradient in the warm-up'}); "
          "the mix and metrics are of all of it", file=out)
    return windows
