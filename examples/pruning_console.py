"""Prune an over-complete mixing console down to the processors a target mix needs.

Every track goes through every processor type (EQ, drive, compressor, fader),
each node gated (``grafx_core.Gated``). The target mix comes from a sparse
console: the same graph with most gates shut and hidden parameters. Gates and
parameters are fitted together with an L1 penalty on the gates, then
``grafx_core.prune`` removes the nodes whose gate fell below 0.5 and the
pruned console is rendered with the plain processors.

Training runs in two phases: soft gates (``sigmoid(logit)``) explore, then
straight-through gates render with the 0/1 gates that pruning will keep while
still training the logits. Soft gates left at, say, 0.7 blend a node with its
bypass in a way no pruned graph can reproduce; after the second phase the
pruned console renders exactly what was trained.

Run: python examples/pruning_console.py [--tracks 4] [--steps 300]
"""

from __future__ import annotations

import argparse
import time

import torch

from grafx_core import (
    GATE_PARAMETER,
    Graph,
    compile_render,
    create_empty_parameters,
    gate_processors,
    get_processor,
    prune,
)

CHAIN = ("dsp:peak", "dsp:distortion", "dsp:compressor", "dsp:gain")


def console(tracks: int) -> Graph:
    """Every track through every processor type, then one bus to the output."""
    graph = Graph()
    bus = graph.add("mix", "bus")
    for t in range(tracks):
        node = graph.add("in", f"track{t}")
        for node_type in CHAIN:
            nxt = graph.add(node_type, f"{node_type.split(':')[1]}{t}")
            graph.connect(node, nxt)
            node = nxt
        graph.connect(node, bus)
    graph.connect(bus, graph.add("out", "master"))
    return graph


def spectral_loss(y: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Waveform MSE plus L1 between log-magnitude STFTs (2,048-point Hann frames)."""
    window = torch.hann_window(2048, device=y.device, dtype=y.dtype)

    def log_mag(x):
        spec = torch.stft(x.reshape(-1, x.shape[-1]), 2048, 512, window=window, return_complex=True)
        return torch.log(spec.abs() + 1e-5)

    return (y - target).pow(2).mean() * 100 + (log_mag(y) - log_mag(target)).abs().mean()


def hidden_console(graph: Graph, processors: dict, generator: torch.Generator):
    """Hidden parameters: about a third of the nodes on, the rest bypassed."""
    params = create_empty_parameters(graph, processors)
    with torch.no_grad():
        for node_type, tree in params.items():
            count = len(graph.nodes_of_type(node_type))
            on = torch.rand(count, 1, generator=generator) < 0.35
            tree[GATE_PARAMETER].copy_(torch.where(on, 8.0, -8.0))
            for name, value in tree.items():
                if name != GATE_PARAMETER:
                    value.add_(torch.randn(value.shape, generator=generator) * _spread(name))
    return params


def _spread(name: str) -> float:
    """Random offsets around the defaults, in each parameter's own units."""
    return {"gain_db": 4.0, "drive_db": 6.0, "threshold_db": 8.0, "cutoff_hz": 600.0}.get(name, 0.0)


def run(tracks: int = 4, steps: int = 300, seconds: float = 1.0, sparsity: float = 0.05,
        seed: int = 0, log_every: int = 50) -> dict:
    """Fit gates and parameters, prune, and report.

    Returns:
        ``nodes_before``/``nodes_after`` (processor nodes), ``active_in_target``,
        ``loss_start``, ``loss_soft`` (end of the soft phase), ``loss_gated``
        (after fitting, straight-through gates), ``loss_pruned`` (the pruned
        console with plain processors) and ``seconds_per_step``.
    """
    generator = torch.Generator().manual_seed(seed)
    plain = {t: get_processor(t) for t in CHAIN}
    graph = console(tracks)
    sources = torch.randn(tracks, 2, int(seconds * 44100), generator=generator) * 0.2
    hard = gate_processors(plain, mode="hard")
    hidden = hidden_console(graph, hard, generator)
    with torch.no_grad():
        target, _ = compile_render(graph, hard)(hidden, sources)

    soft = gate_processors(plain, sparsity=sparsity)
    plans = [compile_render(graph, soft),
             compile_render(graph, gate_processors(plain, mode="straight-through", sparsity=sparsity))]
    params = create_empty_parameters(graph, soft)
    logits = [tree[GATE_PARAMETER] for tree in params.values()]
    others = [p for name, p in params.named_parameters() if not name.endswith(GATE_PARAMETER)]
    optimiser = torch.optim.Adam([{"params": others, "lr": 0.05}, {"params": logits, "lr": 0.1}])
    start = time.perf_counter()
    losses = []
    for step in range(steps):
        plan = plans[0] if step < steps // 2 else plans[1]
        if step == steps // 2:
            losses_soft = losses[-1] if losses else float("nan")
            # With 0/1 gates a logit near 0 would flip its node on and off from
            # step to step; slow logits flip only when pushed consistently.
            optimiser.param_groups[1]["lr"] = 0.005
        optimiser.zero_grad()
        y, aux = plan(params, sources)
        loss = spectral_loss(y, target)
        (loss + sum(a["gate_sparsity"] for a in aux.values())).backward()
        optimiser.step()
        losses.append(loss.item())
        if log_every and (step % log_every == 0 or step == steps - 1):
            print(f"step {step:4d}  loss {loss.item():.4f}", flush=True)
    elapsed = (time.perf_counter() - start) / max(steps, 1)

    pruned, pruned_params, _ = prune(graph, params, threshold=0.5)
    with torch.no_grad():
        gated_loss = spectral_loss(plan(params, sources)[0], target).item()
        pruned_loss = spectral_loss(compile_render(pruned, plain)(pruned_params, sources)[0], target).item()
    count = lambda g: sum(1 for n in g.nodes if n.type in plain)  # noqa: E731
    active = int(sum((tree[GATE_PARAMETER] > 0).sum().item() for tree in hidden.values()))
    return {
        "nodes_before": count(graph),
        "nodes_after": count(pruned),
        "active_in_target": active,
        "loss_start": losses[0],
        "loss_soft": losses_soft,
        "loss_gated": gated_loss,
        "loss_pruned": pruned_loss,
        "seconds_per_step": elapsed,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=4)
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=1.0)
    parser.add_argument("--sparsity", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    report = run(args.tracks, args.steps, args.seconds, args.sparsity, args.seed)
    print(f"processor nodes: {report['nodes_before']} -> {report['nodes_after']} after pruning "
          f"(the target used {report['active_in_target']})")
    print(f"loss: {report['loss_start']:.4f} at the start, {report['loss_soft']:.4f} after the soft phase, "
          f"{report['loss_gated']:.4f} fitted with 0/1 gates, {report['loss_pruned']:.4f} pruned "
          f"({report['seconds_per_step'] * 1e3:.0f} ms per step)")


if __name__ == "__main__":
    main()
