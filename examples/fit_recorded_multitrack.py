"""Reverse-engineer a mix of recorded instruments with ``grafx-core fit``.

Renders a multitrack nobody here synthesised (Hydrogen drum samples, and a
MIDI arrangement played by the FluidR3 General MIDI sound font through
fluidsynth: Debian ``hydrogen-drumkits``, ``fluid-soundfont-gm`` and
``fluidsynth``), mixes it with the analytic console at hidden settings, then
runs ``grafx-core fit`` on the stems and that mix, as a user would with
their own files, optionally pruning the console down to what the mix needs.
With ``--sparse`` the hidden mix leaves every other track's compressor and
EQ neutral (no gain reduction, 0 dB bands), so that pruning has nodes to find.

Run: python examples/fit_recorded_multitrack.py [--tracks 7] [--seconds 4] [--steps 150] [--prune [--sparse]]
     [--output DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile

import torch

from grafx_core import render, save_parameters
from grafx_core.cli import main as grafx_core
from grafx_core.registry import processors_for_graph
from grafx_core.demo.draws import draw_parameters
from grafx_core.demo.recorded import recorded_multitrack
from grafx_core.fitting import build_console
from grafx_core.wavfile import write_wav

RATE = 44100


def _neutralise(console, hidden, names: list[str]) -> None:
    """Every other track's compressor and EQ do nothing in the hidden mix."""
    graph = console.graph
    with torch.no_grad():
        for name in names[1::2]:
            for node_type, suffix in (("dsp:compressor", "_compressor"), ("dsp:parametric_eq", "_eq")):
                row = graph.nodes_of_type(node_type).index(graph.node(name + suffix).id)
                for parameter, value in hidden[node_type].items():
                    if parameter.endswith("gain_db") or parameter == "makeup_db":
                        value[row] = 0.0
                    elif parameter == "threshold_db":
                        value[row] = 0.0  # above every stem's peak (-6 dBFS) and its knee
                    elif parameter == "ratio":
                        value[row] = 1.0


def make_material(folder: str, tracks: int, seconds: float, seed: int = 0,
                  sparse: bool = False) -> tuple[list[str], str, str]:
    """Write the recorded stems, a mix of them at hidden console settings, and those settings.

    Returns:
        ``(stem_paths, mix_path, hidden_parameters_path)``.
    """
    names, audio = recorded_multitrack(tracks, seconds, RATE, seed)
    console = build_console(names, "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
    hidden = draw_parameters(console.graph, processors, torch.Generator().manual_seed(seed))
    if sparse:
        _neutralise(console, hidden, names)
    with torch.no_grad():
        mix = render(console.graph, processors, hidden, audio)[0][0]
    os.makedirs(folder, exist_ok=True)
    stems = [os.path.join(folder, f"{name}.wav") for name in names]
    for path, stem in zip(stems, audio):
        write_wav(path, stem, RATE)
    write_wav(os.path.join(folder, "mix.wav"), mix, RATE)
    save_parameters(hidden, os.path.join(folder, "hidden.params.json"))
    return stems, os.path.join(folder, "mix.wav"), os.path.join(folder, "hidden.params.json")


def run(folder: str, tracks: int = 7, seconds: float = 4.0, steps: int = 150, prune: bool = False,
        seed: int = 0, sparse: bool = False) -> dict:
    """Make the material in ``folder``, fit it into ``folder/fit``, and return the fit's report."""
    stems, mix, hidden = make_material(os.path.join(folder, "material"), tracks, seconds, seed, sparse)
    out = os.path.join(folder, "fit")
    status = grafx_core(["fit", *stems, "--target", mix, "--hidden", hidden, "-o", out, "--steps", str(steps),
                         *(["--prune"] if prune else [])])
    if status != 0:
        raise SystemExit(status)
    with open(os.path.join(out, "report.json"), encoding="utf-8") as f:
        return json.load(f)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=7)
    parser.add_argument("--seconds", type=float, default=4.0)
    parser.add_argument("--steps", type=int, default=150)
    parser.add_argument("--prune", action="store_true")
    parser.add_argument("--sparse", action="store_true", help="a hidden mix that leaves some nodes neutral")
    parser.add_argument("--output", help="folder for the material and the fit (default: a temporary folder)")
    args = parser.parse_args()
    folder = args.output or tempfile.mkdtemp(prefix="grafx-recorded-fit-")
    report = run(folder, args.tracks, args.seconds, args.steps, args.prune, sparse=args.sparse)
    print(f"\nloss {report['initial_loss']:.4f} -> {report['final_loss']:.4f}; results in {folder}/fit")


if __name__ == "__main__":
    main()
