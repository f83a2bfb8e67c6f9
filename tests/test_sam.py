"""SAM / ASAM: hand-derived steps, rho = 0 is the base optimizer bit for bit, batching, zero gradients
and construction."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import run_objective

from gdlab.core.objective import Quadratic, Rosenbrock
from gdlab.core.optimizer import GradientOptimizer
from gdlab.core.optimizers import OPTIMIZERS, SGD, make_optimizer
from gdlab.core.optimizers.sam import SAM, can_wrap

# f(x, y) = x² + 10 y², ∇f = (2x, 20y)
BOWL = Quadratic(np.diag([2.0, 20.0]))

WRAPPABLE = sorted(name for name, cls in OPTIMIZERS.items() if can_wrap(cls))
assert len(WRAPPABLE) == 13  # every gradient-only rule but the look-ahead Nesterov


def test_hand_derived_two_steps_with_momentum():
    # SAM(base=sgd, lr=0.025, momentum=0.9), ρ = 0.5, from θ₀ = (3, 0.4).
    # Step 1: g = (6, 8), ‖g‖ = 10, e = 0.5·(0.6, 0.8) = (0.3, 0.4), θ₀ + e = (3.3, 0.8),
    #         g' = (6.6, 16). PyTorch's first momentum buffer is g' itself: b₁ = (6.6, 16);
    #         θ₁ = (3 − 0.025·6.6, 0.4 − 0.025·16) = (2.835, 0).
    # Step 2: g = (5.67, 0), ‖g‖ = 5.67, e = (0.5, 0), θ₁ + e = (3.335, 0), g' = (6.67, 0);
    #         b₂ = 0.9·(6.6, 16) + (6.67, 0) = (12.61, 14.4);
    #         θ₂ = (2.835 − 0.025·12.61, 0 − 0.025·14.4) = (2.51975, −0.36).
    opt = make_optimizer("sam", base="sgd", lr=0.025, momentum=0.9, rho=0.5)
    traj = run_objective(opt, BOWL, np.array([3.0, 0.4]), 2)
    np.testing.assert_allclose(traj[1], [2.835, 0.0], rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(traj[2], [2.51975, -0.36], rtol=1e-14)


def test_hand_derived_adaptive_step():
    # ASAM with η = 0, ρ = 0.1 around SGD(lr=0.1), from θ = (2, 0.5):
    # T = |θ| = (2, 0.5), g = (4, 10), Tg = (8, 5), ‖Tg‖ = √89, T²g = (16, 2.5),
    # e = 0.1·(16, 2.5)/√89 = (1.6, 0.25)/√89, g' = ∇f(θ + e) = (4 + 3.2/√89, 10 + 5/√89),
    # θ₁ = θ − 0.1 g' = (1.6 − 0.32/√89, −0.5 − 0.5/√89).
    r = math.sqrt(89.0)
    opt = make_optimizer("sam", base="sgd", lr=0.1, rho=0.1, adaptive=True, eta=0.0)
    np.testing.assert_allclose(opt.perturbation([2.0, 0.5], [4.0, 10.0]), [1.6 / r, 0.25 / r], rtol=1e-15)
    traj = run_objective(opt, BOWL, np.array([2.0, 0.5]), 1)
    np.testing.assert_allclose(traj[1], [1.6 - 0.32 / r, -0.5 - 0.5 / r], rtol=1e-14)
    # with η = 0.5: T = (2.5, 1), Tg = (10, 10), ‖Tg‖ = 10√2, T²g = (25, 10), e = 0.1·(25, 10)/(10√2)
    opt = make_optimizer("sam", base="sgd", rho=0.1, adaptive=True, eta=0.5)
    s = math.sqrt(2.0)
    np.testing.assert_allclose(opt.perturbation([2.0, 0.5], [4.0, 10.0]), [0.25 / s, 0.1 / s], rtol=1e-15)


@pytest.mark.parametrize("name", WRAPPABLE)
@pytest.mark.parametrize("adaptive", [False, True])
def test_rho_zero_is_the_base_optimizer_exactly(name, adaptive):
    x0 = np.array([-1.5, 2.0])
    base = make_optimizer(name, lr=1e-3)
    sam = make_optimizer("sam", base=name, lr=1e-3, rho=0.0, adaptive=adaptive)
    np.testing.assert_array_equal(run_objective(sam, Rosenbrock(), x0, 30), run_objective(base, Rosenbrock(), x0, 30))


@pytest.mark.parametrize("adaptive", [False, True])
@pytest.mark.parametrize("base", ["sgd", "adam"])
def test_batched_runs_equal_individual_runs(base, adaptive):
    rng = np.random.default_rng(5)
    x0 = rng.uniform(-2, 2, size=(4, 3))
    x0[2] = 1.0  # a run that starts at the minimum: zero gradient
    rho = np.array([0.05, 0.2, 0.1, 0.0])
    lr = np.array([1e-3, 2e-3, 1e-3, 5e-4]) * (0.1 if base == "sgd" else 1.0)
    batched = run_objective(SAM(base=base, lr=lr, rho=rho, adaptive=adaptive), Rosenbrock(), x0, 25)
    assert np.all(np.isfinite(batched))
    for i in range(4):
        alone = run_objective(SAM(base=base, lr=lr[i], rho=rho[i], adaptive=adaptive), Rosenbrock(), x0[i], 25)
        np.testing.assert_array_equal(batched[:, i], alone)


@pytest.mark.parametrize("adaptive", [False, True])
def test_zero_gradient_means_no_perturbation_and_no_nan(adaptive):
    opt = SAM(base="adam", rho=0.5, adaptive=adaptive, eta=0.0)
    p = np.zeros((2, 2))
    p[1] = [1.0, 0.0]  # ASAM with η = 0: T = |θ| = (1, 0), g = (2, 0): Tg ≠ 0, fine
    state = opt.init(p)
    new, state, bad = opt.step(BOWL, p, state)
    assert not bad.any() and np.all(np.isfinite(new))
    np.testing.assert_array_equal(new[0], [0.0, 0.0])
    e = opt.perturbation(np.zeros(2), np.zeros(2))
    np.testing.assert_array_equal(e, [0.0, 0.0])
    # ASAM with η = 0 at θ = 0 has T g = 0 even for a nonzero gradient: no perturbation
    np.testing.assert_array_equal(SAM(adaptive=True, eta=0.0).perturbation(np.zeros(2), np.ones(2)), [0.0, 0.0])


def test_perturbation_is_on_the_rho_sphere_per_run():
    opt = SAM(rho=np.array([0.1, 0.3]))
    g = np.array([[3.0, 4.0], [0.0, -2.0]])
    e = opt.perturbation(np.zeros((2, 2)), g)
    np.testing.assert_allclose(e, [[0.06, 0.08], [0.0, -0.3]], rtol=1e-15)


def test_maximizing_base_perturbs_downhill():
    opt = SAM(base="sgd", maximize=True, rho=0.5)
    np.testing.assert_allclose(opt.perturbation([0.0, 0.0], [3.0, 4.0]), [-0.3, -0.4])


def test_state_nests_the_base_state():
    opt = make_optimizer("sam", base="adam", lr=0.01, rho=0.05)
    state = opt.init(np.zeros(3))
    assert set(state) == {"step", "base"} and set(state["base"]) >= {"step", "exp_avg", "exp_avg_sq"}
    _, state, _ = opt.step(Rosenbrock(), np.zeros(3), state)
    assert state["step"] == 1 and state["base"]["step"] == 1


def test_construction_forms_and_get_params_round_trip():
    opt = make_optimizer("sam", base="adam", lr=0.01, rho=0.05)
    assert opt.base.name == "adam" and opt.base.lr == 0.01 and opt.rho == 0.05
    params = opt.get_params()
    assert params["base"] == "adam" and params["base_kwargs"]["lr"] == 0.01
    again = make_optimizer("sam", **params)
    assert again.get_params() == params
    # a configured optimizer instance
    wrapped = SAM(base=SGD(lr=0.3, momentum=0.5), rho=0.2)
    assert wrapped.base.momentum == 0.5
    # a name SAM uses itself goes to the base through base_kwargs
    if "adadelta" in OPTIMIZERS:
        ada = SAM(base="adadelta", rho=0.05, base_kwargs={"rho": 0.95})
        assert ada.rho == 0.05 and ada.base.rho == 0.95


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"rho": -0.1}, ValueError, "rho=-0.1"),
        ({"eta": float("inf")}, ValueError, "eta"),
        ({"adaptive": "yes"}, TypeError, "adaptive"),
        ({"base": "adma"}, ValueError, "cannot wrap 'adma' \\(did you mean"),
        ({"base": 3}, TypeError, "base must be an optimizer name"),
        ({"base": "adam", "momentum": 0.9}, TypeError, "unknown hyperparameter 'momentum'"),
        ({"base": "sgd", "lr": -1.0}, ValueError, "sgd: lr=-1"),
        ({"base": "newton"}, ValueError, "cannot wrap"),
        ({"base": "lbfgs"}, ValueError, "cannot wrap"),
        ({"base": "nesterov"}, ValueError, "cannot wrap"),
        ({"base": SGD(), "lr": 0.1}, TypeError, "already configured"),
        ({"base": "sgd", "lr": 0.1, "base_kwargs": {"lr": 0.2}}, TypeError, "both"),
        ({"base_kwargs": [1]}, TypeError, "base_kwargs must be a dict"),
    ],
)
def test_bad_construction_is_named(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        make_optimizer("sam", **kwargs)


def test_update_without_objective_is_refused():
    from gdlab.core.objective import GivenGradient

    opt = SAM()
    p = np.zeros(2)
    assert not isinstance(opt, GradientOptimizer) and not hasattr(opt, "update")
    with pytest.raises(TypeError, match="GivenGradient"):
        opt.step(GivenGradient(np.ones(2)), p, opt.init(p))


def test_nonfinite_gradient_is_refused():
    from gdlab.core.objective import FunctionObjective

    obj = FunctionObjective(None, lambda x: np.where(x[..., :1] > 0, np.nan, 1.0) * np.ones_like(x))
    opt = SAM(base="sgd", lr=0.1)
    p = np.array([[1.0, 1.0], [-1.0, 1.0]])
    new, _, bad = opt.step(obj, p, opt.init(p))
    np.testing.assert_array_equal(bad, [True, False])
    np.testing.assert_array_equal(new[0], p[0])


def test_cli_offers_exactly_the_bases_sam_accepts():
    from gdlab.cli.options import optimizer_specs
    from gdlab.core.optimizers import OPTIMIZERS, make_optimizer

    offered = set(optimizer_specs("sam")[0].choices)
    for name in OPTIMIZERS:
        try:
            make_optimizer("sam", base=name)
            accepted = True
        except ValueError:
            accepted = False
        assert accepted == (name in offered), name
    assert {"sgd", "adam"} <= offered and not {"newton", "lbfgs", "nesterov", "sam"} & offered
