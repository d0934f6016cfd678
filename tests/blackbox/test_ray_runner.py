"""The Ray runner renders exactly what the thread pool renders, and fails by name, never by hanging.

One local cluster (2 CPUs) serves the whole session; the pool's actors persist
between tests, as they do between calls.
"""

import math
import os
import pickle
import sys

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_core import BlackBoxError, BlackBoxTimeoutError, BlackBoxWorkerError, NondeterministicEffectError, OptionalDependencyError
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec, RayRunner, local_ray_cluster
from grafx_core.estimators import NeuralProxy, ProxyNetwork

SR = 48000
SPECS = [ParameterSpec("cutoff_hz", 50.0, 16000.0, default=1000.0, scale="log"),
         ParameterSpec("gain_db", -24.0, 12.0, default=0.0)]


def lowpass(audio, sample_rate, cutoff_hz, gain_db):
    a = math.exp(-2 * math.pi * cutoff_hz / sample_rate)
    return scipy.signal.lfilter([1 - a], [1, -a], audio, axis=-1) * 10 ** (gain_db / 20)


class Saturator:
    """An effect object whose attribute is set per item: a shared instance would mix up items."""

    def __init__(self):
        self.drive_db = 0.0

    def __call__(self, audio, sample_rate):
        return np.tanh(audio * np.float32(10 ** (self.drive_db / 20)))


class Drifting:
    """An effect that remembers its calls: the same item renders differently on a reused instance."""

    def __init__(self):
        self.calls, self.gain_db = 0, 0.0

    def __call__(self, audio, sample_rate):
        self.calls += 1
        return audio * np.float32(self.calls)


def killer(marker):
    """An effect whose worker process dies at gain_db > 0, every time or only while ``marker`` exists."""

    def effect(audio, sample_rate, gain_db):
        if gain_db > 0 and (marker is None or os.path.exists(marker)):
            if marker is not None:
                os.remove(marker)
            os._exit(1)
        return audio * 10 ** (gain_db / 20)

    return effect


@pytest.fixture(scope="session")
def ray_cluster():
    pytest.importorskip("ray", reason="ray is not installed (pip install grafx-core[ray])")
    with local_ray_cluster(num_cpus=2) as ray:
        yield ray


def _forward_backward(box, x, raw, grad):
    x = x.detach().clone().requires_grad_(x.requires_grad)
    raw = {k: v.detach().clone().requires_grad_() for k, v in raw.items()}
    y = box(x, **raw)
    y.backward(grad)
    return y.detach(), {k: v.grad for k, v in raw.items()}, x.grad


@pytest.mark.parametrize("estimator, signal", [("finite-difference", "straight-through"), ("spsa", "spsa")])
def test_outputs_and_gradients_equal_the_thread_pools_bit_for_bit(ray_cluster, estimator, signal, one_torch_thread):
    options = {"samples": 3, "seed": 5} if estimator == "spsa" else {}
    threads = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, estimator=estimator, signal_gradient=signal,
                                workers=2, **options)
    ray_box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, estimator=estimator, signal_gradient=signal,
                                runner="ray", workers=2, **options)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(5, 2, 3000, generator=gen).requires_grad_()
    raw = {s.name: torch.randn(5, 1, generator=gen) for s in SPECS}
    grad = torch.randn(5, 2, 3000, generator=gen)
    y_t, gp_t, gx_t = _forward_backward(threads, x, raw, grad)
    y_r, gp_r, gx_r = _forward_backward(ray_box, x, raw, grad)
    assert torch.equal(y_r, y_t)
    assert all(torch.equal(gp_r[k], gp_t[k]) for k in gp_t) and torch.equal(gx_r, gx_t)
    assert float(gp_t["gain_db"].abs().min()) > 0 and float(gx_t.abs().max()) > 0  # real gradients were compared


def test_effect_objects_get_one_instance_per_worker_and_match_the_thread_pool(ray_cluster):
    spec = [ParameterSpec("drive_db", 0.0, 24.0, attribute="drive_db")]
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(6, 1, 2000, generator=gen)
    raw = {"drive_db": torch.randn(6, 1, generator=gen)}
    ray_box = BlackBoxProcessor(effect_factory=Saturator, parameters=spec, runner=RayRunner(workers=2))
    y_r = ray_box(x, **raw)
    threads = BlackBoxProcessor(effect_factory=Saturator, parameters=spec, workers=2)
    assert torch.equal(y_r, threads(x, **raw))
    assert torch.equal(ray_box.with_estimator("spsa")(x, **raw), y_r)  # the copy runs on Ray too
    clone = pickle.loads(pickle.dumps(ray_box))  # settings travel, the connection and shipped copies do not
    assert isinstance(clone.runner, RayRunner) and clone.runner.workers == 2 and torch.equal(clone(x, **raw), y_r)
    ray_box.runner.close()  # the workers drop their copies; the next call ships the processor again
    assert torch.equal(ray_box(x, **raw), y_r)


def test_workers_get_the_processor_without_its_estimator(ray_cluster):
    # A neural proxy's network (on a GPU, in training) is no use to a worker that only renders items.
    proxy = NeuralProxy(ProxyNetwork(channels=1, parameters=len(SPECS), hidden=64))
    box = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, estimator=proxy, runner="ray", workers=2)
    slim = box.for_workers()
    assert slim.estimator is None and box.estimator is proxy
    assert len(pickle.dumps(slim)) * 10 < len(pickle.dumps(box))
    gen = torch.Generator().manual_seed(3)
    x, raw = torch.randn(4, 1, 64, generator=gen), {s.name: torch.randn(4, 1, generator=gen) for s in SPECS}
    expected = BlackBoxProcessor(lowpass, SPECS, sample_rate=SR, estimator=proxy, workers=2)(x, **raw)
    assert torch.equal(box(x, **raw), expected)


def test_workers_keep_the_lifecycle_and_its_first_use_check(ray_cluster):
    spec = [ParameterSpec("gain_db", -12.0, 12.0)]
    x = torch.ones(3, 1, 16)
    raw = {"gain_db": torch.zeros(3, 1)}
    messages = []
    for runner in ("threads", "ray"):
        box = BlackBoxProcessor(effect_factory=Drifting, parameters=spec, runner=runner, workers=2)
        with pytest.raises(NondeterministicEffectError) as info:
            box(x, **raw)
        messages.append(str(info.value))
    assert messages[0] == messages[1] and "instances='per-item'" in messages[1]
    fresh = BlackBoxProcessor(effect_factory=Drifting, parameters=spec, runner="ray", workers=2, instances="per-item")
    assert torch.equal(fresh(x, **raw), x)  # a fresh instance per item: every item is its first call


def test_an_effect_error_reads_as_the_thread_pools(ray_cluster):
    def fails_loud(audio, sample_rate, gain_db):
        if gain_db > 0:
            raise ValueError("too loud")
        return audio

    spec = [ParameterSpec("gain_db", -12.0, 12.0)]
    x = torch.zeros(4, 1, 64)
    raw = {"gain_db": torch.tensor([[-1.0], [-1.0], [1.0], [1.0]])}
    messages = []
    for runner in ("threads", "ray"):
        box = BlackBoxProcessor(fails_loud, spec, runner=runner, workers=2)
        with pytest.raises(BlackBoxError) as info:
            box(x, **raw)
        assert isinstance(info.value.__cause__, ValueError)
        messages.append(str(info.value))
    assert messages[0] == messages[1]
    assert "black box 'fails_loud', node row 2: the effect raised ValueError: too loud" in messages[1]


def test_a_worker_killed_mid_call_is_retried_once_then_named(ray_cluster, tmp_path):
    spec = [ParameterSpec("gain_db", -12.0, 12.0)]
    x = torch.ones(4, 1, 32)
    raw = {"gain_db": torch.tensor([[-1.0], [-1.0], [-1.0], [1.0]])}
    marker = tmp_path / "die-once"
    marker.touch()
    once = BlackBoxProcessor(killer(str(marker)), spec, runner=RayRunner(workers=2, retries=1), name="dies_once")
    expected = BlackBoxProcessor(killer(None), spec, workers=1)(x, **{"gain_db": raw["gain_db"].clamp(max=0)})
    y = once(x, **raw)
    assert not marker.exists()  # the worker really died, and its items were rendered again by a fresh one
    assert torch.equal(y[:3], expected[:3]) and float(y[3].min()) > 1.0
    always = BlackBoxProcessor(killer(None), spec, runner=RayRunner(workers=2, retries=1), name="always_dies")
    with pytest.raises(BlackBoxWorkerError, match=r"black box 'always_dies': the Ray worker on node [\d.]+ "
                                                  r"\(id \w{8}, pid \d+\) died \(.*\) while rendering items 2-3 of the call "
                                                  r"after 1 retry"):
        always(x, **raw)
    # The pool replaced the dead workers: the next call works.
    assert torch.equal(always(x, **{"gain_db": -raw["gain_db"].abs()})[:3], expected[:3])


class _Unloadable:
    """Unpickles only where a module exists that the workers lack, like a plugin missing on a node."""

    def __reduce__(self):
        return (_missing_module, ())


def _missing_module():
    raise ModuleNotFoundError("No module named 'grafx_missing'")


def test_a_processor_a_worker_cannot_load_is_named(ray_cluster):
    def plain(audio, sample_rate, gain_db):
        return audio

    plain.payload = _Unloadable()
    box = BlackBoxProcessor(plain, [ParameterSpec("gain_db", -12.0, 12.0)], runner=RayRunner(workers=1))
    with pytest.raises(BlackBoxError, match=r"'plain': the Ray worker on node .* could not run its items "
                                            r"\(ModuleNotFoundError: No module named 'grafx_missing'\)"):
        box(torch.zeros(1, 1, 16), gain_db=torch.zeros(1, 1))


def test_a_stuck_worker_times_out_by_name(ray_cluster):
    # Last of the cluster tests: the worker it replaces boots while nothing waits for it.
    def stalls(audio, sample_rate, gain_db):
        if gain_db > 0:
            import time
            time.sleep(30)
        return audio

    box = BlackBoxProcessor(stalls, [ParameterSpec("gain_db", -12.0, 12.0)], runner="ray", workers=1,
                            timeout=0.5, name="stalls")
    with pytest.raises(BlackBoxTimeoutError, match=r"'stalls': the Ray worker on node .* gave no result for items "
                                                   r"0-1 of the call within 1 s \(timeout=0.5 s per item\)"):
        box(torch.zeros(2, 1, 16), gain_db=torch.tensor([[-1.0], [1.0]]))


def test_without_ray_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # makes `import ray` fail
    box = BlackBoxProcessor(lowpass, SPECS, runner="ray")
    with pytest.raises(OptionalDependencyError, match=r"pip install grafx-core\[ray\]"):
        box(torch.zeros(1, 1, 8), cutoff_hz=torch.zeros(1, 1), gain_db=torch.zeros(1, 1))


def test_bad_runner_options_are_named():
    with pytest.raises(BlackBoxError, match="'lowpass'.*runner must be 'threads', 'isolated', 'ray' or a runner object"):
        BlackBoxProcessor(lowpass, SPECS, runner="dask")
    with pytest.raises(BlackBoxError, match="give workers and timeout to the runner object"):
        BlackBoxProcessor(lowpass, SPECS, runner=RayRunner(2), workers=2)
    with pytest.raises(ValueError, match="retries must be an int >= 0"):
        RayRunner(retries=-1)


def test_an_effect_ray_cannot_pickle_is_named(ray_cluster):
    import threading

    lock = threading.Lock()

    def locked(audio, sample_rate, cutoff_hz, gain_db):
        with lock:
            return audio

    box = BlackBoxProcessor(locked, SPECS, sample_rate=SR, runner="ray", workers=1, name="locked")
    with pytest.raises(BlackBoxWorkerError, match=r"'locked' cannot be sent to Ray workers: it cannot be pickled "
                                                  r"\(.*lock.*runner='threads'"):
        box(torch.zeros(1, 1, 64), **{s.name: torch.zeros(1, 1) for s in SPECS})


@pytest.mark.parametrize("address", ["http://head:6379", "head", "head:port", "ray://:10001", "head:70000", ""])
def test_a_malformed_ray_address_is_refused_where_it_is_given(address):
    with pytest.raises(ValueError, match="is not 'auto', 'local', 'host:port' or 'ray://host:port'"):
        RayRunner(address=address)


def test_an_address_where_nothing_answers_is_named_within_seconds():
    import socket
    import time

    from grafx_core.blackbox.ray_runner import _check_reachable

    with socket.socket() as free:  # a port nothing listens on: bound, then closed
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    began = time.monotonic()
    with pytest.raises(BlackBoxWorkerError, match=rf"RAY_ADDRESS '127.0.0.1:{port}': no Ray cluster answers there"):
        _check_reachable(f"127.0.0.1:{port}", "RAY_ADDRESS")
    assert time.monotonic() - began < 10
