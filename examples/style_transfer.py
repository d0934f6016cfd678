"""Audio production style transfer (DeepAFx-ST) at laptop scale.

Given a recording and a reference (other audio processed by hidden settings of
a chain: parametric EQ -> compressor, then a saturating bus), a
:class:`grafx_core.ParameterPredictor` predicts the settings that make the
recording sound like the reference. Training examples are made on the fly:
two crops of a few seconds of synthetic speech (formant-filtered glottal
pulses and fricative noise, made here), hidden settings drawn uniformly across
the ranges below, the reference rendered from the second crop and the target
from the first; the loss compares the chain rendered with the predicted
settings on the first crop to the target (multi-resolution STFT). The test
set comes from a synthetic voice that training never hears.

The chain can be the grafx-dsp processors (autograd), or the same processors
as black boxes (``BlackBoxProcessor`` over their numpy rendering) whose
gradients come from an estimator: ``bench/estimator_table.py`` trains both
ways and compares them.

Run: python examples/style_transfer.py [--steps 300] [--seconds 1.0] [--output DIR]
"""

from __future__ import annotations

import argparse
import functools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import scipy.signal
import torch

from grafx_core import (
    BlackBoxProcessor,
    Graph,
    ParameterPredictor,
    ParameterRange,
    ParameterSpec,
    PredictorTrainer,
    compile_render,
    get_processor,
    multi_resolution_stft_loss,
    write_wav,
)
from grafx_core.predictor import head_specs

SAMPLE_RATE = 16000
FFT_SIZES = (256, 1024, 2048)

# Every control of the chain: (name, low, high, scale). Hidden settings are drawn uniformly across these
# ranges (in log for "log"), and the predictor predicts inside them.
SETTINGS: dict[str, tuple[tuple[str, float, float, str], ...]] = {
    "eq": (
        ("low_shelf_cutoff_hz", 50.0, 400.0, "log"),
        ("low_shelf_q", 0.5, 1.0, "linear"),
        ("low_shelf_gain_db", -12.0, 12.0, "linear"),
        ("peak_cutoff_hz", 150.0, 3000.0, "log"),
        ("peak_q", 0.5, 3.0, "log"),
        ("peak_gain_db", -12.0, 12.0, "linear"),
        ("high_shelf_cutoff_hz", 2000.0, 7200.0, "log"),
        ("high_shelf_q", 0.5, 1.0, "linear"),
        ("high_shelf_gain_db", -12.0, 12.0, "linear"),
    ),
    "compressor": (
        ("threshold_db", -40.0, -5.0, "linear"),
        ("ratio", 1.5, 8.0, "log"),
        ("knee_db", 0.0, 12.0, "linear"),
        ("attack_ms", 1.0, 50.0, "log"),
        ("release_ms", 20.0, 300.0, "log"),
        ("makeup_db", -6.0, 12.0, "linear"),
    ),
    "bus": (("drive_db", -6.0, 18.0, "linear"),),
}
CHAIN = ("eq", "compressor", "bus")


def dsp_processors(sample_rate: float = SAMPLE_RATE) -> dict[str, torch.nn.Module]:
    """The chain's grafx-dsp processors (autograd): one-peak parametric EQ, compressor, tanh drive."""
    return {
        "eq": get_processor("dsp:parametric_eq", n_peaks=1, sample_rate=sample_rate),
        "compressor": get_processor("dsp:compressor", sample_rate=sample_rate),
        "bus": get_processor("dsp:distortion"),
    }


def predictor_ranges() -> dict[str, dict[str, ParameterRange]]:
    """:data:`SETTINGS` as the predictor's ranges for the autograd chain."""
    return {t: {name: ParameterRange(low, high, "", scale) for name, low, high, scale in rows}
            for t, rows in SETTINGS.items()}


def _render_item(processor: torch.nn.Module, audio: np.ndarray, sample_rate: float, **natural: float) -> np.ndarray:
    params = {name: torch.tensor([[value]], dtype=torch.float32) for name, value in natural.items()}
    with torch.no_grad():
        return processor(torch.from_numpy(np.array(audio))[None], **params)[0].numpy()


def black_box_processors(estimator: Callable[[str], Any], signal_gradient: str,
                         sample_rate: float = SAMPLE_RATE) -> dict[str, BlackBoxProcessor]:
    """The same chain as black boxes: each node renders its items one by one through the grafx-dsp
    processor from numpy, so torch sees nothing of it; its gradient comes from
    ``estimator(node_type)`` (an estimator or a registered name) with the given signal gradient.

    Controls span :data:`SETTINGS` and default to where the autograd chain's predictor starts,
    so a black-box predictor's raw outputs start and move exactly as the autograd one's do.
    """
    processors = dsp_processors(sample_rate)
    start = {(h.node_type, h.path[0]): float(h.squash(h.initial_output()[None]).reshape(-1)[0])
             for h in head_specs(chain_graph(), processors, predictor_ranges())}
    out = {}
    for node_type, rows in SETTINGS.items():
        specs = [ParameterSpec(name, low, high, default=start[node_type, name], scale=scale)
                 for name, low, high, scale in rows]
        out[node_type] = BlackBoxProcessor(functools.partial(_render_item, processors[node_type]), specs,
                                           sample_rate=sample_rate, estimator=estimator(node_type),
                                           signal_gradient=signal_gradient, workers=1, name=node_type)
    return out


def chain_graph() -> Graph:
    """in -> eq -> compressor -> bus -> out."""
    graph = Graph()
    nodes = [graph.add("in", "input"), *(graph.add(t, t) for t in CHAIN), graph.add("out", "output")]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a, b)
    return graph


def speech_like(seconds: float, sample_rate: float = SAMPLE_RATE, seed: int = 0) -> torch.Tensor:
    """A few seconds of synthetic speech, ``[1, samples]`` float32 peaking at 0.5.

    Syllables of 0.12-0.35 s: mostly voiced (band-limited glottal pulses on a
    gliding pitch around the voice's own, through three formant resonators
    that change every syllable), some fricative (high-passed noise); each
    with its own level (+-6 dB) and a raised-cosine envelope, separated by
    short pauses. ``seed`` picks the voice and the words.
    """
    rng = np.random.default_rng(seed)
    total = int(seconds * sample_rate)
    out = np.zeros(total)
    voice_hz = rng.uniform(100.0, 200.0)
    start = 0
    while start < total:
        length = int(rng.uniform(0.12, 0.35) * sample_rate)
        t = np.arange(length) / sample_rate
        if rng.random() < 0.8:
            f0 = voice_hz * rng.uniform(0.85, 1.15) * (1 + rng.uniform(-0.15, 0.15) * t / t[-1])
            phase = 2 * np.pi * np.cumsum(f0) / sample_rate
            harmonics = np.arange(1, int(sample_rate / 2 / f0.max()))
            source = (np.sin(np.outer(phase, harmonics)) / harmonics).sum(axis=1)
            syllable = np.zeros(length)
            for formant, low, high in ((0, 300.0, 900.0), (1, 900.0, 2600.0), (2, 2400.0, 3400.0)):
                centre = rng.uniform(low, high)
                b, a = scipy.signal.iirpeak(centre, centre / rng.uniform(60.0, 150.0), fs=sample_rate)
                syllable += scipy.signal.lfilter(b, a, source) / (formant + 1)
        else:
            sos = scipy.signal.butter(4, rng.uniform(2500.0, 5000.0), "highpass", fs=sample_rate, output="sos")
            syllable = 0.3 * scipy.signal.sosfilt(sos, rng.standard_normal(length))
        envelope = np.sin(np.pi * np.arange(length) / length) ** 0.5
        level = 10 ** (rng.uniform(-6.0, 6.0) / 20)
        end = min(total, start + length)
        out[start:end] += (level * envelope * syllable / np.abs(syllable).max())[: end - start]
        start = end + int(rng.uniform(0.03, 0.15) * sample_rate)
    out += 1e-3 * rng.standard_normal(total)  # room noise
    return torch.from_numpy(0.5 * out / np.abs(out).max()).float()[None]


def hidden_settings(batch: int, generator: torch.Generator) -> dict[str, dict[str, torch.Tensor]]:
    """Settings drawn uniformly across :data:`SETTINGS`, each ``[batch, 1, 1]`` (one node per type)."""
    tree: dict[str, dict[str, torch.Tensor]] = {}
    for node_type, rows in SETTINGS.items():
        tree[node_type] = {}
        for name, low, high, scale in rows:
            u = torch.rand(batch, 1, 1, generator=generator)
            tree[node_type][name] = (low * (high / low) ** u) if scale == "log" else low + u * (high - low)
    return tree


@dataclass
class StyleTask:
    """Makes style-transfer examples from a training and a test recording.

    Attributes:
        train_audio, test_audio: ``[1, samples]`` recordings to crop from.
        length: samples per crop.
        batch_size: examples per training step.
    """

    train_audio: torch.Tensor
    test_audio: torch.Tensor
    length: int
    batch_size: int

    def __post_init__(self) -> None:
        self.graph = chain_graph()
        self.reference_plan = compile_render(self.graph, dsp_processors())

    def examples(self, audio: torch.Tensor, count: int, generator: torch.Generator
                 ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(recording, reference, target)``, each ``[count, 1, length]``: two crops per example,
        the reference and the target rendered from them with the same hidden settings."""
        starts = torch.randint(audio.shape[-1] - self.length, (2, count), generator=generator)
        gains = 10 ** ((12 * torch.rand(2, count, 1, 1, generator=generator) - 6) / 20)
        crops = [torch.stack([audio[:, s:s + self.length] for s in row.tolist()]) * g for row, g in zip(starts, gains)]
        settings = hidden_settings(count, generator)
        with torch.no_grad():
            reference, _ = self.reference_plan(settings, crops[1][:, None])
            target, _ = self.reference_plan(settings, crops[0][:, None])
        return crops[0], reference[:, 0], target[:, 0]

    def test_set(self, count: int = 32, seed: int = 1234) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """A fixed set of ``count`` examples from the test recording."""
        return self.examples(self.test_audio, count, torch.Generator().manual_seed(seed))

    def loss(self, processors: Mapping[str, Any]) -> Callable[[torch.nn.Module, torch.Generator], torch.Tensor]:
        """The training loss through the chain made of ``processors``, for :class:`PredictorTrainer`."""
        plan = compile_render(self.graph, processors)

        def step_loss(model: torch.nn.Module, generator: torch.Generator) -> torch.Tensor:
            recording, reference, target = self.examples(self.train_audio, self.batch_size, generator)
            y, _ = plan(model(recording, reference), recording[:, None])
            return multi_resolution_stft_loss(y[:, 0], target, FFT_SIZES)

        return step_loss

    def evaluate(self, model: torch.nn.Module, processors: Mapping[str, Any],
                 test: tuple[torch.Tensor, torch.Tensor, torch.Tensor], chunk: int = 8) -> float:
        """Mean test loss of ``model``'s predictions rendered through ``processors``."""
        plan = compile_render(self.graph, processors)
        recording, reference, target = test
        total = 0.0
        model.eval()
        with torch.no_grad():
            for i in range(0, len(recording), chunk):
                y, _ = plan(model(recording[i:i + chunk], reference[i:i + chunk]), recording[i:i + chunk, None])
                total += float(multi_resolution_stft_loss(y[:, 0], target[i:i + chunk], FFT_SIZES)) * len(y)
        return total / len(recording)

    def untreated_loss(self, test: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> float:
        """The test loss of the recording itself, unprocessed."""
        recording, _, target = test
        return float(multi_resolution_stft_loss(recording, target, FFT_SIZES))


def make_task(seconds: float = 1.0, batch_size: int = 8, audio_seconds: float = 8.0, voices: int = 4) -> StyleTask:
    """The task: ``audio_seconds`` of training speech from ``voices`` voices (seeds 0, 1, ...),
    and half as much test speech from another voice (seed 1000)."""
    train = torch.cat([speech_like(audio_seconds / voices, seed=k) for k in range(voices)], dim=-1)
    return StyleTask(train, speech_like(audio_seconds / 2, seed=1000), int(seconds * SAMPLE_RATE), batch_size)


def make_predictor(task: StyleTask, processors: Mapping[str, Any], seed: int = 0) -> ParameterPredictor:
    """The predictor for ``processors``: declared ranges narrowed to :data:`SETTINGS` for the
    autograd chain; black boxes take raw values that their specs map into the same ranges."""
    ranges = predictor_ranges() if not isinstance(processors["eq"], BlackBoxProcessor) else None
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ParameterPredictor(task.graph, processors, inputs=2, sample_rate=SAMPLE_RATE, ranges=ranges,
                                  n_fft=512, n_mels=48, width=64, layers=4, embedding=64, hidden=128)


def run(steps: int = 300, seconds: float = 1.0, batch_size: int = 8, learning_rate: float = 1e-3,
        seed: int = 0, output: str | None = None, progress: bool = True) -> dict[str, float]:
    """Train on the autograd chain and report test losses (and write WAVs to ``output``)."""
    task = make_task(seconds, batch_size)
    processors = dsp_processors()
    model = make_predictor(task, processors, seed)
    test = task.test_set()
    report = {"untreated": task.untreated_loss(test), "before": task.evaluate(model, processors, test)}
    trainer = PredictorTrainer(model, task.loss(processors), learning_rate=learning_rate, clip_norm=1.0, seed=seed)
    start = time.perf_counter()
    trainer.fit(steps, progress=progress)
    report["seconds_per_step"] = (time.perf_counter() - start) / max(steps, 1)
    report["after"] = task.evaluate(model, processors, test)
    if output is not None:
        folder = Path(output)
        folder.mkdir(parents=True, exist_ok=True)
        recording, reference, target = (t[:4] for t in test)
        with torch.no_grad():
            y, _ = compile_render(task.graph, processors)(model(recording, reference), recording[:, None])
        for name, audio in (("recording", recording), ("reference", reference), ("target", target),
                            ("predicted", y[:, 0])):
            write_wav(folder / f"{name}.wav", torch.cat(list(audio), dim=-1), SAMPLE_RATE)
    return report


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--seconds", type=float, default=1.0, help="length of each training example")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--learning-rate", type=float, default=1e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", help="folder for recording/reference/target/predicted WAVs (4 test examples)")
    args = parser.parse_args()
    torch.set_num_threads(min(2, torch.get_num_threads()))
    report = run(args.steps, args.seconds, args.batch_size, args.learning_rate, args.seed, args.output)
    print(f"test loss: untreated input {report['untreated']:.3f}, untrained predictor {report['before']:.3f}, "
          f"trained {report['after']:.3f} ({report['seconds_per_step']:.2f} s/step)")


if __name__ == "__main__":
    main()
