"""Convergence rates on quadratics: closed forms against the eigenvalues of the iteration matrices, the
optimal settings against a brute-force grid, and theory against rates measured on real runs."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdlab.core.optimizers import make_optimizer
from gdlab.engine import rates
from gdlab.engine.run import run_batch
from gdlab.landscapes import make_landscape


def spectral_radius_hb(lam: np.ndarray, lr: float, beta: float) -> float:
    """max over λ of the eigenvalue moduli of [[1 + β − ηλ, −β], [1, 0]] (NumPy's eigvals: the oracle)."""
    return max(float(np.max(np.abs(np.linalg.eigvals(np.array([[1 + beta - lr * v, -beta], [1.0, 0.0]])))))
               for v in lam)


@given(kappa=st.floats(1.0, 1e4), lr=st.floats(1e-4, 3.0), beta=st.floats(0.0, 0.999))
@settings(max_examples=200, deadline=None)
def test_closed_forms_match_the_iteration_matrices(kappa, lr, beta):
    lam = np.array([1.0, math.sqrt(kappa), kappa])
    assert rates.gd_rate(lam, lr) == pytest.approx(max(abs(1 - lr * v) for v in lam), rel=1e-12)
    assert rates.momentum_rate(lam, lr, beta) == pytest.approx(spectral_radius_hb(lam, lr, beta), rel=1e-6, abs=1e-6)
    assert rates.momentum_rate(lam, lr, 0.0) == pytest.approx(rates.gd_rate(lam, lr), rel=1e-12)


@pytest.mark.parametrize("kappa", [1.5, 10.0, 100.0, 1000.0])
def test_optimal_settings_beat_a_brute_force_grid(kappa):
    lam = np.array([1.0, kappa])
    best = rates.optimal(lam)
    lrs = np.geomspace(1e-4, 2.0, 20001)
    gd = rates.gd_rate(lam, lrs)
    assert best["gd_lr"] == pytest.approx(lrs[np.argmin(gd)], rel=1e-3)
    assert best["gd_rate"] <= gd.min() + 1e-12 and gd.min() <= best["gd_rate"] + 1e-3
    assert rates.gd_rate(lam, best["gd_lr"]) == pytest.approx(best["gd_rate"], rel=1e-12)
    L, B = np.meshgrid(np.geomspace(1e-4, 4.0, 801), np.linspace(0.0, 0.999, 801))
    hb = rates.momentum_rate(lam, L, B)
    assert hb.min() >= best["momentum_rate"] - 1e-9  # nothing on the grid beats the optimum
    assert rates.momentum_rate(lam, best["momentum_lr"], best["momentum"]) == pytest.approx(
        best["momentum_rate"], rel=1e-6)
    j, i = np.unravel_index(np.argmin(hb), hb.shape)
    assert hb[j, i] == pytest.approx(best["momentum_rate"], abs=0.01)
    assert B[j, i] == pytest.approx(best["momentum"], abs=0.05)


@pytest.mark.parametrize(("kappa", "angle", "lr", "beta"), [
    (10.0, 30.0, 0.1, 0.0), (10.0, 30.0, 0.15, 0.0), (50.0, -20.0, 0.02, 0.0),
    (10.0, 30.0, 0.1, 0.5), (10.0, 30.0, 0.2309, 0.2699), (100.0, 45.0, 0.01, 0.9), (20.0, 10.0, 0.05, 0.3),
])
def test_measured_rate_of_real_runs_matches_theory(kappa, angle, lr, beta):
    """GD and heavy ball (sgd with momentum) on the lab's quadratic: the rate measured over the last quarter
    of 400 steps is within 0.02 of the theoretical spectral radius (transients and the polynomial factor of
    a double root make the measured rate differ slightly)."""
    land = make_landscape("quadratic", condition=kappa, angle=angle)
    rec = run_batch(land, make_optimizer("sgd", lr=lr, momentum=beta), np.array([-1.5, 1.0]), steps=400, tol=None)
    measured = float(rates.measured_rate(rec.positions, np.zeros(2)))
    theory = float(rates.momentum_rate(rates.eigenvalues_of(land.A), lr, beta))
    assert measured == pytest.approx(theory, abs=0.02)


def test_measured_rate_is_nan_where_there_is_nothing_to_measure():
    assert math.isnan(float(rates.measured_rate(np.zeros((2, 2)), np.zeros(2))))  # too few points
    assert math.isnan(float(rates.measured_rate(np.zeros((10, 2)), np.zeros(2))))  # at x* already
    assert math.isnan(float(rates.rate_between([np.inf, 0.0], [1.0, 0.0], [0.0, 0.0], 5)))


def test_not_positive_definite_is_refused():
    with pytest.raises(ValueError, match="positive-definite"):
        rates.eigenvalues_of(np.diag([2.0, -2.0]))
