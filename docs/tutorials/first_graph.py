"""Tutorial: a first graph (executed by the test suite; see first_graph.rst)."""

# %% processor
import torch


class Gain(torch.nn.Module):
    """y = x * 10 ** (gain_db / 20), one gain per node."""

    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):  # x: [nodes, channels, samples], gain_db: [nodes, 1]
        return x * torch.pow(10.0, gain_db / 20)[..., None]


# %% graph
from grafx_core import Graph

graph = Graph()
vocals, guitar = graph.add("in", "vocals"), graph.add("in", "guitar")
vocals_gain, guitar_gain = graph.add("gain", "vocals_gain"), graph.add("gain", "guitar_gain")
pan = graph.add("dsp:stereo_gain", "guitar_pan")
master = graph.add("out", "master")
graph.connect(vocals, vocals_gain)
graph.connect(guitar, guitar_gain)
graph.connect(guitar_gain, pan)
graph.connect(vocals_gain, master)  # two edges into one inlet are summed
graph.connect(pan, master)
print(graph)

# %% parameters
from grafx_core import create_empty_parameters, get_processor

processors = {"gain": Gain(), "dsp:stereo_gain": get_processor("dsp:stereo_gain")}
parameters = create_empty_parameters(graph, processors)
print({t: {k: tuple(v.shape) for k, v in p.items()} for t, p in parameters.items()})
# row k of "gain" belongs to graph.nodes_of_type("gain")[k]:
assert graph.nodes_of_type("gain") == [vocals_gain, guitar_gain]

# %% render
from grafx_core import render

torch.manual_seed(0)
sources = torch.randn(2, 2, 22050) * 0.1  # one row per "in" node, in id order
mix, aux = render(graph, processors, parameters, sources)
print(mix.shape)  # [1, 2, 22050]: one row per "out" node
assert mix.shape == (1, 2, 22050)

# %% fit
from grafx_core import compile_render

plan = compile_render(graph, processors)  # schedule and index once, render many times
print([(stage.type, stage.nodes) for stage in plan.stages])
hidden = {"gain": {"gain_db": torch.tensor([[-6.0], [3.0]])},
          "dsp:stereo_gain": {"gain_db": torch.tensor([[-2.0]]), "pan": torch.tensor([[0.5]])}}
with torch.no_grad():
    target, _ = plan(hidden, sources)
optimiser = torch.optim.Adam(parameters.parameters(), lr=0.1)
for step in range(300):
    optimiser.zero_grad()
    loss = (plan(parameters, sources)[0] - target).pow(2).mean()
    loss.backward()
    optimiser.step()
print(f"loss {loss.item():.2e}, pan {parameters['dsp:stereo_gain']['pan'].item():.3f}")
assert loss.item() < 1e-6 and abs(parameters["dsp:stereo_gain"]["pan"].item() - 0.5) < 0.01

# %% batch
batch = torch.randn(4, 2, 2, 22050) * 0.1  # four source sets through the same graph
mixes, _ = plan(parameters, batch)
assert mixes.shape == (4, 1, 2, 22050)
per_example = {"gain": {"gain_db": torch.zeros(4, 2, 1)},  # [batch, nodes, 1]: one set per example
               "dsp:stereo_gain": {"gain_db": torch.zeros(4, 1, 1), "pan": torch.linspace(-1, 1, 4).reshape(4, 1, 1)}}
mixes, _ = plan(per_example, batch)

# %% files
import os
import tempfile

from grafx_core import load_parameters, save_parameters

with tempfile.TemporaryDirectory() as folder:
    graph.save(os.path.join(folder, "graph.json"))
    save_parameters(parameters, os.path.join(folder, "params.json"))
    again = Graph.load(os.path.join(folder, "graph.json"))
    loaded = load_parameters(os.path.join(folder, "params.json"))
assert again == graph
assert torch.equal(loaded["gain"]["gain_db"], parameters["gain"]["gain_db"])
