"""The Ardour console's graph, and what the export makes of it (no Ardour needed)."""

from __future__ import annotations

import pytest
import torch
from grafx_core import Graph, create_empty_parameters, processors_for_graph, render

from grafx_ardour import UnmappableGraphError, build_ardour_console, plan_session


def _console(names):
    console = build_ardour_console(names)
    processors = processors_for_graph(console.graph, {t: {"sample_rate": 48000} for t in console.graph.processor_types()})
    return console, processors, console.start_parameters(processors)


def test_drums_and_music_get_their_buses_and_every_track_a_parallel_send():
    console, processors, params = _console(["kick", "snare", "bass", "keys"])
    plan = plan_session(console.graph, processors, params)
    strips = {s.name: s for s in plan.strips}
    assert [s.name for s in plan.strips[:4]] == ["kick", "snare", "bass", "keys"]
    assert strips["kick"].output == "drum_bus" and strips["bass"].output == "music_bus"
    assert strips["drum_bus"].output == "master" and strips["master"].output is None
    assert [p.uri for p in strips["kick"].plugins] == ["urn:ardour:a-comp#stereo", "urn:ardour:a-eq"]
    assert [p.uri for p in strips["master"].plugins] == ["urn:ardour:a-eq", "urn:ardour:a-comp#stereo"]
    (bus, level), = strips["keys"].sends
    assert bus == "parallel_bus" and level == pytest.approx(10 ** (-20 / 20))
    # start values reach the plug-in's ports: a-comp's threshold is port 4, ratio port 3
    assert strips["kick"].plugins[0].controls[4] == pytest.approx(-20.0)
    assert strips["kick"].plugins[0].controls[3] == pytest.approx(3.0)
    assert strips["kick"].position == pytest.approx(0.5) and strips["master"].position is None


def test_the_console_renders_and_every_parameter_gets_a_gradient():
    console, processors, params = _console(["kick", "bass"])
    leaves = {t: {k: v.clone().requires_grad_(True) for k, v in p.items()} for t, p in params.items()}
    x = torch.randn(2, 2, 4000, generator=torch.Generator().manual_seed(0)) * 0.3
    y, _ = render(console.graph, processors, leaves, x)
    y.pow(2).sum().backward()
    for node_type, group in leaves.items():
        for name, value in group.items():
            assert value.grad is not None and bool(value.grad.abs().sum() > 0), (node_type, name)


def test_a_node_ardour_cannot_hold_is_named():
    g = Graph()
    src = g.add("in", "kick")
    verb = g.add("dsp:reverb", "room")
    g.connect(src, verb)
    master = g.add("mix", "master")
    g.connect(verb, master)
    g.connect(master, g.add("out", "mix"))
    processors = processors_for_graph(g)
    with pytest.raises(UnmappableGraphError, match="room.*dsp:reverb.*no Ardour counterpart"):
        plan_session(g, processors, create_empty_parameters(g, processors))


def test_track_names_that_clash_with_buses_are_refused():
    with pytest.raises(ValueError, match="master"):
        build_ardour_console(["Master", "bass"])
