"""Peak memory of grafx-dsp processors under ``no_grad`` on ten minutes of mono audio.

Each processor runs in a fresh subprocess on one ``[1, 1, samples]`` float32
signal. The peak resident memory of the call (Linux's ``VmHWM``, reset just
before it through ``/proc/self/clear_refs``) minus the resident memory just
before it, with the input already allocated, is printed in units of the
signal's size: the output itself counts 1. pedalboard's compressor on the
same signal is the reference (a C++ loop; 1 would be its output alone), and
``render:gain->eq->compressor`` renders that chain as a graph (the first
wave peaked at 16 there). The aim is under 6 for the grafx-dsp dynamics and EQ.

Run: python bench/memory.py [--minutes 10] [--processors dsp:compressor ...]
"""

from __future__ import annotations

import argparse
import subprocess
import sys

CHILD = r"""
import sys, torch
torch.set_num_threads(1)
name, samples = sys.argv[1], int(sys.argv[2])

def resident_bytes(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)

gen = torch.Generator().manual_seed(0)
x = 0.3 * torch.randn(1, 1, samples, generator=gen)
if name == "pedalboard:compressor":
    import pedalboard
    effect = pedalboard.Compressor(threshold_db=-20, ratio=4)
    audio = x[0].numpy()
    effect(audio[:, :4096], 44100)
    run = lambda: effect(audio, 44100)
elif name == "render:gain->eq->compressor":
    from grafx_core import Graph, create_empty_parameters, processors_for_graph, render
    graph = Graph()
    nodes = [graph.add(t) for t in ("in", "dsp:gain", "dsp:parametric_eq", "dsp:compressor", "out")]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a, b)
    processors = processors_for_graph(graph)
    params = create_empty_parameters(graph, processors)
    sources = x[0][None]
    with torch.no_grad():
        render(graph, processors, params, sources[..., :4096])
    run = lambda: render(graph, processors, params, sources)
else:
    from grafx_core import processors_for_graph, Graph
    graph = Graph()
    graph.connect(graph.add("in"), graph.add(name))
    processor = processors_for_graph(graph)[name]
    params = {k: v for k, v in processor.default_parameters(1).items()}
    with torch.no_grad():
        processor(x[..., :4096], **params)
    run = lambda: processor(x, **params)
with torch.no_grad():
    before = resident_bytes("VmRSS")
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
    y = run()
    peak = resident_bytes("VmHWM")
print((peak - before) / x.nbytes)
"""

PROCESSORS = ["dsp:gain", "dsp:parametric_eq", "dsp:lowpass", "dsp:compressor", "dsp:noise_gate",
              "render:gain->eq->compressor", "pedalboard:compressor"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--processors", nargs="+", default=PROCESSORS)
    args = parser.parse_args()
    samples = int(args.minutes * 60 * 44100)
    print(f"{args.minutes:g} min mono at 44.1 kHz ({samples * 4 / 2**20:.0f} MiB float32), under no_grad")
    print(f"{'processor':<24} {'peak / signal size':>20}")
    results = {}
    for name in args.processors:
        done = subprocess.run([sys.executable, "-c", CHILD, name, str(samples)], capture_output=True, text=True)
        if done.returncode != 0:
            print(f"{name:<24} {'failed':>20}  {done.stderr.strip().splitlines()[-1]}")
            continue
        results[name] = float(done.stdout.strip())
        print(f"{name:<24} {results[name]:>20.1f}")
    if "pedalboard:compressor" in results and "dsp:compressor" in results:
        print(f"dsp:compressor / pedalboard:compressor: {results['dsp:compressor'] / results['pedalboard:compressor']:.1f}x")


if __name__ == "__main__":
    main()
