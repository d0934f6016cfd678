"""Probe grafx-core with bad input from outside and classify every outcome (issue 25's measured section).

Run: ``python tools/probes.py`` (a few minutes: every probe runs in its own
process, so that a crash or a hang is observed, not suffered). Each probe is
classified as:

* ``correct``: it did the right thing (the result checks out);
* ``named``: it refused with an error naming what is at fault (the words the probe expects);
* ``vague``: a grafx-core error that does not name it;
* ``bare``: a library's own exception, a traceback, or the process died;
* ``silent``: it returned as if fine, with a wrong result or a file lost;
* ``hang``: no answer within the probe's time limit.

``--one NAME`` runs one probe in this process and prints its outcome as JSON
(what the parent does per probe); ``--json`` prints all outcomes as JSON.
Run it on another checkout with ``PYTHONPATH`` pointing at that checkout's
``grafx_core`` and plugins to measure it the same way.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import io
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

CLASSES = ("correct", "named", "vague", "bare", "silent", "hang")
PROBES: dict[str, tuple[Callable[[Path], Any], tuple[str, ...], float]] = {}


def probe(*words: str, timeout: float = 90.0) -> Callable[[Callable[[Path], Any]], Callable[[Path], Any]]:
    """Register a probe; ``words`` are what a named error must mention (any one of them, case-insensitive)."""
    def register(fn: Callable[[Path], Any]) -> Callable[[Path], Any]:
        PROBES[fn.__name__] = (fn, words, timeout)
        return fn
    return register


class Silent(Exception):
    """The probe's check found a wrong result or a lost file."""


def check(ok: bool, what: str) -> None:
    if not ok:
        raise Silent(what)


# -- files ---------------------------------------------------------------------------------------------------

def _earlier_results(tmp: Path, listed: list[str]) -> tuple[Path, Path]:
    from grafx_core.fitting.outputs import MANIFEST

    out, elsewhere = tmp / "out", tmp / "elsewhere"
    out.mkdir()
    elsewhere.mkdir()
    (elsewhere / "x").write_text("precious")
    (out / "fitted.wav").write_bytes(b"earlier")
    (out / MANIFEST).write_text(json.dumps({"files": [*listed, "fitted.wav"]}))
    return out, elsewhere


def _force_into(out: Path, elsewhere: Path) -> None:
    from grafx_core.fitting.outputs import ResultsFolder

    ResultsFolder(out, force=True)
    check((elsewhere / "x").exists() and (elsewhere / "x").read_text() == "precious",
          "fit --force deleted a file outside the results folder")


@probe("manifest", "leaves the folder", "outside")
def force_manifest_parent(tmp: Path) -> None:
    _force_into(*_earlier_results(tmp, ["../elsewhere/x"]))


@probe("manifest", "relative path", "outside")
def force_manifest_absolute(tmp: Path) -> None:
    _force_into(*_earlier_results(tmp, [str(tmp / "elsewhere" / "x")]))


@probe("manifest", "symbolic link")
def force_manifest_link_to_folder(tmp: Path) -> None:
    out, elsewhere = _earlier_results(tmp, ["linked/x"])
    (out / "linked").symlink_to(elsewhere, target_is_directory=True)
    _force_into(out, elsewhere)


@probe("manifest", "symbolic link")
def force_manifest_link_to_file(tmp: Path) -> None:
    out, elsewhere = _earlier_results(tmp, ["report.json"])
    (out / "report.json").symlink_to(elsewhere / "x")
    _force_into(out, elsewhere)


@probe("symbolic link", "out.wav")
def render_force_through_link(tmp: Path) -> None:
    from grafx_core import Graph
    from grafx_core.cli import main
    from grafx_core.wavfile import write_wav
    import torch

    graph = Graph()
    graph.add_serial_chain(["in", "out"])
    graph.save(tmp / "g.json")
    write_wav(str(tmp / "in.wav"), torch.zeros(1, 100), 8000)
    victim = tmp / "victim.txt"
    victim.write_bytes(b"precious")
    (tmp / "out.wav").symlink_to(victim)
    try:
        _cli(main, ["render", str(tmp / "g.json"), "-s", str(tmp / "in.wav"), "-o", str(tmp / "out.wav"), "--force"])
    finally:
        check(victim.read_bytes() == b"precious", "render --force wrote through a link into another file")


# -- native code ---------------------------------------------------------------------------------------------

@probe("would load native code", "allow")
def options_file_loads_native_code(tmp: Path) -> None:
    from grafx_core import Graph
    from grafx_core.cli import main
    from grafx_core.wavfile import write_wav
    import torch

    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise RuntimeError("no C compiler to build the probe's library")
    library = tmp / "evil.vst3" / "Contents" / "x86_64-linux" / "evil.so"
    library.parent.mkdir(parents=True)
    (tmp / "evil.c").write_text('#include <stdio.h>\n#include <stdlib.h>\n__attribute__((constructor)) static void f(void)'
                                '{ FILE *h = fopen(getenv("PROBE_MARKER"), "w"); if (h) fclose(h); }\n')
    subprocess.run([compiler, "-shared", "-fPIC", "-o", str(library), str(tmp / "evil.c")], check=True)
    os.environ["PROBE_MARKER"] = str(tmp / "marker")
    graph = Graph()
    graph.add_serial_chain(["in", "pedalboard:external", "out"])
    graph.save(tmp / "g.json")
    (tmp / "o.json").write_text(json.dumps({"pedalboard:external": {"path": str(tmp / "evil.vst3")}}))
    write_wav(str(tmp / "in.wav"), torch.zeros(2, 4410), 44100)
    try:
        _cli(main, ["render", str(tmp / "g.json"), "-s", str(tmp / "in.wav"), "-o", str(tmp / "out.wav"),
                    "--options", str(tmp / "o.json")])
    finally:
        check(not (tmp / "marker").exists(), "a render loaded a shared library named by an options file")


# -- checkpoints and proxies ---------------------------------------------------------------------------------

def _trainer(rewired: bool = False, narrow: bool = False) -> Any:
    import torch
    from grafx_core import Graph, ParameterPredictor, ParameterRange, PredictorTrainer

    class Gain(torch.nn.Module):
        def parameter_size(self):
            return {"gain_db": 1}

        def forward(self, x, gain_db):
            return x * 10 ** (gain_db[:, :, None] / 20)

    graph = Graph()
    a, g1, g2, o = graph.add("in"), graph.add("gain", "g1"), graph.add("gain", "g2"), graph.add("out")
    graph.connect(a, g1)
    graph.connect(a if not rewired else g1, g2)
    graph.connect(g1 if not rewired else g2, o)
    if not rewired:
        graph.connect(g2, o)
    ranges = {"gain": {"gain_db": ParameterRange(-6.0, 6.0)}} if narrow else None
    torch.manual_seed(0)
    model = ParameterPredictor(graph, {"gain": Gain()}, sample_rate=16000, n_fft=256, n_mels=16, width=8, layers=1,
                               embedding=8, hidden=8, ranges=ranges)
    return PredictorTrainer(model, lambda m, g: m(torch.randn(2, 1, 1024, generator=g))["gain"]["gain_db"]
                            .square().mean(), learning_rate=1e-2, seed=3)


def _snapshot(trainer: Any) -> list[Any]:
    return [v.clone() for v in trainer.model.state_dict().values()] + [trainer.step]


def _load_checkpoint(tmp: Path, damage: Callable[[Path], None], **trainer: bool) -> None:
    import torch

    source = _trainer()
    source.fit(2, progress=False)
    path = tmp / "run.pt"
    source.save(path)
    damage(path)
    target = _trainer(**trainer)
    before = _snapshot(target)
    try:
        target.load(path)
    except BaseException:
        after = _snapshot(target)
        check(all(torch.equal(a, b) if isinstance(a, torch.Tensor) else a == b for a, b in zip(before, after)),
              "a refused checkpoint left the model half-updated")
        raise
    check(False, "a damaged or foreign checkpoint was loaded")


def _flip(mask: int, where: float = 0.5) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[int(len(data) * where)] ^= mask
        path.write_bytes(bytes(data))
    return damage


def _replace(data: Callable[[Path], bytes | None]) -> Callable[[Path], None]:
    def damage(path: Path) -> None:
        content = data(path)
        path.unlink()
        if content is not None:
            path.write_bytes(content)
    return damage


def _wav_bytes(_: Path) -> bytes:
    import numpy as np
    from scipy.io import wavfile

    buffer = io.BytesIO()
    wavfile.write(buffer, 8000, np.zeros(800, np.float32))
    return buffer.getvalue()


def _code_pickle(_: Path) -> bytes:
    import torch

    buffer = io.BytesIO()
    torch.save({"format": "grafx-core.predictor-checkpoint", "code": ctypes.CDLL}, buffer)
    return buffer.getvalue()


CHECKPOINT_DAMAGE = {
    "missing": _replace(lambda p: None),
    "empty": _replace(lambda p: b""),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "random": _replace(lambda p: os.urandom(4096)),
    "json": _replace(lambda p: b'{"format": "grafx-core.predictor-checkpoint", "step": 3}'),
    "wav": _replace(_wav_bytes),
    "flipped_byte": _flip(0xFF, 0.6),
    "flipped_bit": _flip(0x01, 0.7),
    "code_pickle": _replace(_code_pickle),
}

for _kind, _damage in CHECKPOINT_DAMAGE.items():
    def _checkpoint_probe(tmp: Path, damage: Callable[[Path], None] = _damage) -> None:
        _load_checkpoint(tmp, damage)
    _checkpoint_probe.__name__ = f"checkpoint_{_kind}"
    probe("run.pt")(_checkpoint_probe)


@probe("run.pt")
def checkpoint_folder(tmp: Path) -> None:
    def damage(path: Path) -> None:
        path.unlink()
        path.mkdir()
    _load_checkpoint(tmp, damage)


@probe("another graph", "graph")
def checkpoint_rewired_graph(tmp: Path) -> None:
    _load_checkpoint(tmp, lambda p: None, rewired=True)


@probe("range", "gain_db")
def checkpoint_narrower_ranges(tmp: Path) -> None:
    _load_checkpoint(tmp, lambda p: None, narrow=True)


def _load_proxy(tmp: Path, damage: Callable[[Path], None]) -> None:
    from grafx_core import ProxyNetwork, load_proxy, save_proxy

    path = tmp / "proxy.pt"
    save_proxy(ProxyNetwork(1, 2, hidden=4, layers=2, condition=4), path)
    damage(path)
    load_proxy(path)
    check(False, "a damaged or foreign proxy file was loaded")


for _kind in ("missing", "empty", "truncated", "random", "json", "flipped_byte", "code_pickle"):
    def _proxy_probe(tmp: Path, damage: Callable[[Path], None] = CHECKPOINT_DAMAGE[_kind]) -> None:
        _load_proxy(tmp, damage)
    _proxy_probe.__name__ = f"proxy_{_kind}"
    probe("proxy.pt")(_proxy_probe)


# -- black boxes that crash or hang later than a first trial -------------------------------------------------

def misbehave(audio: Any, sample_rate: float, gain_db: float, mode: float) -> Any:
    """A gain; mode 1-2 segfaults, 2-3 ends the process with exit(), 3-4 hangs."""
    if 1 <= mode < 2:
        ctypes.string_at(0)
    if 2 <= mode < 3:
        os._exit(0)
    if 3 <= mode < 4:
        time.sleep(10**6)
    return audio * 10 ** (gain_db / 20)


def _black_box_at(mode: float) -> None:
    import torch
    from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec

    sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
    import probes as this  # pickles by module name in worker processes

    specs = [ParameterSpec("gain_db", -12.0, 12.0), ParameterSpec("mode", 0.0, 10.0, differentiable=False)]
    try:
        box = BlackBoxProcessor(this.misbehave, specs, runner="isolated", workers=1, timeout=5, name="flaky")
    except Exception:  # no isolated runner in this version: the default one
        box = BlackBoxProcessor(this.misbehave, specs, workers=1, name="flaky")
    box.node_labels = ["kick", "snare"]
    x = torch.randn(2, 2, 4096) * 0.1
    with torch.no_grad():
        for _ in range(3):  # fine at first: the crash comes at a later render, at one control value
            box(x, **box.raw_parameters(gain_db=torch.zeros(2), mode=torch.zeros(2)))
        box(x, **box.raw_parameters(gain_db=torch.zeros(2), mode=torch.tensor([0.0, mode])))
    check(False, "the misbehaving render returned")


@probe("snare", timeout=120)
def black_box_segfault_later(tmp: Path) -> None:
    _black_box_at(1.5)


@probe("snare", timeout=120)
def black_box_exit_later(tmp: Path) -> None:
    _black_box_at(2.5)


@probe("snare", timeout=120)
def black_box_hang_later(tmp: Path) -> None:
    _black_box_at(3.5)


@probe("lsp", timeout=120)
def lv2_raw_control_minus_1e30(tmp: Path) -> None:
    import torch
    from grafx_core import get_processor

    box = get_processor("lv2:lsp_compressor_stereo", include=["at", "rt", "cr"], workers=1)
    with torch.no_grad():
        y = box(torch.randn(1, 2, 4410) * 0.1, **{k: torch.full((1, 1), -1e30) for k in box.default_parameters()})
    check(bool(torch.isfinite(y).all()), "non-finite output")


# -- Ray -----------------------------------------------------------------------------------------------------

@probe("pickle", "locked", timeout=180)
def ray_unpicklable_effect(tmp: Path) -> None:
    import threading
    import torch
    from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec, local_ray_cluster

    lock = threading.Lock()

    def locked(audio, sample_rate, gain_db):
        with lock:
            return audio

    with local_ray_cluster(num_cpus=1):
        box = BlackBoxProcessor(locked, [ParameterSpec("gain_db", -1.0, 1.0)], runner="ray", workers=1, name="locked")
        box(torch.zeros(1, 1, 64), gain_db=torch.zeros(1, 1))
    check(False, "an unpicklable effect rendered on Ray")


@probe("ray address", "not 'auto'", "nonsense")
def ray_malformed_address(tmp: Path) -> None:
    import torch
    from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec, RayRunner

    box = BlackBoxProcessor(lambda a, sample_rate, gain_db: a, [ParameterSpec("gain_db", -1.0, 1.0)],
                            runner=RayRunner(address="nonsense::address"), name="g")
    box(torch.zeros(1, 1, 64), gain_db=torch.zeros(1, 1))
    check(False, "rendered with a malformed address")


@probe("127.0.0.1:1", "no ray cluster", timeout=60)
def ray_refused_address(tmp: Path) -> None:
    import torch
    from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec, RayRunner

    box = BlackBoxProcessor(lambda a, sample_rate, gain_db: a, [ParameterSpec("gain_db", -1.0, 1.0)],
                            runner=RayRunner(address="127.0.0.1:1"), name="g")
    box(torch.zeros(1, 1, 64), gain_db=torch.zeros(1, 1))
    check(False, "rendered with a refused address")


# -- grafx-core gradients ------------------------------------------------------------------------------------

def _cli(main: Callable[[list[str]], int], argv: list[str]) -> None:
    """Run the command line; its one-line error (exit 1 or 2) becomes an exception carrying that line."""
    err = io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
        try:
            status = main(argv)
        except SystemExit as exit_:
            status = exit_.code
    text = err.getvalue().strip()
    if status not in (0, None):
        raise CommandError(text.splitlines()[-1] if text else f"exit status {status}", "Traceback" in text)


class CommandError(Exception):
    def __init__(self, line: str, traceback: bool) -> None:
        super().__init__(line)
        self.traceback = traceback


for _name, _argv in {"items_0": ["--items", "0"], "items_negative": ["--items", "-2"],
                     "items_1000000": ["--items", "1000000"], "seconds_0": ["--seconds", "0"],
                     "seconds_nan": ["--seconds", "nan"], "seconds_inf": ["--seconds", "inf"],
                     "seconds_100000": ["--seconds", "100000"]}.items():
    def _gradients_probe(tmp: Path, argv: list[str] = _argv) -> None:
        from grafx_core.cli import main
        _cli(main, ["gradients", "dsp:gain", *argv])
        check(False, "gradients ran with a meaningless option")
    _gradients_probe.__name__ = f"gradients_{_name}"
    probe(_argv[0], timeout=60)(_gradients_probe)


@probe("nan", timeout=120)
def gradients_nan_processor(tmp: Path) -> None:
    import torch
    from grafx_core.gradient_report import gradient_report

    class NaNGain(torch.nn.Module):
        def parameter_size(self):
            return {"gain_db": 1}

        def forward(self, x, gain_db):
            return x * float("nan")

    report = gradient_report(NaNGain(), items=2, seconds=0.1, name="nan_gain")
    check(False, f"a NaN processor was measured as if fine ({len(report.rows)} rows)")


# -- running and classifying ---------------------------------------------------------------------------------

def run_one(name: str) -> dict[str, str]:
    """Run probe ``name`` here and classify what it did (a crash or hang is seen by the parent)."""
    fn, words, _ = PROBES[name]
    from grafx_core.errors import GrafxError

    with tempfile.TemporaryDirectory() as folder:
        try:
            fn(Path(folder))
        except Silent as silent:
            return {"class": "silent", "detail": str(silent)}
        except BaseException as error:
            message = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            mentions = any(w.lower() in str(error).lower() for w in words)
            ours = isinstance(error, (GrafxError, CommandError)) and not getattr(error, "traceback", False)
            kind = "named" if mentions and (ours or isinstance(error, (ValueError, TypeError))) else \
                   "vague" if ours else "bare"
            return {"class": kind, "detail": f"{type(error).__name__}: {message}"[:300]}
        return {"class": "correct", "detail": ""}


def run_all(names: list[str]) -> dict[str, dict[str, str]]:
    outcomes = {}
    for name in names:
        _, _, limit = PROBES[name]
        try:
            done = subprocess.run([sys.executable, os.path.abspath(__file__), "--one", name], capture_output=True,
                                  text=True, timeout=limit)
        except subprocess.TimeoutExpired:
            outcomes[name] = {"class": "hang", "detail": f"no answer within {limit:g} s"}
            continue
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        if done.returncode != 0 or not lines:
            outcomes[name] = {"class": "bare", "detail": f"the process died (status {done.returncode}): "
                              f"{(done.stderr.strip().splitlines() or [''])[-1][:200]}"}
        else:
            outcomes[name] = json.loads(lines[-1])
    return outcomes


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--one", metavar="NAME", help="run one probe here and print its outcome as JSON")
    parser.add_argument("--json", action="store_true", help="print every outcome as JSON")
    parser.add_argument("names", nargs="*", help="probes to run (default: all)")
    args = parser.parse_args()
    if args.one:
        print(json.dumps(run_one(args.one)))
        return
    outcomes = run_all(args.names or list(PROBES))
    if args.json:
        print(json.dumps(outcomes, indent=1))
        return
    for name, outcome in outcomes.items():
        print(f"{outcome['class']:8s} {name:36s} {outcome['detail']}")
    counts = {c: sum(o["class"] == c for o in outcomes.values()) for c in CLASSES}
    print("counts: " + ", ".join(f"{c} {n}" for c, n in counts.items()) + f" ({len(outcomes)} probes)")


if __name__ == "__main__":
    main()
