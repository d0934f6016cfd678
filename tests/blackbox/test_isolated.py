"""runner="isolated": items render in worker processes, bit-identical to in-process threads, and an effect that
segfaults, ends its process, calls sys.exit or hangs, at any item or control value and after any number of
earlier calls, is a named error naming the node and the control values; the host and the next call go on."""

from __future__ import annotations

import ctypes
import os
import time

import numpy as np
import pytest
import torch

from grafx_core import BlackBoxTimeoutError, Graph, compile_render
from grafx_core.blackbox import BlackBoxProcessor, IsolatedRunner, ParameterSpec
from grafx_core.errors import BlackBoxError, BlackBoxWorkerError

SPECS = [ParameterSpec("gain_db", -12.0, 12.0), ParameterSpec("mode", 0.0, 10.0, differentiable=False)]
_calls = [0]


def misbehaving(audio, sample_rate, gain_db, mode):
    """A gain, except at some settings: mode 1-2 segfaults, 2-3 ends the process, 3-4 hangs, 4-5 calls
    sys.exit, 5-6 segfaults from its third call on (in this worker)."""
    _calls[0] += 1
    if 1 <= mode < 2:
        ctypes.string_at(0)
    if 2 <= mode < 3:
        os._exit(3)
    if 3 <= mode < 4:
        time.sleep(1000)
    if 4 <= mode < 5:
        raise SystemExit(7)
    if 5 <= mode < 6 and _calls[0] >= 3:
        ctypes.string_at(0)
    return (audio * 10 ** (gain_db / 20)).astype(np.float32)


def _box(runner):
    box = BlackBoxProcessor(misbehaving, SPECS, runner=runner, name="flaky")
    box.node_labels = ["kick", "snare", "bass"]
    return box


def _params(box, mode):
    return box.raw_parameters(gain_db=torch.tensor([-3.0, 1.5, 4.0]), mode=torch.tensor([0.0, mode, 0.0]))


@pytest.mark.slow
@pytest.mark.filterwarnings("ignore::grafx_core.estimators._warnings.NonDifferentiableParameterWarning")
def test_isolated_renders_and_gradients_equal_the_threads_runner():
    x = torch.randn(3, 2, 2000, generator=torch.Generator().manual_seed(0)) * 0.3
    results = []
    for runner in ("threads", IsolatedRunner(workers=1, timeout=60)):
        box = _box(runner)
        params = _params(box, 0.0)
        params["gain_db"].requires_grad_()
        x_ = x.clone().requires_grad_()
        y = box(x_, **params)
        (y * torch.linspace(-1, 1, 2000)).square().sum().backward()
        results.append((y.detach(), params["gain_db"].grad, x_.grad))
        box.runner.close() if hasattr(box.runner, "close") else None
    for a, b in zip(*results):
        assert torch.equal(a, b)


@pytest.mark.slow
def test_crashes_and_hangs_are_named_and_the_host_goes_on():
    box = _box(IsolatedRunner(workers=2, timeout=1.5))
    x = torch.randn(3, 2, 1000, generator=torch.Generator().manual_seed(1)) * 0.3
    for mode, kind, reason in ((1.5, BlackBoxError, r"killed by signal 11 \(SIGSEGV\)"),
                               (2.5, BlackBoxError, "exited with status 3"),
                               (3.5, BlackBoxTimeoutError, "did not return within the timeout of 1.5 s"),
                               (4.5, BlackBoxError, "raised SystemExit: 7")):
        began = time.monotonic()
        with pytest.raises(kind, match=rf"black box 'flaky', snare: .*{reason}.*parameters gain_db=1.5, "
                                       rf"mode={mode}") as caught:
            box(x, **_params(box, mode))
        assert time.monotonic() - began < 60
        assert "the host process goes on" in str(caught.value) or kind is not BlackBoxError or mode == 4.5
        expected = x * 10 ** (torch.tensor([-3.0, 1.5, 4.0]) / 20)[:, None, None]
        torch.testing.assert_close(box(x, **_params(box, 0.0)), expected)  # the next call renders
    with torch.no_grad():  # a crash on a later call, not the first: every render is guarded
        for _ in range(3):
            try:
                box(x, **_params(box, 5.5))
            except BlackBoxError as error:
                assert "snare" in str(error) and "SIGSEGV" in str(error) and "mode=5.5" in str(error)
                break
        else:
            pytest.fail("the late crash was not reported")
    box.runner.close()


def test_a_crash_inside_a_graph_render_names_the_graph_node():
    graph = Graph()
    graph.add_serial_chain(["in", {"node_type": "flaky", "name": "lead_vocal"}, "out"])
    box = BlackBoxProcessor(misbehaving, SPECS, runner=IsolatedRunner(workers=1, timeout=30), name="flaky")
    plan = compile_render(graph, {"flaky": box})
    params = {"flaky": box.raw_parameters(gain_db=torch.tensor([0.0]), mode=torch.tensor([2.5]))}
    with pytest.raises(BlackBoxError, match="lead_vocal.*exited with status 3.*mode=2.5"):
        plan(params, torch.zeros(1, 1, 500))
    box.runner.close()


def test_an_effect_that_cannot_be_pickled_is_named():
    box = BlackBoxProcessor(lambda audio, sample_rate, gain_db: audio, SPECS[:1], runner="isolated",
                            name="local")
    with pytest.raises(BlackBoxWorkerError, match="'local' cannot render in isolated worker processes: it "
                                                  "cannot be pickled.*runner='threads'"):
        box(torch.zeros(1, 1, 100), gain_db=torch.zeros(1, 1))


@pytest.mark.slow
def test_render_isolate_writes_what_an_in_process_render_writes(tmp_path):
    pytest.importorskip("grafx_pedalboard")
    from grafx_core.commands.render import render_files
    from grafx_core.wavfile import write_wav

    graph = Graph()
    graph.add_serial_chain(["in", "pedalboard:compressor", "out"])
    graph.save(tmp_path / "g.json")
    write_wav(str(tmp_path / "in.wav"), torch.randn(2, 4410, generator=torch.Generator().manual_seed(2)) * 0.3, 44100)
    args = (tmp_path / "g.json", [str(tmp_path / "in.wav")])
    threads = render_files(*args, [str(tmp_path / "a.wav")])
    isolated = render_files(*args, [str(tmp_path / "b.wav")], isolate=True)
    assert torch.equal(threads, isolated) and (tmp_path / "b.wav").read_bytes() == (tmp_path / "a.wav").read_bytes()
