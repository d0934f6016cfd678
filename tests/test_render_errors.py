"""Every kind of bad input raises its own error, naming what is wrong."""

import pytest
import torch

from grafx_core import (
    Graph,
    GraphConnectionError,
    GraphCycleError,
    GraphError,
    ParameterError,
    ProcessorOutputError,
    SourceShapeError,
    UnknownNodeTypeError,
    compile_render,
    create_empty_parameters,
    render,
)


class Gain(torch.nn.Module):
    def forward(self, x, gain_db):
        return x * gain_db[..., None]

    def parameter_size(self):
        return {"gain_db": 1}


class Broken(torch.nn.Module):
    """Returns whatever the test asks for."""

    def __init__(self, result):
        super().__init__()
        self.result = result

    def forward(self, x):
        return self.result(x)

    def parameter_size(self):
        return {}


def chain(*types):
    graph = Graph()
    node = graph.add("in", "src")
    for t in types:
        nxt = graph.add(t, f"{t}{nxt_id}" if (nxt_id := len(graph)) else None)
        graph.connect(node, nxt)
        node = nxt
    graph.connect(node, graph.add("out"))
    return graph


def test_unknown_type_lists_known_types():
    with pytest.raises(UnknownNodeTypeError, match=r"node 1 \('reverb1', type 'reverb'\).*'gain'.*'in'"):
        compile_render(chain("reverb"), {"gain": Gain()})


def test_cycle_names_its_nodes():
    graph = chain("gain", "gain")
    graph.connect("gain2", "gain1")
    with pytest.raises(GraphCycleError, match=r"cycle: node \d \('gain\d'.*-> node \d \('gain\d'"):
        compile_render(graph, {"gain": Gain()})


def test_missing_ports_and_unfed_inlets():
    graph = chain("gain")
    graph.connect("src", "gain1", inlet="sidechain")
    with pytest.raises(GraphConnectionError, match=r"'gain1'.*no inlet 'sidechain'.*\['main'\]"):
        compile_render(graph, {"gain": Gain()})
    graph = chain("gain")
    graph.connect("gain1", 2, outlet="low")
    with pytest.raises(GraphConnectionError, match=r"no outlet 'low'"):
        compile_render(graph, {"gain": Gain()})

    class Sidechained(Gain):
        inlets = ("main", "sidechain")

    with pytest.raises(GraphConnectionError, match=r"'gain1'.*nothing is connected to inlet 'sidechain'"):
        compile_render(chain("gain"), {"gain": Sidechained()})


def test_processor_without_inlets_is_rejected():
    class Oscillator(Gain):
        inlets = ()

    with pytest.raises(GraphConnectionError, match=r"Oscillator for type 'gain' declares no inlets"):
        compile_render(chain("gain"), {"gain": Oscillator()})


def test_graph_without_out_is_rejected():
    graph = Graph()
    graph.connect(graph.add("in"), graph.add("gain"))
    with pytest.raises(GraphError, match="no 'out' node"):
        compile_render(graph, {"gain": Gain()})


def test_source_count_and_rank_are_checked():
    graph = chain("gain")
    params = create_empty_parameters(graph, {"gain": Gain()})
    with pytest.raises(SourceShapeError, match=r"2 signal\(s\).*1 'in' node"):
        render(graph, {"gain": Gain()}, params, torch.zeros(2, 1, 8))
    with pytest.raises(SourceShapeError, match=r"got shape \[8\]"):
        render(graph, {"gain": Gain()}, params, torch.zeros(8))


def test_parameters_are_checked_by_type_name_and_shape():
    graph = chain("gain", "gain")
    procs = {"gain": Gain()}
    sources = torch.zeros(1, 1, 8)
    with pytest.raises(ParameterError, match=r"no parameters for node type 'gain'.*\[2, 1\]"):
        render(graph, procs, {}, sources)
    with pytest.raises(ParameterError, match=r"gain\.gain_db has shape \[3, 1\]; expected \[2, 1\]"):
        render(graph, procs, {"gain": {"gain_db": torch.zeros(3, 1)}}, sources)
    with pytest.raises(ParameterError, match=r"missing parameter 'gain_db'"):
        render(graph, procs, {"gain": {}}, sources)
    with pytest.raises(ParameterError, match=r"unexpected parameter\(s\) \['gain_dB'\]"):
        render(graph, procs, {"gain": {"gain_db": torch.zeros(2, 1), "gain_dB": torch.zeros(2, 1)}}, sources)


@pytest.mark.parametrize(
    "result, message",
    [
        (lambda x: (x, x), r"returned 2 signal\(s\); expected one per outlet \['main'\]"),
        (lambda x: x[..., :-1], r"outlet 'main': returned \[1, 1, 7\]; expected \[1, channels, 8\]"),
        (lambda x: (x, {"penalty": torch.zeros(2, 3)}), r"aux value 'penalty' has shape \[2, 3\]"),
    ],
)
def test_processor_output_is_checked_and_processor_named(result, message):
    graph = chain("bad")
    with pytest.raises(ProcessorOutputError, match=r"processor Broken for type 'bad' \(nodes \[1\]\).*" + message):
        render(graph, {"bad": Broken(result)}, {}, torch.zeros(1, 1, 8))


def test_incompatible_channel_counts_are_named():
    class ToThree(Broken):
        pass

    graph = Graph()
    a = graph.add("in")
    three = graph.add("three")
    bus = graph.add("mix", "bus")
    graph.connect(a, three)
    graph.connect(three, bus)
    graph.connect(a, bus)
    graph.connect(bus, graph.add("out"))
    procs = {"three": ToThree(lambda x: x[:, :1].expand(-1, 3, -1))}
    with pytest.raises(GraphConnectionError, match=r"'bus'.*cannot sum a 2-channel signal with a 3-channel"):
        render(graph, procs, {}, torch.zeros(1, 2, 8))


def test_black_box_fault_names_the_graph_node_and_parameter_values():
    from grafx_core import BlackBoxError, BlackBoxProcessor, ParameterSpec

    def fragile(audio, sample_rate, gain_db):
        if gain_db > 0:
            raise RuntimeError("clipped")
        return audio * 10 ** (gain_db / 20)

    box = BlackBoxProcessor(fragile, [ParameterSpec("gain_db", -24.0, 12.0, default=-6.0)], name="fragile")
    graph = Graph()
    for name in ("kick", "snare"):
        graph.connect(graph.add("in"), graph.add("box", f"{name}_box"))
    out = graph.add("out")
    graph.connect("kick_box", out)
    graph.connect("snare_box", out)
    params = create_empty_parameters(graph, {"box": box})
    with torch.no_grad():
        params["box"]["gain_db"][1] = 10.0  # sigmoid(10) maps into the top margin: 12 dB, > 0 dB
    with pytest.raises(BlackBoxError, match=r"node 3 \('snare_box', type 'box'\): .*'fragile'.*clipped.*gain_db=12$"):
        render(graph, {"box": box}, params, torch.zeros(2, 1, 16))
