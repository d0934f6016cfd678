"""Compile-time benchmark: ``compile_render`` over graphs of 1k to 100k nodes.

Graphs are mixing consoles of the size asked: tracks ``in -> eq -> gain`` summed
into buses of 16 tracks, buses into a master ``mix`` and one ``out``. The
processors are trivial (compiling never calls them). For each size it prints
the seconds to build the graph, to compile it, and to save and load it as
JSON, and the compile time per 1,000 nodes relative to the smallest graph's
(1.0 means linear scaling; the first wave's ``Graph.nodes`` copied a tuple on
every access and made compiling quadratic: 80k nodes took 34 s). The aim is
100k nodes compiled in under 5 s on 2 cores.

Run: python bench/compile.py [--sizes 1000 10000 30000 100000]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import torch

from grafx_core import Graph, compile_render


class _Identity(torch.nn.Module):
    def forward(self, x: torch.Tensor, **_: torch.Tensor) -> torch.Tensor:
        return x

    def parameter_size(self) -> dict[str, int]:
        return {"value": 1}


def console(nodes: int) -> Graph:
    """A console of about ``nodes`` nodes: 3 per track, one bus per 16 tracks, master and out."""
    tracks = max(1, (nodes - 2) * 16 // 49)
    graph = Graph()
    master = graph.add("mix", name="master")
    buses = [graph.add("bus") for _ in range((tracks + 15) // 16)]
    for bus in buses:
        graph.connect(bus, master)
    for t in range(tracks):
        source, eq, gain = graph.add("in"), graph.add("eq"), graph.add("gain")
        graph.connect(source, eq)
        graph.connect(eq, gain)
        graph.connect(gain, buses[t // 16])
    graph.connect(master, graph.add("out"))
    return graph


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10000, 30000, 100000])
    args = parser.parse_args()
    processors = {t: _Identity() for t in ("eq", "gain", "bus")}
    print(f"{'nodes':>8} {'build s':>8} {'compile s':>10} {'save+load s':>12} {'compile per 1k nodes vs first':>30}")
    compile_render(console(args.sizes[0]), processors)  # first-call costs (imports, caches) stay out of the ratios
    first = None
    with tempfile.TemporaryDirectory() as folder:
        for size in args.sizes:
            begin = time.perf_counter()
            graph = console(size)
            built = time.perf_counter()
            plan = compile_render(graph, processors)
            compiled = time.perf_counter()
            path = os.path.join(folder, "graph.json")
            graph.save(path)
            assert Graph.load(path) == graph
            loaded = time.perf_counter()
            per_node = (compiled - built) / len(graph)
            first = first or per_node
            print(f"{len(graph):>8} {built - begin:>8.2f} {compiled - built:>10.2f} {loaded - compiled:>12.2f} "
                  f"{per_node / first:>30.2f}   ({len(plan.stages)} stages)")


if __name__ == "__main__":
    main()
