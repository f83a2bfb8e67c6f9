"""Each optimizer's own stability limit, against the spectral radius of its linearised iteration and
against real runs (numerical oracles: eigenvalues of the iteration matrices, bisection, the optimizers)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdlab.core.optimizers import make_optimizer
from gdlab.engine import stability as S  # noqa: N812
from gdlab.engine.run import run_batch
from gdlab.landscapes import make_landscape


def radius(M: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(M))))


def heavy_ball(a: float, mu: float, tau: float = 0.0) -> np.ndarray:
    """PyTorch SGD with momentum on f = λx²/2, a = ηλ: b' = μb + (1−τ)λx, x' = x − ηb'; state (x, ηb)."""
    return np.array([[1 - (1 - tau) * a, -mu], [(1 - tau) * a, mu]])


def nesterov(a: float, mu: float) -> np.ndarray:
    """PyTorch SGD nesterov: b' = μb + λx, x' = x − η(λx + μb'); state (x, ηb)."""
    return np.array([[1 - a - mu * a, -mu * mu], [a, mu]])


def adam_linear(eta: float, H: np.ndarray, p: np.ndarray, beta1: float) -> np.ndarray:
    """Adam with the preconditioner P = diag(p) frozen, on f = xᵀHx/2: m' = β₁m + (1−β₁)PHx, x' = x − ηm'."""
    d = H.shape[0]
    PH = np.diag(p) @ H
    top = np.hstack([np.eye(d) - eta * (1 - beta1) * PH, -eta * beta1 * np.eye(d)])
    bottom = np.hstack([(1 - beta1) * PH, beta1 * np.eye(d)])
    return np.vstack([top, bottom])


def critical_a(matrix, lo: float = 1e-6, hi: float = 50.0) -> float:
    """The a = ηλ where the spectral radius first reaches 1 (bisection on a grid-bracketed crossing)."""
    grid = np.linspace(lo, hi, 5001)
    unstable = [radius(matrix(a)) >= 1.0 for a in grid]
    k = unstable.index(True)
    a0, a1 = grid[k - 1], grid[k]
    for _ in range(60):
        mid = 0.5 * (a0 + a1)
        a0, a1 = (a0, mid) if radius(matrix(mid)) >= 1.0 else (mid, a1)
    return 0.5 * (a0 + a1)


@given(mu=st.floats(0.0, 0.98), tau=st.floats(0.0, 0.9))
@settings(max_examples=25, deadline=None)
def test_heavy_ball_limit_is_where_the_spectral_radius_reaches_one(mu, tau):
    rule = S.stability_rule("sgd", {"momentum": mu, "dampening": tau}) if mu > 0 else S.stability_rule("sgd", {})
    assert rule.name == (S.HEAVY_BALL if mu > 0 else S.GD)
    t = tau if mu > 0 else 0.0
    found = critical_a(lambda a: heavy_ball(a, mu, t))
    assert found == pytest.approx(rule.constant, rel=1e-6)


@given(mu=st.floats(0.01, 0.98))
@settings(max_examples=25, deadline=None)
def test_nesterov_limit_is_where_the_spectral_radius_reaches_one(mu):
    """η λ < 2(1+μ)/(1+2μ), derived with Jury's test, checked by the eigenvalues of the iteration."""
    rule = S.stability_rule("sgd", {"momentum": mu, "nesterov": True})
    assert rule.name == S.NESTEROV
    assert critical_a(lambda a: nesterov(a, mu)) == pytest.approx(rule.constant, rel=1e-6)
    assert S.stability_rule("nesterov", {"momentum": mu}).constant == pytest.approx(rule.constant)


@given(beta1=st.floats(0.0, 0.95), seed=st.integers(0, 1000))
@settings(max_examples=25, deadline=None)
def test_adam_limit_against_the_linearised_iteration(beta1, seed):
    """λmax(diag(p)·H)·η < (2+2β₁)/(1−β₁): stable just below, unstable just above (spectral radius)."""
    rng = np.random.default_rng(seed)
    Q = np.linalg.qr(rng.standard_normal((3, 3)))[0]
    H = Q @ np.diag(rng.uniform(0.1, 10.0, 3)) @ Q.T
    p = rng.uniform(0.1, 5.0, 3)
    rule = S.stability_rule("adam", {"betas": (beta1, 0.999)})
    s = float(np.max(np.linalg.eigvals(np.diag(p) @ H).real))
    # one point whose gradient is 1/p: v̂ = (1/p)², so the preconditioner 1/(√v̂ + ε) is p (to ε)
    assert S.sharpness(rule, H[None], grads=(1.0 / p)[None])[0] == pytest.approx(s, rel=1e-6)
    eta = rule.constant / s
    assert radius(adam_linear(0.98 * eta, H, p, beta1)) < 1.0
    assert radius(adam_linear(1.02 * eta, H, p, beta1)) > 1.0


def test_adam_preconditioner_matches_the_optimizer_state():
    """v̂ reconstructed from the gradients along a run equals Adam's own second moment (and amsgrad's max)."""
    land = make_landscape("rosenbrock")
    for amsgrad in (False, True):
        opt = make_optimizer("adam", lr=0.01, amsgrad=amsgrad)
        rec = run_batch(land, opt, np.array([-1.5, 2.0]), steps=40, tol=None)
        grads = land.grad(rec.positions)
        rule = S.stability_rule("adam", opt.get_params())
        P = S.adam_preconditioner(rule, grads)
        x, state = rec.positions[0].copy(), opt.init(rec.positions[0].copy())
        for k in range(40):
            x, state, _ = opt.step(land, x, state)
            buf = state["max_exp_avg_sq"] if amsgrad else state["exp_avg_sq"]
            want = 1.0 / (np.sqrt(buf) / np.sqrt(1 - 0.999 ** (k + 1)) + 1e-8)
            np.testing.assert_allclose(P[k], want, rtol=1e-9)


@pytest.mark.parametrize(("name", "hp"), [
    ("sgd", {"lr": 0.05}),
    ("sgd", {"lr": 0.05, "momentum": 0.9}),
    ("sgd", {"lr": 0.05, "momentum": 0.6, "dampening": 0.5}),
    ("sgd", {"lr": 0.05, "momentum": 0.9, "nesterov": True}),
    ("momentum", {"lr": 0.05, "momentum": 0.7}),
    ("nesterov", {"lr": 0.05, "momentum": 0.7}),
])
def test_runs_converge_below_the_limit_and_diverge_above(name, hp):
    """On x² + 10y² (λmax = 20) the optimizer itself converges at 0.97× its limit and diverges at 1.03×."""
    land = make_landscape("elliptic")
    rule = S.stability_rule(name, hp)
    limit = rule.constant / 20.0
    below = run_batch(land, make_optimizer(name, **{**hp, "lr": 0.97 * limit}), np.array([5.0, 5.0]), steps=3000,
                      tol=1e-6)
    above = run_batch(land, make_optimizer(name, **{**hp, "lr": 1.03 * limit}), np.array([5.0, 5.0]), steps=3000,
                      tol=1e-6)
    assert below.run().status == "converged"
    assert above.run().status == "diverged"


def test_check_run_uses_the_scheduled_rate_and_flags_the_first_step():
    land = make_landscape("elliptic")
    pts = np.array([[5.0, 5.0], [1.0, 1.0], [0.5, 0.5]])
    out = S.check_run(land, "sgd", {"lr": 0.1}, pts, np.array([0.09, 0.11]))
    np.testing.assert_allclose(out["sharpness"], 20.0)
    np.testing.assert_allclose(out["ratio"], [0.9, 1.1, 1.1])  # the last point takes the last rate
    assert out["first_exceeded"] == 1
    none = S.check_run(land, "lion", {"lr": 0.1}, pts, np.array([0.1, 0.1]))
    assert none["rule"] == "none" and none["ratio"] is None and "no known limit" in none["text"]


def test_coupled_weight_decay_adds_to_the_eigenvalues():
    land = make_landscape("elliptic")
    out = S.check_run(land, "sgd", {"lr": 0.01, "weight_decay": 0.5}, np.array([[1.0, 1.0]]), np.array([0.01]))
    assert out["sharpness"][0] == pytest.approx(20.5)


def test_finite_difference_hessians_match_the_exact_ones():
    land = make_landscape("rosenbrock")
    pts = np.array([[-1.5, 2.0], [0.3, -0.2], [1.0, 1.0]])

    class GradOnly:
        has_hessian = False
        grad = staticmethod(land.grad)

    np.testing.assert_allclose(S.hessians(GradOnly(), pts), S.hessians(land, pts), rtol=1e-5, atol=1e-4)
