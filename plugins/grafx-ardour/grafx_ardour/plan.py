"""From a fitted graph to the strips of an Ardour session: what goes where, with which values.

The graph must be one :func:`~grafx_ardour.console.build_ardour_console`
builds, or any graph of the same shape: each ``"in"`` node starts a track,
each ``"mix"`` node a bus (the one that leads to the ``"out"`` node is the
master), and between them run chains of twins. A chain's plug-in twins
(``dsp:a_comp``, ``dsp:a_eq``) become the strip's plug-ins in order, its
``dsp:ardour_fader`` (or ``dsp:ardour_gain`` on the master) the fader and
panner; a branch that leaves a strip through a ``dsp:ardour_send`` node and
reaches another bus is an aux send at that level. Values are the twins'
soft-limited parameters, which lie inside the plug-ins' ranges by design.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
from grafx_core import Graph

from .errors import UnmappableGraphError

__all__ = ["PluginSlot", "Strip", "SessionPlan", "plan_session", "TWIN_PLUGINS"]

TWIN_PLUGINS: dict[str, str] = {"dsp:a_comp": "urn:ardour:a-comp#stereo", "dsp:a_eq": "urn:ardour:a-eq"}
"""Each plug-in twin's real plug-in (every strip is stereo: the fit's stems are)."""

_FADERS = ("dsp:ardour_fader", "dsp:ardour_gain")
_SEND = "dsp:ardour_send"


@dataclass
class PluginSlot:
    """One plug-in on a strip.

    Attributes:
        uri: the LV2 plug-in's URI.
        node: the graph node it comes from (its name).
        controls: control port index -> value, in the plug-in's units.
    """

    uri: str
    node: str
    controls: dict[int, float]


@dataclass
class Strip:
    """One track, bus or the master.

    Attributes:
        name: the strip's name in Ardour.
        kind: ``"track"``, ``"bus"`` or ``"master"``.
        plugins: pre-fader plug-ins, in signal order.
        gain: fader gain coefficient (1 is 0 dB).
        position: panner azimuth (0 left, 1 right); ``None`` leaves the panner alone.
        output: the strip its main outputs feed (``"master"`` or a bus name); ``None`` for the master.
        sends: aux sends, ``(bus name, gain coefficient)``, post-fader.
        source: for a track, the index of its stem.
    """

    name: str
    kind: str
    plugins: list[PluginSlot] = field(default_factory=list)
    gain: float = 1.0
    position: float | None = None
    output: str | None = "master"
    sends: list[tuple[str, float]] = field(default_factory=list)
    source: int | None = None


@dataclass
class SessionPlan:
    """Every strip of the session, tracks first (in stem order), then buses, then the master."""

    strips: list[Strip]

    def strip(self, name: str) -> Strip:
        """The strip called ``name``."""
        return next(s for s in self.strips if s.name == name)


def _values(processors: Mapping[str, Any], params: Any, graph: Graph, node: int) -> dict[str, torch.Tensor]:
    node_type = graph.nodes[node].type
    row = graph.nodes_of_type(node_type).index(node)
    processor = processors[node_type]
    with torch.no_grad():
        values = {name: processor.limit(name, value[row:row + 1].detach().to(torch.float64))[0]
                  for name, value in params[node_type].items()}
    # A twin's guard band ends at the plug-in's limit; float rounding may step a hair past it.
    return {name: value.clamp(processor.ranges[name].floor, processor.ranges[name].ceiling)
            for name, value in values.items()}


def _plugin(node_type: str, values: Mapping[str, torch.Tensor], name: str) -> PluginSlot:
    from grafx_dsp import A_COMP_PORTS, A_EQ_PORTS

    ports: Mapping[str, Any] = A_COMP_PORTS if node_type == "dsp:a_comp" else A_EQ_PORTS
    controls: dict[int, float] = {}
    for parameter, port in ports.items():
        flat = values[parameter].reshape(-1).tolist()
        indices = port if isinstance(port, tuple) else (port,)
        controls.update(zip(indices, flat))
    return PluginSlot(TWIN_PLUGINS[node_type], name, controls)


class _Walker:
    def __init__(self, graph: Graph, processors: Mapping[str, Any], params: Any) -> None:
        self.graph, self.processors, self.params = graph, processors, params
        self.buses: dict[int, Strip] = {}

    def fail(self, node: int, why: str) -> UnmappableGraphError:
        return UnmappableGraphError(f"{self.graph.nodes[node].label()}: {why}; an Ardour session holds tracks and "
                                    "buses of dsp:a_comp, dsp:a_eq, dsp:ardour_fader and dsp:ardour_send nodes")

    def strip(self, start: int, strip: Strip) -> Strip:
        """Follow the chain from ``start`` (an in or mix node) to the next mix or out node."""
        node = start
        while True:
            after = self.graph.successors(node)
            main = [n for n in after if self.graph.nodes[n].type != _SEND]
            for send in (n for n in after if self.graph.nodes[n].type == _SEND):
                target = self.graph.successors(send)
                if len(target) != 1 or self.graph.nodes[target[0]].type != "mix":
                    raise self.fail(send, "an aux send must feed exactly one bus")
                level = _values(self.processors, self.params, self.graph, send)["gain_db"]
                strip.sends.append((self.graph.nodes[target[0]].name or "", float(10 ** (level / 20))))
            if len(main) != 1:
                raise self.fail(node, f"leads to {len(main)} nodes besides its sends; a strip is one chain")
            node = main[0]
            node_type = self.graph.nodes[node].type
            if node_type in ("mix", "out"):
                strip.output = self.graph.nodes[node].name if node_type == "mix" else None
                return strip
            values = _values(self.processors, self.params, self.graph, node)
            if node_type in TWIN_PLUGINS:
                strip.plugins.append(_plugin(node_type, values, self.graph.nodes[node].name or node_type))
            elif node_type in _FADERS:
                strip.gain = float(10 ** (values["gain_db"] / 20))
                if "position" in values:
                    strip.position = float(values["position"])
            else:
                raise self.fail(node, f"node type {node_type!r} has no Ardour counterpart")


def plan_session(graph: Graph, processors: Mapping[str, Any], params: Any) -> SessionPlan:
    """The session a fitted graph describes (see the module docstring).

    Args:
        graph: the fitted graph.
        processors: its processors by node type (for their soft limits).
        params: the fitted parameters, ``{node type: {name: [nodes, ...]}}``.

    Raises:
        UnmappableGraphError: a node has no Ardour counterpart, or the graph
            is not made of strips; the message names the node.
    """
    walker = _Walker(graph, processors, params)
    tracks = [walker.strip(node, Strip(graph.nodes[node].name or f"track{k + 1}", "track", source=k))
              for k, node in enumerate(graph.nodes_of_type("in"))]
    buses = []
    for node in graph.nodes_of_type("mix"):
        strip = walker.strip(node, Strip(graph.nodes[node].name or f"bus{node}", "bus"))
        buses.append(strip)
    masters = [b for b in buses if b.output is None]
    if len(masters) != 1:
        raise UnmappableGraphError(f"the graph has {len(masters)} bus(es) leading to its 'out' node; an Ardour "
                                   "session has one master bus")
    master = masters[0]
    master.kind = "master"
    names = {b.name for b in buses}
    for strip in tracks + buses:
        if strip.output is not None and strip.output == master.name:
            strip.output = "master"
        elif strip.output is not None and strip.output not in names:
            raise UnmappableGraphError(f"strip {strip.name!r} feeds {strip.output!r}, which is not a bus")
    master.name = "master"
    return SessionPlan(tracks + [b for b in buses if b is not master] + [master])
