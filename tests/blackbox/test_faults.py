"""Black-box faults: effects that never return, write into their input, return complex or
text samples, or receive NaN from upstream; Ctrl-C during a render."""

from __future__ import annotations

import ctypes
import signal
import subprocess
import sys
import textwrap
import time

import numpy as np
import pytest
import torch

from grafx_core import BlackBoxTimeoutError, Graph, compile_render, create_empty_parameters
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import BlackBoxError

GAIN = [ParameterSpec("gain_db", -12.0, 12.0)]


def _raw(nodes: int) -> dict[str, torch.Tensor]:
    return {"gain_db": torch.zeros(nodes, 1)}


@pytest.mark.parametrize("workers", [1, 2])
def test_an_effect_past_its_timeout_raises_naming_the_node(workers):
    def stuck_on_row_1(audio, sample_rate, gain_db):
        if audio[0, 0] == 1.0:
            time.sleep(20)
        return audio

    box = BlackBoxProcessor(stuck_on_row_1, GAIN, workers=workers, timeout=0.3, name="stuck")
    x = torch.zeros(3, 1, 64)
    x[1, 0, 0] = 1.0
    begin = time.monotonic()
    with pytest.raises(BlackBoxTimeoutError, match=r"black box 'stuck', node row 1: .*within the timeout of 0.3 s"):
        box(x, **_raw(3))
    assert time.monotonic() - begin < 3.0
    # The stuck thread is abandoned: the next call runs on fresh threads and succeeds.
    torch.testing.assert_close(box(torch.zeros(3, 1, 64), **_raw(3)), torch.zeros(3, 1, 64))


def test_ctrl_c_ends_a_render_with_two_workers_promptly(tmp_path, interruptible):
    script = tmp_path / "stuck.py"
    script.write_text(textwrap.dedent("""
        import sys, time, torch
        from grafx_core.blackbox import BlackBoxProcessor
        def never_returns(audio, sample_rate):
            time.sleep(600)
        box = BlackBoxProcessor(never_returns, workers=2)
        print("ready", flush=True)
        box(torch.zeros(4, 1, 16))
        """))
    process = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               preexec_fn=interruptible)
    try:
        assert process.stdout.readline().strip() == "ready"
        time.sleep(0.5)  # inside the call
        process.send_signal(signal.SIGINT)
        # The effect sleeps for 600 s; the bound leaves room for the interpreter's teardown of torch.
        _, stderr = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode != 0 and "KeyboardInterrupt" in stderr


@pytest.mark.parametrize("make", [lambda: torch.arange(1.0, 129.0).reshape(2, 1, 64),
                                  lambda: torch.arange(1.0, 129.0, dtype=torch.float64).reshape(2, 1, 64),
                                  lambda: torch.arange(1.0, 257.0).reshape(2, 1, 128)[..., ::2]],
                         ids=["float32", "float64", "strided"])
def test_an_effect_writing_through_the_data_pointer_cannot_change_the_source(make):
    def vandal(audio, sample_rate):
        with pytest.raises(ValueError):
            audio.flags.writeable = True
        ctypes.memset(audio.ctypes.data, 0, audio.nbytes)
        return np.ones_like(audio)

    x = make()
    before = x.clone()
    y = BlackBoxProcessor(vandal, workers=1)(x)
    torch.testing.assert_close(x, before, rtol=0, atol=0)
    torch.testing.assert_close(y, torch.ones_like(x))


@pytest.mark.parametrize("returned, named", [(lambda a: a.astype(np.complex64), "complex64"),
                                             (lambda a: np.full(a.shape, "x"), "<U1"),
                                             (lambda a: a.astype(np.int16), "int16")])
def test_an_effect_returning_non_real_samples_is_a_named_error(returned, named):
    box = BlackBoxProcessor(lambda audio, sample_rate: returned(audio), workers=1, name="odd")
    with pytest.raises(BlackBoxError, match=rf"black box 'odd', node row 0: the effect returned {named} samples"):
        box(torch.zeros(2, 1, 32))


class _PoisonRow1(torch.nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        poison = torch.zeros_like(x)
        poison[1] = float("nan")
        return x + poison


def test_nan_from_upstream_is_blamed_on_upstream_and_names_the_black_box_node():
    graph = Graph()
    for k in range(2):
        source, poison, box = graph.add("in"), graph.add("poison"), graph.add("box", name=f"box{k}")
        graph.connect(source, poison)
        graph.connect(poison, box)
        graph.connect(box, graph.add("out"))
    processors = {"poison": _PoisonRow1(), "box": BlackBoxProcessor(lambda a, sample_rate, gain_db: a, GAIN, workers=1)}
    plan = compile_render(graph, processors)
    with pytest.raises(BlackBoxError, match=r"node 6 \('box1'.*input signal holds NaN or Inf.*upstream"):
        plan(create_empty_parameters(graph, processors), torch.ones(2, 1, 32))


@pytest.mark.parametrize("workers", [1, 2])
def test_an_effect_calling_sys_exit_is_a_black_box_error(workers):
    def quits(audio, sample_rate):
        raise SystemExit(2)

    with pytest.raises(BlackBoxError, match=r"black box 'quits', node row 0: the effect raised SystemExit: 2"):
        BlackBoxProcessor(quits, workers=workers)(torch.zeros(2, 1, 16))
