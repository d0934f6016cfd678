"""Tutorial: GRAFX's introductory example, ported (executed by the test suite; see coming_from_grafx.rst)."""

# %% graph
from grafx_core import Graph

graph = Graph()
for track in range(3):
    source = graph.add("in", f"track_{track}")
    first, last = graph.add_serial_chain(["eq", "compressor", "reverb"])
    graph.connect(source, first)
mix = graph.add("out", "mix")
for reverb in graph.nodes_of_type("reverb"):
    graph.connect(reverb, mix)
print(graph)

# %% processors
import grafx_dsp as dsp

processors = {
    "eq": dsp.FIREQ(),  # GRAFX's ZeroPhaseFIREqualizer
    "compressor": dsp.Compressor(),  # ApproxCompressor
    "reverb": dsp.NoiseReverb(),  # MidSideFilteredNoiseReverb
}

# %% parameters
from grafx_core import create_empty_parameters

parameters = create_empty_parameters(graph, processors)  # the graph first
print(parameters)

# %% printed
PRINTED = """\
ParameterModules(
  (eq): ParameterTree(  (gain_db): Parameter containing: [torch.FloatTensor of size 3x32])
  (compressor): ParameterTree(
      (threshold_db): Parameter containing: [torch.FloatTensor of size 3x1]
      (ratio): Parameter containing: [torch.FloatTensor of size 3x1]
      (knee_db): Parameter containing: [torch.FloatTensor of size 3x1]
      (attack_ms): Parameter containing: [torch.FloatTensor of size 3x1]
      (release_ms): Parameter containing: [torch.FloatTensor of size 3x1]
      (makeup_db): Parameter containing: [torch.FloatTensor of size 3x1]
  )
  (reverb): ParameterTree(
      (gain_db): Parameter containing: [torch.FloatTensor of size 3x2x8]
      (decay_s): Parameter containing: [torch.FloatTensor of size 3x2x8]
  )
)
"""
# %% check printed
assert str(parameters) + "\n" == PRINTED
assert float(parameters["compressor"]["ratio"].detach()[0]) == 4.0  # each processor's default, not noise

# %% random
import torch

noisy = create_empty_parameters(graph, processors, std=1.0, generator=torch.Generator().manual_seed(0))

# %% render
from grafx_core import compile_render

plan = compile_render(graph, processors)  # GRAFX's reorder_for_fast_render + prepare_render, once
for stage in plan.stages:
    print(stage.type, stage.nodes)
sources = torch.randn(3, 2, 2**14) * 0.1  # one row per "in" node, in id order
output, aux = plan(parameters, sources)
print(output.shape)  # [1 "out" node, 2 channels, 2**14 samples]
assert output.shape == (1, 2, 2**14)
assert [stage.type for stage in plan.stages] == ["eq", "compressor", "reverb", "out"]

# %% fixed
from grafx_core import render_order

stages = render_order(graph, "fixed", type_sequence=["in", "eq", "compressor", "reverb", "out"])
fixed, _ = compile_render(graph, processors, stages=stages)(parameters, sources)
torch.testing.assert_close(fixed, output)

# %% batches
from grafx_core import disjoint_union

union, node_maps = disjoint_union([graph, graph])  # GRAFX's batch_grafx
batched, _ = plan(parameters, sources.expand(4, -1, -1, -1))  # a batch of sources: [batch, in, C, L]
assert len(union) == 2 * len(graph) and batched.shape == (4, 1, 2, 2**14)

# %% aux
class GainStaged(torch.nn.Module):
    """GRAFX's GainStagingRegularization: the wrapped processor's output and a
    scalar, the whole call's mean log-energy change."""

    def __init__(self, processor):
        super().__init__()
        self.processor = processor

    def parameter_size(self):
        return self.processor.parameter_size()

    def default_parameters(self):
        return self.processor.default_parameters()

    def forward(self, x, **parameters):
        y = self.processor(x, **parameters)
        energy = lambda s: s.pow(2).mean((1, 2)).add(1e-8).log()  # noqa: E731
        return y, {"gain_reg": (energy(y) - energy(x)).abs().mean()}


staged = {**processors, "eq": GainStaged(processors["eq"])}
_, aux = compile_render(graph, staged)(noisy, sources)  # aux: node id -> {name: value}
gain_reg = sum(values["gain_reg"] for values in aux.values() if "gain_reg" in values)
print(f"gain_reg {float(gain_reg.detach()):.4f} over {len(graph.nodes_of_type('eq'))} EQ nodes")
assert float(gain_reg.detach()) > 0

# %% edit
node_map = graph.remove(graph.nodes_of_type("compressor")[0])  # the first strip loses its compressor
assert len(graph.nodes_of_type("compressor")) == 2 and node_map.count(None) == 1

# %% order
try:
    create_empty_parameters(processors, graph)  # GRAFX's order
except TypeError as error:
    print(error)
