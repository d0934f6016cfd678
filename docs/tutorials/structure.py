"""Tutorial: gradients to the sources, and pruning a graph by soft gates (executed by the test suite)."""

# %% sources
import torch

from grafx_core import Graph, compile_render, get_processor

graph = Graph()
node = graph.add("in", "voice")
for node_type in ("dsp:lowpass", "dsp:distortion"):
    nxt = graph.add(node_type)
    graph.connect(node, nxt)
    node = nxt
graph.connect(node, graph.add("out"))
processors = {t: get_processor(t) for t in graph.processor_types()}
plan = compile_render(graph, processors)
parameters = {"dsp:lowpass": {"cutoff_hz": torch.tensor([[2000.0]]), "q": torch.tensor([[0.7]])},
              "dsp:distortion": {"drive_db": torch.tensor([[12.0]])}}

generator = torch.Generator().manual_seed(0)
original = torch.randn(1, 1, 4096, generator=generator) * 0.2
with torch.no_grad():
    target = plan(parameters, original)[0]

# Recover a source that the chain turns into the target, from a noisy guess.
source = (original + 0.1 * torch.randn(original.shape, generator=generator)).requires_grad_()
optimiser = torch.optim.Adam([source], lr=1e-3)
for step in range(150):
    optimiser.zero_grad()
    loss = (plan(parameters, source)[0] - target).pow(2).mean()
    loss.backward()  # the gradient flows through the filter and the distortion to the source
    optimiser.step()
    if step == 0:
        first = loss.item()
print(f"output error {first:.2e} -> {loss.item():.2e}")
assert loss.item() < 0.1 * first

# %% gates
from grafx_core import create_empty_parameters, gate_processors, gate_values, prune

console = Graph()
bus = console.add("mix", "bus")
for track in range(3):
    node = console.add("in", f"track{track}")
    for node_type in ("dsp:peak", "dsp:distortion"):
        nxt = console.add(node_type, f"{node_type.split(':')[1]}{track}")
        console.connect(node, nxt)
        node = nxt
    console.connect(node, bus)
console.connect(bus, console.add("out", "master"))

plain = {t: get_processor(t) for t in console.processor_types()}
gated = gate_processors(plain, sparsity=0.01)  # y = g * f(x) + (1 - g) * x, g = sigmoid(gate_logit)
params = create_empty_parameters(console, gated)
print({t: list(p.keys()) for t, p in params.items()})

# %% train
sources = torch.randn(3, 2, 4096, generator=generator) * 0.2
hidden = create_empty_parameters(console, gated)
with torch.no_grad():
    hidden["dsp:distortion"]["drive_db"].copy_(torch.tensor([[18.0], [0.0], [0.0]]))
    hidden["dsp:distortion"]["gate_logit"].copy_(torch.tensor([[8.0], [-8.0], [-8.0]]))  # only track 0 distorts
    hidden["dsp:peak"]["gain_db"].copy_(torch.tensor([[6.0], [-4.0], [0.0]]))
    target = compile_render(console, gate_processors(plain, mode="hard"))(hidden, sources)[0]

train_plan = compile_render(console, gated)
optimiser = torch.optim.Adam(params.parameters(), lr=0.1)
for step in range(120):
    optimiser.zero_grad()
    y, aux = train_plan(params, sources)
    loss = (y - target).pow(2).mean() * 100
    penalty = sum(a["gate_sparsity"] for a in aux.values())  # L1 on the gates, per node
    (loss + penalty).backward()
    optimiser.step()
print("gates:", {t: [round(g, 2) for g in v.tolist()] for t, v in gate_values(params).items()})

# %% prune
pruned, pruned_params, node_map = prune(console, params, threshold=0.5)
count = lambda g: sum(n.type in plain for n in g.nodes)  # noqa: E731
print(f"processor nodes: {count(console)} -> {count(pruned)}")
with torch.no_grad():
    hard = compile_render(console, gate_processors(plain, mode="hard"))(params, sources)[0]
    kept = compile_render(pruned, plain)(pruned_params, sources)[0]
torch.testing.assert_close(kept, hard)  # the pruned graph renders what 0/1 gates render
assert count(pruned) < count(console)
