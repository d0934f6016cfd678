"""Tutorial: training a parameter predictor (executed by the test suite; see predictor.rst)."""

# %% graph
import numpy as np
import torch

from grafx_core import BlackBoxProcessor, Control, Graph, ParameterSpec, compile_render


class Gain(torch.nn.Module):
    """An autograd processor that declares its parameter's range."""

    def controls(self):
        return {"gain_db": Control(low=-12.0, high=12.0, default=0.0, unit="dB")}

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


def batch(generator, size=8):
    """Hidden settings, a reference rendered from one signal and the target from another."""
    clean = 0.3 * torch.randn(2, size, 1, 2048, generator=generator)
    hidden = {"gain": {"gain_db": 24 * torch.rand(size, 1, 1, generator=generator) - 12},
              "drive": {"drive_db": torch.randn(size, 1, 1, generator=generator)}}  # raw: sigmoid -> 0..24 dB
    with torch.no_grad():
        reference, _ = plan(hidden, clean[1][:, None])
        target, _ = plan(hidden, clean[0][:, None])
    return clean[0], reference[:, 0], target[:, 0]


def loss(model, generator):
    """One batch drawn with the step's generator, rendered through the predicted settings."""
    recording, reference, target = batch(generator)
    y, _ = plan(model(recording, reference), recording[:, None])
    return multi_resolution_stft_loss(y[:, 0], target, (256, 1024))


held_out = torch.Generator().manual_seed(1234)
with torch.no_grad():
    before = float(loss(predictor, held_out.manual_seed(1234)))
with tempfile.TemporaryDirectory() as folder:
    checkpoint = os.path.join(folder, "run.pt")
    trainer = PredictorTrainer(predictor, loss, learning_rate=3e-3, clip_norm=1.0, seed=0)
    trainer.fit(30, checkpoint=checkpoint, checkpoint_every=10, progress=False)

    # Later, or after a crash: a new trainer picks the run up where the checkpoint left it.
    resumed = PredictorTrainer(predictor, loss, learning_rate=3e-3, clip_norm=1.0, seed=0)
    resumed.fit(60, checkpoint=checkpoint, progress=False)
with torch.no_grad():
    after = float(loss(predictor, held_out.manual_seed(1234)))
print(f"held-out loss {before:.3f} -> {after:.3f} after {resumed.step} steps")
assert resumed.step == 60 and after < 0.8 * before
