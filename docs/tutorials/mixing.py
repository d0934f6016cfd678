"""Tutorial: analytic and black-box effects in one graph (executed by the test suite; see mixing.rst)."""

# %% sources
import math

import numpy as np
import torch

SAMPLE_RATE = 44100
torch.manual_seed(0)
t = torch.arange(SAMPLE_RATE // 2) / SAMPLE_RATE  # half a second
bass = sum(torch.sin(2 * math.pi * k * 55.0 * t) / k for k in range(1, 8)) * torch.exp(-3 * t)
hits = (torch.rand(t.shape) - 0.5) * 4 * torch.exp(-40 * (t % 0.125))
sources = 0.3 * torch.stack([bass, hits])[:, None, :].expand(2, 2, -1).contiguous()  # [2 tracks, 2 channels, L]

# %% black box
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec


def saturate(audio, sample_rate, drive_db, mix):
    """Any numpy code: one item [channels, samples] in, one out."""
    return (1 - mix) * audio + mix * np.tanh(audio * 10 ** (drive_db / 20))


saturator = BlackBoxProcessor(
    saturate,
    [ParameterSpec("drive_db", 0.0, 24.0, default=6.0), ParameterSpec("mix", 0.0, 1.0, default=0.5)],
    estimator="finite-difference",  # two controls: central differences, 4 extra renders per node
    signal_gradient="straight-through",  # let the EQ before it train
    name="saturate",
)

# %% graph
from grafx_core import Graph, compile_render, get_processor

graph = Graph()
bass_in, drums_in = graph.add("in", "bass"), graph.add("in", "drums")
chain = {"bass": ["dsp:low_shelf", "saturator", "dsp:stereo_gain"],
         "drums": ["pedalboard:compressor", "dsp:stereo_gain"]}
out = graph.add("out", "mix")
for source, name in ((bass_in, "bass"), (drums_in, "drums")):
    node = source
    for node_type in chain[name]:
        nxt = graph.add(node_type, f"{name}_{node_type.split(':')[-1]}")
        graph.connect(node, nxt)
        node = nxt
    graph.connect(node, out)

processors = {t: get_processor(t) for t in graph.processor_types() if t != "saturator"}
processors["saturator"] = saturator
for node_type, processor in processors.items():
    print(f"{node_type:24s} gradient: {processor.gradient_kind}")
plan = compile_render(graph, processors)

# %% target
compressor = processors["pedalboard:compressor"]
hidden = {
    "dsp:low_shelf": {"cutoff_hz": torch.tensor([[120.0]]), "q": torch.tensor([[0.7]]),
                      "gain_db": torch.tensor([[4.0]])},
    "saturator": saturator.raw_parameters(drive_db=12.0, mix=0.7),  # natural units -> raw
    "dsp:stereo_gain": {"gain_db": torch.tensor([[-3.0], [-6.0]]), "pan": torch.tensor([[-0.3], [0.4]])},
    "pedalboard:compressor": compressor.raw_parameters(threshold_db=-30.0, ratio=6.0, attack_ms=5.0,
                                                       release_ms=80.0),
}
with torch.no_grad():
    target = plan(hidden, sources)[0]

# %% fit
from grafx_core import create_empty_parameters

parameters = create_empty_parameters(graph, processors)  # every processor's defaults
window = torch.hann_window(1024)


def loss_fn(y):
    spectrum = lambda x: torch.stft(x.reshape(-1, x.shape[-1]), 1024, 256, window=window, return_complex=True).abs()  # noqa: E731
    return (torch.log(spectrum(y) + 1e-4) - torch.log(spectrum(target) + 1e-4)).abs().mean()


optimiser = torch.optim.Adam(parameters.parameters(), lr=0.1)
losses = []
for step in range(60):
    optimiser.zero_grad()
    loss = loss_fn(plan(parameters, sources)[0])
    loss.backward()  # autograd for dsp nodes, finite differences for the two black boxes
    optimiser.step()
    losses.append(loss.item())
print(f"loss {losses[0]:.3f} -> {losses[-1]:.3f}")
assert losses[-1] < 0.3 * losses[0]

# %% inspect
natural = compressor.natural_parameters(**parameters["pedalboard:compressor"])
print({k: round(v.item(), 2) for k, v in natural.items()})
print({k: round(v.item(), 2) for k, v in saturator.natural_parameters(**parameters["saturator"]).items()})
print("pans:", parameters["dsp:stereo_gain"]["pan"].detach().flatten().tolist())
assert abs(parameters["dsp:stereo_gain"]["pan"][1].item() - 0.4) < 0.1
