"""Newton's method: exact steps on functions with closed-form Newton iterates, damping, Levenberg–
Marquardt, Armijo backtracking, fallbacks, batching and refusals."""

from __future__ import annotations

import numpy as np
import pytest
from helpers import run_objective

from gdlab.core.objective import FunctionObjective, GivenGradient, Quadratic, Rosenbrock
from gdlab.core.optimizer import GradientOptimizer, Optimizer
from gdlab.core.optimizers import make_optimizer
from gdlab.core.optimizers.newton import Newton, newton_direction
from gdlab.core.rule import Rule


def quartic() -> FunctionObjective:
    """f(x) = Σ x⁴/4: g = x³, H = diag(3x²); the Newton iterate is x − x³/(3x² + λ)."""
    return FunctionObjective(
        lambda x: np.sum(x**4, axis=-1) / 4,
        lambda x: x**3,
        lambda x: np.einsum("...i,ij->...ij", 3 * x**2, np.eye(x.shape[-1])),
    )


def soft_abs() -> FunctionObjective:
    """f(x) = √(1 + x²) in 1-D: f' = x/√(1+x²), f'' = (1+x²)^(-3/2); Newton gives x − x(1+x²) = −x³."""
    return FunctionObjective(
        lambda x: np.sqrt(1 + x[..., 0] ** 2),
        lambda x: x / np.sqrt(1 + x**2),
        lambda x: ((1 + x**2) ** -1.5)[..., np.newaxis],
    )


def saddle() -> Quadratic:
    """f(x, y) = (x² − y²)/2: H = diag(1, −1) is indefinite."""
    return Quadratic(np.diag([1.0, -1.0]))


def one_step(opt: Newton, objective, x):
    p = np.asarray(x, dtype=np.float64)
    return opt.step(objective, p, opt.init(p))


def test_quadratic_is_solved_in_one_step():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(4, 4))
    A = M @ M.T + 4 * np.eye(4)
    b = rng.normal(size=4)
    new, _, bad = one_step(Newton(), Quadratic(A, b), rng.normal(size=4))
    assert not bad
    np.testing.assert_allclose(new, np.linalg.solve(A, b), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("lr", "damping"), [(1.0, 0.0), (0.5, 0.0), (1.0, 2.0), (0.25, 0.3)])
def test_quartic_closed_form(lr, damping):
    x = np.array([1.5, -0.5, 2.0])
    new, _, _ = one_step(Newton(lr=lr, damping=damping), quartic(), x)
    # x − α x³ / (3x² + λ): with λ = 0 and α = 1 this is 2x/3.
    np.testing.assert_allclose(new, x - lr * x**3 / (3 * x**2 + damping), rtol=1e-14)


def test_indefinite_hessian_falls_back_to_gradient():
    # At (0.5, 1): g = (0.5, −1), H⁻¹g = (0.5, 1), gᵀH⁻¹g = 0.25 − 1 < 0: not a descent direction,
    # so the step is θ − α g = (0.5, 1) − (0.5, −1) = (0, 2).
    new, _, bad = one_step(Newton(), saddle(), [0.5, 1.0])
    assert not bad
    np.testing.assert_array_equal(new, [0.0, 2.0])
    # At (1, 0.5): gᵀH⁻¹g = 1 − 0.25 > 0, the Newton step is kept (and lands on the saddle point).
    new, _, _ = one_step(Newton(), saddle(), [1.0, 0.5])
    np.testing.assert_allclose(new, [0.0, 0.0], atol=1e-15)


def test_singular_hessian_falls_back_and_damping_fixes_it():
    flat = Quadratic(np.diag([1.0, 0.0]))  # f = x²/2, no curvature in y: H is singular
    new, _, bad = one_step(Newton(lr=0.5), flat, [2.0, 3.0])
    assert not bad  # gradient step: (2, 3) − 0.5 (2, 0)
    np.testing.assert_array_equal(new, [1.0, 3.0])
    new, _, _ = one_step(Newton(damping=1.0), flat, [2.0, 3.0])  # (H + I)⁻¹g = (1, 0)
    np.testing.assert_allclose(new, [1.0, 3.0], rtol=1e-15)
    # In a batch, only the singular run falls back (the batched solve fails, runs are solved one by one).
    opt = Newton(damping=np.array([0.0, 1.0]))
    new, _, bad = one_step(opt, flat, [[2.0, 3.0], [2.0, 3.0]])
    assert not bad.any()
    np.testing.assert_allclose(new, [[0.0, 3.0], [1.0, 3.0]], rtol=1e-15)


def test_newton_direction_helper():
    H = np.array([[[2.0, 0.0], [0.0, 4.0]], [[0.0, 0.0], [0.0, 0.0]]])
    g = np.array([[2.0, 4.0], [1.0, -1.0]])
    np.testing.assert_allclose(newton_direction(H, g), [[1.0, 1.0], [1.0, -1.0]])


def test_zero_gradient_gives_zero_step_without_nan():
    A = np.diag([2.0, 0.0])  # singular too
    for opt in (Newton(), Newton(adaptive_damping=True, line_search="backtracking")):
        p = np.zeros(2)
        state = opt.init(p)
        new, state, bad = opt.step(Quadratic(A), p, state)
        assert not bad and np.array_equal(new, p) and np.all(np.isfinite(new))
    assert state["damping"] == 0.0  # λ is left alone at a stationary point


def test_levenberg_marquardt_rejects_and_raises_damping():
    opt = Newton(adaptive_damping=True, damping_increase=10.0, damping_decrease=0.1, min_damping=0.5)
    f = soft_abs()
    p = np.array([2.0])
    state = opt.init(p)
    # Pure Newton from 2 goes to −8, where √65 > √5: rejected; λ = max(0·10, 0.5) = 0.5, θ stays.
    p1, state, _ = opt.step(f, p, state)
    assert p1[0] == 2.0 and state["damping"] == 0.5
    # Next: H = 5^(-3/2) ≈ 0.0894, step = g/(H + 0.5) = 0.894/0.589 ≈ 1.518: 2 → 0.482, f drops:
    # accepted, λ = 0.05.
    p2, state, _ = opt.step(f, p1, state)
    g, h = 2 / np.sqrt(5), 5**-1.5
    np.testing.assert_allclose(p2, [2 - g / (h + 0.5)], rtol=1e-14)
    assert state["damping"] == pytest.approx(0.05, rel=1e-15)


def test_adaptive_damping_never_increases_the_loss_and_converges():
    R = Rosenbrock()
    traj = run_objective(Newton(adaptive_damping=True), R, np.array([-1.5, 2.0]), 80)
    f = R.value(traj)
    assert np.all(np.diff(f) <= 0)
    np.testing.assert_allclose(traj[-1], [1.0, 1.0], atol=1e-10)


def test_backtracking_satisfies_armijo_and_converges():
    R = Rosenbrock()
    opt = Newton(line_search="backtracking", c1=1e-4, shrink=0.5)
    p = np.array([-1.5, 2.0])
    state = opt.init(p)
    for _ in range(40):
        g = R.grad(p)
        direction = newton_direction(R.hessian(p), g)
        new, state, _ = opt.step(R, p, state)
        step = p - new
        # the step is α·direction with α = 0.5^k, and Armijo holds
        alpha = step @ direction / (direction @ direction) if np.any(direction) else 0.0
        assert R.value(new) <= R.value(p) - 1e-4 * alpha * (g @ direction) + 1e-15
        p = new
    np.testing.assert_allclose(p, [1.0, 1.0], atol=1e-12)


def test_pure_newton_on_rosenbrock_from_standard_start():
    traj = run_objective(Newton(), Rosenbrock(), np.array([-1.5, 2.0]), 10)
    np.testing.assert_allclose(traj[-1], [1.0, 1.0], atol=1e-12)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"damping": np.array([0.0, 1.0, 0.1, 5.0])},
        {"line_search": "backtracking", "lr": np.array([1.0, 0.5, 2.0, 1.0])},
        {"adaptive_damping": True, "damping": np.array([0.0, 1e-3, 1.0, 10.0]), "line_search": "backtracking"},
    ],
)
def test_batched_runs_equal_individual_runs(kwargs):
    x0 = np.array([[-1.5, 2.0], [0.5, 0.3], [2.0, 2.0], [-0.3, -1.0]])
    batched = run_objective(Newton(**kwargs), Rosenbrock(), x0, 12)
    for i in range(len(x0)):
        single = {k: (v[i] if isinstance(v, np.ndarray) else v) for k, v in kwargs.items()}
        alone = run_objective(Newton(**single), Rosenbrock(), x0[i], 12)
        np.testing.assert_array_equal(batched[:, i], alone)


def test_nonfinite_gradient_is_refused():
    bad_obj = FunctionObjective(lambda x: np.sum(x, -1), lambda x: np.full_like(x, np.inf),
                                lambda x: np.broadcast_to(np.eye(2), x.shape + (2,)))
    new, _, bad = one_step(Newton(), bad_obj, [1.0, 2.0])
    assert bad and np.array_equal(new, [1.0, 2.0])


def test_newton_needs_the_objective_and_its_type_says_so():
    opt = Newton()
    assert isinstance(opt, Optimizer) and not isinstance(opt, GradientOptimizer) and not hasattr(opt, "update")


def test_objectives_lacking_hessian_or_value_are_refused():
    p = np.ones(2)
    no_hess = FunctionObjective(lambda x: np.sum(x**2, -1), lambda x: 2 * x)
    with pytest.raises(TypeError, match="Hessian"):
        one_step(Newton(), no_hess, p)
    with pytest.raises(TypeError, match="Hessian"):
        one_step(Newton(), GivenGradient(np.ones(2)), p)
    no_value = FunctionObjective(None, lambda x: 2 * x, lambda x: np.broadcast_to(2 * np.eye(2), x.shape + (2,)))
    one_step(Newton(), no_value, p)  # plain Newton needs no loss value
    with pytest.raises(TypeError, match="loss value"):
        one_step(Newton(line_search="backtracking"), no_value, p)


def test_wrong_hessian_shape_is_refused():
    odd = FunctionObjective(lambda x: np.sum(x**2, -1), lambda x: 2 * x, lambda x: np.eye(3))
    with pytest.raises(ValueError, match=r"Hessian has shape \(3, 3\)"):
        one_step(Newton(), odd, np.ones(2))


@pytest.mark.parametrize(
    ("kwargs", "exc", "text"),
    [
        ({"damping": -1.0}, ValueError, "damping=-1"),
        ({"lr": float("nan")}, ValueError, "lr"),
        ({"line_search": "wolfe"}, ValueError, "line_search='wolfe'"),
        ({"damping_increase": 1.0}, ValueError, "damping_increase=1"),
        ({"damping_decrease": 0.0}, ValueError, "damping_decrease=0"),
        ({"shrink": 1.0}, ValueError, "shrink=1"),
        ({"max_backtracks": 2.5}, TypeError, "max_backtracks"),
        ({"adaptive_damping": 1}, TypeError, "adaptive_damping"),
    ],
)
def test_bad_hyperparameters_are_named(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        make_optimizer("newton", **kwargs)


def test_registered():
    opt = make_optimizer("newton", damping=0.1)
    assert isinstance(opt, Newton) and opt.family == "second-order" and opt.needs == "hessian"
    assert not isinstance(opt, Rule)
