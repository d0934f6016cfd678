"""Console fits: time per step and final loss relative to the initial, by stem count and by effect kind.

Run: ``python bench/fit.py`` (about a minute or two on 2 cores) or ``--full``
(longer stems, more steps, 32 stems too). Each fit is what ``grafx-core fit``
runs: synthesised stems, a target rendered from hidden parameters drawn from
the demo's musical ranges, and Adam from each processor's defaults. Part 1
scales the analytic console (grafx-dsp, autograd) over 4, 8 and 16 stems;
part 2 fits the same 4-stem console with pedalboard's compressors and reverb
(black boxes, estimated gradients) against their analytic twins
(dsp:compressor, dsp:reverb), each on a target it can reproduce exactly.
Part 3 fits real recordings nobody on the project made (sonic-pi-samples loops,
an alsa-utils voice) to a mix sox made of them (gain, equaliser, compand, pan,
a send reverb), a mix the console can only approximate: mix SNR and
multi-resolution STFT distance of least-squares gains and pans on the raw
stems, and of ``grafx-core fit``'s way (target aligned, solved start, steps
on the loudest 4 s) with the analytic console, with it extended by ``--highpass
--eq-bands 3 --pre-delay --compressor-after-eq``, and with the sox console (EQ,
sox's compand twin, faders, sends to an impulse response solved by least
squares), each within one wall-clock budget from start to final figure: the
solved start (each track strip solved on the waveform by Levenberg-Marquardt),
steps for what the budget leaves after reserving the start's own time for the
polish, then the polish (send response and strips solved again); the seconds
column is the wall time to the final figure. ``--real`` runs it on 6 stems x 8 s with
2 minutes per fit (the issue's case); without it 3 stems x 3 s, 20 s each.
``--lv2`` runs part 3 on a target mixed through real LV2 plug-ins instead of
sox (per stem ZamEQ2's bell and ZamCompX2, a fader and pan, summed and
normalised to -1 dBFS): a mix neither console holds a twin of.
One torch thread, as the fit command uses by default.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from dataclasses import replace

import numpy as np

import torch

from grafx_core import compile_render
from grafx_core.registry import processors_for_graph
from grafx_core.demo.draws import draw_parameters
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.demo.realmix import SOX_MIX, missing_real_material, real_stems, sox_mix
from grafx_core.fitting import (CONSOLES, ConsoleEffects, LatentParameters, SpectralLoss, build_console, fit,
                                read_multitrack)
from grafx_core.fitting.align import align_target
from grafx_core.fitting.initial import initialise, least_squares_weights, loudest_excerpt, polish_returns
from grafx_core.fitting.metrics import snr_db

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


def _real_material(folder: str, stems: int, seconds: float):
    names = ("drums", "perc", "bass", "guitar", "choir", "voice")[:stems]
    paths = real_stems(folder, names, seconds)
    sox_mix(paths, f"{folder}/mix.wav")
    return read_multitrack(paths, f"{folder}/mix.wav")


def _least_squares_mix(stems: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    weights = np.stack([least_squares_weights(stems[:, c], target[c]) for c in range(2)], axis=1)
    return (stems * torch.from_numpy(weights).to(stems.dtype)[:, :, None]).sum(dim=0)


_EXTENDED = replace(CONSOLES["analytic"], highpass="dsp:highpass", bells=2, pre_delay="dsp:delay",
                    compressor_after_eq=True)
"""``fit --highpass --eq-bands 3 --pre-delay --compressor-after-eq``."""

_LEAST_STEP_SECONDS = 5.0  # below this, no steps: a step costs a few seconds under load


def run_real_fit(multitrack, budget: float, console_name: str | ConsoleEffects) -> tuple[torch.Tensor, int, float]:
    """One fit of the real material as ``grafx-core fit --console NAME`` runs it, within ``budget`` seconds
    from start to final figure: target aligned, solved start (strips solved on the waveform included),
    steps on the loudest 4 s for what the budget leaves, then the polish (the send effect solved again
    where the console has a solvable one, the strips again); returns ``(full mix, steps, seconds)``."""
    began = time.perf_counter()
    rate, stems, target = multitrack.sample_rate, multitrack.stems, multitrack.target
    console = build_console(multitrack.names, console_name)
    processors = processors_for_graph(console.graph, console.options, sample_rate=rate)
    plan = compile_render(console.graph, processors)
    render = lambda p, s: plan(p, s)[0][0]  # noqa: E731
    target = align_target(stems, target, rate)[0]
    start = initialise(console.graph, multitrack.names, processors, console.start_parameters(processors), stems,
                       target, rate, render, fixed=console.fixed).parameters
    fit_stems, fit_target = loudest_excerpt(stems, target, rate, 4.0)
    latent = LatentParameters(start, processors)
    latent.freeze(console.fixed)
    # The polish after the steps costs about what the start did: the steps get what is left after both.
    started = time.perf_counter() - began
    left = budget - 2 * started
    steps = 0
    if left > _LEAST_STEP_SECONDS:
        steps = fit(lambda p: plan(p, fit_stems)[0][0], latent, SpectralLoss(fit_target), 100_000, seconds=left).steps
    fitted = latent.values()
    polished = polish_returns(console.graph, multitrack.names, processors, fitted, stems, target, render, rate,
                              console.fixed)
    with torch.no_grad():
        mix = render(fitted if polished is None else polished.parameters, stems)
    return mix, steps, time.perf_counter() - began


def _lv2_mix(multitrack) -> torch.Tensor:
    """The stems mixed through LV2 plug-ins with :data:`SOX_MIX`'s settings, ``[2, samples]`` at -1 dBFS peak."""
    from grafx_core import Graph
    from grafx_core.fitting.console import Console

    graph, node_start = Graph(), {}
    master = graph.add("mix", "master")
    for name in multitrack.names:
        mix = SOX_MIX[name]
        chain = [graph.add("in", name), graph.add(_LV2_EQ, f"{name}_eq"), graph.add(_LV2_COMPRESSOR, f"{name}_comp"),
                 graph.add("dsp:stereo_gain", f"{name}_fader")]
        for a, b in zip(chain, chain[1:]):
            graph.connect(a, b)
        graph.connect(chain[-1], master)
        node_start[f"{name}_eq"] = {"f1": mix.eq_hz, "boost1": mix.eq_db, "bw1": 1.0 / mix.eq_q}
        node_start[f"{name}_comp"] = {"thr": mix.threshold_db, "rat": mix.ratio, "att": 5.0, "rel": 100.0, "kn": 6.0}
        node_start[f"{name}_fader"] = {"gain_db": mix.gain_db, "pan": mix.pan}
    graph.connect(master, graph.add("out", "mix"))
    console = Console(graph, {}, node_start=node_start)
    processors = processors_for_graph(graph, {}, sample_rate=multitrack.sample_rate)
    with torch.no_grad():
        mix = compile_render(graph, processors)(console.start_parameters(processors), multitrack.stems)[0][0]
    return mix * (10 ** (-1 / 20) / mix.abs().max())


_LV2_EQ = "lv2:urn_zamaudio_zam_eq2"
_LV2_COMPRESSOR = "lv2:urn_zamaudio_zam_comp_x2"


def real_part(stems: int, seconds: float, budget: float, lv2: bool = False) -> None:
    missing = missing_real_material()
    if missing:
        print(f"\nreal recordings: skipped ({missing})")
        return
    with tempfile.TemporaryDirectory(prefix="grafx-bench-real-") as folder:
        multitrack = _real_material(folder, stems, seconds)
    if lv2:
        multitrack.target = _lv2_mix(multitrack)
    target = multitrack.target
    distance = SpectralLoss(target)
    load = os.getloadavg()[0]
    print(f"\nreal recordings mixed by {'LV2 plug-ins' if lv2 else 'sox'}: {stems} stems x {seconds:g} s, "
          f"{budget:g} s per fit "
          f"(load average {load:.1f} on {os.cpu_count()} cores)")
    print(f"{'how':>50}  {'SNR dB':>7}  {'MR-STFT':>7}  {'steps':>5}  {'seconds':>7}")
    began = time.perf_counter()
    rows = {"least-squares gains and pans": (_least_squares_mix(multitrack.stems, target), 0,
                                             time.perf_counter() - began)}
    rows["fit, analytic console"] = run_real_fit(multitrack, budget, "analytic")
    rows["analytic + high-pass, 3 bands, pre-delay, EQ first"] = run_real_fit(multitrack, budget, _EXTENDED)
    rows["fit, sox console"] = run_real_fit(multitrack, budget, "sox")
    for how, (mix, steps, spent) in rows.items():
        print(f"{how:>50}  {snr_db(mix, target):7.1f}  {float(distance(mix)):7.3f}  {steps:5d}  {spent:7.1f}",
              flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--full", action="store_true", help="4 s stems, 100 steps, up to 32 stems")
    parser.add_argument("--real", action="store_true", help="only part 3, on 6 stems x 8 s, 2 minutes per fit")
    parser.add_argument("--lv2", action="store_true", help="part 3 with a target mixed through LV2 plug-ins")
    args = parser.parse_args()
    if args.real or args.lv2:
        torch.set_num_threads(1)
        real_part(6, 8.0, 120.0, lv2=args.lv2)
        return
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
    print(f"pedalboard/analytic time per step: x{timings['pedalboard'][0] / timings['analytic'][0]:.2f}")
    real_part(3, 3.0, 20.0)
    print(f"{time.perf_counter() - began:.0f} s in all")


if __name__ == "__main__":
    main()
