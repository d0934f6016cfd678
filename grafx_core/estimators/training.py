"""Train, save and load neural proxies."""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any, NamedTuple

import torch

from .._checked_file import load_checked, save_checked
from ..errors import EstimatorError
from ._progress import ProgressBar
from ._rules import cpu_rows
from .proxy_network import ProxyNetwork
from .target import RenderJob, RenderTarget
from .wrap import render_target

__all__ = ["train_proxy", "ProxyTraining", "save_proxy", "load_proxy", "random_signals", "proxy_loss"]

FORMAT = "grafx-core.proxy"


class ProxyTraining(NamedTuple):
    """What :func:`train_proxy` returns: the trained (frozen) proxy and its loss per step."""

    proxy: ProxyNetwork
    losses: list[float]


def random_signals(count: int, channels: int, length: int, generator: torch.Generator) -> torch.Tensor:
    """Varied test signals for proxy training, ``[count, channels, length]`` float32 in ``[-1, 1]``.

    Each item mixes white noise under a random exponential envelope with two
    sines of random frequency, at a random level between -26 and 0 dBFS, so
    the proxy sees quiet and loud, tonal and noisy input.
    """
    g = generator
    t = torch.arange(length, dtype=torch.float32) / length
    noise = torch.randn(count, channels, length, generator=g)
    decay = torch.exp(-t * torch.rand(count, 1, 1, generator=g) * 20.0)
    freq = 2.0 ** (torch.rand(count, 2, 1, generator=g) * 9.0) * 2.0  # cycles per item
    phase = torch.rand(count, 2, 1, generator=g) * 6.2832
    tones = torch.sin(6.2832 * freq * t + phase).sum(1, keepdim=True)
    x = 0.3 * noise * decay + 0.35 * tones
    level = 10.0 ** (-torch.rand(count, 1, 1, generator=g) * 26.0 / 20.0)
    return (x / x.abs().amax(dim=(1, 2), keepdim=True).clamp(min=1e-6)) * level


def proxy_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Time-domain L1 plus L1 of STFT log magnitudes (512-point frames), ``[N, C, L]`` each."""
    time = (prediction - target).abs().mean()
    flat_p = prediction.reshape(-1, prediction.shape[-1])
    flat_t = target.reshape(-1, target.shape[-1])
    n_fft = min(512, 2 ** int(torch.log2(torch.tensor(float(flat_t.shape[-1])))))
    window = torch.hann_window(n_fft, device=prediction.device, dtype=prediction.dtype)
    spec_p = torch.stft(flat_p, n_fft, n_fft // 4, window=window, return_complex=True).abs()
    spec_t = torch.stft(flat_t, n_fft, n_fft // 4, window=window, return_complex=True).abs()
    spectral = (torch.log(spec_p + 1e-5) - torch.log(spec_t + 1e-5)).abs().mean()
    return time + 0.1 * spectral


def train_proxy(
    processor: Any,
    proxy: ProxyNetwork | None = None,
    *,
    steps: int = 1000,
    batch_size: int = 8,
    length: int = 16384,
    channels: int | None = None,
    learning_rate: float = 1e-3,
    signals: torch.Tensor | None = None,
    parameter_sampler: Callable[[int, torch.Generator], torch.Tensor] | None = None,
    loss: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = proxy_loss,
    seed: int = 0,
    progress: bool = True,
    **network: Any,
) -> ProxyTraining:
    """Train a parameter-conditioned proxy of ``processor`` on random parameters and signals.

    Each step draws ``batch_size`` parameter rows (uniform in ``[0, 1]`` for a
    black box's normalised parameters, else from ``parameter_sampler``) and
    signal crops, renders the true effect, and takes one Adam step on
    ``loss(proxy(x, p), effect(x, p))``.

    Args:
        processor: a black-box processor, an estimated processor or a torch processor
            (one inlet, one outlet).
        proxy: the network to train; by default a new :class:`ProxyNetwork`
            (``network`` options are passed to it), initialised from ``seed``.
        steps: optimiser steps.
        batch_size: items per step.
        length: samples per item.
        channels: channels of the default random signals (default: the proxy's, else 2).
        learning_rate: Adam learning rate.
        signals: ``[items, channels, samples]`` audio to crop from (``samples >=
            length``); by default :func:`random_signals`.
        parameter_sampler: ``(count, generator) -> [count, columns]`` for targets
            with unbounded parameters.
        loss: ``loss(prediction, target)`` on ``[N, C, L]``.
        seed: seeds parameters, signals and the new network (not the global RNG).
        progress: draw a progress bar on stderr.

    Returns:
        ``ProxyTraining(proxy, losses)``; the proxy is frozen and in eval mode.

    Raises:
        EstimatorError: unbounded parameters without a sampler, or mismatched shapes.
    """
    target = render_target(processor)
    columns = len(target.columns)
    if signals is not None:
        if signals.dim() != 3 or signals.shape[-1] < length:
            raise EstimatorError(
                f"train_proxy: signals must be [items, channels, samples >= {length}], got {tuple(signals.shape)}"
            )
        channels = signals.shape[1]
    if channels is None:
        channels = proxy.config["channels"] if proxy is not None else 2
    if parameter_sampler is None and not target.bounded:
        raise EstimatorError(
            f"train_proxy: {target.name} has unbounded parameters {list(target.columns)}; "
            "pass parameter_sampler=(count, generator) -> [count, columns]"
        )
    gen = torch.Generator().manual_seed(seed)
    if proxy is None:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            proxy = ProxyNetwork(channels, columns, **network)
    elif network:
        raise EstimatorError(f"train_proxy: network options {sorted(network)} given with an existing proxy")
    if proxy.config["parameters"] != columns or proxy.config["channels"] != channels:
        raise EstimatorError(
            f"train_proxy: the proxy takes {proxy.config['channels']} channels and {proxy.config['parameters']} "
            f"parameters; {target.name} gets {channels} channels and has {columns} ({list(target.columns)})"
        )
    weight = next(proxy.parameters())
    proxy.requires_grad_(True)
    proxy.train()
    optimiser = torch.optim.Adam(proxy.parameters(), lr=learning_rate)
    bar = ProgressBar(steps, "train_proxy") if progress else None
    losses: list[float] = []
    try:
        for step in range(steps):
            x = _batch(signals, batch_size, channels, length, gen).to(weight.device, weight.dtype)
            # Rows stay float64 on the CPU for the render (where float64 may be missing, as on MPS).
            p = cpu_rows(parameter_sampler(batch_size, gen) if parameter_sampler is not None
                         else torch.rand(batch_size, columns, generator=gen, dtype=torch.float64))
            y = _render(target, x, p)
            value = loss(proxy(x, p.to(weight.device, weight.dtype)), y)
            optimiser.zero_grad()
            value.backward()
            optimiser.step()
            losses.append(float(value.detach()))
            if bar is not None:
                bar.update(step + 1, losses[-1])
    finally:
        if bar is not None:
            bar.close()
        proxy.requires_grad_(False)
        proxy.eval()
    return ProxyTraining(proxy, losses)


def _batch(signals: torch.Tensor | None, count: int, channels: int, length: int,
           gen: torch.Generator) -> torch.Tensor:
    if signals is None:
        return random_signals(count, channels, length, gen)
    items = torch.randint(signals.shape[0], (count,), generator=gen)
    starts = torch.randint(signals.shape[-1] - length + 1, (count,), generator=gen)
    return torch.stack([signals[i, :, s:s + length] for i, s in zip(items.tolist(), starts.tolist())])


def _render(target: RenderTarget, x: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
    return target.render([RenderJob((x,), p, None, torch.arange(x.shape[0]), "proxy training")])[0]


def save_proxy(proxy: ProxyNetwork, path: str | os.PathLike[str]) -> None:
    """Save ``proxy``'s configuration and weights to ``path``, with the size and SHA-256 that
    :func:`load_proxy` checks (written through a temporary file, so a crash never leaves half of one).

    Raises:
        EstimatorError: the file cannot be written.
    """
    save_checked({"format": FORMAT, "version": 1, "config": dict(proxy.config), "state_dict": proxy.state_dict()},
                 path, FORMAT, EstimatorError)


_CONFIG = ("channels", "parameters", "out_channels", "hidden", "layers", "kernel_size", "condition")


def _check_proxy(data: Any, name: str) -> None:
    """Refuse a proxy file whose configuration does not describe the weights it holds, before building it."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise EstimatorError(f"proxy file {name!r} is not a grafx-core proxy saved by save_proxy()")
    config, state = data.get("config"), data.get("state_dict")
    if not isinstance(config, dict) or sorted(config) != sorted(_CONFIG) or not all(
            type(config[k]) is int for k in _CONFIG):
        raise EstimatorError(f"proxy file {name!r}: its config must give the ints {list(_CONFIG)}, got {config!r}")
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise EstimatorError(f"proxy file {name!r}: its state_dict is not a mapping of names to tensors")
    c = config
    expected = {"input.weight": (c["hidden"], c["channels"], 1), "output.weight": (c["out_channels"], c["hidden"], 1),
                "film.0.weight": (c["condition"], max(c["parameters"], 1)),
                "film.2.weight": (2 * c["layers"] * c["hidden"], c["condition"]),
                f"convs.{c['layers'] - 1}.weight": (c["hidden"], c["hidden"], c["kernel_size"])}
    for key, shape in expected.items():
        found = tuple(state[key].shape) if key in state else None
        if found != shape:
            raise EstimatorError(f"proxy file {name!r}: its config {config} needs {key} of shape {list(shape)}, "
                                 f"the file holds {'none' if found is None else list(found)}")


def load_proxy(path: str | os.PathLike[str], map_location: str | torch.device = "cpu") -> ProxyNetwork:
    """Load a proxy saved by :func:`save_proxy`; it comes back frozen and in eval mode.

    Raises:
        EstimatorError: the file is missing, a folder, empty, truncated, corrupted (its SHA-256 differs),
            another kind of file, holds a pickle ``weights_only`` refuses, or its configuration and
            weights do not fit together; the message names the file and the fault.
    """
    name = os.fspath(path)
    data = load_checked(name, FORMAT, "proxy file", EstimatorError, map_location)
    _check_proxy(data, name)
    try:
        proxy = ProxyNetwork(**data["config"])
        proxy.load_state_dict(data["state_dict"])
    except (ValueError, RuntimeError) as exc:
        raise EstimatorError(f"proxy file {name!r}: its weights do not fit its configuration: {exc}") from exc
    proxy.requires_grad_(False)
    proxy.eval()
    return proxy
