"""Tutorial: the example plugin, installed and used (executed by the test suite; see plugin.rst)."""

# %% discover
from grafx_core import get_processor, list_processors

mine = [info for info in list_processors() if info.plugin == "example"]
for info in mine:
    print(f"{info.name:20s} {info.gradient:9s} {info.distribution_label:28s} {info.description}")
assert {info.name for info in mine} == {"example:soft_clip", "example:crossfade", "example:mid_side"}

# %% check
from grafx_core.testing import check_processor

for info in mine:
    check_processor(get_processor(info.name))  # raises ConformanceError naming the failed check

# %% use
import torch

from grafx_core import Graph, create_empty_parameters, processors_for_graph, render

graph = Graph()
source = graph.add("in", "guitar")
clip = graph.add("example:soft_clip", "drive")
split = graph.add("example:mid_side", "split")
graph.connect(source, clip)
graph.connect(clip, split)
graph.connect(split, graph.add("out", "mid"), outlet="mid")
graph.connect(split, graph.add("out", "side"), outlet="side")

processors = processors_for_graph(graph)  # looked up by the node types: no hand-written dict
parameters = create_empty_parameters(graph, processors)  # drive_db starts at its default, 6 dB
y, _ = render(graph, processors, parameters, torch.randn(1, 2, 1024) * 0.5)
print(y.shape)  # [2 outputs, 1 channel (mid and side are mono), 1024]
assert y.shape == (2, 1, 1024)
