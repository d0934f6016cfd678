"""LV2 plug-ins as black boxes: fresh-instance cost, thread-pool speed-up, backward cost, concurrent stages.

Run: ``python bench/lv2.py`` (needs liblilv and the Debian LV2 packages; says so
and exits 0 without them). Items are stereo 1 s noise at 44.1 kHz; times are
minima over interleaved repeats, so that other load inflates them least. Prints:

1. per plug-in, the cost of a fresh instance per item (instantiate, pre-roll,
   free) against one reused instance per thread, in ms per item;
2. per plug-in, the speed-up of two worker threads over one on 8 items;
3. per plug-in, the backward pass's cost in forward renders (central finite
   differences over three controls: 6 perturbed renders, so about 7 with the forward);
4. the engine's overlap of independent black-box stages (two stages waiting
   50 ms each), and a graph whose two buses each end in a single-node
   black-box stage (a Calf reverb, an LSP compressor): concurrent stages
   against one after the other (the second needs a free core to show);
5. the gradient-quality table of every plug-in tested
   (:func:`grafx_core.testing.gradient_report`);
6. the pre-roll each plug-in needs to glide to its settings (what
   :data:`grafx_lv2.processor.PRE_ROLL` holds), against the table;
7. per plug-in, the cost of ``runner="isolated"`` (worker processes under a
   watchdog: a crash or hang is an error, not the end of the host) against
   in-process threads, two workers each, forward and forward+backward.
"""

from __future__ import annotations

import time
from functools import partial

import torch

from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render, create_empty_parameters
from grafx_core.testing import gradient_report

from _timing import best as interleaved_best  # bench/ is the script's folder, on sys.path

try:
    from grafx_lv2 import PRE_ROLL, LilvUnavailableError, lv2_processor, measure_pre_roll
    from grafx_lv2.names import plugin_names
    from grafx_lv2.world import world
except ImportError:  # grafx-lv2 not installed
    lv2_processor = None

SR = 44100
REPEATS = 3
best = partial(interleaved_best, repeats=REPEATS)
PLUGINS = {
    "dpf_3_band_eq": ["low", "mid", "high"],
    "calf_saturator": ["drive", "blend", "lp_pre_freq"],
    "calf_reverb": ["decay_time", "amount", "dry"],
    "lsp_compressor_stereo": ["at", "rt", "cr"],
    "x42_fil4_stereo": ["gain", "gain1", "freq1"],
}



def noise(items: int, seconds: float = 1.0, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(items, 2, int(seconds * SR), generator=gen) * 0.1


def reused(processor: BlackBoxProcessor, workers: int) -> BlackBoxProcessor:
    """The same plug-in with one instance per thread, reused (not bit-exact for most plug-ins)."""
    return BlackBoxProcessor(None, processor.specs, effect_factory=processor.effect_factory, process=processor.process,
                             sample_rate=processor.sample_rate, workers=workers, name=processor.name,
                             instances="per-thread", check_determinism=False)


def lifecycle_and_threads(name: str, include: list[str]) -> None:
    one = lv2_processor(name, include=include, workers=1)
    two = lv2_processor(name, include=include, workers=2)
    x = noise(8)
    raw = {k: torch.full((8, 1), v) for k, v in one.default_parameters().items()}
    with torch.no_grad():
        t = best({"fresh": lambda: one(x, **raw), "reused": lambda: reused(one, 1)(x, **raw),
                  "two": lambda: two(x, **raw)})
    overhead = (t["fresh"] - t["reused"]) / 8 * 1e3
    print(f"  {name:24s} fresh {t['fresh'] / 8 * 1e3:7.1f} ms/item, reused {t['reused'] / 8 * 1e3:7.1f} ms/item "
          f"(+{overhead:5.1f} ms, x{t['fresh'] / t['reused']:.2f}); 2 threads x{t['fresh'] / t['two']:.2f}")


def backward_cost(name: str, include: list[str]) -> None:
    processor = lv2_processor(name, include=include)
    x = noise(4, 0.5)
    raw = {k: torch.full((4, 1), v, requires_grad=True) for k, v in processor.default_parameters().items()}

    def forward() -> None:
        with torch.no_grad():
            processor(x, **raw)

    def both() -> None:
        processor(x, **raw).square().sum().backward()

    t = best({"forward": forward, "both": both})
    print(f"  {name:24s} forward+backward = {t['both'] / t['forward']:.2f} forward renders "
          f"({len(include)} controls, central differences)")


def concurrent_stages() -> None:
    g = Graph()
    for bus, effect in (("a", "lv2:calf_reverb"), ("b", "lv2:lsp_compressor_stereo")):
        node = g.add(effect, f"{bus}_fx")
        for k in range(2):
            g.connect(g.add("in", f"{bus}{k}"), node)
        g.connect(node, g.add("out", f"{bus}_out"))
    x = noise(4, 2.0)
    times = {}
    for concurrent in (True, False):
        processors = {"lv2:calf_reverb": lv2_processor("calf_reverb"),
                      "lv2:lsp_compressor_stereo": lv2_processor("lsp_compressor_stereo")}
        for p in processors.values():
            p.concurrent_calls = concurrent
        plan = compile_render(g, processors)
        params = create_empty_parameters(g, processors)
        with torch.no_grad():
            times[concurrent] = best({"render": lambda: plan(params, x)})["render"]
    print(f"  two single-node black-box stages (Calf Reverb, LSP Compressor; 2 s stereo): one after the other "
          f"{times[False] * 1e3:.0f} ms, concurrent {times[True] * 1e3:.0f} ms: x{times[False] / times[True]:.2f}")


def stage_overlap() -> None:
    """The engine's overlap alone: two stages whose effects wait 50 ms without using a core."""

    def waits(audio, sample_rate, gain_db):
        time.sleep(0.05)
        return audio

    g = Graph()
    for bus in "ab":
        g.connect(g.add("in"), g.add(f"wait_{bus}", f"{bus}_fx"))
        g.connect(f"{bus}_fx", g.add("out", f"{bus}_out"))
    times = {}
    for concurrent in (True, False):
        processors = {f"wait_{b}": BlackBoxProcessor(waits, [ParameterSpec("gain_db", -1.0, 1.0)], workers=1,
                                                     check_determinism=False) for b in "ab"}
        for p in processors.values():
            p.concurrent_calls = concurrent
        plan = compile_render(g, processors)
        params = create_empty_parameters(g, processors)
        with torch.no_grad():
            times[concurrent] = best({"render": lambda: plan(params, noise(2, 0.01))})["render"]
    print(f"  two 50 ms waits in independent stages: one after the other {times[False] * 1e3:.0f} ms, "
          f"concurrent {times[True] * 1e3:.0f} ms: x{times[False] / times[True]:.2f}")


def gradient_tables(names: list[str]) -> None:
    for name in names:
        report = gradient_report(lv2_processor(name, include=PLUGINS[name]), items=2, seconds=0.25,
                                 name=f"lv2:{name}")
        print(report.format())


def isolation_cost(name: str, include: list[str]) -> None:
    boxes = {r: lv2_processor(name, include=include, workers=2, runner=r) for r in ("threads", "isolated")}
    x = noise(8)
    raw = {k: torch.full((8, 1), v) for k, v in boxes["threads"].default_parameters().items()}
    leaves = {k: v.clone().requires_grad_() for k, v in raw.items()}
    began = time.perf_counter()
    with torch.no_grad():
        boxes["isolated"](x[:1], **{k: v[:1] for k, v in raw.items()})
    start = time.perf_counter() - began
    with torch.no_grad():
        forward = best({r: (lambda box=box: box(x, **raw)) for r, box in boxes.items()})
    both = best({r: (lambda box=box: box(x[:4, :, :22050], **{k: v[:4] for k, v in leaves.items()}).square().sum()
                     .backward()) for r, box in boxes.items()})
    boxes["isolated"].runner.close()
    print(f"  {name:24s} isolated over threads: forward x{forward['isolated'] / forward['threads']:.2f}, "
          f"forward+backward x{both['isolated'] / both['threads']:.2f}; workers started in {start:.1f} s")


def main() -> None:
    torch.set_num_threads(1)
    if lv2_processor is None:
        print("bench/lv2.py: grafx-lv2 is not installed; nothing to measure")
        return
    try:
        installed = plugin_names(world().uris())
    except LilvUnavailableError as error:
        print(f"bench/lv2.py: {error}")
        return
    names = [n for n in PLUGINS if n in installed]
    print(f"LV2 plug-ins measured: {names} (missing: {sorted(set(PLUGINS) - set(names))})")
    print("1-2. fresh instance per item vs a reused one; two worker threads vs one (8 stereo 1 s items):")
    for name in names:
        lifecycle_and_threads(name, PLUGINS[name])
    print("3. backward cost (4 stereo 0.5 s items):")
    for name in names:
        backward_cost(name, PLUGINS[name])
    print("4. concurrent stages:")
    stage_overlap()
    if {"calf_reverb", "lsp_compressor_stereo"} <= set(names):
        concurrent_stages()
    print("5. gradient quality:")
    gradient_tables(names)
    print("6. pre-roll needed (smallest candidate matching a 262,144-sample pre-roll), against PRE_ROLL:")
    for name in names:
        processor = lv2_processor(name)
        listed = next((n for prefix, n in PRE_ROLL.items() if processor.process.uri.startswith(prefix)), 0)
        print(f"  {name:24s} measured {measure_pre_roll(name)}, table {listed}")
    print("7. isolated worker processes vs in-process threads (2 workers each; 8 stereo 1 s items forward, "
          "4 x 0.5 s backward):")
    for name in names:
        isolation_cost(name, PLUGINS[name])


if __name__ == "__main__":
    main()
