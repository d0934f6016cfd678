"""Streaming renders: a graph rendered block by block equals one render (grafx-dsp consoles)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from grafx_core import Graph, compile_render, create_empty_parameters
from grafx_core.errors import StreamingError
from grafx_core.state import split_lengths

dsp = pytest.importorskip("grafx_dsp", reason="the streaming graph tests use grafx-dsp's processors")

from grafx_core.fitting.console import build_console  # noqa: E402
from grafx_core import processors_for_graph  # noqa: E402
from grafx_dsp.eq import FIREQ  # noqa: E402
from grafx_dsp.gain import Gain  # noqa: E402


def _blocks(x: torch.Tensor, sizes: list[int]) -> list[torch.Tensor]:
    out, start = [], 0
    for length in split_lengths(x.shape[-1], sizes):
        out.append(x[..., start:start + length])
        start += length
    return out


def _console(seed: int = 0) -> tuple[object, dict, dict, torch.Tensor]:
    console = build_console(["kick", "bass", "keys"], "analytic")
    processors = processors_for_graph(console.graph, console.options, sample_rate=44100)
    plan = compile_render(console.graph, processors)
    parameters = console.start_parameters(processors)
    gen = torch.Generator().manual_seed(seed)
    sources = 0.3 * torch.randn(3, 2, 4000, generator=gen)
    return plan, processors, parameters, sources


@pytest.mark.parametrize("sizes", [[4096], pytest.param([509], marks=pytest.mark.slow), [1000, 37, 1513]])
def test_console_stream_equals_one_render(sizes: list[int]) -> None:
    plan, _, parameters, sources = _console()
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        streamed = torch.cat(list(plan.stream(parameters, _blocks(sources, sizes))), dim=-1)
    assert streamed.shape == whole.shape
    assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


def test_stream_compensates_latency_on_parallel_paths() -> None:
    # One path through a zero-phase FIR EQ (late by 15 samples block by block), one dry: the mix aligns them.
    graph = Graph()
    source, eq, out = graph.add("in"), graph.add("fir"), graph.add("out")
    graph.connect(source, eq)
    graph.connect(eq, out)
    graph.connect(source, out)
    processors = {"fir": FIREQ(n_bands=4, taps=31)}
    plan = compile_render(graph, processors)
    parameters = create_empty_parameters(graph, processors)
    parameters["fir"]["gain_db"] = torch.tensor([[-6.0, 3.0, 0.0, -12.0]])
    x = torch.randn(1, 2, 700, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        whole, _ = plan(parameters, x)
        pieces = list(plan.stream(parameters, _blocks(x, [50, 7])))
    streamed = torch.cat(pieces, dim=-1)
    assert streamed.shape == whole.shape
    assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


def test_a_stateful_node_after_a_late_one_starts_from_rest_as_in_one_render() -> None:
    # The FIR EQ's stream emits its precursor (the one-shot render's time before 0) first: the compressor
    # and the second FIR after it must not hear it, or they start from another state than one render's.
    graph = Graph()
    source, eq, comp, eq2, out = (graph.add(t) for t in ("in", "fir", "comp", "fir", "out"))
    graph.connect(source, eq)
    graph.connect(eq, comp)
    graph.connect(comp, eq2)
    graph.connect(eq2, out)
    processors = {"fir": FIREQ(n_bands=4, taps=255), "comp": dsp.dynamics.Compressor()}
    plan = compile_render(graph, processors)
    parameters = create_empty_parameters(graph, processors)
    parameters["fir"]["gain_db"] = torch.tensor([[12.0, -6.0, 3.0, 0.0], [-3.0, 6.0, 0.0, 6.0]])
    parameters["comp"]["threshold_db"] = torch.tensor([[-30.0]])
    parameters["comp"]["attack_ms"] = torch.tensor([[1.0]])
    for x in (torch.randn(1, 2, 3000, generator=torch.Generator().manual_seed(2)),
              torch.randn(2, 1, 2, 3000, generator=torch.Generator().manual_seed(3))):  # and batched
        with torch.no_grad():
            whole, _ = plan(parameters, x)
            streamed = torch.cat(list(plan.stream(parameters, _blocks(x, [100, 37]))), dim=-1)
        assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


def test_batched_stream_equals_batched_render() -> None:
    plan, _, parameters, sources = _console(1)
    batch = torch.stack([sources, 0.5 * sources.flip(-1)])
    with torch.no_grad():
        whole, _ = plan(parameters, batch)
        streamed = torch.cat(list(plan.stream(parameters, _blocks(batch, [1999]))), dim=-1)
    assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


class _Smear(torch.nn.Module):
    """Neither stateful nor memoryless: a stream must refuse it."""

    def parameter_size(self) -> dict:
        return {}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.cumsum(-1)


def test_stream_refuses_a_processor_without_state_naming_it() -> None:
    graph = Graph()
    graph.add_serial_chain(["in", "smear", "out"])
    plan = compile_render(graph, {"smear": _Smear()})
    with pytest.raises(StreamingError, match=r"^_Smear \(node type 'smear'\) cannot be rendered block by block"):
        plan.stream({}, [torch.zeros(1, 1, 10)])


def _automated_chain(hop: int) -> tuple[object, dict, int]:
    """in -> compressor -> stereo gain (pan) -> gain -> out, with curves on threshold, makeup, gain and pan."""
    from grafx_dsp.dynamics import Compressor
    from grafx_dsp.gain import StereoGain

    graph = Graph()
    graph.add_serial_chain(["in", "comp", "pan", "gain", "out"])
    processors = {"comp": Compressor(), "pan": StereoGain(), "gain": Gain()}
    return compile_render(graph, processors, control_hop=hop), processors, hop


@pytest.mark.parametrize("hop,sizes", [(64, [64]), (100, [37]), (256, [1000, 1, 333]), (7, [4096])])
def test_a_stream_with_curves_equals_one_render_with_them(hop: int, sizes: list[int]) -> None:
    from grafx_core import curve_frames

    plan, processors, _ = _automated_chain(hop)
    samples = 2501
    frames = curve_frames(samples, hop)
    gen = torch.Generator().manual_seed(hop)
    parameters = create_empty_parameters(plan.graph, processors)
    parameters["comp"]["threshold_db"] = -30.0 + 20.0 * torch.rand(1, 1, frames, generator=gen)
    parameters["comp"]["makeup_db"] = 6.0 * torch.randn(1, 1, frames, generator=gen)
    parameters["pan"]["pan"] = torch.rand(1, 1, frames, generator=gen) * 2 - 1
    parameters["gain"]["gain_db"] = 3.0 * torch.randn(1, 1, frames, generator=gen)
    sources = 0.5 * torch.randn(1, 2, samples, generator=gen)
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        streamed = torch.cat(list(plan.stream(parameters, _blocks(sources, sizes))), dim=-1)
        constant, _ = plan(create_empty_parameters(plan.graph, processors), sources)
    assert float((whole - constant).abs().max()) > 0.1  # the curves move the render
    assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


def test_a_stream_refuses_curves_it_cannot_render_naming_them() -> None:
    plan, processors, _ = _automated_chain(100)
    parameters = create_empty_parameters(plan.graph, processors)
    parameters["gain"]["gain_db"] = torch.zeros(1, 1, 11)  # covers 1001 samples
    with pytest.raises(StreamingError, match=r"'gain_db' of node type 'gain' is a curve of 11 frames .* 1001 "
                                             r"samples; the stream goes on past them"):
        list(plan.stream(parameters, [torch.zeros(1, 1, 600)] * 2))
    unhopped = compile_render(plan.graph, processors)
    with pytest.raises(StreamingError, match="'gain_db' of node type 'gain' is a curve .* without control_hop"):
        list(unhopped.stream(parameters, [torch.zeros(1, 1, 10)]))


@pytest.mark.parametrize("sizes", [[64], [100], [256], [4096], [1000, 37, 1513]])
def test_moving_filters_stream_as_their_one_render(sizes: list[int]) -> None:
    # The filters are redesigned every 256 samples from the stream's start: blocks that are not
    # multiples of 256 start inside a coefficient block, whose coefficients and memories carry over.
    from grafx_core import curve_frames
    from grafx_dsp.biquad import Biquad
    from grafx_dsp.eq import ParametricEQ

    graph = Graph()
    graph.add_serial_chain(["in", "eq", "peak", "out"])
    processors = {"eq": ParametricEQ(n_peaks=2), "peak": Biquad("peak")}
    hop, samples = 100, 1800
    plan = compile_render(graph, processors, control_hop=hop)
    frames = curve_frames(samples, hop)
    gen = torch.Generator().manual_seed(22)
    parameters = create_empty_parameters(graph, processors)
    parameters["eq"]["peak_gain_db"] = 12.0 * torch.randn(1, 2, frames, generator=gen).clamp(-1, 1)
    parameters["eq"]["peak_cutoff_hz"] = torch.tensor([[[300.0], [3000.0]]]) * torch.linspace(0.5, 2.0, frames)
    parameters["eq"]["low_shelf_gain_db"] = torch.full((1, 1), 9.0)
    parameters["eq"]["low_shelf_cutoff_hz"] = torch.linspace(40.0, 400.0, frames).reshape(1, 1, frames)
    parameters["peak"]["cutoff_hz"] = torch.logspace(2.0, 4.0, frames).reshape(1, 1, frames)
    parameters["peak"]["q"] = torch.full((1, 1), 4.0)
    parameters["peak"]["gain_db"] = torch.full((1, 1), 12.0)
    sources = 0.5 * torch.randn(1, 2, samples, generator=gen)
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        streamed = torch.cat(list(plan.stream(parameters, _blocks(sources, sizes))), dim=-1)
        constant, _ = plan(create_empty_parameters(graph, processors), sources)
    assert float((whole - constant).abs().max()) > 0.1  # the curves move the render
    assert streamed.shape == whole.shape
    assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


def test_moving_filters_stream_per_example_curves_of_a_batch() -> None:
    from grafx_core import curve_frames
    from grafx_dsp.eq import ParametricEQ

    graph = Graph()
    graph.add_serial_chain(["in", "eq", "out"])
    processors = {"eq": ParametricEQ(n_peaks=2)}
    hop, samples = 100, 1500
    plan = compile_render(graph, processors, control_hop=hop)
    frames = curve_frames(samples, hop)
    gen = torch.Generator().manual_seed(5)
    parameters = create_empty_parameters(graph, processors)
    for name, value in list(parameters["eq"].items()):
        parameters["eq"][name] = value.detach().expand(2, *value.shape).clone()
    parameters["eq"]["peak_gain_db"] = 12.0 * torch.randn(2, 1, 2, frames, generator=gen).clamp(-1, 1)
    sources = 0.5 * torch.randn(2, 1, 2, samples, generator=gen)
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
        streamed = torch.cat(list(plan.stream(parameters, _blocks(sources, [100]))), dim=-1)
    assert float((whole[0] - whole[1]).abs().max()) > 0.1  # each example has its own curves
    assert float((streamed - whole).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))


def test_stream_state_gradients_stay_within_a_block_when_detached() -> None:
    plan, processors, parameters, sources = _console(2)
    leaf = parameters["dsp:stereo_gain"]["gain_db"].clone().requires_grad_(True)
    parameters["dsp:stereo_gain"]["gain_db"] = leaf
    for y in plan.stream(parameters, _blocks(sources, [2000])):
        y.square().mean().backward()
    assert leaf.grad is not None and bool(torch.isfinite(leaf.grad).all()) and float(leaf.grad.abs().sum()) > 0


def test_an_excerpt_rendered_after_its_warm_up_equals_the_whole_render_there() -> None:
    from grafx_core.excerpts import render_excerpt

    plan, _, parameters, sources = _console(3)
    leaf = parameters["dsp:stereo_gain"]["gain_db"].clone().requires_grad_(True)
    parameters["dsp:stereo_gain"]["gain_db"] = leaf
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
    excerpt = render_excerpt(plan, parameters, sources, 2500, 1000, block_size=700)
    assert excerpt.shape == (*whole.shape[:-1], 1000)
    assert float((excerpt.detach() - whole[..., 2500:3500]).abs().max()) <= 1e-6 * max(1.0, float(whole.abs().max()))
    excerpt.square().mean().backward()
    assert leaf.grad is not None and float(leaf.grad.abs().sum()) > 0
    assert torch.is_grad_enabled()


class _OnePole:
    """A numpy effect whose instance holds its filter memory: y[n] = 0.9 y[n-1] + gain x[n]."""

    def __init__(self) -> None:
        self.memory: np.ndarray | None = None

    def block(self, audio: np.ndarray, gain: float) -> np.ndarray:
        y = np.empty_like(audio)
        last = np.zeros(audio.shape[0], dtype=np.float32) if self.memory is None else self.memory
        for n in range(audio.shape[1]):
            last = (0.9 * last + gain * audio[:, n]).astype(np.float32)
            y[:, n] = last
        self.memory = last
        return y


def test_a_numpy_effect_object_streams_through_process_block_bit_for_bit() -> None:
    from grafx_core import BlackBoxProcessor, ParameterSpec

    box = BlackBoxProcessor(
        None, [ParameterSpec("gain", 0.1, 2.0, default=1.0)], effect_factory=_OnePole,
        process=lambda effect, audio, rate, gain: _OnePole().block(audio, gain),
        process_block=lambda effect, audio, rate, gain: effect.block(audio, gain), workers=1)
    graph = Graph()
    graph.add_serial_chain(["in", "pole", "out"])
    graph.add_serial_chain(["in", "pole", "out"])
    plan = compile_render(graph, {"pole": box})
    params = {"pole": {"gain": torch.tensor([[0.0], [1.5]])}}
    x = torch.randn(2, 2, 300, generator=torch.Generator().manual_seed(4))
    with torch.no_grad():
        whole, _ = plan(params, x)
        streamed = torch.cat(list(plan.stream(params, _blocks(x, [64, 7]))), dim=-1)
    assert torch.equal(streamed, whole)


def _pole_process(effect, audio: np.ndarray, rate: float, gain) -> np.ndarray:
    """One item through a fresh pole; a moving gain (an array) applies value b to control block b."""
    pole = _OnePole()
    gains = np.atleast_1d(np.asarray(gain, dtype=np.float32))
    block = 32 if gains.size > 1 else audio.shape[-1]
    return np.concatenate([pole.block(audio[:, b * block:(b + 1) * block], float(gains[b]))
                           for b in range(-(-audio.shape[-1] // block))], axis=-1)


@pytest.mark.parametrize("sizes", [[64, 7], [100], [1, 31, 33]])
def test_a_black_box_streams_a_moving_control_as_one_render_does(sizes: list[int]) -> None:
    from grafx_core import BlackBoxProcessor, ParameterSpec, curve_frames

    box = BlackBoxProcessor(
        None, [ParameterSpec("gain", 0.1, 2.0, default=1.0, time_varying=True)], effect_factory=_OnePole,
        process=_pole_process, process_block=lambda effect, audio, rate, gain: effect.block(audio, gain),
        workers=1, control_block=32)
    graph = Graph()
    graph.add_serial_chain(["in", "pole", "out"])
    graph.add_serial_chain(["in", "pole", "out"])
    plan = compile_render(graph, {"pole": box}, control_hop=50)
    gen = torch.Generator().manual_seed(5)
    params = {"pole": {"gain": 2 * torch.randn(2, 1, curve_frames(300, 50), generator=gen)}}  # raw values
    x = torch.randn(2, 2, 300, generator=gen)
    with torch.no_grad():
        whole, _ = plan(params, x)
        streamed = torch.cat(list(plan.stream(params, _blocks(x, sizes))), dim=-1)
        still, _ = plan({"pole": {"gain": params["pole"]["gain"][..., 0]}}, x)
    assert float((whole - still).abs().max()) > 0.1  # the control moves
    assert torch.equal(streamed, whole)


def test_a_black_box_in_worker_processes_refuses_to_stream_saying_why() -> None:
    from grafx_core import BlackBoxProcessor, ParameterSpec

    box = BlackBoxProcessor(
        None, [ParameterSpec("gain", 0.1, 2.0, default=1.0)], effect_factory=_OnePole,
        process=lambda effect, audio, rate, gain: _OnePole().block(audio, gain),
        process_block=lambda effect, audio, rate, gain: effect.block(audio, gain), runner="isolated", workers=1)
    graph = Graph()
    graph.add_serial_chain(["in", "pole", "out"])
    plan = compile_render(graph, {"pole": box})
    with torch.no_grad(), pytest.raises(StreamingError, match=r"renders in worker processes \(isolated workers=1, "
                                                              r"e\.g\. --isolate\).* keep no effect instance"):
        list(plan.stream({"pole": {"gain": torch.tensor([[1.0]])}}, [torch.zeros(1, 2, 64)]))


class _BackgroundCompressor(dsp.Compressor):
    """A compressor whose calls run in the background (as black boxes' do)."""

    concurrent_calls = True


def _routed() -> tuple[object, dict, torch.Tensor]:
    """Three stereo tracks through gains; one split into mid and side (two mono outlets) and joined
    again, the others compressed in the background; mono mid summed into a stereo mix (broadcast),
    two outputs."""
    graph = Graph()
    ins = [graph.add("in") for _ in range(3)]
    gains = [graph.add("gain") for _ in range(3)]
    for source, gain in zip(ins, gains):
        graph.connect(source, gain)
    split, join = graph.add("split"), graph.add("join")
    graph.connect(gains[1], split)
    graph.connect(split, join, "mid", "mid")
    graph.connect(split, join, "side", "side")
    comps = [graph.add("comp"), graph.add("comp")]
    graph.connect(gains[2], comps[0])
    graph.connect(gains[0], comps[1])
    mix = graph.add("mix")
    graph.connect(split, mix, "mid", "main")
    graph.connect(comps[0], mix)
    first, second = graph.add("out"), graph.add("out")
    graph.connect(mix, first)
    graph.connect(join, second)
    graph.connect(comps[1], second)
    processors = {"gain": dsp.Gain(), "split": dsp.StereoToMidSide(), "join": dsp.MidSideToStereo(),
                  "comp": _BackgroundCompressor()}
    plan = compile_render(graph, processors, control_hop=256)
    parameters = create_empty_parameters(graph, processors)
    parameters["gain"]["gain_db"] = torch.tensor([[-3.0], [2.0], [6.0]])
    parameters["comp"]["threshold_db"] = torch.tensor([[-30.0], [-20.0]])
    sources = 0.3 * torch.randn(3, 2, 5000, generator=torch.Generator().manual_seed(7))
    return plan, parameters, sources


@pytest.mark.parametrize("curves", [False, True])
def test_a_compiled_block_program_renders_as_the_general_render(monkeypatch: pytest.MonkeyPatch,
                                                                 curves: bool) -> None:
    # Blocks after the first run as prebound steps (grafx_core._block_program): bit for bit what the
    # general render gives, through slices, selections, sums with mono broadcast, two outlets and a
    # stage in the background, with kept parameters or curves, and with the same gradients.
    from grafx_core import _block_program

    plan, parameters, sources = _routed()
    if curves:
        ramp = torch.linspace(-40.0, -10.0, 1 + -(-(sources.shape[-1] - 1) // 256))
        parameters["comp"]["threshold_db"] = ramp.expand(2, 1, -1).clone()
    compiled: list[object] = []
    original = _block_program.BlockProgram.compile.__func__  # type: ignore[attr-defined]

    def spy(cls, *args, **kwargs):  # type: ignore[no-untyped-def]
        compiled.append(original(cls, *args, **kwargs))
        return compiled[-1]

    def render(compile_blocks: bool, grad: bool) -> tuple[torch.Tensor, torch.Tensor | None]:
        monkeypatch.setattr(_block_program.BlockProgram, "compile",
                            classmethod(spy if compile_blocks else lambda cls, *args: None))
        gain = parameters["gain"]["gain_db"].detach().clone().requires_grad_(grad)
        given = {**parameters, "gain": {"gain_db": gain}}
        with torch.set_grad_enabled(grad):
            y = torch.cat(list(plan.stream(given, _blocks(sources, [1024, 300, 2000]), detach_state=False)), dim=-1)
        if grad:
            (y * torch.linspace(-1.0, 1.0, y.shape[-1])).sum().backward()
        return y.detach(), gain.grad

    for grad in (False, True):
        general, general_grad = render(False, grad)
        streamed, streamed_grad = render(True, grad)
        assert compiled and compiled[-1] is not None  # the graph is one call per stage: compiled
        assert torch.equal(streamed, general)
        if grad:
            assert streamed_grad is not None and general_grad is not None
            # Equal but for the order autograd sums the paths in (a background call's nodes are made
            # on another thread, in an order that varies from run to run).
            torch.testing.assert_close(streamed_grad, general_grad, rtol=1e-6, atol=0)
    with torch.no_grad():
        whole, _ = plan(parameters, sources)
    assert float((streamed - whole).abs().max()) <= 1e-6
