"""A small mixing console of grafx-dsp processors rendered by grafx-core
equals the same processors called node by node, and trains end to end."""

import torch
from grafx_core import Graph, create_empty_parameters, render

import grafx_dsp as dsp


def console() -> tuple[Graph, dict]:
    """Two tracks (EQ, compressor, pan); a kick ducks the bass through a
    sidechain compressor; the bus is split by a crossover, and a reverb send
    joins at the master."""
    g = Graph()
    vocal, bass, kick = g.add("in", "vocal"), g.add("in", "bass"), g.add("in", "kick")
    for track in (vocal, bass):
        eq, comp = g.add("eq"), g.add("comp")
        g.connect(track, eq)
        g.connect(eq, comp)
        pan = g.add("pan", f"pan_{g.nodes[track].name}")
        g.connect(comp if track == vocal else g.add("duck", "duck"), pan)
        if track == bass:
            g.connect(comp, "duck")
            g.connect(kick, "duck", inlet="sidechain")
    bus, split, master = g.add("mix", "bus"), g.add("split", "split"), g.add("mix", "master")
    for name in ("pan_vocal", "pan_bass"):
        g.connect(name, bus)
    g.connect(bus, split)
    low, high = g.add("gain", "low_gain"), g.add("gain", "high_gain")
    g.connect(split, low, outlet="low")
    g.connect(split, high, outlet="high")
    send = g.add("reverb", "send")
    g.connect("pan_vocal", send)
    for node in (low, high, send, kick):
        g.connect(node, master)
    g.connect(master, g.add("out"))
    processors = {
        "eq": dsp.ParametricEQ(n_peaks=2), "comp": dsp.Compressor(), "pan": dsp.StereoGain(),
        "duck": dsp.SidechainCompressor(), "split": dsp.Crossover(), "gain": dsp.Gain(),
        "reverb": dsp.NoiseReverb(ir_seconds=0.1),
    }
    return g, processors


def test_console_render_equals_node_by_node_calls():
    g, processors = console()
    params = create_empty_parameters(g, processors, dtype=torch.float64)
    with torch.no_grad():
        params["eq"]["peak_gain_db"].copy_(torch.tensor([[6.0, -3.0], [-4.0, 9.0]]))
        params["pan"]["pan"].copy_(torch.tensor([[-0.5], [0.3]]))
        params["gain"]["gain_db"].copy_(torch.tensor([[3.0], [-6.0]]))
    gen = torch.Generator().manual_seed(0)
    sources = 0.3 * torch.randn(3, 1, 4410, generator=gen, dtype=torch.float64)
    y, _ = render(g, processors, params, sources)

    def row(kind, k):
        return {name: value[k:k + 1] for name, value in params[kind].items()}

    vocal, bass, kick = sources[0:1], sources[1:2], sources[2:3]
    tracks = []
    for k, x in enumerate((vocal, bass)):
        x = processors["comp"](processors["eq"](x, **row("eq", k)), **row("comp", k))
        if k == 1:
            x = processors["duck"](x, kick, **row("duck", 0))
        tracks.append(processors["pan"](x, **row("pan", k)))
    low, high = processors["split"](tracks[0] + tracks[1], **row("split", 0))
    master = (processors["gain"](low, **row("gain", 0)) + processors["gain"](high, **row("gain", 1))
              + processors["reverb"](tracks[0], **row("reverb", 0)) + kick)
    torch.testing.assert_close(y, master)


def test_console_gradients_reach_every_parameter():
    g, processors = console()
    params = create_empty_parameters(g, processors)
    gen = torch.Generator().manual_seed(1)
    sources = 0.5 * torch.randn(3, 1, 2048, generator=gen)
    y, _ = render(g, processors, params, sources)
    y.square().mean().backward()
    for kind, group in params.items():
        for name, value in group.items():
            leaves = value.values() if isinstance(value, torch.nn.ParameterDict) else [value]
            for leaf in leaves:
                assert leaf.grad is not None and torch.isfinite(leaf.grad).all(), (kind, name)
