"""Checkpoints and proxy files: every malformed file is a named error naming the file and the fault, a changed
byte or bit is caught by the stored SHA-256, and a refused checkpoint leaves the model and optimiser untouched;
a checkpoint made for a rewired graph or other ranges is refused."""

from __future__ import annotations

import copy
import io
import json
import pickle
import struct

import numpy as np
import pytest
import torch
from scipy.io import wavfile

from grafx_core import (EstimatorError, Graph, ParameterPredictor, ParameterRange, PredictorError, PredictorTrainer,
                        ProxyNetwork, load_proxy, save_proxy)
from grafx_core._checked_file import MAGIC


class Gain(torch.nn.Module):
    def parameter_size(self):
        return {"gain_db": 1}

    def forward(self, x, gain_db):
        return x * 10 ** (gain_db[:, :, None] / 20)


def _graph(rewired: bool = False) -> Graph:
    graph = Graph()
    a, g1, g2, o = graph.add("in"), graph.add("gain", "first"), graph.add("gain", "second"), graph.add("out")
    graph.connect(a, g1)
    graph.connect(a, g2)
    graph.connect(g1, o)
    graph.connect(g2, o) if not rewired else graph.connect(g2, g1, inlet="main")
    return graph


def _trainer(graph: Graph | None = None, ranges=None) -> PredictorTrainer:
    torch.manual_seed(0)
    model = ParameterPredictor(graph or _graph(), {"gain": Gain()}, sample_rate=16000, n_fft=256, n_mels=16,
                               width=8, layers=1, embedding=8, hidden=8, ranges=ranges)
    return PredictorTrainer(model, lambda m, g: m(torch.randn(2, 1, 1024, generator=g))["gain"]["gain_db"].square()
                            .mean(), learning_rate=1e-2, seed=3)


class Runs:
    """Module-level, so the pickle of it names a class: exactly what weights_only must refuse."""

    def __reduce__(self):
        return (print, ("a pickle that runs code",))


def _wrapped(payload: bytes) -> bytes:
    """A well-formed header (right size, right hash) around ``payload``."""
    import hashlib
    header = {"kind": "grafx-core.predictor-checkpoint", "version": 1, "bytes": len(payload),
              "sha256": hashlib.sha256(payload).hexdigest()}
    return MAGIC + json.dumps(header).encode() + b"\n" + payload


def _malformed(kind: str, good: bytes, path) -> None:
    """Write the malformed file ``kind`` at ``path``, made from the good file ``good``."""
    rng = np.random.default_rng(7)
    body = len(good) - len(MAGIC)
    if kind == "missing":
        return
    if kind == "folder":
        path.mkdir()
        return
    data = {
        "empty": b"",
        "truncated-header": good[:len(MAGIC) // 2],
        "truncated-early": good[:len(MAGIC) + 40],
        "truncated-half": good[:len(good) // 2],
        "truncated-last-byte": good[:-1],
        "appended": good + b"\0",
        "random": rng.bytes(4096),
        "json": json.dumps({"format": "grafx-core.predictor-checkpoint", "step": 3}).encode(),
        "plain-torch": _torch_bytes({"format": "grafx-core.predictor-checkpoint"}),
        "code-pickle": _wrapped(pickle.dumps(Runs())),
        "code-pickle-in-torch": _wrapped(_torch_bytes(Runs())),
    }.get(kind)
    if data is None and kind == "wav":
        buffer = io.BytesIO()
        wavfile.write(buffer, 8000, np.zeros(800, np.float32))
        data = buffer.getvalue()
    if data is None:
        flipped = bytearray(good)
        position = {"flipped-byte-header": len(MAGIC) + 10, "flipped-byte-payload": len(good) - body // 3,
                    "flipped-bit-payload": len(good) // 2, "flipped-byte-magic": 3}[kind]
        flipped[position] ^= 0xFF if "byte" in kind else 0x01
        data = bytes(flipped)
    path.write_bytes(data)


def _torch_bytes(obj) -> bytes:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    return buffer.getvalue()


MALFORMED = ["missing", "folder", "empty", "truncated-header", "truncated-early", "truncated-half",
             "truncated-last-byte", "appended", "random", "json", "wav", "plain-torch", "code-pickle",
             "code-pickle-in-torch", "flipped-byte-header", "flipped-byte-payload", "flipped-bit-payload",
             "flipped-byte-magic"]
REASON = {"missing": "does not exist", "folder": "is a folder", "empty": "is empty", "truncated-header": "is not",
          "truncated-early": "damaged header|is truncated", "truncated-half": "is truncated",
          "truncated-last-byte": "is truncated", "appended": "has bytes appended",
          "random": "not a grafx-core file", "json": "is JSON text", "wav": "RIFF", "plain-torch": "integrity header",
          "code-pickle": "weights_only|cannot read", "code-pickle-in-torch": "weights_only",
          "flipped-byte-header": "damaged header|holds a|truncated|appended|corrupted",
          "flipped-byte-payload": "is corrupted", "flipped-bit-payload": "is corrupted",
          "flipped-byte-magic": "not a grafx-core file"}


@pytest.fixture(scope="module")
def good_checkpoint(tmp_path_factory):
    good = tmp_path_factory.mktemp("good") / "good.pt"
    trainer = _trainer()
    trainer.fit(2, progress=False)
    trainer.save(good)
    return good.read_bytes()


@pytest.mark.usefixtures("one_torch_thread")
@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_checkpoint_is_named_and_leaves_the_trainer_untouched(tmp_path, kind, good_checkpoint):
    target = _trainer()
    target.fit(1, progress=False)
    before = (copy.deepcopy(target.model.state_dict()), copy.deepcopy(target.optimiser.state_dict()), target.step)
    path = tmp_path / "bad.pt"
    _malformed(kind, good_checkpoint, path)
    with pytest.raises(PredictorError, match=REASON[kind]) as caught:
        target.load(path)
    assert repr(str(path)) in str(caught.value)
    state, optimiser, step = before
    assert target.step == step and all(torch.equal(v, target.model.state_dict()[k]) for k, v in state.items())
    assert str(target.optimiser.state_dict()) == str(optimiser)


@pytest.mark.parametrize("kind", MALFORMED)
def test_a_malformed_proxy_file_is_named(tmp_path, kind):
    good = tmp_path / "good.pt"
    save_proxy(ProxyNetwork(1, 2, hidden=4, layers=2, condition=4), good)
    path = tmp_path / "bad.pt"
    data = good.read_bytes().replace(b"grafx-core.proxy", b"grafx-core.proxy", 1)
    _malformed(kind, data, path)
    if kind.startswith("code-pickle"):  # same payload, a proxy header
        path.write_bytes(path.read_bytes().replace(b"grafx-core.predictor-checkpoint", b"grafx-core.proxy", 1))
    with pytest.raises(EstimatorError, match=REASON[kind]) as caught:
        load_proxy(path)
    assert repr(str(path)) in str(caught.value)


def test_a_proxy_whose_config_does_not_match_its_weights_is_refused_before_it_is_built(tmp_path):
    from grafx_core._checked_file import save_checked
    proxy = ProxyNetwork(1, 2, hidden=4, layers=2, condition=4)
    saved = {"format": "grafx-core.proxy", "version": 1, "config": {**proxy.config, "hidden": 10**7},
             "state_dict": proxy.state_dict()}
    save_checked(saved, tmp_path / "p.pt", "grafx-core.proxy", EstimatorError)
    with pytest.raises(EstimatorError, match=r"needs input.weight of shape \[10000000, 1, 1\]"):
        load_proxy(tmp_path / "p.pt")


def test_resuming_for_a_rewired_graph_or_other_ranges_is_refused(tmp_path):
    path = tmp_path / "run.pt"
    trainer = _trainer()
    trainer.fit(2, progress=False, checkpoint=path)
    rewired = _trainer(_graph(rewired=True))
    with pytest.raises(PredictorError, match="written for another graph"):
        rewired.load(path)
    narrower = _trainer(ranges={"gain": {"gain_db": ParameterRange(-6.0, 6.0)}})
    with pytest.raises(PredictorError, match=r"other settings of gain.gain_db: range \[.*\] there, range \[-6.0, 6.0\]"):
        narrower.fit(4, progress=False, checkpoint=path)
    assert narrower.step == 0
    same = _trainer()
    same.load(path)
    assert same.step == 2 and same.losses == trainer.losses
    for key, value in trainer.model.state_dict().items():
        assert torch.equal(value, same.model.state_dict()[key])
