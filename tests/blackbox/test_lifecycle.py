"""Black-box instance lifecycles: per-thread vs per-item, serialised instantiation, the first-use check."""

import pickle
import threading
import time

import numpy as np
import pytest
import scipy.signal
import torch

from grafx_core import NondeterministicEffectError
from grafx_core.blackbox import BlackBoxProcessor, ParameterSpec
from grafx_core.errors import BlackBoxError

SPEC = ParameterSpec("coefficient", 0.1, 0.9)


class LeakyIntegrator:
    """A one-pole filter that never resets: each call continues from the last call's state."""

    made = 0
    closed = 0

    def __init__(self):
        type(self).made += 1
        self.coefficient = 0.5
        self.state = None

    def __call__(self, audio, sample_rate):
        zi = self.state if self.state is not None else np.zeros((audio.shape[0], 1))
        y, self.state = scipy.signal.lfilter([1.0], [1.0, -self.coefficient], audio, axis=-1, zi=zi)
        return y.astype(np.float32)

    def close(self):
        type(self).closed += 1


def reference(audio, coefficient):
    return scipy.signal.lfilter([1.0], [1.0, -coefficient], audio, axis=-1)


def inputs(nodes=6, seed=0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(nodes, 2, 500, generator=gen), {"coefficient": torch.randn(nodes, 1, generator=gen)}


def test_a_stateful_effect_is_refused_by_name_with_per_thread_instances():
    box = BlackBoxProcessor(None, [SPEC], effect_factory=LeakyIntegrator, name="leaky", workers=1)
    x, params = inputs()
    with pytest.raises(NondeterministicEffectError, match=r"'leaky'.*peak difference of .*instances='per-item'"):
        box(x, **params)


def test_a_stateful_effect_renders_from_a_clean_state_with_per_item_instances():
    box = BlackBoxProcessor(None, [SPEC], effect_factory=LeakyIntegrator, name="leaky", instances="per-item",
                            workers=2)
    x, params = inputs()
    made, closed = LeakyIntegrator.made, LeakyIntegrator.closed
    y = box(x, **params)
    coefficient = box.natural_parameters(**params)["coefficient"].to(torch.float32).numpy()
    for n in range(6):
        np.testing.assert_allclose(y[n].numpy(), reference(x[n].numpy(), float(coefficient[n])), rtol=1e-5,
                                   atol=1e-5)
    # Six items, the first rendered twice by the first-use check, each render on its own instance, each closed.
    assert LeakyIntegrator.made - made == 7 and LeakyIntegrator.closed - closed == 7
    assert torch.equal(box(x.flip(0), **{k: v.flip(0) for k, v in params.items()}), y.flip(0))


def test_a_random_function_is_refused_and_accepted_when_asked():
    def noisy(audio, sample_rate, coefficient):
        return audio + np.random.default_rng().normal(size=audio.shape).astype(np.float32) * 1e-3

    x, params = inputs(2)
    with pytest.raises(NondeterministicEffectError, match="'noisy'.*not deterministic"):
        BlackBoxProcessor(noisy, [SPEC])(x, **params)
    assert BlackBoxProcessor(noisy, [SPEC], check_determinism=False)(x, **params).shape == x.shape


class ConcurrencyDetector:
    """A factory that records how many of its calls overlapped in time."""

    def __init__(self):
        self.lock = threading.Lock()
        self.active = self.peak = 0

    def __call__(self):
        with self.lock:
            self.active += 1
            self.peak = max(self.peak, self.active)
        time.sleep(0.01)
        with self.lock:
            self.active -= 1
        return LeakyIntegrator()


@pytest.mark.parametrize("serialise", [True, False])
def test_serialised_instantiation_never_overlaps(serialise):
    factory = ConcurrencyDetector()
    box = BlackBoxProcessor(None, [SPEC], effect_factory=factory, instances="per-item",
                            serialise_instantiation=serialise, workers=4)
    x, params = inputs(16)
    box(x, **params)
    # The unserialised run shows the detector works: four threads instantiating at once do overlap.
    assert factory.peak == 1 if serialise else factory.peak > 1


class Gain:
    def __init__(self):
        self.gain = 1.0

    def __call__(self, audio, sample_rate):
        return audio * self.gain


class GainFactory:
    def __call__(self):
        return Gain()


def test_pickling_keeps_the_factory_and_the_lifecycle_but_no_instance():
    box = BlackBoxProcessor(None, [ParameterSpec("gain", 0.0, 2.0)], effect_factory=GainFactory(),
                            instances="per-item", serialise_instantiation=True, workers=1)
    x, params = inputs(3)
    params = {"gain": params["coefficient"]}
    y = box(x, **params)
    copy = pickle.loads(pickle.dumps(box))
    assert isinstance(copy.effect_factory, GainFactory) and copy.instances == "per-item"
    assert copy.serialise_instantiation and isinstance(copy._effects.factory, GainFactory)
    assert torch.equal(copy(x, **params), y)
    np.testing.assert_array_equal(copy.process_item(x[0].numpy(), {"gain": 0.5}), x[0].numpy() * 0.5)


def test_bad_lifecycle_options_name_the_processor():
    with pytest.raises(BlackBoxError, match="'g'.*instances='fresh' is not one of"):
        BlackBoxProcessor(None, [SPEC], effect_factory=GainFactory(), instances="fresh", name="g")
    with pytest.raises(BlackBoxError, match="'f'.*go with effect_factory"):
        BlackBoxProcessor(lambda a, sr, coefficient: a, [SPEC], instances="per-item", name="f")
