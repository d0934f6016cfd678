"""Neural proxy: exactly the proxy's VJP; training lowers its loss; save and load."""

import copy

import numpy as np
import pytest
import torch

from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import EstimatorError
from grafx_core.estimators import (
    NeuralProxy,
    ProxyNetwork,
    load_proxy,
    random_signals,
    save_proxy,
    train_proxy,
    with_estimator,
)
from grafx_core.estimators.training import proxy_loss

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def random_proxy(channels, parameters, seed=0):
    torch.manual_seed(seed)
    proxy = ProxyNetwork(channels, parameters, hidden=8, layers=3)
    torch.nn.init.normal_(proxy.output.weight, std=0.3)  # the default zero start has no parameter gradient
    return proxy


def test_output_is_the_effect_gradient_is_exactly_the_proxys(analytic):
    proxy = random_proxy(2, 1)
    x = torch.randn(3, 2, 200, requires_grad=True)
    drive = torch.randn(3, 1, requires_grad=True)
    g = torch.randn(3, 2, 200)
    wrapped = with_estimator(analytic.TanhDistortion(), NeuralProxy(proxy))
    y = wrapped(x, drive_db=drive)
    torch.testing.assert_close(y, analytic.TanhDistortion()(x, drive_db=drive).detach(), rtol=0, atol=1e-6)
    got = torch.autograd.grad(y, (x, drive), g)
    expected = torch.autograd.grad(proxy(x, drive), (x, drive), g)
    for a, b in zip(got, expected):
        assert torch.equal(a, b)
    assert all(p.grad is None for p in proxy.parameters())  # frozen: no gradient into the proxy


def test_full_mode_is_the_proxy_in_both_passes(analytic):
    proxy = random_proxy(1, 1)
    x = torch.randn(2, 1, 64)
    drive = torch.randn(2, 1)
    y = with_estimator(analytic.TanhDistortion(), NeuralProxy(proxy, mode="full"))(x, drive_db=drive)
    assert torch.equal(y, proxy(x, drive))


def test_black_box_proxy_sees_normalised_parameters():
    def gain(audio, sample_rate, gain_db):
        return audio * 10 ** (gain_db / 20)

    proxy = random_proxy(1, 1)
    box = BlackBoxProcessor(gain, [ParameterSpec("gain_db", -20.0, 20.0, 0.0)], estimator=NeuralProxy(proxy))
    raw = box.raw_parameters(gain_db=[5.0, -3.0])["gain_db"].requires_grad_()
    x = torch.randn(2, 1, 64)
    g = torch.randn(2, 1, 64)
    (got,) = torch.autograd.grad(box(x, gain_db=raw), raw, g)
    (expected,) = torch.autograd.grad(proxy(x, torch.sigmoid(raw)), raw, g)
    torch.testing.assert_close(got, expected, rtol=1e-6, atol=1e-8)


def test_training_lowers_the_loss_and_the_proxy_saves_and_loads(tmp_path, capsys):
    def distortion(audio, sample_rate, drive_db):
        return np.tanh(audio * 10 ** (drive_db / 20))

    box = BlackBoxProcessor(distortion, [ParameterSpec("drive_db", 0.0, 24.0)], workers=1)
    held_out = random_signals(8, 1, 512, torch.Generator().manual_seed(99))
    p = torch.linspace(0.05, 0.95, 8).reshape(8, 1)
    truth = box(held_out, drive_db=torch.logit(p))

    def held_out_loss(net):
        with torch.no_grad():
            return float(proxy_loss(net(held_out, p), truth))

    torch.manual_seed(0)
    start = ProxyNetwork(1, 1, hidden=8, layers=3)
    before = held_out_loss(start)
    proxy, losses = train_proxy(box, start, steps=100, batch_size=4, length=512, learning_rate=1e-2, seed=0)
    assert len(losses) == 100 and proxy is start
    assert held_out_loss(proxy) < 0.6 * before  # measured 0.45
    assert "train_proxy [" in capsys.readouterr().err  # the progress bar goes to stderr
    assert not any(w.requires_grad for w in proxy.parameters())  # frozen when done

    path = tmp_path / "proxy.pt"
    save_proxy(proxy, path)
    loaded = load_proxy(path)
    x, p = torch.randn(2, 1, 256), torch.rand(2, 1)
    assert torch.equal(loaded(x, p), proxy(x, p))
    assert NeuralProxy(path).proxy.config == proxy.config

    torch.save({"something": 1}, tmp_path / "other.pt")
    with pytest.raises(EstimatorError, match="plain torch.save file without grafx-core's integrity header"):
        load_proxy(tmp_path / "other.pt")


def test_a_float64_proxy_trains_like_a_float32_one():
    def distortion(audio, sample_rate, drive_db):
        return np.tanh(audio * 10 ** (drive_db / 20))

    box = BlackBoxProcessor(distortion, [ParameterSpec("drive_db", 0.0, 24.0)], workers=1)
    torch.manual_seed(0)
    single = ProxyNetwork(1, 1, hidden=4, layers=2)
    double = copy.deepcopy(single).double()
    options = dict(steps=3, batch_size=2, length=256, learning_rate=1e-2, seed=0, progress=False)
    _, losses32 = train_proxy(box, single, **options)
    _, losses64 = train_proxy(box, double, **options)  # same batches, same start: the same losses
    np.testing.assert_allclose(losses64, losses32, rtol=1e-4)
    assert next(double.parameters()).dtype == torch.float64


def test_missing_or_mismatched_proxy_is_named(analytic):
    with pytest.raises(EstimatorError, match="no proxy"):
        with_estimator(analytic.Gain(), NeuralProxy())(torch.randn(1, 1, 8), gain_db=torch.zeros(1, 1, requires_grad=True))
    wrong = with_estimator(analytic.FIR(), NeuralProxy(random_proxy(1, 2)))
    with pytest.raises(EstimatorError, match="conditioned on 2 parameters"):
        wrong(torch.randn(1, 1, 8), taps=torch.zeros(1, 8, requires_grad=True))
    with pytest.raises(EstimatorError, match="parameter_sampler"):
        train_proxy(analytic.Gain(), steps=1, progress=False)
