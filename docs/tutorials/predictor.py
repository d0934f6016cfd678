"""Tutorial: training a parameter predictor (executed by the test suite; see predictor.rst)."""

# %% graph
import numpy as np
import torch

from grafx_core import BlackBoxProcessor, Graph, ParameterRange, ParameterSpec, compile_render


class Gain(torch.nn.Module):
    """An autograd processor that declares its parameter's range."""

    def parameter_size(self):
        return {"gain_db": 1}

    def parameter_ranges(self):
        return {"gain_db": ParameterRange(-12.0, 12.0, "dB")}

    def forward(self, x, gain_db):  # x: [nodes, C, L], gain_db: [nodes, 1]
        return x * 10 ** (gain_db[..., None] / 20)


def drive(audio, sample_rate, drive_db):  # a numpy effect: a black box to torch
    return np.tanh(audio * 10 ** (drive_db / 20))


processors = {
    "gain": Gain(),
    # Finite differences for drive_db; the gain upstream trains through a straight-through signal gradient.
    "drive": BlackBoxProcessor(drive, [ParameterSpec("drive_db", 0.0, 24.0)], signal_gradient="straight-through",
                               workers=1),
}
graph = Graph()
chain = [graph.add(t) for t in ("in", "gain", "drive", "out")]
for a, b in zip(chain, chain[1:]):
    graph.connect(a, b)
plan = compile_render(graph, processors)

# %% predictor
from grafx_core import ParameterPredictor

torch.manual_seed(0)
predictor = ParameterPredictor(graph, processors, inputs=2, sample_rate=16000,
                               n_fft=256, n_mels=16, width=16, layers=2, embedding=16, hidden=32)
recording, reference = 0.3 * torch.randn(2, 4, 1, 4096)  # four examples, [batch, channels, samples] each
params = predictor(recording, reference)
print({t: {name: list(v.shape) for name, v in p.items()} for t, p in params.items()})
y, _ = plan(params, recording[:, None])  # sources [batch, num_in, channels, samples]
assert -12 <= params["gain"]["gain_db"].min() and params["gain"]["gain_db"].max() <= 12

# %% train
import os
import tempfile

from grafx_core import PredictorTrainer, multi_resolution_stft_loss


def loss(model, generator):
    """One batch drawn with the step's generator: hidden settings, a reference, a target."""
    clean = 0.3 * torch.randn(2, 4, 1, 2048, generator=generator)
    hidden = {"gain": {"gain_db": 24 * torch.rand(4, 1, 1, generator=generator) - 12},
              "drive": {"drive_db": 3 * torch.randn(4, 1, 1, generator=generator)}}  # raw: sigmoid -> 0..24 dB
    with torch.no_grad():
        reference, _ = plan(hidden, clean[1][:, None])
        target, _ = plan(hidden, clean[0][:, None])
    y, _ = plan(model(clean[0], reference[:, 0]), clean[0][:, None])
    return multi_resolution_stft_loss(y, target, (256, 1024))


with tempfile.TemporaryDirectory() as folder:
    checkpoint = os.path.join(folder, "run.pt")
    trainer = PredictorTrainer(predictor, loss, learning_rate=1e-2, clip_norm=1.0, seed=0)
    trainer.fit(20, checkpoint=checkpoint, checkpoint_every=10, progress=False)

    # Later, or after a crash: a new trainer picks the run up where the checkpoint left it.
    resumed = PredictorTrainer(predictor, loss, learning_rate=1e-2, clip_norm=1.0, seed=0)
    resumed.fit(40, checkpoint=checkpoint, progress=False)
first, last = np.mean(resumed.losses[:10]), np.mean(resumed.losses[-10:])
print(f"loss {first:.3f} -> {last:.3f} over {resumed.step} steps")
assert resumed.step == 40 and last < 0.7 * first
