"""Using your LV2 plug-ins: the code of docs/tutorials/lv2_plugins.rst (run by the test suite).

Needs grafx-lv2, liblilv and the Debian packages lsp-plugins-lv2, calf-plugins
and dpf-plugins-lv2 (``make system-packages`` installs them as root).
"""

# %% listing
import json

import torch

from grafx_core import Graph, compile_render, create_empty_parameters, get_processor, list_processors
from grafx_lv2 import port_values

torch.manual_seed(0)
lv2 = [p for p in list_processors() if p.plugin == "lv2"]
print(f"{len(lv2)} LV2 processors, for instance:")
for info in lv2:
    if info.short_name in ("lsp_compressor_stereo", "calf_saturator", "dpf_3_band_eq"):
        print(f"  {info.name:28s} {info.gradient:18s} {info.description}")

# %% ports
comp = get_processor("lv2:lsp_compressor_stereo")
specs = {s.name: s for s in comp.specs}
print(specs["at"].describe(), "|", specs["cr"].describe(), "|", specs["scm"].describe())
assert specs["at"].minimum == 0.0 and specs["at"].scale == "log"  # a log range from 0 ms
assert specs["scm"].values == (0.0, 1.0, 2.0, 3.0) and not specs["scm"].differentiable  # an enumeration
defaults = {k: torch.tensor([[v]], dtype=torch.float64) for k, v in comp.default_parameters().items()}
seen = port_values(comp, **defaults)[0]
print("held:", {k: seen[k] for k in ("enabled", "cr", "scm")})
assert seen["enabled"] == 1.0 and "enabled" not in specs  # lv2:enabled is held on

# %% latency
transparent = get_processor("lv2:lsp_compressor_stereo", fixed={"cr": 1.0, "sla": 5.0}, include=["g_out"])
x = torch.randn(2, 2, 4096) * 0.1
y = transparent(x, g_out=torch.full((2, 1), transparent.default_parameters()["g_out"]))
print(f"latency {transparent.process.last_latency} samples, peak error {float((y - x).abs().max()):.1e}")
assert transparent.process.last_latency == 220 and torch.allclose(y, x, atol=1e-6)

# %% graph
graph = Graph()
for k in range(2):
    graph.connect(graph.add("in"), graph.add("lv2:calf_saturator", f"sat{k}"))
    graph.connect(f"sat{k}", graph.add("lv2:dpf_3_band_eq", f"eq{k}"))
graph.connect("eq0", graph.add("out", "mix"))
graph.connect("eq1", "mix")
options = {"lv2:dpf_3_band_eq": {"include": ["low", "high"]},
           "lv2:calf_saturator": {"include": ["drive"], "block_size": 512}}
processors = {t: get_processor(t, **o) for t, o in options.items()}
plan = compile_render(graph, processors)
sources = torch.randn(2, 2, 4096) * 0.1

# %% fit
hidden = create_empty_parameters(graph, processors)
with torch.no_grad():
    hidden["lv2:dpf_3_band_eq"].update(processors["lv2:dpf_3_band_eq"].raw_parameters(
        low=torch.tensor([6.0, -6.0]), high=torch.tensor([-9.0, 4.0])))
    target, _ = plan(hidden, sources)
params = create_empty_parameters(graph, processors)
params["lv2:calf_saturator"].requires_grad_(False)  # only the EQ gains train
trained = [params["lv2:dpf_3_band_eq"]["low"], params["lv2:dpf_3_band_eq"]["high"]]
optimiser = torch.optim.Adam(trained, lr=0.1)
losses = []
for step in range(40):
    optimiser.zero_grad()
    y, _ = plan(params, sources)
    loss = (y - target).pow(2).mean()
    loss.backward()
    optimiser.step()
    losses.append(float(loss.detach()))
    if step in (0, 39):
        print(f"step {step:2d}: loss {float(loss.detach()):.2e}")
fitted = processors["lv2:dpf_3_band_eq"].natural_parameters(**{k: v.detach() for k, v in
                                                               params["lv2:dpf_3_band_eq"].items()})
print("fitted gains (dB):", {k: [round(float(v), 1) for v in t] for k, t in fitted.items()})
assert losses[-1] < 0.05 * losses[0]

# %% provenance
recorded = {t: p.process.options for t, p in processors.items()}
print(json.dumps(recorded["lv2:calf_saturator"]))
assert recorded["lv2:calf_saturator"]["block_size"] == 512 and recorded["lv2:calf_saturator"]["pre_roll"] == 1024
