"""Which gradient estimator trains a parameter predictor best? The style-transfer table.

Trains the predictor of ``examples/style_transfer.py`` (EQ -> compressor ->
saturating bus, speech-like audio) once per row: with the chain as grafx-dsp
autograd processors, and with the same processors as black boxes whose
gradients come from an estimator. A black box in the middle of the chain
passes a *signal* gradient to the nodes upstream; each row names both its
parameter estimator and its signal gradient. Budget: equal steps, i.e. every
row trains on the same examples in the same order from the same initial
weights (``PredictorTrainer`` seeds each step's batch); the time per step
column is what each row pays for them. The neural proxy's time per step
includes its share of training the three proxies first. ``--budget time``
gives every row the wall-clock time autodiff's steps took instead (same
examples in the same order, as many steps as fit; the proxies' training is
not charged, since a proxy is trained once per effect and reused) and adds a
steps column.

Printed: estimator, final test loss (32 examples of another voice; a black
box renders exactly what its autograd twin does), relative to autodiff, time per
step; then the untreated input's loss and a last line
``best black-box / autodiff: X.XX``. Published anchor (DeepAFx-ST, speech):
autodiff 0.388, SPSA 0.635 (1.64x), proxy 0.676, untreated input 1.187.

Run: ``python bench/estimator_table.py`` (smoke size for ``make bench``: a
couple of minutes, too short to rank anything), ``--quick`` (150 steps of
0.5 s examples; measured 12 minutes of CPU on one core for every row, so
under 15 minutes on an idle 2-core machine), ``--full`` (1,500 steps of 1 s:
about 3 hours as two ``--rows`` processes on 2 cores; its table is in
``docs/tutorials/predictor.rst``); ``--steps``, ``--seconds``, ``--rows`` and
``--learning-rate`` (and ``--black-box-learning-rate``, ``--clip-norm``,
``--proxy-steps``) override the size's values.
"""

from __future__ import annotations

import argparse
import importlib.util
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from grafx_core import PredictorTrainer, train_proxy
from grafx_core.estimators import SPSA, FiniteDifference, NeuralProxy
from grafx_core.estimators.base import SIGNAL_GRADIENTS

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "style_transfer.py"
SIZES = {  # steps, seconds per example, proxy training steps
    "smoke": (8, 0.25, 20),
    "quick": (150, 0.5, 150),
    "full": (1500, 1.0, 2000),
}
SEAM_SIGNAL_GRADIENTS = ("spectral-ratio", "fft-ratio", "smooth-gain", "diagonal", "auto")


def _example() -> Any:
    spec = importlib.util.spec_from_file_location("style_transfer", EXAMPLE)
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    sys.modules["style_transfer"] = module
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@dataclass
class Row:
    """One training run: a label and how to make the chain's processors (given the proxies)."""

    label: str
    processors: Callable[[dict[str, Any]], dict[str, Any]]
    black_box: bool = True
    needs_proxies: bool = False


def rows(st: Any) -> list[Row]:
    """The table's rows: autodiff, then every black-box estimator and signal gradient available."""
    found = [
        Row("autodiff", lambda _: st.dsp_processors(), black_box=False),
        Row("finite differences, signal: straight-through",
            lambda _: st.black_box_processors(lambda t: FiniteDifference(), "straight-through")),
        Row("SPSA, signal: straight-through",
            lambda _: st.black_box_processors(lambda t: SPSA(samples=1, seed=0), "straight-through")),
        Row("SPSA, signal: SPSA",
            lambda _: st.black_box_processors(lambda t: SPSA(samples=1, seed=0), "spsa")),
        Row("neural proxy, signal: proxy",
            lambda proxies: st.black_box_processors(lambda t: NeuralProxy(proxies[t]), "proxy"), needs_proxies=True),
    ]
    # The signal gradients computed from what the forward pass saw, where this grafx-core has them:
    # with SPSA for the parameters (cheap), and the automatic choice with finite differences too.
    seam = [s for s in SEAM_SIGNAL_GRADIENTS if s in SIGNAL_GRADIENTS or s == "auto" and "spectral-ratio" in SIGNAL_GRADIENTS]
    for signal in seam:
        found.append(Row(f"SPSA, signal: {signal}",
                         lambda _, s=signal: st.black_box_processors(lambda t: SPSA(samples=1, seed=0), s)))
    if "auto" in seam:
        found.append(Row("finite differences, signal: auto",
                         lambda _: st.black_box_processors(lambda t: FiniteDifference(), "auto")))
    return found


def train_proxies(st: Any, task: Any, steps: int) -> dict[str, Any]:
    """One proxy per node type, trained on the training voice at levels from -12 to +6 dB."""
    levels = torch.tensor([-12.0, -6.0, 0.0, 6.0]).reshape(-1, 1, 1)
    signals = task.train_audio[None] * 10 ** (levels / 20)
    boxes = st.black_box_processors(lambda t: FiniteDifference(), "none")
    return {t: train_proxy(boxes[t], steps=steps, batch_size=8, length=4096, signals=signals, learning_rate=3e-3,
                           seed=0, progress=False, hidden=16, layers=5).proxy for t in st.CHAIN}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_true", help="about 15 minutes on 2 cores")
    size.add_argument("--full", action="store_true", help="the full run (hours)")
    parser.add_argument("--steps", type=int, help="training steps per row")
    parser.add_argument("--seconds", type=float, help="length of each example")
    parser.add_argument("--proxy-steps", type=int, help="training steps of each neural proxy")
    parser.add_argument("--learning-rate", type=float, default=1e-3, help="Adam's learning rate for autodiff")
    parser.add_argument("--black-box-learning-rate", type=float,
                        help="the black-box rows' learning rate (default: --learning-rate)")
    parser.add_argument("--clip-norm", type=float, default=1.0)
    parser.add_argument("--rows", help="semicolon-separated substrings: run only the rows whose label has one")
    parser.add_argument("--budget", choices=("steps", "time"), default="steps",
                        help="equal steps per row (default), or every row gets autodiff's training time")
    args = parser.parse_args()
    name = "quick" if args.quick else "full" if args.full else "smoke"
    steps, seconds, proxy_steps = SIZES[name]
    steps = args.steps or steps
    seconds = args.seconds or seconds
    proxy_steps = args.proxy_steps or proxy_steps
    black_box_rate = args.black_box_learning_rate or args.learning_rate
    torch.set_num_threads(1)

    st = _example()
    task = st.make_task(seconds, batch_size=8)
    test = task.test_set()
    selected = rows(st)
    if args.rows:
        wanted = [w.strip() for w in args.rows.split(";")]
        selected = [r for r in selected if r.label == "autodiff" or any(w in r.label for w in wanted)]
    budget = "equal steps" if args.budget == "steps" else "equal time: autodiff's for its steps"
    print(f"estimator table ({name}: {steps} steps of 8 x {seconds:g} s at {st.SAMPLE_RATE} Hz, "
          f"lr {args.learning_rate:g} (black boxes {black_box_rate:g}), clip {args.clip_norm:g}; {budget})",
          flush=True)

    proxies: dict[str, Any] = {}
    proxy_seconds = 0.0
    if any(r.needs_proxies for r in selected):
        start = time.perf_counter()
        proxies = train_proxies(st, task, proxy_steps)
        proxy_seconds = time.perf_counter() - start

    results = []
    time_budget: float | None = None  # autodiff's training seconds, under --budget time
    for row in selected:
        processors = row.processors(proxies)
        model = st.make_predictor(task, processors, seed=0)
        rate = black_box_rate if row.black_box else args.learning_rate
        trainer = PredictorTrainer(model, task.loss(processors), learning_rate=rate,
                                   clip_norm=args.clip_norm, seed=0)
        start = time.perf_counter()
        if time_budget is None:
            trainer.fit(steps, progress=False)
        else:
            while trainer.step < 1 or time.perf_counter() - start < time_budget:
                trainer.train_step()
        elapsed = time.perf_counter() - start
        if args.budget == "time" and row.label == "autodiff":
            time_budget = elapsed
        charged = proxy_seconds if row.needs_proxies and args.budget == "steps" else 0.0
        per_step = (elapsed + charged) / trainer.step
        loss = task.evaluate(model, processors, test)
        results.append((row, loss, per_step, trainer.step))
        print(f"  done: {row.label}: {loss:.3f} ({trainer.step} steps, {per_step:.2f} s/step)", file=sys.stderr,
              flush=True)

    autodiff = next(loss for row, loss, _, _ in results if row.label == "autodiff")
    width = max(len(row.label) for row, _, _, _ in results)
    steps_column = args.budget == "time"
    print(f"{'estimator':<{width}}  test loss  vs autodiff  s/step" + ("  steps" if steps_column else ""))
    for row, loss, per_step, taken in results:
        print(f"{row.label:<{width}}  {loss:9.3f}  {loss / autodiff:10.2f}x  {per_step:6.2f}"
              + (f"  {taken:5d}" if steps_column else ""))
    print(f"{'untreated input':<{width}}  {task.untreated_loss(test):9.3f}")
    black = [loss for row, loss, _, _ in results if row.black_box]
    if black:
        print(f"best black-box / autodiff: {min(black) / autodiff:.2f}")


if __name__ == "__main__":
    main()
