"""Automation curves: their cost, a constant curve against the static render, and a hidden ride recovered.

1. Forward+backward of an analytic console (grafx-dsp: compressors, EQs,
   faders with pan, a send level per track, reverb, buses, master) with every
   fader (gain and pan) and send automated at one control frame per 512
   samples, against the same console with constants; interleaved best-of.
2. The same console with every moving control of every processor (faders,
   sends, compressor thresholds and makeups, EQ gains, cutoffs and Qs, bus
   width) given as a constant curve, against the plain values: the largest
   difference relative to the mix's peak.
3. A fader ride hidden in a target (a 6 dB swell on one stem, a 6 dB duck on
   another), fitted by the fit that ``grafx-core fit --automate fader`` runs,
   starting from the hidden console with every fader flat at 0 dB (the other
   controls are fitted too, from their hidden values): the correlation of
   the fitted and hidden curves in dB, and the fitted mix's SNR.

4. Automated black-box controls (a pedalboard reverb's wet level, a pedalboard
   compressor's threshold, an LSP LV2 compressor's threshold), one frame per
   block the effect sees (512 samples, 1024 for LV2), the squared error to
   the render of another ride as the loss: the knot estimate's
   gradient (central differences along 8 hat functions: 16 renders per
   control) against central differences per frame (2 renders per frame),
   compared along the knots (what the estimate claims) and per frame (what
   it cannot see).

Run with no arguments for a short run (4 tracks, 2 s); --tracks, --seconds,
--steps for larger ones. Timings on a loaded machine are noisy: read ratios.
"""

from __future__ import annotations

import argparse
import io
import sys
import tempfile
from dataclasses import replace

import torch

sys.path.insert(0, __import__("os").path.dirname(__file__))
from _timing import best  # noqa: E402

from grafx_core import compile_render, curve_frames, curve_to_samples, describe  # noqa: E402
from grafx_core import processors_for_graph  # noqa: E402
from grafx_core.demo.draws import draw_parameters  # noqa: E402
from grafx_core.demo.multitrack import synthesise_multitrack  # noqa: E402
from grafx_core.demo.ride import hide_fader_ride, ride_stems  # noqa: E402
from grafx_core.fitting.automation import Automation, select_controls, to_curves  # noqa: E402
from grafx_core.fitting.console import CONSOLES, build_console  # noqa: E402
from grafx_core.fitting.session import FitJob, fit_console  # noqa: E402

RATE = 44100


def console(tracks: int, seconds: float):
    names, audio = synthesise_multitrack(tracks, seconds, RATE, seed=0)
    effects = replace(CONSOLES["analytic"], send="dsp:gain")
    built = build_console(names, effects)
    processors = processors_for_graph(built.graph, built.options, sample_rate=RATE)
    hidden = draw_parameters(built.graph, processors, torch.Generator().manual_seed(1))
    hidden = {t: {k: v.detach() for k, v in hidden[t].items()} for t in hidden.keys()}
    hidden["dsp:gain"] = {"gain_db": torch.full_like(hidden["dsp:gain"]["gain_db"], -12.0)}  # send levels
    return names, audio, built, processors, hidden


def every_moving_control(processors):
    return [(t, path) for t, p in processors.items() for path in describe(p).time_varying()]


def cost(built, processors, hidden, audio, repeats: int) -> None:
    samples = audio.shape[-1]
    moving = select_controls(built.graph, processors, ["fader", "pan", "sends"])
    curves = to_curves(hidden, processors, moving, samples, 512)
    generator = torch.Generator().manual_seed(2)
    for node_type, path in moving:  # rides, not constants: the curve path whatever the values
        value = curves[node_type][path[0]]
        curves[node_type][path[0]] = value + 0.1 * torch.randn(value.shape, generator=generator)
    plan = compile_render(built.graph, processors, control_hop=512)

    def step(params):
        leaves = {t: {k: v.clone().requires_grad_() for k, v in p.items()} for t, p in params.items()}
        def run():
            y, _ = plan(leaves, audio)
            y.square().mean().backward()
        return run

    times = best({"constants": step(hidden), "automated": step(curves)}, repeats)
    frames = curve_frames(samples, 512)
    print(f"1. forward+backward, {len(built.graph.nodes_of_type('in'))} tracks x {samples / RATE:g} s: constants "
          f"{times['constants'] * 1e3:.0f} ms, every fader (gain, pan) and send automated ({frames} frames, hop 512) "
          f"{times['automated'] * 1e3:.0f} ms: {times['automated'] / times['constants']:.2f}x (aim <= 1.3x)")


def constant_curves(built, processors, hidden, audio) -> None:
    moving = every_moving_control(processors)
    curves = to_curves(hidden, processors, moving, audio.shape[-1], 512)
    plan = compile_render(built.graph, processors, control_hop=512)
    with torch.no_grad():
        plain, _ = plan(hidden, audio)
        curved, _ = plan(curves, audio)
    error = float((plain - curved).abs().max()) / float(plain.abs().max())
    print(f"2. every moving control ({len(moving)} controls of {len({t for t, _ in moving})} processor types, EQs "
          f"included) as a constant curve vs plain values: max difference {error:.2e} of the mix's peak "
          f"(aim <= 1e-6, float32)")


def ride(names, built, processors, hidden, audio, steps: int) -> None:
    samples = audio.shape[-1]
    automation = Automation(select_controls(built.graph, processors, ["fader"]), hop=4096)
    target_params = hide_fader_ride(built.graph, hidden, names, samples, automation.hop)
    with torch.no_grad():
        target = compile_render(built.graph, processors, control_hop=automation.hop)(target_params, audio)[0][0]
    start = {t: dict(p) for t, p in hidden.items()}
    start["dsp:stereo_gain"]["gain_db"] = torch.zeros_like(hidden["dsp:stereo_gain"]["gain_db"])  # flat at 0 dB
    with tempfile.TemporaryDirectory() as folder:
        job = FitJob(names, audio, target, RATE, built.graph, processors, built.options, folder, start=start,
                     hidden=target_params, force=True, steps=steps, learning_rate=0.05, title="ride",
                     automation=automation)
        outcome = fit_console(job, io.StringIO(), io.StringIO())
    swell, duck = ride_stems(names)
    records = {r["node"]: r for r in outcome.report["automation"]}
    found = {f"{names[k]} ({what})": records[f"{names[k]}_fader"]["correlation"][0]
             for k, what in ((swell, "swell"), (duck, "duck"))}
    snr = outcome.report["metrics"]["fitted"]["snr_db"]
    print(f"3. hidden ride recovered by fit --automate fader ({steps} steps, hop {automation.hop}, from the hidden "
          f"console with every fader flat at 0 dB): correlation in dB "
          + ", ".join(f"{k} {v:.3f}" for k, v in found.items())
          + f" (aim >= 0.95); fitted mix SNR {snr:.1f} dB (aim >= 25 dB)")


def black_box(audio) -> None:
    from grafx_core.blackbox.moving import hat_functions
    from grafx_pedalboard.processor import pedalboard_processor

    samples = audio.shape[-1]
    x = audio[:1]
    cases = [("pedalboard:reverb", lambda: pedalboard_processor("reverb", sample_rate=RATE), "wet_level", 0.1, 0.5),
             ("pedalboard:compressor", lambda: pedalboard_processor("compressor", sample_rate=RATE), "threshold_db",
              -30.0, -10.0)]
    try:
        from grafx_lv2 import lv2_processor
        lv2_processor("lsp_compressor_stereo", include=["al"], workers=1)
        cases.append(("lv2:lsp_compressor_stereo", lambda: lv2_processor("lsp_compressor_stereo", include=["al"],
                                                                          workers=1), "al", 0.03, 0.3))
    except Exception as exc:  # liblilv or the plug-in missing: say so, measure the rest
        print(f"4. (LV2 compressor skipped: {exc})")
    for effect, make, control, low, high in cases:
        bb = make()
        hop = bb.control_block  # one frame per block the effect sees
        spec = bb.specs[[s.name for s in bb.specs].index(control)]
        base = {k: torch.full((1, 1), float(v)) for k, v in bb.default_parameters().items()}
        frames = curve_frames(samples, hop)
        ride = low + (high - low) * 0.5 * (1 - torch.cos(torch.linspace(0, 3.0, frames, dtype=torch.float64)))
        curve = spec.to_raw(ride).float().reshape(1, 1, frames)

        def output(curve_frames_: torch.Tensor) -> torch.Tensor:
            return bb(x, **dict(base, **{control: curve_to_samples(curve_frames_, samples, hop)}))

        hidden = spec.to_raw(low + (high - low) * torch.linspace(0.0, 1.0, frames, dtype=torch.float64))
        with torch.no_grad():
            target = output(hidden.float().reshape(1, 1, frames))

        def loss(curve_frames_: torch.Tensor) -> torch.Tensor:  # a fit's: squared error to another ride's render
            return (output(curve_frames_) - target).square().sum()

        leaf = curve.clone().requires_grad_()
        loss(leaf).backward()
        estimate = leaf.grad[0, 0].double()
        reference = torch.zeros(frames, dtype=torch.float64)
        step = 4e-3
        with torch.no_grad():
            for j in range(frames):
                plus, minus = curve.clone(), curve.clone()
                plus[..., j] += step
                minus[..., j] -= step
                reference[j] = (loss(plus) - loss(minus)).double() / (2 * step)
        blocks = -(-samples // bb.control_block)
        hats = hat_functions(blocks, bb.knots)

        def along(g: torch.Tensor) -> torch.Tensor:
            return hats @ g[:blocks]

        def cos(a: torch.Tensor, b: torch.Tensor) -> float:
            return float((a * b).sum() / (a.norm() * b.norm()))

        print(f"4. {effect} {control} automated ({frames} frames, hop {hop}): gradient cosine along the "
              f"{bb.knots} knots {cos(along(estimate), along(reference)):.3f} (aim >= 0.9), per frame "
              f"{cos(estimate, reference):.3f}; cost {2 * bb.knots} renders per control (reference: "
              f"{2 * frames})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    torch.set_num_threads(1)
    names, audio, built, processors, hidden = console(args.tracks, args.seconds)
    print(f"analytic console, {len(built.graph)} nodes; machine load makes absolute times noisy")
    cost(built, processors, hidden, audio, args.repeats)
    constant_curves(built, processors, hidden, audio)
    ride(names, built, processors, hidden, audio, args.steps)
    black_box(audio)


if __name__ == "__main__":
    main()
