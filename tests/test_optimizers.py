"""Fit backends (grafx_core.fitting.optimise): each lowers the loss towards a known optimum, Gauss-Newton's
step is the least-squares solution scipy gives, renders are counted and budgets kept, Ctrl-C keeps the best
point, and a missing optional library is named with its extra.

The problem: a black box ``level * tanh(drive * x)`` followed by an analytic gain, fitted to a target made
from hidden values, so the optimum (loss 0) and its parameters are known independently of any optimiser.
"""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import scipy.linalg
import torch

from grafx_core import BlackBoxProcessor, Graph, ParameterSpec, compile_render
from grafx_core.errors import OptionalDependencyError
from grafx_core.fitting import LatentParameters, RenderBudget, SpectralLoss, optimise
from grafx_core.fitting._scan import local_minima, roughest
from grafx_core.fitting.gauss_newton import broyden_update, damped_step

SAMPLES = 2048
FFT_SIZES = (64, 256)


def _drive(audio: np.ndarray, sample_rate: float, drive_db: float, level_db: float) -> np.ndarray:
    return (10 ** (level_db / 20) * np.tanh(10 ** (drive_db / 20) * audio)).astype(np.float32)


class _Gain(torch.nn.Module):
    """An analytic node: ``x * 10 ** (gain_db / 20)``."""

    def parameter_size(self) -> dict[str, int]:
        return {"gain_db": 1}

    def forward(self, x: torch.Tensor, gain_db: torch.Tensor) -> torch.Tensor:
        return x * 10 ** (gain_db.reshape(-1, 1, 1) / 20)


def _stepped_drive(audio: np.ndarray, sample_rate: float, drive_db: float, level_db: float) -> np.ndarray:
    """``_drive`` with the drive taken in whole quarter-decibels: no derivative anywhere, a staircase."""
    return _drive(audio, sample_rate, round(drive_db * 4) / 4, level_db)


def _problem(analytic: bool = False, function=_drive):
    box = BlackBoxProcessor(function, [ParameterSpec("drive_db", 0.0, 24.0), ParameterSpec("level_db", -12.0, 6.0)],
                            workers=1, check_determinism=False)
    graph = Graph()
    previous = graph.add("in")
    chain = ["box", "gain"] if analytic else ["box"]
    for node_type in chain:
        node = graph.add(node_type)
        graph.connect(previous, node)
        previous = node
    graph.connect(previous, graph.add("out"))
    processors = {"box": box, "gain": _Gain()} if analytic else {"box": box}
    plan = compile_render(graph, processors)
    sources = (0.5 * torch.randn(1, 1, SAMPLES, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    hidden = {"box": box.raw_parameters(drive_db=[12.0], level_db=[-3.0])}
    start = {"box": box.raw_parameters(drive_db=[4.0], level_db=[-9.0])}
    if analytic:
        hidden["gain"] = {"gain_db": torch.tensor([[2.0]])}
        start["gain"] = {"gain_db": torch.tensor([[-4.0]])}
    with torch.no_grad():
        target = plan(hidden, sources)[0][0]
    return graph, processors, plan, sources, hidden, start, SpectralLoss(target, FFT_SIZES)


def _fit(optimizer: str, steps: int, analytic: bool = False, limit: float | None = None, function=_drive, **kwargs):
    graph, processors, plan, sources, hidden, start, loss = _problem(analytic, function)
    latent = LatentParameters(start, processors)
    budget = RenderBudget(graph, processors, limit)
    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, steps, optimizer, budget=budget, seed=0,
                      **kwargs)
    with torch.no_grad():
        kept = float(loss(plan(latent.values(), sources)[0][0]))
    with torch.no_grad():
        natural = processors["box"].natural_parameters(**latent.values()["box"])
    return result, kept, natural, budget


@pytest.mark.slow
@pytest.mark.parametrize("optimizer, steps, factor", [
    ("adam", 25, 0.3), ("gauss-newton", 20, 1e-3), ("hybrid", 40, 1e-3), ("cma-es", 50, 0.3), ("ngopt", 50, 0.3),
    ("random", 30, 0.9),
])
def test_each_backend_lowers_the_loss_and_keeps_its_best_point(optimizer, steps, factor, one_torch_thread):
    if optimizer in ("cma-es", "hybrid"):
        pytest.importorskip("cma", reason="pycma not installed (pip install grafx-core[optimizers])")
    if optimizer == "ngopt":
        pytest.importorskip("nevergrad", reason="nevergrad not installed (pip install grafx-core[optimizers])")
    result, kept, _, _ = _fit(optimizer, steps, learning_rate=0.3)
    assert result.stopped == "completed"
    assert result.final_loss < factor * result.initial_loss
    assert kept == pytest.approx(result.final_loss, rel=1e-5)  # the latent holds the point reported


def test_gauss_newton_recovers_the_hidden_controls(one_torch_thread):
    result, _, natural, _ = _fit("gauss-newton", 12)
    assert result.final_loss < 1e-3 * result.initial_loss
    assert float(natural["drive_db"]) == pytest.approx(12.0, abs=0.1)
    assert float(natural["level_db"]) == pytest.approx(-3.0, abs=0.1)


def test_levenberg_marquardt_reaches_the_optimum_in_half_of_adams_renders(one_torch_thread):
    lm, _, natural, budget = _fit("gauss-newton", 10**6, limit=40)
    adam, _, _, _ = _fit("adam", 10**6, limit=80, learning_rate=0.3)
    assert budget.renders <= 40
    assert lm.final_loss < 1e-4 * lm.initial_loss
    assert lm.final_loss < 0.01 * adam.final_loss
    assert float(natural["drive_db"]) == pytest.approx(12.0, abs=0.01)


def test_a_stepped_control_is_found_by_the_compass_search_where_gradients_are_zero(one_torch_thread):
    # Finite differences of a quarter-decibel staircase are zero (or a spike): Adam cannot move the drive,
    # Levenberg-Marquardt stalls, and the compass search, which only compares losses, lands on the step.
    lm, _, natural, _ = _fit("gauss-newton", 10**6, limit=150, function=_stepped_drive)
    adam, _, _, _ = _fit("adam", 10**6, limit=150, learning_rate=0.3, function=_stepped_drive)
    assert round(float(natural["drive_db"]) * 4) / 4 == 12.0
    assert lm.final_loss < 1e-3 * lm.initial_loss
    assert adam.final_loss > 0.1 * adam.initial_loss


def test_broyden_update_maps_the_step_to_the_change_and_keeps_orthogonal_directions():
    generator = np.random.default_rng(4)
    jacobian, step, change = generator.normal(size=(30, 3)), generator.normal(size=3), generator.normal(size=30)
    updated = broyden_update(torch.tensor(jacobian), torch.tensor(step), torch.tensor(change)).numpy()
    np.testing.assert_allclose(updated @ step, change, rtol=1e-10, atol=1e-12)
    orthogonal = scipy.linalg.null_space(step[None])[:, 0]
    np.testing.assert_allclose(updated @ orthogonal, jacobian @ orthogonal, rtol=1e-10, atol=1e-12)


def test_broyden_updates_along_p_orthogonal_steps_reproduce_a_linear_maps_jacobian_from_any_guess():
    # Residuals r(x) = A x + b: every step's change is A times it, so each update removes the guess's error
    # along that step and keeps it orthogonally; P orthogonal steps remove all of it.
    generator = np.random.default_rng(5)
    linear, guess = generator.normal(size=(40, 5)), generator.normal(size=(40, 5))
    steps = np.linalg.qr(generator.normal(size=(5, 5)))[0].T * generator.uniform(0.01, 2.0, size=(5, 1))
    jacobian = torch.tensor(guess)
    for count, step in enumerate(steps, start=1):
        jacobian = broyden_update(jacobian, torch.tensor(step), torch.tensor(linear @ step))
        if count < len(steps):
            assert not np.allclose(jacobian.numpy(), linear, atol=1e-6)  # not there before the P-th step
    np.testing.assert_allclose(jacobian.numpy(), linear, rtol=1e-9, atol=1e-10)


def _echo(audio: np.ndarray, sample_rate: float, delay_ms: float, level_db: float) -> np.ndarray:
    """The input plus an echo 0.9 as loud, ``delay_ms`` later (linear interpolation between samples)."""
    shift = delay_ms * 1e-3 * sample_rate
    n = np.arange(audio.shape[-1])
    delayed = np.stack([np.interp(n - shift, n, row, left=0.0) for row in audio])
    return (10 ** (level_db / 20) * (audio + 0.9 * delayed)).astype(np.float32)


def test_scan_finds_the_global_valley_of_a_control_whose_loss_has_several(one_torch_thread):
    # An echo's delay: on noise, the spectral loss along it has valleys besides the hidden value's (pinned down
    # below on a grid), and the start lies in another. Without screening, Levenberg-Marquardt and the compass
    # search stay there; the scan measures that the delay's profile has several valleys and searches it.
    box = BlackBoxProcessor(_echo, [ParameterSpec("delay_ms", 0.0, 0.5), ParameterSpec("level_db", -12.0, 6.0)],
                            workers=1, check_determinism=False)
    graph = Graph()
    node = graph.add("box")
    graph.connect(graph.add("in"), node)
    graph.connect(node, graph.add("out"))
    plan = compile_render(graph, {"box": box})
    sources = (0.5 * torch.randn(1, 1, SAMPLES, generator=torch.Generator().manual_seed(0))).clamp(-1, 1)
    with torch.no_grad():
        loss = SpectralLoss(plan({"box": box.raw_parameters(delay_ms=[0.33], level_db=[-3.0])}, sources)[0][0],
                            FFT_SIZES)
        profile = [float(loss(plan({"box": box.raw_parameters(delay_ms=[d], level_db=[-3.0])}, sources)[0][0]))
                   for d in np.linspace(0.0, 0.5, 26)]
    assert local_minima(profile) >= 3
    fitted = {}
    for scan in (True, False):
        latent = LatentParameters({"box": box.raw_parameters(delay_ms=[0.08], level_db=[-9.0])}, {"box": box})
        budget = RenderBudget(graph, {"box": box}, 150)
        result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton", budget=budget,
                          seed=0, options={"starts": 1, "scan": scan})
        assert budget.renders <= 150
        with torch.no_grad():
            fitted[scan] = result, box.natural_parameters(**latent.values()["box"])
    result, natural = fitted[True]
    assert result.final_loss < 1e-3 * result.initial_loss
    assert float(natural["delay_ms"]) == pytest.approx(0.33, abs=1e-3)
    assert float(natural["level_db"]) == pytest.approx(-3.0, abs=0.01)
    stuck, natural = fitted[False]
    assert stuck.final_loss > 0.3 * stuck.initial_loss and abs(float(natural["delay_ms"]) - 0.33) > 0.1


def test_roughest_is_the_control_with_several_valleys_and_the_widest_loss_range():
    positions = np.linspace(0.0, 1.0, 7)
    bowl = [(p, (p - 0.4) ** 2) for p in positions]  # one valley
    ripples = [(p, 0.5 + 0.5 * np.cos(9 * p)) for p in positions]  # two valleys: at 0.35 and the top end
    small = [(p, 1e-3 * np.cos(9 * p)) for p in positions]  # as many, over a thousandth of the range of loss
    assert local_minima([loss for _, loss in bowl]) == 1
    assert local_minima([loss for _, loss in ripples]) == 2
    assert local_minima([3.0, 2.0, 1.0]) == 1 and local_minima([1.0, 2.0, 1.0]) == 2  # the ends count
    assert local_minima([1.0, 1.0, 1.0]) == 0  # no sample below its neighbours
    assert roughest([bowl, small, list(reversed(ripples))]) == 2  # the order of the samples does not matter
    assert roughest([bowl, small]) == 1
    assert roughest([bowl, bowl]) is None


def test_gauss_newton_counts_exactly_the_renders_the_black_box_made(one_torch_thread):
    calls = []

    def counted(audio, sample_rate, drive_db, level_db):
        calls.append(1)
        return _drive(audio, sample_rate, drive_db, level_db)

    graph, processors, plan, sources, hidden, start, loss = _problem(function=counted)
    budget = RenderBudget(graph, processors)
    calls.clear()  # the target's render
    result = optimise(lambda p: plan(p, sources)[0][0], LatentParameters(start, processors), loss, 15,
                      "gauss-newton", budget=budget)
    assert budget.renders == result.renders == len(calls)  # one black-box node: a render is one item


@pytest.mark.parametrize("optimizer", ["random", "gauss-newton", "cma-es"])
def test_a_backend_without_adam_stops_once_patience_runs_out(optimizer, one_torch_thread):
    if optimizer == "cma-es":
        pytest.importorskip("cma", reason="pycma not installed (pip install grafx-core[optimizers])")
    result, _, _, _ = _fit(optimizer, 10**6, patience=5, min_improvement=0.5)
    assert result.stopped == "converged"
    losses = result.losses[:-1]
    best = [min(losses[:i + 1]) for i in range(len(losses))]
    last_gain = max(i for i in range(len(losses)) if i == 0 or losses[i] < best[i - 1] * 0.5)
    assert len(losses) == last_gain + 5 + 1  # stopped at the fifth step that did not halve the best loss


def test_adam_anneals_over_a_render_budget_when_steps_are_unlimited(one_torch_thread):
    rates = []

    class Log:
        def record(self, step, loss, rate, seconds):
            rates.append(rate)

    _fit("adam", 10**9, limit=60, learning_rate=0.3, log=Log())
    assert rates[0] == pytest.approx(0.3)
    assert rates[-1] < 0.04  # tenfold over the budget: the last step's rate is near 0.03


def test_gauss_newton_hybrid_fits_analytic_parameters_with_adam(one_torch_thread):
    result, _, _, budget = _fit("gauss-newton", 12, analytic=True, learning_rate=0.3, options={"adam_steps": 4})
    assert result.final_loss < 0.1 * result.initial_loss
    # Per iteration: 4 Adam steps (one render each: the black box's controls frozen, so no finite differences),
    # a render at the new centre, 2 Jacobian columns and at least one trial.
    assert budget.renders >= 11 * (4 + 1 + 2 + 1)


def test_damped_step_is_scipys_least_squares_solution():
    generator = np.random.default_rng(3)
    jacobian, residuals = generator.normal(size=(50, 4)), generator.normal(size=50)
    gauss_newton = damped_step(torch.tensor(jacobian), torch.tensor(residuals), 0.0).numpy()
    np.testing.assert_allclose(gauss_newton, scipy.linalg.lstsq(jacobian, -residuals)[0], rtol=1e-9, atol=1e-12)
    # Damped: the least-squares solution of J d = -r with rows sqrt(lambda diag(J^T J)) d = 0 appended.
    damping = 0.7
    scale = np.sqrt(damping * np.diag(jacobian.T @ jacobian))
    augmented = np.vstack([jacobian, np.diag(scale)])
    expected = scipy.linalg.lstsq(augmented, np.concatenate([-residuals, np.zeros(4)]))[0]
    damped = damped_step(torch.tensor(jacobian), torch.tensor(residuals), damping).numpy()
    np.testing.assert_allclose(damped, expected, rtol=1e-8, atol=1e-12)


def test_residuals_half_square_has_the_loss_gradient_at_their_centre():
    generator = torch.Generator().manual_seed(1)
    target = torch.randn(2, SAMPLES, generator=generator, dtype=torch.float64)
    y = (target + 0.3 * torch.randn(2, SAMPLES, generator=generator, dtype=torch.float64)).requires_grad_()
    loss = SpectralLoss(target, FFT_SIZES)
    (exact,) = torch.autograd.grad(loss(y), y)
    centre = y.detach().clone()
    (stand_in,) = torch.autograd.grad(0.5 * loss.residuals(y, centre).square().sum(), y)
    cosine = float(torch.nn.functional.cosine_similarity(exact.flatten(), stand_in.flatten(), dim=0))
    assert cosine > 0.98
    assert float(stand_in.norm() / exact.norm()) == pytest.approx(1.0, abs=0.1)


def test_finite_differences_cost_one_plus_2p_renders_per_adam_step(one_torch_thread):
    result, _, _, budget = _fit("adam", 3)
    # The default estimator is central finite differences: per step one forward render and 2 x 2 perturbed ones
    # (the black box's input needs no gradient, so no signal-gradient probe).
    assert result.renders == budget.renders == pytest.approx(3 * (1 + 4) + 1)  # + the final evaluation


@pytest.mark.parametrize("optimizer", ["adam", "gauss-newton", "random", "hybrid"])
def test_a_render_budget_ends_the_fit_within_it(optimizer, one_torch_thread):
    if optimizer == "hybrid":
        pytest.importorskip("cma", reason="pycma not installed (pip install grafx-core[optimizers])")
    result, _, _, budget = _fit(optimizer, 10**6, limit=40)
    assert 30 <= result.renders <= 40 + 1  # Adam's final evaluation of its last point may add one


@pytest.mark.parametrize("optimizer", ["adam", "gauss-newton", "random"])
def test_ctrl_c_stops_the_fit_and_keeps_the_best_point_seen(optimizer, one_torch_thread):
    graph, processors, plan, sources, hidden, start, loss = _problem()
    latent = LatentParameters(start, processors)
    calls = []

    def render(parameters):
        calls.append(1)
        if len(calls) == 12:
            raise KeyboardInterrupt
        return plan(parameters, sources)[0][0]

    result = optimise(render, latent, loss, 10**6, optimizer, seed=0)
    assert result.stopped == "interrupted"
    assert result.losses and result.final_loss == min(result.losses[:-1])
    with torch.no_grad():
        assert float(loss(plan(latent.values(), sources)[0][0])) == pytest.approx(result.final_loss, rel=1e-5)


@pytest.mark.parametrize("optimizer, module", [("cma-es", "cma"), ("ngopt", "nevergrad")])
def test_a_missing_optional_library_is_named_with_its_extra(optimizer, module, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` fail
    graph, processors, plan, sources, hidden, start, loss = _problem()
    with pytest.raises(OptionalDependencyError, match=rf"{module}.*grafx-core\[optimizers\]"):
        optimise(lambda p: plan(p, sources)[0][0], LatentParameters(start, processors), loss, 5, optimizer)


def test_unknown_optimizer_and_a_loss_without_residuals_are_refused():
    graph, processors, plan, sources, hidden, start, loss = _problem()
    latent = LatentParameters(start, processors)
    with pytest.raises(ValueError, match="unknown optimizer 'lbfgs'.*cma-es"):
        optimise(lambda p: plan(p, sources)[0][0], latent, loss, 5, "lbfgs")
    with pytest.raises(ValueError, match="gauss-newton needs a loss with a residuals"):
        optimise(lambda p: plan(p, sources)[0][0], latent, lambda y: y.square().mean(), 5, "gauss-newton")


@pytest.mark.slow
def test_fit_command_runs_a_chosen_backend_and_reports_it(tmp_path, capsys, one_torch_thread):
    pytest.importorskip("grafx_dsp")
    from grafx_core.cli import main
    from grafx_core.wavfile import write_wav

    t = torch.arange(11025) / 22050
    stems = [tmp_path / "bass.wav", tmp_path / "keys.wav"]
    write_wav(stems[0], torch.stack([torch.sin(2 * torch.pi * 110 * t)] * 2) * 0.3, 22050)
    write_wav(stems[1], torch.stack([torch.sin(2 * torch.pi * 660 * t)] * 2) * 0.2, 22050)
    write_wav(tmp_path / "mix.wav", torch.stack([torch.sin(2 * torch.pi * 110 * t)] * 2) * 0.2, 22050)
    out = tmp_path / "fit"
    status = main(["fit", *map(str, stems), "--target", str(tmp_path / "mix.wav"), "-o", str(out),
                   "--optimizer", "random", "--steps", "50", "--renders", "6"])
    assert status == 0
    report = json.loads((out / "report.json").read_text())
    assert report["optimizer"] == "random" and report["renders"] == 6  # the budget ended it (no black boxes:
    assert report["steps_taken"] == 6 and report["final_loss"] <= report["initial_loss"]  # forward renders)
    assert "of random, 6 graph renders" in capsys.readouterr().out


@pytest.mark.parametrize("optimizer", ["gauss-newton", "random", "cma-es", "ngopt", "hybrid"])
def test_a_frozen_parameter_stays_at_its_start_in_every_backend(optimizer, one_torch_thread):
    if optimizer in ("cma-es", "hybrid"):
        pytest.importorskip("cma", reason="pycma not installed (pip install grafx-core[optimizers])")
    if optimizer == "ngopt":
        pytest.importorskip("nevergrad", reason="nevergrad not installed (pip install grafx-core[optimizers])")
    graph, processors, plan, sources, hidden, start, loss = _problem(analytic=True)
    latent = LatentParameters(start, processors)
    assert latent.freeze({"gain": ("gain_db",), "box": ("level_db",)}) == ["box.level_db", "gain.gain_db"]
    before = {t: {k: v.detach().clone() for k, v in p.items()} for t, p in latent.values().items()}
    result = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 30, optimizer, seed=0)
    after = latent.values()
    assert result.final_loss < result.initial_loss  # the drive, still free, moved
    assert torch.equal(after["gain"]["gain_db"], before["gain"]["gain_db"])
    assert torch.equal(after["box"]["level_db"], before["box"]["level_db"])


def _tone(audio: np.ndarray, sample_rate: float, frequency_hz: float, level: float) -> np.ndarray:
    """The input plus a sine: far from the hidden frequency the loss is flat in it (no overlapping bins), so
    from there gradient steps only turn the level down, onto a plateau."""
    t = np.arange(audio.shape[-1]) / sample_rate
    return (audio + level * np.sin(2 * np.pi * frequency_hz * t)).astype(np.float32)


def test_screened_starts_take_gauss_newton_off_a_plateau_that_one_start_stalls_on(one_torch_thread):
    box = BlackBoxProcessor(_tone, [ParameterSpec("frequency_hz", 100.0, 5000.0), ParameterSpec("level", 0.0, 1.0)],
                            workers=1, check_determinism=False)
    graph = Graph()
    source, node, out = graph.add("in"), graph.add("box"), graph.add("out")
    graph.connect(source, node)
    graph.connect(node, out)
    plan = compile_render(graph, {"box": box})
    sources = 0.1 * torch.randn(1, 1, SAMPLES, generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        target = plan({"box": box.raw_parameters(frequency_hz=[3000.0], level=[0.5])}, sources)[0][0]
    loss = SpectralLoss(target, FFT_SIZES)
    found = {}
    for starts in (1, 33):
        latent = LatentParameters({"box": box.raw_parameters(frequency_hz=[400.0], level=[0.5])}, {"box": box})
        budget = RenderBudget(graph, {"box": box}, 200)
        found[starts] = optimise(lambda p: plan(p, sources)[0][0], latent, loss, 10**6, "gauss-newton",
                                 budget=budget, seed=0, options={"starts": starts})
        assert budget.renders <= 200
        if starts > 1:
            with torch.no_grad():
                natural = box.natural_parameters(**latent.values()["box"])
    assert found[1].final_loss > 0.3 * found[1].initial_loss  # one start: the level turned down, the tone not found
    # Screened: the tone is found (a sine's loss in its frequency ripples with the window's side lobes, so the
    # last hertz are not: the point is the basin).
    assert found[33].final_loss < 0.1 * found[33].initial_loss
    assert float(natural["frequency_hz"]) == pytest.approx(3000.0, abs=20.0)
    assert float(natural["level"]) == pytest.approx(0.5, abs=0.02)
