"""The run engine: batched runs equal individual runs, stopping rules, records, schedules, JSON."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest

from gdlab.core.objective import FunctionObjective, Objective, Quadratic
from gdlab.core.optimizers import make_optimizer
from gdlab.core.schedules import make_schedule
from gdlab.engine.result import RunResult
from gdlab.engine.run import (
    BOUND_FACTOR,
    RunSpec,
    compare,
    run_batch,
    run_single,
    takes_batches,
)
from gdlab.landscapes import make_landscape

ELLIPTIC = Quadratic(np.diag([2.0, 20.0]))  # x² + 10y², λ = (2, 20): critical GD rate 2/20 = 0.1


def strict_json(obj) -> str:
    return json.dumps(obj, allow_nan=False)


# -- batched == individual ----------------------------------------------------------------------------
GRID_CASES = [
    ("sgd", {"momentum": 0.9}, [1e-4, 5e-4, 1e-3]),
    ("nesterov", {"momentum": 0.9}, [1e-4, 5e-4, 1e-3]),
    ("adam", {}, [1e-3, 1e-2, 5e-2]),
    ("rmsprop", {}, [1e-3, 1e-2]),
    ("adagrad", {}, [1e-2, 1e-1]),
    ("newton", {"damping": 1.0}, [0.5, 1.0]),
    ("sam", {"base": "adam", "rho": 0.05}, [1e-3, 1e-2]),
]


@pytest.mark.parametrize(("name", "hyper", "lrs"), GRID_CASES, ids=[c[0] for c in GRID_CASES])
def test_starts_times_lrs_grid_equals_individual_runs(name, hyper, lrs):
    """Starts (S, 1, d) × lr (L,) in one call equal the S·L separate runs, record for record."""
    rosen = make_landscape("rosenbrock")
    starts = np.array([[[-1.5, 2.0]], [[0.5, -0.5]], [[1.2, 1.2]]])  # (3, 1, 2)
    rec = run_batch(rosen, make_optimizer(name, lr=np.array(lrs), **hyper), starts, steps=60, tol=1e-3)
    assert rec.batch_shape == (3, len(lrs))
    for s in range(3):
        for j, lr in enumerate(lrs):
            single = run_single(rosen, make_optimizer(name, lr=lr, **hyper), starts[s, 0], steps=60, tol=1e-3)
            got = rec.run((s, j))
            assert got.status == single.status and got.stopped_at == single.stopped_at
            np.testing.assert_allclose(got.trajectory, single.trajectory, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(got.loss, single.loss, rtol=1e-13, atol=1e-15)
            np.testing.assert_allclose(got.grad_norm, single.grad_norm, rtol=1e-12, atol=1e-15)
            np.testing.assert_array_equal(got.lr, single.lr)
            hp = got.hyperparams.get("base_kwargs", got.hyperparams)
            assert hp["lr"] == lr


def test_batched_runs_with_mixed_outcomes_equal_individual_runs():
    """Runs that stop at different steps (converged, diverged, max_steps) do not disturb the others."""
    lrs = np.array([0.001, 0.05, 0.09, 0.11])
    starts = np.array([[[5.0, 5.0]], [[-1.0, 0.5]]])
    rec = run_batch(ELLIPTIC, make_optimizer("sgd", lr=lrs), starts, steps=300, tol=1e-6, bound=math.inf)
    assert set(rec.status.ravel()) == {"converged", "diverged", "max_steps"}
    for idx in np.ndindex(rec.batch_shape):
        single = run_single(ELLIPTIC, "sgd", starts[idx[0], 0], hyperparams={"lr": lrs[idx[1]]}, steps=300,
                            tol=1e-6, bound=math.inf)
        got = rec.run(idx)
        assert (got.status, got.stopped_at, got.reason) == (single.status, single.stopped_at, single.reason)
        np.testing.assert_array_equal(got.trajectory, single.trajectory)
        np.testing.assert_array_equal(got.loss, single.loss)


def test_one_vectorised_call_per_step():
    """The objective sees the whole batch once per step: no Python loop over runs."""

    class Counting(Objective):
        has_hessian = False

        def __init__(self) -> None:
            self.calls: list[tuple[int, ...]] = []

        def value(self, x):
            return ELLIPTIC.value(x)

        def grad(self, x):
            return ELLIPTIC.grad(x)

        def value_and_grad(self, x):
            self.calls.append(x.shape)
            return ELLIPTIC.value_and_grad(x)

    obj = Counting()
    starts = np.random.default_rng(0).normal(size=(50, 1, 2))
    run_batch(obj, make_optimizer("adam", lr=np.array([0.01, 0.1])), starts, steps=25)
    assert obj.calls == [(50, 2, 2)] * 26


def test_lbfgs_runs_one_problem_at_a_time():
    rosen = make_landscape("rosenbrock")
    opt = make_optimizer("lbfgs", line_search_fn="strong_wolfe")
    assert not takes_batches(opt)
    starts = np.array([[-1.2, 1.0], [0.0, 0.0], [1.5, 2.0]])
    rec = run_batch(rosen, opt, starts, steps=60, tol=1e-3)
    assert rec.looped
    for i in range(3):
        single = run_single(rosen, make_optimizer("lbfgs", line_search_fn="strong_wolfe"), starts[i], steps=60,
                            tol=1e-3)
        got = rec.run(i)
        assert (got.status, got.stopped_at) == (single.status, single.stopped_at)
        np.testing.assert_array_equal(got.trajectory, single.trajectory)
    assert set(rec.status) == {"converged"}


# -- stopping rules --------------------------------------------------------------------------------
def gd_elliptic(lr: float, start=(5.0, 5.0), steps: int = 1000):
    """Plain numpy GD on x² + 10y²: points, losses, gradient norms."""
    x = np.array(start, dtype=float)
    pts, losses, gns = [x.copy()], [x[0] ** 2 + 10 * x[1] ** 2], [math.hypot(2 * x[0], 20 * x[1])]
    for _ in range(steps):
        x = x - lr * np.array([2 * x[0], 20 * x[1]])
        pts.append(x.copy())
        losses.append(x[0] ** 2 + 10 * x[1] ** 2)
        gns.append(math.hypot(2 * x[0], 20 * x[1]))
    return np.array(pts), np.array(losses), np.array(gns)


def test_gd_below_critical_lr_converges_at_the_right_step():
    pts, losses, gns = gd_elliptic(0.09)
    k = int(np.argmax(gns < 1e-6))
    res = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 0.09}, steps=1000, tol=1e-6)
    assert res.status == "converged" and res.stopped_at == k
    assert "gradient norm" in res.reason and f"step {k}" in res.reason
    assert len(res.trajectory) == len(res.loss) == len(res.grad_norm) == k + 1
    assert len(res.lr) == k
    np.testing.assert_allclose(res.trajectory, pts[: k + 1], rtol=1e-12)
    np.testing.assert_allclose(res.loss, losses[: k + 1], rtol=1e-12)


def test_gd_above_critical_lr_diverges_by_blowup_at_the_right_step():
    _, losses, _ = gd_elliptic(0.11, steps=200)
    limit = 1e8 * (losses[0] + 1e-3)
    k = int(np.argmax(losses > limit))
    res = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 0.11}, steps=1000, bound=math.inf)
    assert res.status == "diverged" and res.stopped_at == k
    assert "blew up" in res.reason and f"step {k}" in res.reason
    assert len(res.trajectory) == k + 1  # the blown-up point is finite, so it is recorded
    assert np.all(np.isfinite(res.loss))


def test_leaving_the_default_box_diverges():
    land = make_landscape("elliptic")  # domain ±6: default bound 1000 × max(6, |start|)
    pts, _, _ = gd_elliptic(0.11, steps=200)
    bound = BOUND_FACTOR * 6.0
    k = int(np.argmax(np.abs(pts).max(axis=1) > bound))
    res = run_single(land, "sgd", [5, 5], hyperparams={"lr": 0.11}, steps=1000)
    assert res.status == "diverged" and res.stopped_at == k
    assert "left the box" in res.reason


def test_max_steps_records_every_step():
    res = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 0.001}, steps=10, tol=1e-9)
    assert res.status == "max_steps" and res.stopped_at == 10
    assert len(res.trajectory) == len(res.loss) == len(res.grad_norm) == 11 and len(res.lr) == 10
    assert "step limit" in res.reason


def test_target_loss_converges():
    _, losses, _ = gd_elliptic(0.05)
    k = int(np.argmax(losses < 1e-3))
    res = run_single(ELLIPTIC, "sgd", [5, 5], hyperparams={"lr": 0.05}, steps=1000, target=1e-3)
    assert res.status == "converged" and res.stopped_at == k and "target" in res.reason


def test_non_finite_loss_stops_recording_before_it():
    # minimise log(x): the gradient 1/x pushes x through 0, where log is NaN
    log = FunctionObjective(lambda x: np.log(x[..., 0]), lambda x: 1.0 / x)
    res = run_single(log, "sgd", [1.0], hyperparams={"lr": 2.0}, steps=10)
    assert res.status == "diverged" and res.stopped_at == 1
    assert "non-finite" in res.reason
    assert len(res.trajectory) == 1 and len(res.lr) == 0
    strict_json(res.to_json())


def test_refused_update_is_divergence_without_nan():
    res = run_single(ELLIPTIC, "sgd", [1e10, 0.0], hyperparams={"lr": 1e300}, steps=10, bound=math.inf,
                     blowup=None)
    assert res.status == "diverged" and res.stopped_at == 1
    assert "refused" in res.reason
    assert len(res.trajectory) == 1
    strict_json(res.to_json())


def test_start_rules():
    at_min = run_single(ELLIPTIC, "adam", [0.0, 0.0], steps=10, tol=1e-8)
    assert (at_min.status, at_min.stopped_at, len(at_min.trajectory)) == ("converged", 0, 1)
    log = FunctionObjective(lambda x: np.log(x[..., 0]), lambda x: 1.0 / x)
    bad = run_batch(log, make_optimizer("sgd", lr=0.1), np.array([[-1.0], [1.0]]), steps=3)
    assert list(bad.status) == ["diverged", "max_steps"]
    assert bad.stopped_at[0] == 0 and "start" in bad.reason(0)


def test_finished_runs_are_frozen_in_the_record():
    lrs = np.array([0.09, 0.01])
    rec = run_batch(ELLIPTIC, make_optimizer("sgd", lr=lrs), np.array([5.0, 5.0]), steps=200, tol=1e-6)
    k = int(rec.stopped_at[0])
    assert rec.status[0] == "converged" and k < 200 and rec.status[1] == "max_steps"
    assert rec.positions is not None and rec.loss is not None
    assert np.all(rec.positions[k:, 0] == rec.positions[k, 0])
    assert np.all(rec.loss[k:, 0] == rec.loss[k, 0])
    np.testing.assert_array_equal(rec.final_params[0], rec.positions[k, 0])


def test_all_runs_finished_ends_the_loop_early():
    rec = run_batch(ELLIPTIC, make_optimizer("sgd", lr=0.09), np.array([[5.0, 5.0], [1.0, 1.0]]), steps=5000,
                    tol=1e-6)
    assert rec.loss is not None and rec.loss.shape[0] == int(rec.stopped_at.max()) + 1


def test_json_of_every_run_is_strict_and_lengths_match():
    lrs = np.array([1e-4, 0.05, 0.11, 0.5])
    rec = run_batch(make_landscape("elliptic"), make_optimizer("sgd", lr=lrs), np.array([5.0, 5.0]), steps=400,
                    tol=1e-6)
    for res in rec.runs():
        assert isinstance(res, RunResult)
        data = res.to_json()
        strict_json(data)
        n = len(data["trajectory"])
        assert len(data["loss"]) == len(data["grad_norm"]) == n and len(data["lr"]) == n - 1
        flat = np.array(data["trajectory"] + [[v] * 2 for v in data["loss"]], dtype=float)
        assert np.all(np.isfinite(flat))


# -- schedules -------------------------------------------------------------------------------------
def test_schedule_drives_the_lr_like_a_manual_loop():
    sched = make_schedule("warmup_cosine", warmup_steps=5, total_steps=40)
    rosen = make_landscape("rosenbrock")
    res = run_single(rosen, "adam", [-1.2, 1.0], hyperparams={"lr": 0.05}, steps=40, schedule=sched)
    np.testing.assert_allclose(res.lr, sched.curve(40, 0.05), rtol=1e-15)
    opt = make_optimizer("adam", lr=0.05)
    p = np.array([-1.2, 1.0])
    state = opt.init(p)
    for t in range(40):
        p, state, _ = opt.update(rosen.grad(p), state, p, lr=sched.lr(t, 0.05, state))
    np.testing.assert_array_equal(res.final_point, p)
    assert res.schedule == "warmup_cosine"


def test_batched_base_lrs_with_a_schedule():
    sched = make_schedule("cosine", T_max=30, eta_min=1e-4)
    lrs = np.array([1e-3, 1e-2])
    rec = run_batch(ELLIPTIC, make_optimizer("sgd", lr=lrs), np.array([5.0, 5.0]), steps=30, schedule=sched)
    assert rec.lr is not None
    np.testing.assert_allclose(rec.lr, sched.curve(30, lrs), rtol=1e-15)


def test_loss_driven_schedule_runs_batched():
    sched = make_schedule("plateau", patience=2, factor=0.5)
    rec = run_batch(ELLIPTIC, make_optimizer("sgd", lr=np.array([0.05, 0.1])), np.array([5.0, 5.0]), steps=60,
                    schedule=sched)
    assert rec.lr is not None and rec.lr[-1, 1] < 0.1  # the oscillating run (lr = 2/λmax) was reduced


# -- conveniences ----------------------------------------------------------------------------------
def test_compare_labels_and_nearest_minimum():
    land = make_landscape("elliptic")
    specs = [
        RunSpec("sgd", {"lr": 0.01}),
        {"optimizer": "adam", "hyperparams": {"lr": 0.1}, "label": "Adam 0.1"},
        ("sgd", {"lr": 0.05, "momentum": 0.9}),
        RunSpec("sgd", {"lr": 0.05}, schedule="cosine", schedule_params={"T_max": 50}),
    ]
    results = compare(land, specs, [5.0, 5.0], 50)
    assert [r.label for r in results] == ["sgd lr=0.01", "Adam 0.1", "sgd lr=0.05 momentum=0.9",
                                          "sgd lr=0.05 +cosine T_max=50"]
    for r in results:
        near = r.extra["nearest_minimum"]
        assert near["distance"] == pytest.approx(float(np.linalg.norm(r.final_point)))


def test_bad_arguments():
    with pytest.raises(ValueError, match="steps"):
        run_single(ELLIPTIC, "sgd", [1, 1], steps=-1)
    with pytest.raises(ValueError, match="tol"):
        run_single(ELLIPTIC, "sgd", [1, 1], steps=3, tol=-1.0)
    with pytest.raises(ValueError, match="broadcast"):
        run_batch(ELLIPTIC, make_optimizer("sgd", lr=np.array([0.1, 0.2, 0.3])), np.zeros((2, 2)), steps=2)
    with pytest.raises(ValueError, match="run_batch"):
        run_single(ELLIPTIC, make_optimizer("sgd", lr=np.array([0.1, 0.2])), [1.0, 1.0], steps=2)
    with pytest.raises(ValueError, match="unknown optimizer"):
        run_single(ELLIPTIC, "sgdd", [1, 1], steps=3)


@pytest.mark.parametrize("backend", ["reference", "fused"])
def test_a_non_finite_optimizer_state_stops_the_run(backend):
    """Adam with λ = 1e308: λθ overflows v to inf, after which every step is 0 and the parameters
    freeze; that is a divergence of the optimizer, reported with its step, not a run that used all
    its steps."""
    from gdlab.core.stopping import R_NONFINITE_STATE
    from gdlab.landscapes import make_landscape

    rec = run_batch(make_landscape("rosenbrock"), make_optimizer("adam", lr=0.01, weight_decay=1e308),
                    np.array([0.5, 0.5]), steps=50, backend=backend)
    assert str(rec.status) == "diverged" and rec.reason_code[()] == R_NONFINITE_STATE
    assert rec.stopped_at[()] == 1 and "state became non-finite" in rec.reason() and "step 1" in rec.reason()
