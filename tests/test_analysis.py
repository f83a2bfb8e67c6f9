"""Point analysis against closed forms, and the sweeps (lr sweep, basin map) against single runs."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gdlab.core.objective import FunctionObjective, Quadratic
from gdlab.core.optimizers import make_optimizer
from gdlab.engine.analysis import analyze, analyze_point, hessian, nearest_known_minimum
from gdlab.engine.run import run_single
from gdlab.engine.sweeps import DIVERGED_CODE, NO_MINIMUM, basin_map, lr_sweep
from gdlab.landscapes import make_landscape

ELLIPTIC = Quadratic(np.diag([2.0, 20.0]))


# -- analysis ----------------------------------------------------------------------------------------
def test_quadratic_closed_forms():
    a = analyze_point(ELLIPTIC, [0.0, 0.0], momentum=0.9)
    np.testing.assert_allclose(a.eigenvalues, [2.0, 20.0])
    assert a.condition_number == pytest.approx(10.0)
    assert a.critical_lr == pytest.approx(2 / 20)
    assert a.critical_lr_momentum == pytest.approx(2 * 1.9 / 20)
    assert a.kind == "minimum" and a.curvature == "positive definite" and a.hessian_source == "exact"
    b = analyze_point(ELLIPTIC, [1.0, 1.0])
    assert b.kind == "not stationary" and b.grad_norm == pytest.approx(np.hypot(2, 20))


def test_random_spd_quadratic_spectrum():
    rng = np.random.default_rng(3)
    M = rng.normal(size=(4, 4))
    A = M @ M.T + 0.5 * np.eye(4)
    lam = np.linalg.eigvalsh(A)
    a = analyze_point(Quadratic(A), np.linalg.solve(A, np.zeros(4)))
    np.testing.assert_allclose(a.eigenvalues, lam, rtol=1e-12)
    assert a.condition_number == pytest.approx(lam[-1] / lam[0])
    assert a.critical_lr == pytest.approx(2 / lam[-1])


@pytest.mark.parametrize(
    ("name", "point", "kind"),
    [
        ("saddle", (0.0, 0.0), "saddle"),  # x² − y²
        ("monkey_saddle", (0.0, 0.0), "degenerate"),  # x³ − 3xy²: zero Hessian
        ("himmelblau", (3.0, 2.0), "minimum"),
        ("elliptic", (0.0, 0.0), "minimum"),
        ("double_well", (0.0,), "maximum"),  # x⁴ − 3x² + 2: f''(0) = −6
        ("rosenbrock", (0.0, 0.0), "not stationary"),
    ],
)
def test_classification_on_landscapes(name, point, kind):
    a = analyze_point(make_landscape(name), point)
    assert a.kind == kind


def test_saddle_and_degenerate_details():
    s = analyze_point(make_landscape("saddle"), [0.0, 0.0])
    np.testing.assert_allclose(s.eigenvalues, [-2.0, 2.0])
    assert s.critical_lr == pytest.approx(1.0)
    m = analyze_point(make_landscape("monkey_saddle"), [0.0, 0.0])
    np.testing.assert_allclose(m.eigenvalues, [0.0, 0.0])
    assert m.critical_lr is None and m.condition_number == np.inf
    quartic = FunctionObjective(lambda x: x[..., 0] ** 4, lambda x: 4 * x**3)
    assert analyze_point(quartic, [0.0]).kind == "degenerate"
    bowl_down = Quadratic(-np.eye(2))
    assert analyze_point(bowl_down, [0.0, 0.0]).kind == "maximum"


def test_finite_difference_hessian_matches_exact():
    rosen = make_landscape("rosenbrock")
    no_hess = FunctionObjective(rosen.value, rosen.grad)
    x = np.array([-0.7, 1.3])
    H_fd, source = hessian(no_hess, x)
    H, exact = hessian(rosen, x)
    assert source == "finite differences" and exact == "exact"
    np.testing.assert_allclose(H_fd, H, rtol=1e-6, atol=1e-5)


def test_analyze_reports_the_nearest_minimum():
    land = make_landscape("himmelblau")
    res = analyze(land, [3.2, 1.9])
    assert res.nearest_minimum is not None
    np.testing.assert_allclose(res.nearest_minimum["location"], [3.0, 2.0])
    assert res.nearest_minimum["distance"] == pytest.approx(np.hypot(0.2, 0.1))
    assert res.at_minimum is not None and res.at_minimum.kind == "minimum"
    json.dumps(res.to_json(), allow_nan=False)
    assert nearest_known_minimum(ELLIPTIC, [1.0, 1.0]) is None  # a bare quadratic lists no minima


def test_critical_rates_separate_convergence_from_divergence():
    """Just below 2/λmax gradient descent converges, just above it diverges; same for 2(1+β)/λmax."""
    a = analyze_point(ELLIPTIC, [0.0, 0.0], momentum=0.5)
    below = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 0.98 * a.critical_lr}, steps=3000, tol=1e-6)
    above = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 1.02 * a.critical_lr}, steps=3000, tol=1e-6)
    assert (below.status, above.status) == ("converged", "diverged")
    hb = {"momentum": 0.5}
    below = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 0.98 * a.critical_lr_momentum, **hb},
                       steps=3000, tol=1e-6)
    above = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 1.02 * a.critical_lr_momentum, **hb},
                       steps=3000, tol=1e-6)
    assert (below.status, above.status) == ("converged", "diverged")


def test_bad_points():
    with pytest.raises(ValueError, match="not finite"):
        analyze_point(ELLIPTIC, [np.nan, 0.0])
    with pytest.raises(ValueError, match="one point"):
        analyze_point(ELLIPTIC, np.zeros((2, 2)))


# -- sweeps ---------------------------------------------------------------------------------------
def test_lr_sweep_equals_single_runs():
    lrs = [0.001, 0.01, 0.05, 0.09, 0.11]
    sweep = lr_sweep(ELLIPTIC, "sgd", lrs, [5.0, 5.0], steps=200, tol=1e-6, bound=1e4)
    assert list(sweep.status) == ["max_steps", "max_steps", "converged", "converged", "diverged"]
    for i, lr in enumerate(lrs):
        single = run_single(ELLIPTIC, "sgd", [5.0, 5.0], hyperparams={"lr": lr}, steps=200, tol=1e-6, bound=1e4)
        assert sweep.final_loss[i] == single.final_loss
        assert sweep.stopped_at[i] == single.stopped_at
    assert sweep.best()["lr"] in (0.05, 0.09)
    json.dumps(sweep.to_json(), allow_nan=False)


def test_lr_sweep_with_several_starts_and_momentum():
    starts = np.array([[5.0, 5.0], [-1.0, 2.0]])
    sweep = lr_sweep(ELLIPTIC, "sgd", [0.01, 0.1], starts, steps=50, hyperparams={"momentum": 0.9})
    assert sweep.final_loss.shape == (2, 2)
    single = run_single(ELLIPTIC, "sgd", starts[1], hyperparams={"lr": 0.1, "momentum": 0.9}, steps=50)
    assert sweep.final_loss[1, 1] == single.final_loss


def test_lr_sweep_for_an_optimizer_without_batched_lr():
    sweep = lr_sweep(ELLIPTIC, "lbfgs", [0.5, 1.0], [5.0, 5.0], steps=20)
    assert sweep.looped and sweep.final_loss.shape == (2,)
    single = run_single(ELLIPTIC, make_optimizer("lbfgs", lr=0.5), [5.0, 5.0], steps=20)
    assert sweep.final_loss[0] == single.final_loss


def test_basin_map_on_himmelblau():
    land = make_landscape("himmelblau")
    bmap = basin_map(land, "sgd", hyperparams={"lr": 0.01}, resolution=(9, 7), steps=400, tol=1e-6)
    assert bmap.basin.shape == (7, 9) and bmap.minima_source == "known"
    assert sum(bmap.counts().values()) == 63
    assert set(np.unique(bmap.basin)) <= {DIVERGED_CODE, NO_MINIMUM, 0, 1, 2, 3}
    locs = np.array([m["location"] for m in bmap.minima])
    for j, i in [(0, 0), (3, 4), (6, 8), (2, 6)]:
        start = [bmap.xs[i], bmap.ys[j]]
        single = run_single(land, "sgd", start, hyperparams={"lr": 0.01}, steps=400, tol=1e-6)
        assert bmap.steps_taken[j, i] == single.stopped_at
        if single.status == "diverged":
            assert bmap.basin[j, i] == DIVERGED_CODE
            continue
        dist = np.linalg.norm(locs - single.final_point, axis=1)
        expect = int(np.argmin(dist)) if dist.min() <= bmap.radius else NO_MINIMUM
        assert bmap.basin[j, i] == expect
    text = bmap.render()
    assert len(text.splitlines()) == 7
    json.dumps(bmap.to_json(), allow_nan=False)


def test_basin_map_finds_minima_of_an_expression():
    from gdlab.landscapes import parse_expression

    wells = parse_expression("(x^2 - 1)^2 + y^2")
    bmap = basin_map(wells, "sgd", hyperparams={"lr": 0.05}, xlim=(-2, 2), ylim=(-1, 1), resolution=(8, 3),
                     steps=500)
    assert bmap.minima_source == "clustered"
    found = sorted(round(float(m["location"][0]), 4) for m in bmap.minima)
    assert found == [-1.0, 1.0]
    left = bmap.basin[:, :4]
    right = bmap.basin[:, 4:]
    assert len(set(left.ravel())) == 1 and len(set(right.ravel())) == 1 and left[0, 0] != right[0, 0]


def test_basin_map_marks_divergence():
    bmap = basin_map(make_landscape("elliptic"), "sgd", hyperparams={"lr": 0.2}, resolution=5, steps=300)
    assert bmap.counts()["diverged"] == 20  # every start except the row y = 0, which only moves in x
