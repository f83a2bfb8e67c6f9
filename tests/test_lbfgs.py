"""L-BFGS: iterate parity with torch.optim.LBFGS without line search, the same minimizers as SciPy's
L-BFGS-B and torch's strong-Wolfe L-BFGS, finite termination on quadratics, and the strong Wolfe
conditions at every accepted step."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import scipy.optimize
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import rel_err, torch_rosenbrock

from gdlab.core.objective import FunctionObjective, GivenGradient, Objective, Quadratic, Rosenbrock
from gdlab.core.optimizer import GradientOptimizer, Optimizer
from gdlab.core.optimizers import make_optimizer
from gdlab.core.optimizers.lbfgs import LBFGS, cubic_minimizer, strong_wolfe

TIGHT = {"tolerance_grad": 1e-11, "tolerance_change": 1e-15}


class TorchFunction(Objective):
    """A single-run objective whose gradient comes from torch autograd (float64)."""

    def __init__(self, fn: Callable[[torch.Tensor], torch.Tensor]) -> None:
        self.fn = fn

    def value_and_grad(self, x: np.ndarray) -> tuple[float, np.ndarray]:
        t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
        loss = self.fn(t)
        loss.backward()
        return float(loss.detach()), t.grad.numpy().copy()

    def value(self, x: np.ndarray) -> float:
        return self.value_and_grad(x)[0]

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_grad(x)[1]


def beale(p: torch.Tensor) -> torch.Tensor:
    x, y = p[0], p[1]
    return (1.5 - x + x * y) ** 2 + (2.25 - x + x * y**2) ** 2 + (2.625 - x + x * y**3) ** 2


def booth(p: torch.Tensor) -> torch.Tensor:
    x, y = p[0], p[1]
    return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2


def run_until_converged(opt: LBFGS, objective: Objective, x0: np.ndarray, max_steps: int = 500):
    """Step until a step does not move; returns (final params, state, trajectory)."""
    p = np.array(x0, dtype=np.float64)
    state = opt.init(p)
    traj = [p]
    for _ in range(max_steps):
        new, state, bad = opt.step(objective, p, state)
        assert not bad
        if np.array_equal(new, p):
            break
        p = new
        traj.append(p)
    return p, state, np.array(traj)


def torch_lbfgs(fn, x0: np.ndarray, **kwargs) -> tuple[np.ndarray, int]:
    """torch.optim.LBFGS(line_search_fn='strong_wolfe') run to convergence in one call."""
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS([p], max_iter=1000, max_eval=20000, line_search_fn="strong_wolfe", **kwargs)

    def closure():
        opt.zero_grad()
        loss = fn(p)
        loss.backward()
        return loss

    opt.step(closure)
    return p.detach().numpy().copy(), opt.state[p]["n_iter"]


def scipy_lbfgsb(objective: Objective, x0: np.ndarray) -> scipy.optimize.OptimizeResult:
    def fun(x):
        f, g = objective.value_and_grad(np.asarray(x, dtype=np.float64))
        return float(f), np.asarray(g)

    return scipy.optimize.minimize(
        fun, x0, jac=True, method="L-BFGS-B", options={"gtol": 1e-11, "ftol": 1e-20, "maxiter": 2000}
    )


# name, gdlab objective, torch function, start, minimizer
PROBLEMS = [
    ("rosenbrock-2d", Rosenbrock(), torch_rosenbrock, [-1.5, 2.0], [1.0, 1.0]),
    ("rosenbrock-5d", Rosenbrock(), torch_rosenbrock, [1.3, 0.7, 0.8, 1.9, 1.2], [1.0] * 5),
    ("beale", TorchFunction(beale), beale, [1.0, 1.0], [3.0, 0.5]),
    ("booth", TorchFunction(booth), booth, [-4.0, 6.0], [1.0, 3.0]),
]


@pytest.mark.parametrize(("name", "objective", "torch_fn", "x0", "minimizer"), PROBLEMS, ids=[p[0] for p in PROBLEMS])
def test_same_minimizer_as_scipy_and_torch(name, objective, torch_fn, x0, minimizer, record_property):
    x0 = np.array(x0)
    ours, state, _ = run_until_converged(make_optimizer("lbfgs", line_search_fn="strong_wolfe", **TIGHT), objective, x0)
    ref = scipy_lbfgsb(objective, x0)
    theirs, torch_iters = torch_lbfgs(torch_fn, x0, **TIGHT)
    record_property("iterations", {"gdlab": state["n_iter"], "scipy": int(ref.nit), "torch": torch_iters})
    assert np.max(np.abs(ours - ref.x)) <= 1e-6
    assert np.max(np.abs(ours - theirs)) <= 1e-6
    assert np.max(np.abs(ours - np.array(minimizer))) <= 1e-6
    # a comparable amount of work (the line searches differ in their details)
    assert state["n_iter"] <= 2 * max(ref.nit, torch_iters) + 5


@pytest.mark.parametrize(("lr", "history_size"), [(0.1, 100), (0.05, 3), (0.2, 1)])
def test_fixed_step_matches_torch_iterate_by_iterate(lr, history_size):
    """Without line search one step is exactly one call of torch.optim.LBFGS(max_iter=1)."""
    x0 = np.array([-1.5, 2.0])
    opt = make_optimizer("lbfgs", lr=lr, history_size=history_size)
    p = x0.copy()
    state = opt.init(p)
    ours = [p]
    for _ in range(40):
        p, state, _ = opt.step(Rosenbrock(), p, state)
        ours.append(p)
    t = torch.tensor(x0, requires_grad=True)
    topt = torch.optim.LBFGS([t], lr=lr, max_iter=1, history_size=history_size)

    def closure():
        topt.zero_grad()
        loss = torch_rosenbrock(t)
        loss.backward()
        return loss

    ref = [x0.copy()]
    for _ in range(40):
        topt.step(closure)
        ref.append(t.detach().numpy().copy())
    ref = np.array(ref)
    assert np.all(np.isfinite(ref))
    assert rel_err(np.array(ours), ref) <= 1e-10


def test_history_is_a_fixed_size_window():
    opt = make_optimizer("lbfgs", history_size=3, line_search_fn="strong_wolfe")
    _, state, _ = run_until_converged(opt, Rosenbrock(), np.array([-1.5, 2.0]), max_steps=12)
    assert state["s_hist"].shape == (3, 2) and state["y_hist"].shape == (3, 2) and state["rho_hist"].shape == (3,)
    assert state["hist_len"] == 3
    rho = 1.0 / np.einsum("ij,ij->i", state["s_hist"], state["y_hist"])
    np.testing.assert_allclose(state["rho_hist"], rho, rtol=1e-12)


@pytest.mark.parametrize("d", [2, 5, 8])
def test_quadratic_terminates_in_at_most_d_plus_1_iterations(d):
    """With (near-)exact line searches L-BFGS generates conjugate directions on a quadratic."""
    rng = np.random.default_rng(d)
    Q, _ = np.linalg.qr(rng.normal(size=(d, d)))
    A = Q @ np.diag(np.geomspace(1.0, 50.0, d)) @ Q.T
    A = (A + A.T) / 2
    b = rng.normal(size=d)
    quad = Quadratic(A, b)
    x0 = rng.normal(size=d)
    g0 = np.linalg.norm(quad.grad(x0))
    # c2 tiny: the strong Wolfe curvature condition then demands an (almost) exact line minimum.
    opt = make_optimizer("lbfgs", line_search_fn="strong_wolfe", c1=1e-12, c2=1e-9, tolerance_grad=1e-10 * g0)
    p, state, _ = run_until_converged(opt, quad, x0, max_steps=3 * d)
    assert state["n_iter"] <= d + 1
    np.testing.assert_allclose(p, np.linalg.solve(A, b), rtol=1e-8, atol=1e-10)


@settings(max_examples=40, deadline=None)
@given(st.floats(-2.5, 2.5), st.floats(-2.5, 2.5))
def test_strong_wolfe_holds_for_every_accepted_step(x, y):
    R = Rosenbrock()
    c1, c2 = 1e-4, 0.9
    opt = make_optimizer("lbfgs", line_search_fn="strong_wolfe", c1=c1, c2=c2,
                         tolerance_grad=1e-11, tolerance_change=1e-15)  # stop at the minimiser, not near it
    p = np.array([x, y])
    state = opt.init(p)
    for _ in range(60):
        new, state, bad = opt.step(R, p, state)
        assert not bad
        if np.array_equal(new, p):
            break
        d, t = state["direction"], state["step_length"]
        np.testing.assert_array_equal(new, p + t * d)
        slope0 = R.grad(p) @ d
        assert slope0 < 0
        assert R.value(new) <= R.value(p) + c1 * t * slope0  # sufficient decrease
        assert abs(R.grad(new) @ d) <= c2 * abs(slope0)  # strong curvature condition
        p = new
    assert R.value(p) < 1e-8


def test_line_search_on_a_quadratic_is_exact():
    # φ(t) = (t − 2)²/2 − 2 along d = 1 from θ = 0 (f(θ) = (θ − 2)²/2 − 2): φ'(0) = −2.
    def phi(t):
        return (t - 2.0) ** 2 / 2 - 2.0, np.array([t - 2.0])

    found = strong_wolfe(phi, 0.0, np.array([-2.0]), np.array([1.0]), 0.5, c2=1e-12)
    assert found.wolfe and found.alpha == pytest.approx(2.0, rel=1e-15)
    # from t1 = 5 (beyond the minimum) the first cubic interpolation is exact as well
    found = strong_wolfe(phi, 0.0, np.array([-2.0]), np.array([1.0]), 5.0, c2=1e-12)
    assert found.wolfe and found.alpha == pytest.approx(2.0, rel=1e-15) and found.evals == 2


def test_line_search_refuses_ascent_direction():
    with pytest.raises(ValueError, match="not a descent direction"):
        strong_wolfe(lambda t: (t, np.ones(1)), 0.0, np.ones(1), np.ones(1), 1.0)


def test_line_search_survives_nonfinite_trials():
    # The loss is +inf beyond t = 1: too-long trials are bracketed and bisected.
    def phi(t):
        if t > 1.0:
            return np.inf, np.array([np.nan])
        return (t - 0.8) ** 2, np.array([2 * (t - 0.8)])

    found = strong_wolfe(phi, 0.64, np.array([-1.6]), np.array([1.0]), 10.0)
    assert found.wolfe and 0 < found.alpha <= 1.0


def test_cubic_minimizer():
    # f = (t − 2)²: exact minimizer from any two points, in either order
    f, df = (lambda t: (t - 2) ** 2), (lambda t: 2 * (t - 2))
    for a, b in [(0.0, 1.0), (5.0, 0.5), (3.0, 4.0)]:
        assert cubic_minimizer(a, f(a), df(a), b, f(b), df(b)) == pytest.approx(2.0, rel=1e-14)
    # f = t³ − 3t: local minimizer 1
    g, dg = (lambda t: t**3 - 3 * t), (lambda t: 3 * t**2 - 3)
    assert cubic_minimizer(0.0, g(0.0), dg(0.0), 2.0, g(2.0), dg(2.0)) == pytest.approx(1.0, rel=1e-14)
    assert np.isnan(cubic_minimizer(0.0, 0.0, 1.0, 1.0, 1.0, 1.0))  # a straight line has no minimizer


def test_converged_point_does_not_move():
    opt = make_optimizer("lbfgs", line_search_fn="strong_wolfe")
    p = np.ones(3)
    state = opt.init(p)
    new, state, bad = opt.step(Rosenbrock(), p, state)
    assert not bad and np.array_equal(new, p) and state["n_iter"] == 0


def test_nonfinite_objective_is_flagged():
    obj = FunctionObjective(lambda x: np.sum(x, -1) * np.nan, lambda x: np.ones_like(x))
    opt = make_optimizer("lbfgs")
    p = np.ones(2)
    new, _, bad = opt.step(obj, p, opt.init(p))
    assert bad and np.array_equal(new, p)


def test_nonfinite_step_keeps_the_old_state():
    # f = 1e300·x: the first step is t·d = −lr (t = lr/|g|₁); the second, with no curvature pair
    # (y = 0), is d = −1e300, t = lr = 1e9, which overflows to −inf.
    obj = FunctionObjective(lambda x: 1e300 * x[..., 0], lambda x: np.full_like(x, 1e300))
    opt = make_optimizer("lbfgs", lr=1e9)
    with np.errstate(over="ignore"):  # gᵀd = −1e600 overflows to −inf: still a descent direction
        p, state, bad = opt.step(obj, np.array([0.0]), opt.init(np.array([0.0])))
        assert not bad and p[0] == -1e9
        new, after, bad = opt.step(obj, p, state)
    assert bad and np.array_equal(new, p)
    assert_same_state = {k: v for k, v in after.items() if k != "step"}
    for key, value in assert_same_state.items():
        assert np.array_equal(value, state[key]), key
    assert after["step"] == state["step"] + 1


def test_batched_params_are_refused():
    opt = make_optimizer("lbfgs")
    with pytest.raises(ValueError, match=r"one problem at a time.*\(2, 3\)"):
        opt.init(np.zeros((2, 3)))
    state = opt.init(np.zeros(3))
    with pytest.raises(ValueError, match="one problem at a time"):
        opt.step(Rosenbrock(), np.zeros((2, 3)), state)
    with pytest.raises(TypeError, match="lr must be a single number"):
        make_optimizer("lbfgs", lr=np.array([0.1, 1.0]))
    with pytest.raises(ValueError, match="lr override must be a single number"):
        opt.step(Rosenbrock(), np.zeros(3), state, lr=np.array([0.1, 1.0]))


def test_refusals():
    opt = make_optimizer("lbfgs")
    p = np.zeros(2)
    assert isinstance(opt, Optimizer) and not isinstance(opt, GradientOptimizer) and not hasattr(opt, "update")
    with pytest.raises(TypeError, match="loss value"):
        opt.step(GivenGradient(np.ones(2)), p, opt.init(p))
    with pytest.raises(ValueError, match="c1 < c2"):
        make_optimizer("lbfgs", c1=0.5, c2=0.4)
    with pytest.raises(ValueError, match="line_search_fn='wolfe'"):
        make_optimizer("lbfgs", line_search_fn="wolfe")
    with pytest.raises(ValueError, match="history_size=0"):
        make_optimizer("lbfgs", history_size=0)


class _Counting(Objective):
    """Rosenbrock that counts the points where it is evaluated (value, gradient or both)."""

    def __init__(self) -> None:
        self.inner = Rosenbrock()
        self.points = 0

    def value(self, x: np.ndarray) -> np.ndarray:
        self.points += 1
        return self.inner.value(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        self.points += 1
        return self.inner.grad(x)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        self.points += 1
        return self.inner.value_and_grad(x)


def test_a_step_reuses_the_line_searchs_last_evaluation():
    """One evaluation per trial point, as torch.optim.LBFGS: on 10-D Rosenbrock as many iterations as
    torch and no more evaluations (before, every step evaluated its start again)."""
    kwargs = {"tolerance_grad": 1e-10, "tolerance_change": 1e-12}
    x0 = np.where(np.arange(10) % 2 == 0, -1.2, 1.0)
    objective = _Counting()
    opt = make_optimizer("lbfgs", line_search_fn="strong_wolfe", **kwargs)
    x, state, iterations = x0.copy(), opt.init(x0), 0
    for _ in range(500):
        new, state, _ = opt.step(objective, x, state)
        if np.array_equal(new, x):
            break
        x, iterations = new, iterations + 1
    assert objective.points == state["func_evals"]
    p = torch.tensor(x0, requires_grad=True)
    reference = torch.optim.LBFGS([p], lr=1, max_iter=1000, line_search_fn="strong_wolfe", history_size=100,
                                  **kwargs)
    calls = []

    def closure() -> torch.Tensor:
        calls.append(1)
        reference.zero_grad()
        loss = torch_rosenbrock(p)
        loss.backward()
        return loss

    reference.step(closure)
    assert iterations == reference.state[p]["n_iter"]
    # the last step evaluates once more, to find it has converged, and does not move
    assert objective.points <= len(calls) + 1
    np.testing.assert_allclose(x, p.detach().numpy(), rtol=1e-6, atol=1e-6)
