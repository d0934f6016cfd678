"""Where a mix is loudest: the excerpt a fit's steps and its start's analyses work on."""

from __future__ import annotations

import torch

__all__ = ["loudest_begin", "loudest_excerpt", "loudest_start"]


def loudest_excerpt(stems: torch.Tensor, target: torch.Tensor, sample_rate: int,
                    seconds: float) -> tuple[torch.Tensor, torch.Tensor]:
    """The ``seconds`` of ``stems`` ``[stems, channels, samples]`` and ``target`` ``[channels, samples]``
    where the target is loudest (by its power in 0.1 s blocks); all of them when shorter."""
    length = int(round(seconds * sample_rate))
    begin = loudest_begin(target, sample_rate, seconds)
    return stems[..., begin:begin + length], target[..., begin:begin + length]


def loudest_begin(target: torch.Tensor, sample_rate: int, seconds: float) -> int:
    """Where the loudest ``seconds`` of ``target`` ``[channels, samples]`` begin (by power in 0.1 s blocks),
    in samples; 0 when it is shorter."""
    return loudest_start(target, int(round(seconds * sample_rate)), max(int(0.1 * sample_rate), 1))


def loudest_start(target: torch.Tensor, length: int, hop: int) -> int:
    """Where the ``length`` samples of ``target`` ``[channels, samples]`` with the most power begin,
    searched every ``hop`` samples; 0 when it is no longer than ``length``."""
    if target.shape[-1] <= length:
        return 0
    power = torch.nn.functional.avg_pool1d(target.detach().pow(2).sum(0)[None, None].to(torch.float64),
                                           length, hop)[0, 0]
    return int(power.argmax()) * hop
