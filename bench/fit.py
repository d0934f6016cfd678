"""Console fits: time per step and final loss relative to the initial, by stem count and by effect kind.

Run: ``python bench/fit.py`` (about a minute or two on 2 cores) or ``--full``
(longer stems, more steps, 32 stems too). Each fit is what ``grafx-core fit``
runs: synthesised stems, a target rendered from hidden parameters drawn from
the demo's musical ranges, and Adam from each processor's defaults. Part 1
scales the analytic console (grafx-dsp, autograd) over 4, 8 and 16 stems;
part 2 fits the same 4-stem console with pedalboard's compressors and reverb
(black boxes, estimated gradients) against their analytic twins
(dsp:compressor, dsp:reverb), each on a target it can reproduce exactly.
One torch thread, as the fit command uses by default.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace

import torch

from grafx_core import compile_render
from grafx_core.registry import processors_for_graph
from grafx_core.demo.draws import draw_parameters
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.fitting import CONSOLES, LatentParameters, SpectralLoss, build_console, fit

RATE = 44100


def run_fit(stems: int, seconds: float, steps: int, console_name: str, seed: int = 0) -> tuple[float, float]:
    """One fit; returns ``(seconds per step, final loss / initial loss)``."""
    names, audio = synthesise_multitrack(stems, seconds, RATE, seed)
    effects = CONSOLES[console_name]
    if console_name == "pedalboard":  # compressors on every track, as the analytic console has them
        effects = replace(effects, compressed=None)
    console = build_console(names, effects)
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    plan = compile_render(console.graph, processors)
    hidden = draw_parameters(console.graph, processors, torch.Generator().manual_seed(seed + 1))
    with torch.no_grad():
        target = plan(hidden, audio)[0][0]
    latent = LatentParameters(console.start_parameters(processors), processors)
    result = fit(lambda p: plan(p, audio)[0][0], latent, SpectralLoss(target), steps)
    return result.seconds_per_step, result.final_loss / result.initial_loss


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="4 s stems, 100 steps, up to 32 stems")
    args = parser.parse_args()
    torch.set_num_threads(1)
    seconds, steps, counts = (4.0, 100, (4, 8, 16, 32)) if args.full else (1.0, 30, (4, 8, 16))
    began = time.perf_counter()
    print(f"analytic console, {seconds:g} s stems, {steps} steps")
    print(f"{'stems':>5}  {'s/step':>7}  {'ratio to 4':>10}  {'final/initial loss':>18}")
    timings = {}
    for count in counts:
        timings[count] = per_step, ratio = run_fit(count, seconds, steps, "analytic")
        print(f"{count:>5}  {per_step:7.3f}  {per_step / timings[counts[0]][0]:10.2f}  {ratio:18.3f}", flush=True)
    print(f"\n4 stems, {seconds:g} s, {steps} steps: black-box effects against their analytic twins")
    print(f"{'console':>10}  {'s/step':>7}  {'final/initial loss':>18}")
    timings = {"analytic": timings[4], "pedalboard": run_fit(4, seconds, steps, "pedalboard")}
    for name in ("analytic", "pedalboard"):
        print(f"{name:>10}  {timings[name][0]:7.3f}  {timings[name][1]:18.3f}", flush=True)
    print(f"pedalboard/analytic time per step: x{timings['pedalboard'][0] / timings['analytic'][0]:.2f}; "
          f"{time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
