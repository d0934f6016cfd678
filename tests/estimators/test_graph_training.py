"""A graph mixing autograd and black-box nodes trains end to end."""

import numpy as np
import pytest
import torch

from grafx_core import Graph, compile_render, create_empty_parameters
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec


class Smooth(torch.nn.Module):
    """Autograd node: y[t] = (1 - b) x[t] + b x[t - 1], b = 0.9 sigmoid(coef) (unit DC gain)."""

    def parameter_size(self):
        return {"coef": 1}

    def forward(self, x, coef):
        b = 0.9 * torch.sigmoid(coef)[:, :, None]
        return (1 - b) * x + b * torch.nn.functional.pad(x, (1, 0))[..., :-1]


def drive(audio, sample_rate, drive_db):
    return np.tanh(audio * 10 ** (drive_db / 20))


def makeup(audio, sample_rate, gain_db):
    return audio * 10 ** (gain_db / 20)


@pytest.mark.usefixtures("one_torch_thread")
def test_gradient_descent_recovers_a_black_box_drive_and_gain_chain_behind_an_autograd_node():
    # Three tracks in -> smooth (autograd) -> drive (numpy) -> makeup gain (numpy) -> out; each stage is one
    # batched call of three nodes. Black boxes: central differences for their parameters, straight-through
    # for the signal so that the smoothing filter upstream is trained too.
    processors = {
        "smooth": Smooth(),
        "drive": BlackBoxProcessor(drive, [ParameterSpec("drive_db", 0.0, 24.0, 6.0)],
                                   signal_gradient="straight-through", workers=1),
        "makeup": BlackBoxProcessor(makeup, [ParameterSpec("gain_db", -24.0, 12.0, 0.0)],
                                    signal_gradient="straight-through", workers=1),
    }
    graph = Graph()
    for _ in range(3):
        chain = [graph.add(t) for t in ("in", "smooth", "drive", "makeup", "out")]
        for a, b in zip(chain, chain[1:]):
            graph.connect(a, b)
    plan = compile_render(graph, processors)
    sources = 0.8 * torch.randn(3, 1, 1024, generator=torch.Generator().manual_seed(0))

    hidden = create_empty_parameters(graph, processors)
    true_b, true_drive, true_gain = [0.242, 0.560, 0.736], [3.0, 12.0, 18.0], [-3.0, -9.0, 2.0]
    with torch.no_grad():
        hidden["smooth"]["coef"].copy_(torch.logit(torch.tensor(true_b) / 0.9).reshape(3, 1))
        hidden["drive"]["drive_db"].copy_(processors["drive"].raw_parameters(drive_db=true_drive)["drive_db"])
        hidden["makeup"]["gain_db"].copy_(processors["makeup"].raw_parameters(gain_db=true_gain)["gain_db"])
        target, _ = plan(hidden, sources)

    params = create_empty_parameters(graph, processors)  # defaults: b = 0.45, drive 6 dB, gain 0 dB
    optimiser = torch.optim.Adam(params.parameters(), lr=0.1)
    for _ in range(150):
        y, _ = plan(params, sources)
        loss = (y - target).pow(2).mean()
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()

    with torch.no_grad():
        b = 0.9 * torch.sigmoid(params["smooth"]["coef"]).flatten()
        drive_db = processors["drive"].natural_parameters(drive_db=params["drive"]["drive_db"])["drive_db"]
        gain_db = processors["makeup"].natural_parameters(gain_db=params["makeup"]["gain_db"])["gain_db"]
    # Stated tolerance: 0.25 dB for the black-box parameters, 0.01 for the filter (measured: 0.02 dB, 1e-3).
    np.testing.assert_allclose(drive_db.numpy(), true_drive, atol=0.25)
    np.testing.assert_allclose(gain_db.numpy(), true_gain, atol=0.25)
    np.testing.assert_allclose(b.numpy(), true_b, atol=0.01)
