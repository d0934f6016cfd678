"""Ardour's a-comp and a-eq: twins (grafx-dsp, autograd) against the real plug-ins (grafx-lv2).

1. Worst-case error of each twin against its plug-in over a grid of controls
   (residual energy relative to the plug-in's output, dB).
2. The same small console (two tracks: comp, EQ, Ardour fader; a master)
   fitted to a target the twins made, once with the twins and once with the
   real plug-ins as black boxes (finite-difference / SPSA gradients), equal
   steps: final loss relative to the initial one, and seconds per step.

Needs grafx-lv2 and Debian's ardour-lv2-plugins. ``--steps N`` and
``--seconds S`` make it longer; the default run takes a minute or two.
"""

from __future__ import annotations

import argparse
import itertools
import math
import sys
import time
import warnings

import torch
from grafx_core import Graph, compile_render, processors_for_graph
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.fitting import LatentParameters, SpectralLoss, fit

import grafx_dsp as dsp

SR = 44100
COMP = "lv2:urn_ardour_a_comp_stereo"
EQ = "lv2:urn_ardour_a_eq"


def _worst_db(a: torch.Tensor, b: torch.Tensor) -> float:
    return 10 * math.log10(float(((a - b).pow(2).mean(dim=(1, 2)) / b.pow(2).mean(dim=(1, 2))).max()))


def twin_errors(x: torch.Tensor) -> None:
    from grafx_lv2 import lv2_processor

    real = lv2_processor("urn:ardour:a-comp#stereo", sample_rate=SR, pre_roll=16384)
    grid = list(itertools.product([-30.0, -10.0], [1.5, 8.0], [0.0, 4.0], [0.1, 20.0], [5.0, 500.0], [0.0, 6.0]))
    names = ["threshold_db", "ratio", "knee_db", "attack_ms", "release_ms", "makeup_db"]
    ports = ["thr", "rat", "kn", "att", "rel", "mak"]
    values = {k: torch.tensor([g[i] for g in grid]).reshape(-1, 1) for i, k in enumerate(names)}
    xs = x.expand(len(grid), -1, -1).contiguous()
    t0 = time.perf_counter()
    y_real = real(xs, **real.raw_parameters(**{p: values[k] for k, p in zip(names, ports)},
                                            sidech=torch.zeros(len(grid), 1)))
    t1 = time.perf_counter()
    twin = dsp.AComp(SR)
    twin.limit = lambda name, value: value
    y_twin = twin(xs, **values)
    t2 = time.perf_counter()
    print(f"a-comp: worst error {_worst_db(y_twin, y_real):.1f} dB over {len(grid)} settings "
          f"(plug-in {t1 - t0:.2f} s, twin {t2 - t1:.2f} s)")
    real = lv2_processor("urn:ardour:a-eq", sample_rate=SR, pre_roll=16384)
    gen = torch.Generator().manual_seed(1)
    rows = 32

    def draw(low: float, high: float, k: int = 1, log: bool = False) -> torch.Tensor:
        u = torch.rand(rows, k, generator=gen)
        return torch.exp(math.log(low) + u * math.log(high / low)) if log else low + u * (high - low)

    tw = {"low_shelf_hz": draw(20, 2000, log=True), "low_shelf_db": draw(-20, 20), "peak_hz": draw(20, 20000, 4, True),
          "peak_db": draw(-20, 20, 4), "peak_bw": draw(0.1, 4, 4, True), "high_shelf_hz": draw(500, 20000, log=True),
          "high_shelf_db": draw(-20, 20), "master_db": draw(-20, 20)}
    nat = {"freql": tw["low_shelf_hz"], "gl": tw["low_shelf_db"], "freqh": tw["high_shelf_hz"],
           "gh": tw["high_shelf_db"], "master": tw["master_db"]}
    for band in range(4):
        for port, name in (("freq", "peak_hz"), ("g", "peak_db"), ("bw", "peak_bw")):
            nat[f"{port}{band + 1}"] = tw[name][:, band:band + 1]
    toggles = {s.name: torch.ones(rows, 1) for s in real.specs if s.name not in nat}
    xm = x[:, :1].expand(rows, -1, -1).contiguous()
    t0 = time.perf_counter()
    y_real = real(xm, **real.raw_parameters(**nat, **toggles))
    t1 = time.perf_counter()
    twin = dsp.AEq(SR)
    twin.limit = lambda name, value: value
    y_twin = twin(xm, **tw)
    t2 = time.perf_counter()
    print(f"a-eq: worst error {_worst_db(y_twin, y_real):.1f} dB over {rows} random settings "
          f"(plug-in {t1 - t0:.2f} s, twin {t2 - t1:.2f} s)")


def console(comp: str, eq: str) -> Graph:
    g = Graph()
    master = g.add("mix", "master")
    for name in ("kick", "bass"):
        node = g.add("in", name)
        for node_type, label in ((comp, "comp"), (eq, "eq"), ("dsp:ardour_fader", "fader")):
            nxt = g.add(node_type, f"{name}_{label}")
            g.connect(node, nxt)
            node = nxt
        g.connect(node, master)
    g.connect(master, g.add("out", "mix"))
    return g


COMP_START = {"threshold_db": -20.0, "ratio": 3.0, "knee_db": 3.0, "attack_ms": 10.0, "release_ms": 100.0}
PORTS = {"threshold_db": "thr", "ratio": "rat", "knee_db": "kn", "attack_ms": "att", "release_ms": "rel"}


def start_values(graph: Graph, processors: dict, black_box: bool) -> dict:
    from grafx_core import create_empty_parameters

    params = create_empty_parameters(graph, processors)
    comp = COMP if black_box else "dsp:a_comp"
    with torch.no_grad():
        if black_box:
            raw = processors[comp].raw_parameters(**{PORTS[k]: torch.full((2, 1), v) for k, v in COMP_START.items()})
            for k, v in raw.items():
                params[comp][k].copy_(v)
        else:
            for k, v in COMP_START.items():
                params[comp][k].fill_(v)
    return {t: {k: v.detach() for k, v in params[t].items()} for t in params.keys()}


def run_fit(black_box: bool, stems: torch.Tensor, target: torch.Tensor, steps: int) -> tuple[float, float]:
    graph = console(COMP, EQ) if black_box else console("dsp:a_comp", "dsp:a_eq")
    processors = processors_for_graph(graph, {t: {"sample_rate": SR} for t in graph.processor_types()})
    latent = LatentParameters(start_values(graph, processors, black_box), processors)
    plan = compile_render(graph, processors)
    result = fit(lambda values: plan(values, stems)[0][0], latent, SpectralLoss(target), steps)
    return result.final_loss / result.initial_loss, result.seconds_per_step


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=0.5)
    args = parser.parse_args()
    # The plug-ins' switches (sidechain, band toggles) have no gradient; the estimators say so once per run.
    warnings.filterwarnings("ignore", message=".*is not differentiable.*")
    try:
        import grafx_lv2  # noqa: F401
        processors_for_graph(console(COMP, EQ))
    except Exception as exc:  # grafx-lv2 or the plug-ins missing: nothing to compare with
        print(f"skipped: the real plug-ins cannot be hosted here ({type(exc).__name__}: {exc})")
        return 0
    torch.manual_seed(0)
    _, stems = synthesise_multitrack(2, args.seconds, SR)
    twin_errors(stems.sum(0, keepdim=True))
    hidden = console("dsp:a_comp", "dsp:a_eq")
    processors = processors_for_graph(hidden, {t: {"sample_rate": SR} for t in hidden.processor_types()})
    params = start_values(hidden, processors, False)
    params["dsp:a_comp"]["threshold_db"] = torch.tensor([[-30.0], [-24.0]])
    params["dsp:a_eq"]["peak_db"] = torch.tensor([[4.0, -3.0, 2.0, 5.0], [-6.0, 3.0, 0.0, 2.0]])
    params["dsp:ardour_fader"]["gain_db"] = torch.tensor([[-4.0], [-1.0]])
    params["dsp:ardour_fader"]["position"] = torch.tensor([[0.4], [0.6]])
    with torch.no_grad():
        target = compile_render(hidden, processors)(params, stems)[0][0]
    twin_loss, twin_time = run_fit(False, stems, target, args.steps)
    box_loss, box_time = run_fit(True, stems, target, args.steps)
    print(f"fit, {args.steps} steps, {args.seconds:g} s of 2 tracks at {SR} Hz (loaded machine: ratios only):")
    print(f"  twins:        loss x{twin_loss:.3f} of the initial, {twin_time:.2f} s/step")
    print(f"  black boxes:  loss x{box_loss:.3f} of the initial, {box_time:.2f} s/step "
          f"({box_time / twin_time:.1f}x the twins' time per step)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
