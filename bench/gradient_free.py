"""Gradient estimators against the optimisers users pick instead, at equal graph renders.

Every contender fits the same hidden parameters of three problems from the same
random start, under the same multi-resolution STFT loss
(:class:`~grafx_core.fitting.SpectralLoss`), through
:func:`~grafx_core.fitting.optimise`:

(a) ST-ITO's chain through LV2: zam-plugins' ZamEQ2 -> ZamCompX2 -> Dragonfly
    Early Reflections (Dragonfly Plate, ST-ITO's reverb, needs the LV2 worker
    feature, which grafx-lv2 does not offer: it fails at get_processor);
(b) a pedalboard chain: compressor -> peak filter -> low-pass -> reverb;
(c) the demo's console (grafx-dsp EQs, faders, buses; pedalboard compressors
    and reverb), on 4 synthesised tracks.

Contenders: Adam with finite differences, with SPSA and with each effect's
default estimator; ``gauss-newton`` (Levenberg-Marquardt on the black-box
controls with finite-difference Jacobians corrected by every render, a
scan of the controls' loss profiles at its first stall far above the fit and
a compass search where it stalls, Adam on the analytic rest); the hybrid
(CMA-ES on the black-box controls for 30 % of the renders, then
``gauss-newton``: reported apart, as neither gradient-based nor
gradient-free); CMA-ES (pycma, default population); Nevergrad's NGOpt;
random search. Budgets are graph renders as
:class:`~grafx_core.fitting.RenderBudget` counts them (black-box item renders
over the graph's black-box nodes). The issue's goal is that the best
gradient-based contender reaches, in a quarter of the renders, what the best
gradient-free one reaches at the largest budget; with ``--full`` every
contender runs to the largest budget (``--gradient-budget`` shortens the
gradient-based runs and random search's, e.g. to a quarter of it, which
answers that question for less machine time), CMA-ES to all of it, NGOpt once per budget of 1,000 or more (it picks its
algorithm by budget); a smaller budget's figures are read off the shortest run
that covers it (the best loss seen within it; a conservative reading for Adam,
whose learning rate decays over its whole run). Printed per problem and
budget: the median over seeds of the best loss relative to the start, the mean
normalised error of the black-box controls at that point against the hidden
values, and seconds; then, per problem, the renders each gradient-based
contender needed to reach the best gradient-free loss at the largest budget,
and, where that loss lies below a seed's noise floor (the loss of the hidden
settings with every black-box control moved 1e-6 of its range: float32
plug-ins render any such move with rounding noise, which the log-magnitude
term hears on near-silent bins), the renders it needed to reach the floor.
``--plot`` writes a PNG of loss against renders.

Run: ``python bench/gradient_free.py`` (smoke: the pedalboard chain, budgets
30 and 100, one seed; a minute or two), ``--full`` (every problem, budgets 100,
300, 1,000 and 4,096, 3 seeds: many hours on 2 cores), or choose with
``--problems``, ``--budgets``, ``--seeds``, ``--contenders``, ``--seconds``,
``--jobs`` (processes), ``--option KEY=VALUE`` (a backend option for every fit, e.g. ``fd_step=0.0049``;
repeatable). ``--save`` writes the runs (compacted traces),
``--load`` prints the table and ``--plot`` draws the PNG of saved runs, merged
from several files; the runs behind the docs' table are in
``bench/results/gradient_free/``. A fit that must end before its budget is
stopped by sending SIGINT to its worker process (not to the whole command,
whose other fits would be lost): it keeps what it found, is saved with how far
it got, and its cells beyond that are starred.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import math
import multiprocessing
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch

from grafx_core import Graph, compile_render
from grafx_core import processors_for_graph
from grafx_core.demo.draws import demo_console, draw_parameters
from grafx_core.demo.multitrack import synthesise_multitrack
from grafx_core.fitting import LatentParameters, RenderBudget, SpectralLoss, is_black_box, optimise

RATE = 44100
LV2_CHAIN = {  # processor name -> (controls fitted, their natural ranges for hidden values and starts)
    "lv2:urn_zamaudio_zam_eq2": {"boostl": (-9.0, 9.0), "fl": (60.0, 400.0), "boost1": (-9.0, 9.0),
                                 "f1": (300.0, 3000.0), "bw1": (0.5, 2.0), "boosth": (-9.0, 9.0)},
    "lv2:urn_zamaudio_zam_comp_x2": {"thr": (-30.0, -10.0), "rat": (2.0, 8.0), "att": (2.0, 30.0),
                                     "rel": (50.0, 300.0), "mak": (0.0, 6.0)},
    "lv2:urn_dragonfly_early": {"dry_level": (50.0, 90.0), "early_level": (10.0, 40.0), "size": (15.0, 40.0)},
}
PEDALBOARD_CHAIN = {
    "pedalboard:compressor": {"threshold_db": (-30.0, -10.0), "ratio": (2.0, 8.0), "attack_ms": (2.0, 30.0),
                              "release_ms": (50.0, 300.0)},
    "pedalboard:peak_filter": {"cutoff_frequency_hz": (300.0, 3000.0), "gain_db": (-9.0, 9.0), "q": (0.5, 2.0)},
    "pedalboard:lowpass_filter": {"cutoff_frequency_hz": (3000.0, 12000.0)},
    "pedalboard:reverb": {"room_size": (0.3, 0.8), "damping": (0.2, 0.7), "wet_level": (0.1, 0.3),
                          "dry_level": (0.5, 0.9)},
}
CONTENDERS: dict[str, tuple[str, str | None]] = {  # label -> (optimizer, black-box estimator)
    "adam, finite differences": ("adam", "finite-difference"),
    "adam, SPSA": ("adam", "spsa"),
    "adam, default estimators": ("adam", None),
    "gauss-newton": ("gauss-newton", None),
    "hybrid (cma-es, gauss-newton)": ("hybrid", None),
    "cma-es": ("cma-es", None),
    "ngopt": ("ngopt", None),
    "random search": ("random", None),
}
GRADIENT_FREE = ("cma-es", "ngopt", "random search")
HYBRID = ("hybrid (cma-es, gauss-newton)",)  # neither: a gradient-free phase, then a gradient-based one


@dataclass
class Problem:
    """A graph, its processors, its input, the hidden parameters and the start."""

    graph: Graph
    processors: dict[str, Any]
    sources: torch.Tensor
    hidden: Any
    start: Any


def _lv2_missing() -> str | None:
    """Why the LV2 chain cannot run here, or ``None``."""
    try:
        from grafx_lv2.names import plugin_names
        from grafx_lv2.world import world

        installed = {f"lv2:{name}" for name in plugin_names(world().uris())}
    except Exception as error:  # grafx-lv2 or liblilv missing: the reason is in the message
        return f"grafx-lv2 unavailable ({error})"
    missing = sorted(set(LV2_CHAIN) - installed)
    return f"not installed: {missing} (Debian zam-plugins, dragonfly-reverb-lv2)" if missing else None


def _chain(names: list[str]) -> Graph:
    graph = Graph()
    previous = graph.add("in")
    for name in names:
        node = graph.add(name)
        graph.connect(previous, node)
        previous = node
    graph.connect(previous, graph.add("out"))
    return graph


def _music(seconds: float, seed: int) -> torch.Tensor:
    _, stems = synthesise_multitrack(4, seconds, RATE, seed)
    mono = stems.mean(dim=(0, 1))
    return torch.stack([mono, mono])[None] * 2.0


def _chain_parameters(processors: Mapping[str, Any], chain: Mapping[str, Mapping[str, tuple[float, float]]],
                      generator: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    """Raw values for natural values drawn uniformly in each control's range (log for Hz and ms)."""
    result = {}
    for node_type, ranges in chain.items():
        processor = processors[node_type]
        natural = {}
        for name, (low, high) in ranges.items():
            u = float(torch.rand((), generator=generator))
            natural[name] = (low * (high / low) ** u if name.endswith(("_hz", "_ms")) or name in ("fl", "f1", "att", "rel")
                             else low + u * (high - low))
        raw = processor.raw_parameters(**natural)
        defaults = processor.default_parameters()
        result[node_type] = {name: raw[name] if name in raw else torch.full((1, 1), float(defaults[name]))
                             for name in processor.parameter_size()}
    return result


def make_problem(name: str, seconds: float, seed: int, estimator: str | None) -> Problem:
    """Problem ``name`` with every black box using ``estimator`` (``None``: its default)."""
    generator = torch.Generator().manual_seed(1000 + seed)
    extra = {} if estimator is None else {"estimator": estimator}
    if name == "console":
        names, sources = synthesise_multitrack(4, seconds, RATE, seed)
        console = demo_console(names, "auto" if estimator is None else estimator)
        processors = processors_for_graph(console.graph, console.options, sample_rate=RATE)
        hidden = draw_parameters(console.graph, processors, generator)
        start = draw_parameters(console.graph, processors, generator)
        return Problem(console.graph, processors, sources, hidden, start)
    chain = LV2_CHAIN if name == "lv2" else PEDALBOARD_CHAIN
    graph = _chain(list(chain))
    if name == "lv2":
        options = {t: {"include": list(r), "workers": 1, **({"estimator": estimator} if estimator else {})}
                   for t, r in chain.items()}
    else:
        options = {t: {"workers": 1, **extra} for t in chain}
    processors = processors_for_graph(graph, options, sample_rate=RATE)
    hidden = _chain_parameters(processors, chain, generator)
    start = _chain_parameters(processors, chain, generator)
    return Problem(graph, processors, _music(seconds, seed), hidden, start)


def _normalised_error(problem: Problem, fitted: Mapping[str, Mapping[str, torch.Tensor]]) -> float:
    errors = []
    for node_type, processor in problem.processors.items():
        if node_type in problem.hidden and is_black_box(processor):
            for spec in processor.specs:
                if spec.differentiable:
                    a = torch.sigmoid(problem.hidden[node_type][spec.name].detach().double())
                    b = torch.sigmoid(fitted[node_type][spec.name].detach().double())
                    errors.append((a - b).abs().flatten())
    return float(torch.cat(errors).mean())


class _Trace:
    """A loss log that also notes the renders, seconds and parameter error at each step."""

    def __init__(self, budget: RenderBudget, error: Callable[[], float]) -> None:
        self.budget, self.error, self.rows = budget, error, []

    def record(self, step: int, loss: float, rate: float, seconds: float) -> None:
        self.rows.append((self.budget.renders, loss, seconds, self.error()))


FLOOR_STEP = 1e-6  # normalised units: settings this close to the hidden ones count as found
FLOOR_DRAWS = 5


def noise_floor(problem: Problem, render: Callable[[Any], torch.Tensor], loss: SpectralLoss) -> float:
    """The loss of settings indistinguishable from the hidden ones: the median, over a few draws, of the loss
    with every black-box control moved ``FLOOR_STEP`` (random sign) off its hidden value in its normalised
    range. Float32 plug-ins render any such move with rounding noise that the log-magnitude term hears on
    near-silent bins, so no fit that is not bit-identical to the hidden settings scores much below it."""
    generator = torch.Generator().manual_seed(0)
    losses = []
    for _ in range(FLOOR_DRAWS):
        latent = LatentParameters(problem.hidden, problem.processors)
        with torch.no_grad():
            for tensor, black in zip(latent.parameters(), latent.black_box_flags()):
                if black:
                    sign = torch.randint(0, 2, tensor.shape, generator=generator) * 2.0 - 1.0
                    moved = (torch.sigmoid(tensor.double()) + sign * FLOOR_STEP).clamp(FLOOR_STEP, 1 - FLOOR_STEP)
                    tensor.copy_(torch.logit(moved).to(tensor.dtype))
            losses.append(float(loss(render(latent.values()))))
    return _median(losses)


def run_one(task: tuple[str, str, int, int, float, dict[str, Any]]) -> dict[str, Any]:
    """One fit: (problem, contender, seed, budget, seconds, backend options) -> its trace and final figures."""
    problem_name, label, seed, budget_renders, seconds, options = task
    torch.set_num_threads(1)
    torch.manual_seed(seed)
    optimizer, estimator = CONTENDERS[label]
    problem = make_problem(problem_name, seconds, seed, estimator)
    plan = compile_render(problem.graph, problem.processors)
    with torch.no_grad():
        target = plan(problem.hidden, problem.sources)[0][0]
    loss = SpectralLoss(target)
    with torch.no_grad():
        floor = noise_floor(problem, lambda p: plan(p, problem.sources)[0][0], loss)
    latent = LatentParameters(problem.start, problem.processors)
    budget = RenderBudget(problem.graph, problem.processors, budget_renders)
    trace = _Trace(budget, lambda: _normalised_error(problem, latent.values()))
    began = time.perf_counter()
    with budget:
        result = optimise(lambda p: plan(p, problem.sources)[0][0], latent, loss, 10**9, optimizer,
                          learning_rate=0.05, log=trace, budget=budget, seed=seed,  # type: ignore[arg-type]
                          options=options or None)
    elapsed = time.perf_counter() - began
    return {"problem": problem_name, "contender": label, "seed": seed, "budget": budget_renders,
            "initial": result.initial_loss, "final": result.final_loss, "renders": result.renders,
            "stopped": result.stopped, "seconds": elapsed, "error": _normalised_error(problem, latent.values()), "floor": floor,
            "trace": trace.rows, **({"options": options} if options else {})}


def compact(run: dict[str, Any]) -> dict[str, Any]:
    """``run`` with only the trace rows that lower the best loss so far (and the last): what the table and
    the plot read (a budget's seconds become those of the last improvement within it), at a few kB a run."""
    kept, best = [], math.inf
    for index, row in enumerate(run["trace"]):
        if row[1] < best or index == len(run["trace"]) - 1:
            kept.append([round(v, 9) if isinstance(v, float) else v for v in row])
            best = min(best, row[1])
    return {**run, "trace": kept}


def _at(run: dict[str, Any], budget: float) -> tuple[float, float, float]:
    """Best relative loss, seconds and the best point's parameter error within ``budget`` renders of a run."""
    best, when, error = math.inf, 0.0, math.nan
    for renders, loss, seconds, point_error in run["trace"]:
        if renders > budget + 1e-9:
            break
        when = seconds
        if loss < best:
            best, error = loss, point_error
    if run["budget"] == budget and run["final"] <= best:
        best, when, error = run["final"], run["seconds"], run["error"]
    return best / run["initial"], when, error


def _partial(run: dict[str, Any]) -> bool:
    """Whether ``run`` was stopped (Ctrl-C, a time limit) before it had spent its budget."""
    return run.get("stopped", "completed") not in ("completed", "converged")


def _median(values: list[float]) -> float:
    values = sorted(values)
    middle = len(values) // 2
    return values[middle] if len(values) % 2 else 0.5 * (values[middle - 1] + values[middle])


def tasks(problems: list[str], contenders: list[str], seeds: list[int], budgets: list[int], gradient_budget: int,
          seconds: Mapping[str, float], options: Mapping[str, Any] | None = None
          ) -> list[tuple[str, str, int, int, float, dict[str, Any]]]:
    """Every fit to run: NGOpt once per budget of 1,000 or more (it picks its algorithm by budget), the other
    gradient-free contenders once at the largest budget, the gradient-based ones once at ``gradient_budget``;
    smaller budgets are read off the runs' traces."""
    found = []
    for problem in problems:
        for label in contenders:
            if label not in GRADIENT_FREE:
                runs = [min(gradient_budget, max(budgets))]
            elif label == "ngopt":
                runs = [b for b in budgets if b >= 1000] or [max(budgets)]
            elif label == "random search":
                runs = [min(gradient_budget, max(budgets))]  # a baseline: not worth 4,096 renders of the machine
            else:
                runs = [max(budgets)]
            for seed in seeds:
                found += [(problem, label, seed, b, seconds[problem], dict(options or {})) for b in runs]
    return sorted(found, key=lambda task: (task[2], -task[3]))  # seed by seed, the longest runs first


def _runs_for(runs: list[dict[str, Any]], label: str, budget: int) -> list[dict[str, Any]]:
    """A contender's runs at ``budget``, else its smallest runs above it (read as prefixes), one per seed."""
    mine = [r for r in runs if r["contender"] == label and r["budget"] >= budget]
    if not mine:
        return []
    smallest = min(r["budget"] for r in mine)
    return [r for r in mine if r["budget"] == smallest]


def table(runs: list[dict[str, Any]], budgets: list[int]) -> list[str]:
    """The printed table and the verdict lines."""
    lines = []
    for problem in dict.fromkeys(r["problem"] for r in runs):
        mine = [r for r in runs if r["problem"] == problem]
        lines.append(f"\n{problem}: median over seeds of final/initial loss, black-box parameter error, seconds")
        lines.append(f"{'contender':<34}" + "".join(f"{b:>24}" for b in budgets))
        medians: dict[str, dict[int, float]] = {}
        short: dict[tuple[str, int], float] = {}  # partial runs read at a budget they did not reach: renders reached
        for label in dict.fromkeys(r["contender"] for r in mine):
            cells = []
            for b in budgets:
                chosen = _runs_for(mine, label, b)
                if not chosen:
                    cells.append(f"{'-':>24}")
                    continue
                at = [_at(r, b) for r in chosen]
                relative, seconds, error = (_median([a[k] for a in at]) for k in range(3))
                medians.setdefault(label, {})[b] = relative
                stopped = [r for r in chosen if _partial(r) and r["renders"] < b]
                short.update({(label, r["seed"]): r["renders"] for r in stopped})
                cells.append(f"{relative:>9.5f} {error:>6.3f} {seconds:>6.0f}s" + ("*" if stopped else ""))
            lines.append(f"{label:<34}" + "".join(cells).rstrip())
        for (label, seed), reached in short.items():
            run = next(r for r in mine if r["contender"] == label and r["seed"] == seed and _partial(r))
            lines.append(f"  * {label}, seed {seed}: stopped ({run['stopped']}) at {reached:.0f} of {run['budget']} "
                         f"renders, best loss {run['final'] / run['initial']:.5f} of the start; a starred cell is "
                         f"the best within the renders its runs reached, not an estimate of the budget's")
        lines += _verdict(problem, mine, medians, budgets)
    return lines


def _verdict(problem: str, runs: list[dict[str, Any]], medians: dict[str, dict[int, float]],
             budgets: list[int]) -> list[str]:
    top = max(budgets)
    free = {k: v[top] for k, v in medians.items() if k in GRADIENT_FREE and top in v}
    based = [k for k in medians if k not in GRADIENT_FREE + HYBRID]
    if not free or not based:
        return []
    best_free = min(free, key=free.get)  # type: ignore[arg-type]
    goal = free[best_free]
    floors = {r["seed"]: r["floor"] / r["initial"] for r in runs if "floor" in r}
    lines = [f"best gradient-free at {top} renders: {best_free} {goal:.5f}"]
    if floors:
        lines[-1] += (f"; noise floor {_median(list(floors.values())):.2g} (loss with every black-box control "
                      f"{FLOOR_STEP:g} off the hidden values; per seed "
                      + ", ".join(f"{floors[k]:.2g}" for k in sorted(floors)) + ")")
    for label in based + [k for k in medians if k in HYBRID]:
        reached = [b for b in budgets if medians[label].get(b, math.inf) <= goal]
        trace_runs = [r for r in runs if r["contender"] == label and r["budget"] == max(
            q["budget"] for q in runs if q["contender"] == label)]
        first, floored = [], []
        for r in trace_runs:
            first.append(next((row[0] for row in r["trace"] if row[1] / r["initial"] <= goal), math.inf))
            level = max(goal, floors.get(r["seed"], goal))
            floored.append(next((row[0] for row in r["trace"] if row[1] / r["initial"] <= level), math.inf))
        within = ", ".join(f"{r['renders']:.0f} (seed {r['seed']}, stopped)" if _partial(r) else f"{r['budget']}"
                           for r in trace_runs) if any(_partial(r) for r in trace_runs) else (
            f"{trace_runs[0]['budget']}" if trace_runs else "0")
        lines.append(f"  {label}: reaches it at {_median(first) if first else math.inf:.0f} renders (median over seeds"
                     f" of its runs; inf: not within {within}); at budgets {reached or 'none'}")
        if floors and floored != first:
            lines.append(f"    it or the seed's noise floor at {_median(floored):.0f} renders (per seed "
                         + ", ".join(f"{f:.0f}" for f in floored) + ")")
    ahead = [b for b in budgets if all(min(medians[k].get(b, math.inf) for k in based) < v.get(b, math.inf)
                                       for k, v in medians.items() if k in GRADIENT_FREE)]
    lines.append(f"  best gradient-based ahead of every gradient-free at budgets: {ahead or 'none'}")
    if floors:
        floor = _median(list(floors.values()))
        level = [b for b in budgets if b in ahead or min(medians[k].get(b, math.inf) for k in based) <= floor]
        if level != ahead:
            lines.append(f"  ahead of every gradient-free, or at the noise floor, at budgets: {level}")
    return lines


def load_runs(paths: list[str]) -> list[dict[str, Any]]:
    """The saved runs of ``paths``, merged.

    Raises:
        SystemExit: two runs of one problem, contender, seed and budget (a rerun saved beside the run it
            replaces would count twice in every median).
    """
    runs, seen = [], {}
    for path in paths:
        with open(path, encoding="utf-8") as f:
            for run in json.load(f):
                key = (run["problem"], run["contender"], run["seed"], run["budget"])
                if key in seen:
                    raise SystemExit(f"{path} and {seen[key]} both hold {key[1]} on {key[0]}, seed {key[2]}, "
                                     f"budget {key[3]}: move the one that is not current out of the loaded files")
                seen[key] = path
                runs.append(run)
    return runs


def _options(pairs: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` strings as backend options (``true``/``false`` as switches, numbers where they parse as
    one, else strings).

    Raises:
        SystemExit: a string without ``=``.
    """
    options: dict[str, Any] = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise SystemExit(f"--option {pair!r}: expected KEY=VALUE, e.g. fd_step=0.0049")
        if value.lower() in ("true", "false"):
            options[key] = value.lower() == "true"
            continue
        try:
            options[key] = int(value)
        except ValueError:
            try:
                options[key] = float(value)
            except ValueError:
                options[key] = value
    return options


def plot(runs: list[dict[str, Any]], path: str) -> None:
    """Loss against renders: per problem, the median over seeds of each contender's best-so-far curve."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    problems = list(dict.fromkeys(r["problem"] for r in runs))
    figure, axes = plt.subplots(1, len(problems), figsize=(6 * len(problems), 4.5), squeeze=False)
    top = max(r["budget"] for r in runs)
    grid = sorted({int(x) for x in torch.logspace(0, math.log10(top), 60).tolist()})
    for axis, problem in zip(axes[0], problems):
        for label in dict.fromkeys(r["contender"] for r in runs):
            mine = [r for r in runs if r["problem"] == problem and r["contender"] == label]
            if mine:
                longest = max(r["budget"] for r in mine)
                chosen = [r for r in mine if r["budget"] == longest]
                # A stopped run's curve ends where it stopped: the median is drawn only where every seed got.
                reach = min(r["renders"] if _partial(r) else r["budget"] for r in chosen)
                points = [g for g in grid if g <= reach]
                curve = [_median([_at(r, g)[0] for r in chosen]) for g in points]
                colour = f"C{list(CONTENDERS).index(label)}"
                style = "--" if label in GRADIENT_FREE else "-." if label in HYBRID else "-"
                axis.plot(points, curve, label=label, color=colour, linestyle=style)
                whole = [r for r in mine if not _partial(r)]
                ends = sorted({r["budget"] for r in whole})  # each run's final loss, at its budget
                axis.plot(ends, [_median([r["final"] / r["initial"] for r in whole if r["budget"] == b]) for b in ends],
                          "o", color=colour, markersize=4)
                stopped = [r for r in mine if _partial(r)]  # a stopped run's own best, where it stopped
                axis.plot([r["renders"] for r in stopped], [r["final"] / r["initial"] for r in stopped], "x",
                          color=colour, markersize=5)
        axis.set(xscale="log", yscale="log", xlabel="graph renders", ylabel="best loss / initial", title=problem)
        axis.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--full", action="store_true", help="every problem, budgets 100-4096, 3 seeds (hours)")
    parser.add_argument("--problems", help="comma-separated: lv2, pedalboard, console")
    parser.add_argument("--contenders", help="semicolon-separated contender labels, or substrings of them")
    parser.add_argument("--budgets", help="comma-separated graph-render budgets")
    parser.add_argument("--seeds", help="how many seeds (from 0), or the seeds themselves, comma-separated: 1,2 (one seed: 2,)")
    parser.add_argument("--gradient-budget", type=int,
                        help="renders of the gradient-based runs (default: the largest budget; a quarter of it "
                        "answers the issue's question in less time)")
    parser.add_argument("--seconds", type=float, help="audio length of every problem")
    parser.add_argument("--jobs", type=int, default=1, help="processes running fits side by side")
    parser.add_argument("--save", metavar="RUNS.json", help="write every run (traces kept where they improve)")
    parser.add_argument("--load", metavar="RUNS.json", nargs="+",
                        help="print the table of saved runs (one or more files, merged) instead of running")
    parser.add_argument("--plot", metavar="PNG", help="write loss against renders")
    parser.add_argument("--option", action="append", default=[], metavar="KEY=VALUE",
                        help="a backend option for every fit (optimise's options, e.g. fd_step=0.0049); repeatable")
    args = parser.parse_args()
    problems = (args.problems or ("lv2,pedalboard,console" if args.full else "pedalboard")).split(",")
    budgets = [int(b) for b in (args.budgets or ("100,300,1000,4096" if args.full else "30,100")).split(",")]
    seeds = (list(range(int(args.seeds))) if args.seeds and "," not in args.seeds
             else [int(s) for s in args.seeds.split(",") if s] if args.seeds else list(range(3 if args.full else 1)))
    contenders = list(CONTENDERS)
    if args.contenders:
        wanted = [w.strip() for w in args.contenders.split(";")]
        contenders = [c for c in contenders if c in wanted or any(w in c and w not in CONTENDERS for w in wanted)]
    if not args.full and not args.contenders and args.load is None:
        contenders = [c for c in contenders if c not in ("adam, SPSA", "adam, default estimators")]
    for label, module in (("cma-es", "cma"), ("ngopt", "nevergrad"), (HYBRID[0], "cma")):
        if label in contenders and importlib.util.find_spec(module) is None:
            print(f"skipping {label}: {module} is not installed (pip install grafx-core[optimizers])")
            contenders.remove(label)
    if "lv2" in problems and _lv2_missing():
        print(f"skipping the LV2 chain: {_lv2_missing()}")
        problems.remove("lv2")
    seconds = {p: args.seconds or {"lv2": 0.5, "pedalboard": 0.5, "console": 1.0}[p] for p in problems}
    if args.load:
        runs = load_runs(args.load)
        runs = [r for r in runs if (not args.problems or r["problem"] in problems)
                and (not args.contenders or r["contender"] in contenders)]
    else:
        gradient_budget = args.gradient_budget or max(budgets)
        todo = tasks(problems, contenders, seeds, budgets, gradient_budget, seconds, _options(args.option))
        print(f"gradient-free bench: {len(todo)} fits; problems {problems}, budgets {budgets}, seeds {seeds}, "
              f"{args.jobs} process(es)", flush=True)
        runs = []
        with multiprocessing.get_context("spawn").Pool(args.jobs) as pool:
            for run in pool.imap_unordered(run_one, todo):
                runs.append(run)
                print(f"  {run['problem']} {run['contender']} seed {run['seed']} budget {run['budget']}: "
                      f"x{run['final'] / run['initial']:.3f} in {run['renders']:.0f} renders, {run['seconds']:.0f} s",
                      file=sys.stderr, flush=True)
                if args.save:  # after every run, so that a long run stopped early keeps what it did
                    with open(args.save, "w", encoding="utf-8") as f:
                        json.dump([compact(r) for r in runs], f)
    budgets = sorted(set(budgets) | {r["budget"] for r in runs})
    for line in table(runs, budgets):
        print(line)
    if args.plot:
        plot(runs, args.plot)
        print(f"wrote {args.plot}")


if __name__ == "__main__":
    main()
