"""ParameterPredictor: shapes and ranges for every kind of processor, gradients through black boxes."""

import numpy as np
import pytest
import torch

from grafx_core import (
    BlackBoxProcessor,
    Graph,
    NeuralProxy,
    ParameterPredictor,
    Control,
    ParameterRange,
    ParameterSpec,
    PredictorError,
    ProxyNetwork,
    StraightThrough,
    check_parameters,
    compile_render,
    with_estimator,
)


class Gain(torch.nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * 10 ** (gain_db[:, :, None] / 20)


class RangedFilter(torch.nn.Module):
    """A gain set by a log-scale cutoff and a nested, linear-range output stage: a stand-in whose
    declared ranges and nested shapes are what the tests need."""

    def controls(self):
        return {"cutoff_hz": Control(low=20.0, high=8000.0, default=1000.0, unit="Hz", scale="log"),
                "out": {"gain_db": Control(low=-12.0, high=12.0, default=0.0, unit="dB"),
                        "tilt": Control(shape=(2, 3), low=-1.0, high=1.0, default=0.0)}}

    def forward(self, x, cutoff_hz, out):
        b = torch.exp(-2 * np.pi * cutoff_hz / 16000.0)[:, :, None]
        y = x * (1 - b)
        return y * 10 ** (out["gain_db"][:, :, None] / 20) * (1 + 0.01 * out["tilt"].sum((1, 2)))[:, None, None]


def drive(audio, sample_rate, drive_db):
    return np.tanh(audio * 10 ** (drive_db / 20))


def every_kind_graph():
    """in -> ranged (autograd) -> fd (black box) -> spsa (wrapped torch) -> st (straight-through) -> proxy -> out,
    twice, so that every type has two nodes."""
    spec = [ParameterSpec("drive_db", 0.0, 24.0, 6.0)]
    processors = {
        "ranged": RangedFilter(),
        "fd": BlackBoxProcessor(drive, spec, workers=1, signal_gradient="straight-through"),
        "spsa": with_estimator(Gain(), "spsa", seed=0, signal_gradient="straight-through"),
        "st": BlackBoxProcessor(drive, spec, workers=1, estimator=StraightThrough(
            surrogate=lambda x, drive_db: torch.tanh(x * 10 ** (drive_db[:, None, None] / 20)))),
        "proxy": BlackBoxProcessor(drive, spec, workers=1, estimator=NeuralProxy(ProxyNetwork(1, 1))),
    }
    graph = Graph()
    for _ in range(2):
        chain = [graph.add(t) for t in ("in", "ranged", "fd", "spsa", "st", "proxy", "out")]
        for a, b in zip(chain, chain[1:]):
            graph.connect(a, b)
    return graph, processors


def tiny_predictor(graph, processors, **options):
    torch.manual_seed(0)
    return ParameterPredictor(graph, processors, sample_rate=16000, n_fft=256, n_mels=16, width=16, layers=2,
                              embedding=16, hidden=32, **options)


def test_outputs_have_the_plans_per_example_shapes_and_stay_in_the_declared_ranges():
    graph, processors = every_kind_graph()
    predictor = tiny_predictor(graph, processors, inputs=2)
    x = 0.3 * torch.randn(3, 2, 1, 2048, generator=torch.Generator().manual_seed(1))
    tree = predictor(x[:, 0], x[:, 1])
    assert check_parameters(graph, processors, tree, batch_size=3) == {t: True for t in processors}
    assert tree["ranged"]["out"]["tilt"].shape == (3, 2, 2, 3)
    # A fresh predictor starts at the defaults (the sigmoid of a default strictly inside its range).
    torch.testing.assert_close(tree["ranged"]["cutoff_hz"], torch.full((3, 2, 1), 1000.0), rtol=0.05, atol=0)
    torch.testing.assert_close(tree["fd"]["drive_db"], torch.full((3, 2, 1), processors["fd"].specs[0].default_raw()),
                               rtol=0, atol=0.05)
    y, _ = compile_render(graph, processors)(tree, x[:, :1].expand(3, 2, 1, 2048))
    assert y.shape == (3, 2, 1, 2048) and torch.isfinite(y).all()

    # Driven far past either end, the bounded heads stay inside their ranges and the unbounded ones follow.
    bounds = [(("ranged", "cutoff_hz"), (20.0, 8000.0)), (("ranged", "out", "gain_db"), (-12.0, 12.0)),
              (("ranged", "out", "tilt"), (-1.0, 1.0))]
    for sign in (1.0, -1.0):
        with torch.no_grad():
            for head in predictor.heads:
                head.bias.fill_(sign * 1e4)
        tree = predictor(x[:, 0], x[:, 1])
        for path, (low, high) in bounds:
            value = tree
            for key in path:
                value = value[key]
            assert value.min() >= low and value.max() <= high
            torch.testing.assert_close(value, torch.full_like(value, high if sign > 0 else low))
        assert (sign * tree["fd"]["drive_db"] > 1e3).all()  # raw black-box values are unbounded


def test_a_predictor_refuses_bad_ranges_and_bad_audio():
    class Broken(Gain):
        def parameter_ranges(self):
            return {"gain_db": ParameterRange(0.0, 10.0, "dB", "log")}

    graph = Graph()
    a, g, o = graph.add("in"), graph.add("gain"), graph.add("out")
    graph.connect(a, g)
    graph.connect(g, o)
    with pytest.raises(PredictorError, match=r"node type 'gain': Broken: range of 'gain_db' is on a log scale"), \
            pytest.warns(DeprecationWarning, match="Broken: parameter_ranges is deprecated"):
        ParameterPredictor(graph, {"gain": Broken()})
    predictor = tiny_predictor(graph, {"gain": Gain()})
    with pytest.raises(PredictorError, match="expected 1 signal"):
        predictor(torch.zeros(2, 1, 512), torch.zeros(2, 1, 512))
    with pytest.raises(PredictorError, match=r"\[batch, 1, samples\]"):
        predictor(torch.zeros(2, 2, 512))


def chain(types):
    graph = Graph()
    nodes = [graph.add(t) for t in ("in", *types, "out")]
    for a, b in zip(nodes, nodes[1:]):
        graph.connect(a, b)
    return graph


def weight_gradient(graph, processors, x, target):
    predictor = tiny_predictor(graph, processors)
    y, _ = compile_render(graph, processors)(predictor(x), x[:, None])
    (y[:, 0] - target).square().mean().backward()
    return torch.cat([p.grad.reshape(-1) for p in predictor.parameters()])


def test_the_gradient_through_black_boxes_reaches_the_weights_as_autograd_through_their_twins():
    # in -> gain -> drive -> gain -> out, exact (all autograd) against estimated: the first gain by finite
    # differences, the drive by SPSA (one parameter, so its direction is exact) with an SPSA signal
    # gradient, the last gain by finite differences with a straight-through signal gradient (which drops
    # the gain's factor). Upstream heads train only through the two estimated signal gradients.
    x = 0.5 * torch.randn(4, 1, 2048, generator=torch.Generator().manual_seed(2))
    target = torch.tanh(2 * x) * 0.7

    class Drive(torch.nn.Module):
        def parameter_size(self):
            return {"drive_db": 1}

        def forward(self, x, drive_db):
            return torch.tanh(x * 10 ** (drive_db[:, :, None] / 20))

    exact_procs = {"g1": Gain(), "drive": Drive(), "g2": Gain()}
    estimated_procs = {"g1": with_estimator(Gain(), "finite-difference"),
                       "drive": with_estimator(Drive(), "spsa", seed=0, signal_gradient="spsa", signal_samples=1),
                       "g2": with_estimator(Gain(), "finite-difference", signal_gradient="straight-through")}
    graph = chain(("g1", "drive", "g2"))
    exact = weight_gradient(graph, exact_procs, x, target)
    estimated = weight_gradient(graph, estimated_procs, x, target)
    assert exact.norm() > 0
    cosine = torch.nn.functional.cosine_similarity(exact, estimated, dim=0)
    assert cosine > 0.9, cosine

    # Where every signal gradient is exact (black boxes first, autograd behind) the weights' gradient matches.
    graph = chain(("g1", "drive"))
    exact = weight_gradient(graph, {"g1": Gain(), "drive": Drive()}, x, target)
    estimated = weight_gradient(graph, {"g1": with_estimator(Gain(), "finite-difference"), "drive": Drive()}, x, target)
    torch.testing.assert_close(estimated, exact, rtol=1e-3, atol=1e-3 * float(exact.abs().max()))


def test_the_predictions_follow_the_audios_device_and_dtype(device):
    graph, processors = every_kind_graph()
    predictor = tiny_predictor(graph, processors, inputs=2).to(device=device, dtype=torch.float64)
    x = torch.randn(2, 1, 1024, device=device, dtype=torch.float64)
    tree = predictor(x, x)
    for value in (tree["ranged"]["out"]["tilt"], tree["proxy"]["drive_db"]):
        assert value.device == x.device and value.dtype == torch.float64
    torch.testing.assert_close(tree["ranged"]["cutoff_hz"].cpu(), tiny_predictor(graph, processors, inputs=2)(
        x.float().cpu(), x.float().cpu())["ranged"]["cutoff_hz"].double(), rtol=1e-4, atol=0)
