"""`grafx-core render` and `grafx-core draw`, WAV and parameter files.

The reference for `render` is the Python API called on the same graph,
processors (the example plugin's classes, imported directly) and parameters:
the command must write exactly those samples.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from grafx_example_plugin import Crossfade, MidSide, SoftClip
from scipy.io import wavfile

import grafx_core.registry as registry_module
from grafx_core import Graph, ParameterError, create_empty_parameters, render
from grafx_core._optional import OptionalDependencyError
from grafx_core._threads import torch_threads
from grafx_core.cli import main
from grafx_core.drawing import draw_graph, graph_layers
from grafx_core.parameter_file import load_parameters, save_parameters
from grafx_core.registry import Registry
from grafx_core.schedule import render_order
from grafx_core.wavfile import AudioFileError, read_sources, read_wav, write_wav

RATE = 22050


@pytest.fixture(autouse=True)
def example_registry():
    """The default registry with the example plugin only, whatever else is installed."""
    previous = registry_module.set_default_registry(Registry(environ={"GRAFX_CORE_PLUGINS": "example"}))
    yield
    registry_module.set_default_registry(previous)


def _graph() -> Graph:
    g = Graph()
    a, b = g.add("in", "left_track"), g.add("in", "right_track")
    ca, cb = g.add("example:soft_clip", "clip_a"), g.add("example:soft_clip", "clip_b")
    fade = g.add("example:crossfade", "fade")
    ms = g.add("example:mid_side", "ms")
    g.connect(a, ca)
    g.connect(b, cb)
    g.connect(ca, fade, inlet="a")
    g.connect(cb, fade, inlet="b")
    g.connect(fade, ms)
    g.connect(fade, g.add("out", "mix"))
    g.connect(ms, g.add("out", "side"), outlet="side")
    return g


def _processors() -> dict:
    return {"example:soft_clip": SoftClip(), "example:crossfade": Crossfade(), "example:mid_side": MidSide()}


def _files(tmp_path, graph, sources, dtype=torch.float32):
    graph.save(tmp_path / "g.json")
    names = []
    for k, source in enumerate(sources):
        names.append(str(tmp_path / f"s{k}.wav"))
        write_wav(names[-1], source, RATE)
    params = create_empty_parameters(graph, _processors(), dtype=dtype)
    generator = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for p in params.parameters():
            p.copy_(torch.randn(p.shape, generator=generator, dtype=dtype) * 4)
    save_parameters(params, tmp_path / "p.json")
    return names, params


def test_render_command_writes_exactly_what_the_python_api_renders(tmp_path):
    graph = _graph()
    sources = torch.randn(2, 2, 3001, generator=torch.Generator().manual_seed(0)) * 0.3
    names, params = _files(tmp_path, graph, sources)
    outs = [str(tmp_path / "mix.wav"), str(tmp_path / "side.wav")]
    assert main(["render", str(tmp_path / "g.json"), "-s", names[0], "-s", names[1], "-p", str(tmp_path / "p.json"),
                 "-o", outs[0], "-o", outs[1]]) == 0
    expected, _ = render(graph, _processors(), params, sources)
    for k, out in enumerate(outs):
        rate, data = wavfile.read(out)
        assert rate == RATE and data.dtype == np.float32
        assert torch.equal(torch.from_numpy(data.T.copy()), expected[k].detach())


@pytest.mark.parametrize("threads", [1, 2])
def test_render_threads_renders_what_the_api_renders_on_that_many_threads(tmp_path, threads):
    graph = _graph()
    sources = torch.randn(2, 2, 3001, generator=torch.Generator().manual_seed(0)) * 0.3
    names, params = _files(tmp_path, graph, sources)
    before = torch.get_num_threads()
    assert main(["render", str(tmp_path / "g.json"), "-s", names[0], "-s", names[1], "-p", str(tmp_path / "p.json"),
                 "-o", str(tmp_path / "mix.wav"), "-o", str(tmp_path / "side.wav"), "--threads", str(threads)]) == 0
    assert torch.get_num_threads() == before
    with torch_threads(threads), torch.no_grad():
        expected, _ = render(graph, _processors(), params, sources)
    assert torch.equal(read_wav(tmp_path / "mix.wav")[0], expected[0])


def test_render_without_params_uses_processor_defaults(tmp_path):
    graph = _graph()
    sources = torch.randn(2, 2, 500, generator=torch.Generator().manual_seed(1)) * 0.3
    names, _ = _files(tmp_path, graph, sources)
    main(["render", str(tmp_path / "g.json"), "-s", names[0], "-s", names[1],
          "-o", str(tmp_path / "a.wav"), "-o", str(tmp_path / "b.wav")])
    expected, _ = render(graph, _processors(), create_empty_parameters(graph, _processors()), sources)
    assert torch.equal(read_wav(tmp_path / "a.wav")[0], expected[0])


def test_pad_renders_zero_padded_sources(tmp_path):
    graph = _graph()
    short, long = torch.rand(2, 300) - 0.5, torch.rand(2, 420) - 0.5
    names, params = _files(tmp_path, graph, [short, long])
    assert main(["render", str(tmp_path / "g.json"), "-s", names[0], "-s", names[1], "-p", str(tmp_path / "p.json"),
                 "--pad", "-o", str(tmp_path / "a.wav"), "-o", str(tmp_path / "b.wav")]) == 0
    padded = torch.stack([torch.nn.functional.pad(short, (0, 120)), long])
    expected, _ = render(graph, _processors(), params, padded)
    assert torch.equal(read_wav(tmp_path / "a.wav")[0], expected[0].detach())


@pytest.mark.parametrize("problem, message", [
    ("rate", "different sample rates (s0.wav: 22050 Hz, s1.wav: 16000 Hz)"),
    ("channels", "different channel counts (s0.wav: 2, s1.wav: 1)"),
    ("length", "different lengths in samples (s0.wav: 400, s1.wav: 399)"),
    ("count", "1 source file(s) given, but"),
    ("outputs", "1 output file(s) given, but"),
])
def test_mismatched_sources_give_one_line_errors(tmp_path, capsys, problem, message):
    graph = _graph()
    graph.save(tmp_path / "g.json")
    write_wav(tmp_path / "s0.wav", torch.zeros(2, 400), RATE)
    second = {"rate": (torch.zeros(2, 400), 16000), "channels": (torch.zeros(1, 400), RATE),
              "length": (torch.zeros(2, 399), RATE)}.get(problem, (torch.zeros(2, 400), RATE))
    write_wav(tmp_path / "s1.wav", *second)
    sources = ["-s", str(tmp_path / "s0.wav")] + ([] if problem == "count" else ["-s", str(tmp_path / "s1.wav")])
    outputs = ["-o", str(tmp_path / "a.wav")] + ([] if problem == "outputs" else ["-o", str(tmp_path / "b.wav")])
    assert main(["render", str(tmp_path / "g.json"), *sources, *outputs]) == 1
    err = capsys.readouterr().err
    assert err.startswith("grafx-core render: error: ") and message in err and err.count("\n") == 1
    assert not (tmp_path / "a.wav").exists()


def test_read_wav_scales_integer_formats_like_their_full_scale(tmp_path):
    pcm = np.array([[-32768, 16384], [32767, -1]], dtype=np.int16)  # [samples, channels]
    wavfile.write(tmp_path / "i16.wav", 8000, pcm)
    audio, rate = read_wav(tmp_path / "i16.wav")
    assert rate == 8000 and audio.dtype == torch.float32
    assert torch.equal(audio, torch.tensor(pcm.T / 32768.0, dtype=torch.float32))
    wavfile.write(tmp_path / "u8.wav", 8000, np.array([0, 128, 255], dtype=np.uint8))
    assert read_wav(tmp_path / "u8.wav")[0].tolist() == [[-1.0, 0.0, 127 / 128]]
    (tmp_path / "bad.wav").write_bytes(b"RIFF0000WAVEjunk")
    with pytest.raises(AudioFileError, match="not a readable WAV"):
        read_wav(tmp_path / "bad.wav")
    with pytest.raises(AudioFileError, match="no source files"):
        read_sources([])


def test_int16_output_is_clipped_and_rounded(tmp_path):
    write_wav(tmp_path / "o.wav", torch.tensor([[0.5, -2.0, 1.5, 1e-5]]), RATE, format="int16")
    assert wavfile.read(tmp_path / "o.wav")[1].tolist() == [16384, -32767, 32767, 0]


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_parameter_file_round_trip_is_bit_exact_with_nested_dicts(tmp_path, dtype):
    generator = torch.Generator().manual_seed(7)
    params = torch.nn.ModuleDict({
        "eq": torch.nn.ParameterDict({"low": torch.nn.ParameterDict({"gain_db": torch.randn(3, 1, generator=generator,
                                                                                            dtype=dtype) * 1e3}),
                                      "q": torch.rand(3, 4, generator=generator, dtype=dtype) * 1e-7}),
        "none": torch.nn.ParameterDict(),
    })
    save_parameters(params, tmp_path / "p.json")
    loaded = load_parameters(tmp_path / "p.json")
    assert loaded["eq"]["low"]["gain_db"].dtype == dtype and isinstance(loaded["eq"]["q"], torch.nn.Parameter)
    assert torch.equal(loaded["eq"]["low"]["gain_db"], params["eq"]["low"]["gain_db"])
    assert torch.equal(loaded["eq"]["q"], params["eq"]["q"]) and len(loaded["none"]) == 0


def test_parameter_files_refuse_non_finite_values_and_foreign_json(tmp_path):
    with pytest.raises(ParameterError, match=r"parameter g\.x has NaN"):
        save_parameters({"g": {"x": torch.tensor([[float("nan")]])}}, tmp_path / "p.json")
    (tmp_path / "other.json").write_text(json.dumps({"nodes": []}))
    with pytest.raises(ParameterError, match="not a grafx-core parameter file"):
        load_parameters(tmp_path / "other.json")


def test_draw_command_writes_a_png(tmp_path, capsys):
    _graph().save(tmp_path / "g.json")
    assert main(["draw", str(tmp_path / "g.json"), "-o", str(tmp_path / "g.png"), "--stages"]) == 0
    image = __import__("matplotlib.image", fromlist=["imread"]).imread(tmp_path / "g.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 300
    assert (image[..., :3] < 0.5).any()  # something was drawn
    assert "wrote" in capsys.readouterr().out


def test_drawing_colours_each_render_stage_alike_and_layers_follow_longest_paths():
    from matplotlib.patches import FancyBboxPatch

    graph = _graph()
    stages = render_order(graph, "one-by-one")
    figure = draw_graph(graph, processors=_processors(), stages=stages)
    boxes = [p for p in figure.axes[0].patches if isinstance(p, FancyBboxPatch)]
    assert len(boxes) == len(graph)
    colours = {node.id: boxes[node.id].get_facecolor() for node in graph.nodes}
    stage_colours = [colours[stage.nodes[0]] for stage in stages]
    assert len(set(stage_colours)) == len(stages)  # one-by-one: every stage its own colour
    layers = graph_layers(graph)
    assert layers[0] == [0, 1] and layers[1] == [2, 3] and layers[2] == [4] and layers[3] == [5]
    assert sorted(layers[-1]) == graph.nodes_of_type("out")


def test_draw_without_matplotlib_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    _graph().save(tmp_path / "g.json")
    monkeypatch.setitem(__import__("sys").modules, "matplotlib", None)
    with pytest.raises(OptionalDependencyError, match=r"pip install grafx-core\[plot\]"):
        draw_graph(_graph())
    assert main(["draw", str(tmp_path / "g.json"), "-o", str(tmp_path / "g.png")]) == 1
    assert "pip install grafx-core[plot]" in capsys.readouterr().err


def test_missing_graph_file_and_output_folder_give_one_line_errors(tmp_path, capsys):
    wav = str(tmp_path / "s.wav")
    write_wav(wav, torch.zeros(2, 100), RATE)
    assert main(["render", str(tmp_path / "nope.json"), "-s", wav, "-o", str(tmp_path / "a.wav")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("grafx-core render: error: ") and "nope.json" in err and err.count("\n") == 1
    _graph().save(tmp_path / "g.json")
    assert main(["draw", str(tmp_path / "g.json"), "-o", str(tmp_path / "no_folder" / "g.png")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("grafx-core draw: error: ") and "no_folder" in err and err.count("\n") == 1


def test_drawing_keeps_port_names_clear_of_labels_and_edges_over_boxes():
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.patches import FancyArrowPatch, FancyBboxPatch

    figure = draw_graph(_graph(), processors=_processors(), stages="beam")
    renderer = FigureCanvasAgg(figure).get_renderer()
    ax = figure.axes[0]
    texts = [t for t in ax.texts if t.get_text()]
    ports = [t for t in texts if t.get_text() in ("a", "b", "mid", "side")]
    labels = [t for t in texts if t not in ports]
    assert len(ports) == 4
    for port in ports:
        box = port.get_window_extent(renderer)
        assert not any(box.overlaps(label.get_window_extent(renderer)) for label in labels), port.get_text()
    # An edge that skips a column (fade -> out "mix" past "ms") must not hide behind the boxes it crosses.
    box_z = max(p.get_zorder() for p in ax.patches if isinstance(p, FancyBboxPatch))
    assert all(p.get_zorder() > box_z for p in ax.patches if isinstance(p, FancyArrowPatch))


def _one_line(capsys, args):
    assert main(args) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"grafx-core {args[0]}: error: "), err
    return err


def test_render_never_overwrites_inputs_or_existing_files_without_force(tmp_path, capsys):
    graph = _graph()
    sources = torch.randn(2, 2, 500, generator=torch.Generator().manual_seed(0)) * 0.3
    names, _ = _files(tmp_path, graph, sources)
    g = str(tmp_path / "g.json")
    common = ["render", g, "-s", names[0], "-s", names[1], "-p", str(tmp_path / "p.json")]
    graph_bytes = (tmp_path / "g.json").read_bytes()
    assert "render writes WAV files only" in _one_line(capsys, [*common, "-o", g, "-o", str(tmp_path / "b.wav")])
    assert (tmp_path / "g.json").read_bytes() == graph_bytes
    assert "render writes WAV files only" in _one_line(capsys, [*common, "-o", str(tmp_path / "a.mp3"),
                                                                "-o", str(tmp_path / "b.wav")])
    assert not (tmp_path / "a.mp3").exists()
    assert "is also an input" in _one_line(capsys, [*common, "-o", names[0], "-o", str(tmp_path / "b.wav"),
                                                    "--force"])
    outs = ["-o", str(tmp_path / "a.wav"), "-o", str(tmp_path / "b.wav")]
    assert main([*common, *outs]) == 0
    capsys.readouterr()
    assert "exists: pass --force" in _one_line(capsys, [*common, *outs])
    assert main([*common, *outs, "--force"]) == 0


def test_render_names_a_non_finite_parameter_instead_of_writing_nan(tmp_path, capsys):
    graph = _graph()
    sources = torch.randn(2, 2, 500, generator=torch.Generator().manual_seed(0)) * 0.3
    names, _ = _files(tmp_path, graph, sources)
    data = json.loads((tmp_path / "p.json").read_text())
    data["parameters"]["example:soft_clip"]["drive_db"][1] = [float("nan")]
    (tmp_path / "nan.json").write_text(json.dumps(data))
    err = _one_line(capsys, ["render", str(tmp_path / "g.json"), "-s", names[0], "-s", names[1],
                             "-p", str(tmp_path / "nan.json"), "-o", str(tmp_path / "a.wav"), "-o",
                             str(tmp_path / "b.wav")])
    assert "nan" in err.lower() and "drive_db" in err
    assert not (tmp_path / "a.wav").exists()


def test_render_options_with_an_unknown_keyword_give_one_line(tmp_path, capsys):
    graph = _graph()
    sources = torch.randn(2, 2, 500, generator=torch.Generator().manual_seed(0)) * 0.3
    names, _ = _files(tmp_path, graph, sources)
    (tmp_path / "o.json").write_text(json.dumps({"example:soft_clip": {"knee": 1}}))
    err = _one_line(capsys, ["render", str(tmp_path / "g.json"), "-s", names[0], "-s", names[1],
                             "--options", str(tmp_path / "o.json"), "-o", str(tmp_path / "a.wav"), "-o",
                             str(tmp_path / "b.wav")])
    # SoftClip inherits nn.Module's (*args, **kwargs), so the refusal comes from building it.
    assert "example:soft_clip" in err and "unexpected keyword argument 'knee'" in err


@pytest.mark.parametrize("args, message", [
    (["-o", "g.xyz"], "unknown picture format 'xyz'; name it with one of"),
    (["-o", "g"], "unknown picture format '(no extension)'"),
])
def test_draw_refuses_an_unknown_picture_format_in_one_line(tmp_path, capsys, args, message):
    _graph().save(tmp_path / "g.json")
    args = [a if not a.startswith("g") else str(tmp_path / a) for a in args]
    assert message in _one_line(capsys, ["draw", str(tmp_path / "g.json"), *args])
    assert not any(p.name.startswith("g.") and p.name != "g.json" for p in tmp_path.iterdir())


def test_draw_refuses_dpi_zero(tmp_path, capsys):
    _graph().save(tmp_path / "g.json")
    with pytest.raises(SystemExit) as excinfo:
        main(["draw", str(tmp_path / "g.json"), "-o", str(tmp_path / "g.png"), "--dpi", "0"])
    assert excinfo.value.code == 2 and "argument --dpi: expected at least 1, got 0" in capsys.readouterr().err
