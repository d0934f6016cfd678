"""Train a parameter predictor with torch DDP through a graph that holds a black box.

The graph is ``in -> 8-band FIR EQ (grafx-dsp, autograd) -> drive (a numpy
black box, finite differences) -> out``. Each training example is a short
synthetic signal ``x`` and its target ``y``, the same graph rendered with
hidden settings; a :class:`grafx_core.ParameterPredictor` sees ``x`` and ``y``
and predicts the nine settings, and the loss compares the graph rendered with
them to ``y`` (:func:`grafx_core.multi_resolution_stft_loss`).

Run on one machine with N processes (gloo on CPUs, nccl where GPUs exist)::

    torchrun --standalone --nproc_per_node 2 examples/ddp_predictor.py --steps 20

Every step draws one global batch (the same on every rank, from the seed and
the step); each rank renders and trains on its own slice, and DDP averages the
gradients, so N processes take the same steps as one process with the whole
batch. Each rank builds its own render plan and black box (its own thread
pool, or with ``--runner ray`` its own Ray connection: start a cluster with
``ray start --head`` and set ``RAY_ADDRESS=auto`` so that the ranks share it).
The last line says whether the gradients of all ranks agreed at every step and
gives the loss after the last step.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from grafx_core import (
    BlackBoxProcessor,
    Graph,
    ParameterPredictor,
    ParameterSpec,
    compile_render,
    get_processor,
    multi_resolution_stft_loss,
)

SAMPLE_RATE = 16000
BANDS = 8
EQ_RANGE_DB = 12.0  # hidden band gains are drawn across +-12 dB
FFT_SIZES = (256, 1024)
DRIVE = ParameterSpec("drive_db", 0.0, 24.0)


def drive(audio: np.ndarray, sample_rate: float, drive_db: float) -> np.ndarray:
    """tanh saturation, level-compensated: the black box of the graph."""
    g = np.float32(10 ** (drive_db / 20))
    return np.tanh(audio * g) / np.float32(math.sqrt(g))


def graph_and_processors(runner: str) -> tuple[Graph, dict[str, nn.Module]]:
    """The graph and its processors; every rank builds its own (its own pool or Ray connection)."""
    graph = Graph()
    nodes = [graph.add("in"), graph.add("eq"), graph.add("drive"), graph.add("out")]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a, b)
    box = BlackBoxProcessor(drive, [DRIVE], sample_rate=SAMPLE_RATE, estimator="finite-difference",
                            signal_gradient="straight-through", runner=runner, workers=1 if runner == "threads" else None)
    # A FIR EQ renders each example alone the same as in any batch (an IIR EQ sizes its FFT by the
    # slowest filter of the batch, so a rank's examples would render 1e-7 apart from one process's).
    eq = get_processor("dsp:fir_eq", n_bands=BANDS, taps=255, sample_rate=SAMPLE_RATE)
    return graph, {"eq": eq, "drive": box}


def predictor(graph: Graph, processors: dict[str, nn.Module]) -> ParameterPredictor:
    """A small predictor for the graph, seeing the input and the target (band gains in the EQ's declared range)."""
    return ParameterPredictor(graph, processors, inputs=2, sample_rate=SAMPLE_RATE, hidden=64,
                              n_fft=512, n_mels=32, width=32, layers=3, embedding=32)


def global_batch(seed: int, step: int, size: int, samples: int) -> tuple[torch.Tensor, dict]:
    """Signals ``[size, 1, samples]`` (tones in noise) and hidden settings, the same on every rank."""
    gen = torch.Generator().manual_seed(seed * 100003 + step)
    t = torch.arange(samples) / SAMPLE_RATE
    f0 = 80.0 * 2 ** (4 * torch.rand(size, 1, generator=gen))
    tones = sum(torch.sin(2 * math.pi * f0 * k * t) / k for k in range(1, 8))
    x = 0.3 * tones + 0.05 * torch.randn(size, samples, generator=gen)
    hidden = {"eq": {"gain_db": EQ_RANGE_DB * (2 * torch.rand(size, 1, BANDS, generator=gen) - 1)},
              "drive": {"drive_db": 2 * torch.randn(size, 1, 1, generator=gen)}}
    return x[:, None].float(), hidden


def _slice(tree: dict, part: slice) -> dict:
    return {k: _slice(v, part) if isinstance(v, dict) else v[part] for k, v in tree.items()}


def _to(tree: dict, device: torch.device, dtype: torch.dtype) -> dict:
    return {k: _to(v, device, dtype) if isinstance(v, dict) else v.to(device, dtype) for k, v in tree.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8, help="global batch, divided among the ranks")
    parser.add_argument("--samples", type=int, default=4096)
    parser.add_argument("--lr", type=float, default=3e-3, help="Adam's learning rate")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32",
                        help="float64 keeps N processes and one within 1e-15 of each other; in float32 they part "
                             "by ~1e-4 within a few steps (the black box's finite differences jump when a "
                             "parameter crosses a float32 rounding boundary)")
    parser.add_argument("--runner", choices=("threads", "ray"), default="threads")
    parser.add_argument("--save", help="write the trained predictor's state_dict here (rank 0)")
    args = parser.parse_args(argv)

    distributed = "WORLD_SIZE" in os.environ
    cuda = torch.cuda.is_available()
    if distributed:
        dist.init_process_group("nccl" if cuda else "gloo")
    rank, world = (dist.get_rank(), dist.get_world_size()) if distributed else (0, 1)
    local = int(os.environ.get("LOCAL_RANK", 0))
    device = torch.device(f"cuda:{local}") if cuda else torch.device("cpu")
    if args.batch % world:
        parser.error(f"--batch {args.batch} must be a multiple of the {world} processes")
    torch.set_num_threads(1)  # the ranks share the cores
    torch.manual_seed(args.seed)  # DDP broadcasts rank 0's weights anyway; this makes one process match

    graph, processors = graph_and_processors(args.runner)
    plan = compile_render(graph, processors)
    dtype = getattr(torch, args.dtype)
    model = predictor(graph, processors).to(device, dtype)
    trained = DistributedDataParallel(model, device_ids=[local] if cuda else None) if distributed else model
    optimiser = torch.optim.Adam(trained.parameters(), lr=args.lr)
    share = slice(rank * args.batch // world, (rank + 1) * args.batch // world)

    largest, loss = 0.0, torch.tensor(float("nan"))
    started = time.perf_counter()
    for step in range(args.steps):
        x, hidden = global_batch(args.seed, step, args.batch, args.samples)
        x, hidden = x[share].to(device, dtype), _to(_slice(hidden, share), device, dtype)
        with torch.no_grad():
            target = plan(hidden, x[:, None])[0][:, 0]
        y = plan(trained(x, target), x[:, None])[0][:, 0]
        loss = multi_resolution_stft_loss(y, target, FFT_SIZES)
        optimiser.zero_grad()
        loss.backward()
        largest = max(largest, _rank_disagreement(model, world))
        optimiser.step()
        loss = loss.detach()
        if distributed:
            dist.all_reduce(loss)
            loss /= world
        if rank == 0 and (step == 0 or (step + 1) % max(1, args.steps // 5) == 0):
            print(f"step {step + 1:4d}  loss {float(loss):.4f}", flush=True)
    per_step = (time.perf_counter() - started) / max(1, args.steps)
    if rank == 0 and args.save:
        torch.save(model.state_dict(), args.save)
    status = 0
    if rank == 0:
        agreed = largest == 0.0
        verdict = "agreed at every step" if agreed else f"DISAGREED (largest difference {largest:.3g})"
        print(f"gradients of all {world} rank(s) {verdict}; loss after {args.steps} steps: {float(loss):.4f} "
              f"({per_step:.3f} s per step)")
        status = 0 if agreed else 1
    if distributed:
        dist.destroy_process_group()
    return status


def _rank_disagreement(model: nn.Module, world: int) -> float:
    """The largest difference between any rank's gradients and rank 0's (0 on one process)."""
    if world == 1:
        return 0.0
    flat = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    copies = [torch.empty_like(flat) for _ in range(world)]
    dist.all_gather(copies, flat)
    return max(float((c - copies[0]).abs().max()) for c in copies)


if __name__ == "__main__":
    sys.exit(main())
