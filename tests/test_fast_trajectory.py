"""Parity of the fused trajectories (gdlab.fast.trajectory) with the reference run engine.

``run_batch(..., backend="fused")`` must return the :class:`~gdlab.engine.run.BatchRecord` that
``backend="reference"`` returns on the same landscape evaluation, to the last bit: every record
array, status, reason, stopped_at, n_points and final value, for every rule and option, every
closed-form schedule, per-run hyperparameters, every stopping rule, any thread count and any batch
size; the sweeps built on it give the same results; and what cannot be fused (plateau, Newton,
L-BFGS, SAM, problems, landscapes without a compiled form) is explained, refused by
``backend="fused"`` and run by the reference in ``"auto"``.

"The same landscape evaluation": for a landscape whose formula uses only + − × ÷ √ (``exact``) the
NumPy evaluation and the compiled one give the same bits, so the reference runs on the landscape
itself; a landscape with exp, cos, ... is compared with the reference run on its compiled
evaluation (:func:`gdlab.fast.landscape_codegen.compiled_objective`), since NumPy's and the C
library's transcendental functions differ by an ulp now and then, and more on some CPUs than on
others. How far the two evaluations part is a test of its own, with a stated tolerance.

Equality is checked bit for bit (``np.array_equal(equal_nan=True)`` plus the sign of zeros; only NaN
payloads are not compared), values through ``np.asarray`` (a run without batch axes may hold a
NumPy scalar where the other holds a 0-d array).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Iterator
from typing import Any

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdlab.fast as fast
from gdlab.core.objective import Quadratic
from gdlab.core.optimizers import OPTIMIZERS, make_optimizer
from gdlab.core.rules import RULES
from gdlab.core.schedules import SCHEDULES, ExponentialLR, make_schedule
from gdlab.core.stopping import (
    DIVERGED,
    R_BAD_START,
    R_BLOWUP,
    R_BOUND,
    R_GRAD_TOL,
    R_MAX_STEPS,
    R_NONFINITE_GRAD,
    R_NONFINITE_LOSS,
    R_NONFINITE_LR,
    R_NONFINITE_STATE,
    R_NONFINITE_UPDATE,
    R_TARGET,
)
from gdlab.engine.run import BatchRecord, hyper_shapes, run_batch
from gdlab.engine.sweeps import basin_map, lr_sweep
from gdlab.fast import driver
from gdlab.fast import landscape_codegen as lc
from gdlab.fast import trajectory as tr
from gdlab.landscapes import make_landscape, parse_expression
from gdlab.problems import make_problem

#: A custom expression using most of the functions the code generator knows.
EXPR = "sin(x)*exp(-y**2/4) + sqrt(x**2 + y**2 + 1) + abs(x - y)/3 + log(1 + x**2)*cos(3*y) + atan(y) + 2**(y/3)"

LANDSCAPES: dict[str, Any] = {
    "rosenbrock": make_landscape("rosenbrock"),
    "himmelblau": make_landscape("himmelblau"),
    "rastrigin": make_landscape("rastrigin"),
    "ackley": make_landscape("ackley"),
    "beale": make_landscape("beale"),
    "goldstein_price": make_landscape("goldstein_price"),
    "quadratic": make_landscape("quadratic", condition=50.0, angle=25.0),
    "rosenbrock5": make_landscape("rosenbrock", dim=5),
    "double_well": make_landscape("double_well"),
    "saddle": make_landscape("saddle"),
    "expr": parse_expression(EXPR),
    # landscapes that produce inf / NaN (for the stopping rules)
    "log": parse_expression("log(x) + y**2"),  # NaN loss left of x = 0, bad starts there
    "sqrt": parse_expression("sqrt(x) + (y - 1)**2"),  # NaN look-ahead gradient for textbook Nesterov
    "inv": parse_expression("1/x + x**2 + y**2"),  # a pole at x = 0
    "exp": parse_expression("exp(x**2) + exp(y)"),  # the gradient overflows before the loss
}

#: Batch shapes: no batch axis, one axis, a last axis of 1, two axes, one run, two runs.
SHAPES: list[tuple[int, ...]] = [(), (5,), (3, 1), (2, 3), (1,), (2,), (2, 1), (1, 2), (1, 1), (9,)]

#: Every rule and every option of its element body.
OPTION_CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"lr": 1e-3}),
    ("sgd", {"lr": 1e-3, "momentum": 0.9}),
    ("sgd", {"lr": 1e-3, "momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("sgd", {"lr": 1e-3, "momentum": 0.5, "dampening": 0.3, "weight_decay": 0.01}),
    ("sgd", {"lr": 1e-3, "momentum": 0.8, "maximize": True}),
    ("momentum", {"lr": 1e-3, "momentum": 0.8, "weight_decay": 0.05}),
    ("momentum", {"lr": 1e-3, "maximize": True}),
    ("nesterov", {"lr": 1e-3, "momentum": 0.9}),
    ("nesterov", {"lr": 1e-3, "weight_decay": 0.01, "maximize": True}),
    ("adam", {"lr": 0.05}),
    ("adam", {"lr": 0.05, "amsgrad": True, "weight_decay": 0.1}),
    ("adam", {"lr": 0.05, "eps_inside_sqrt": True, "betas": (0.3, 0.9)}),
    ("adam", {"lr": 0.05, "amsgrad": True, "eps_inside_sqrt": True, "maximize": True}),
    ("adamw", {"lr": 0.05}),
    ("adamw", {"lr": 0.05, "weight_decay_form": "paper", "amsgrad": True, "weight_decay": 0.2}),
    ("adamw", {"lr": 0.05, "weight_decay": 0.0, "eps_inside_sqrt": True}),
    ("rmsprop", {"lr": 0.01}),
    ("rmsprop", {"lr": 0.01, "centered": True, "momentum": 0.9, "weight_decay": 0.1}),
    ("rmsprop", {"lr": 0.01, "eps_inside_sqrt": True, "alpha": 0.3, "maximize": True}),
    ("rmsprop", {"lr": 0.01, "centered": True, "eps_inside_sqrt": True, "momentum": 0.5}),
    ("adagrad", {"lr": 0.1}),
    ("adagrad", {"lr": 0.1, "lr_decay": 0.1, "initial_accumulator_value": 0.5, "weight_decay": 0.1}),
    ("adagrad", {"lr": 0.1, "eps_inside_sqrt": True, "eps": 1e-3, "maximize": True}),
    ("adadelta", {"lr": 1.0}),
    ("adadelta", {"lr": 0.5, "rho": 0.7, "weight_decay": 0.1, "maximize": True}),
    ("adamax", {"lr": 0.05}),
    ("adamax", {"lr": 0.05, "betas": (0.6, 0.99), "weight_decay": 0.2, "maximize": True}),
    ("nadam", {"lr": 0.05}),
    ("nadam", {"lr": 0.05, "decoupled_weight_decay": True, "weight_decay": 0.1, "eps_inside_sqrt": True}),
    ("nadam", {"lr": 0.05, "weight_decay": 0.1, "betas": (0.4, 0.9), "momentum_decay": 0.01, "maximize": True}),
    ("radam", {"lr": 0.05}),
    ("radam", {"lr": 0.05, "decoupled_weight_decay": True, "weight_decay": 0.1, "maximize": True}),
    ("radam", {"lr": 0.05, "eps_inside_sqrt": True, "weight_decay": 0.1, "betas": (0.3, 0.8)}),
    ("lion", {"lr": 0.01}),
    ("lion", {"lr": 0.01, "betas": (0.5, 0.9), "weight_decay": 0.1, "maximize": True}),
    ("rprop", {"lr": 0.01}),
    ("rprop", {"lr": 0.01, "etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05), "maximize": True}),
    ("asgd", {"lr": 1e-3}),
    ("asgd", {"lr": 1e-3, "lambd": 0.1, "alpha": 0.5, "t0": 20.0, "weight_decay": 0.1, "maximize": True}),
]

FUSED_NAMES = sorted(RULES)
#: The two steps of the fused driver (gdlab.fast.config's ``trajectory_step``): the generic one and
#: the rule and landscape compiled together.
STEP_KINDS = ["generic", "combined"]


# ------------------------------------------------------------------------------------------------
# fixtures and helpers
# ------------------------------------------------------------------------------------------------
@pytest.fixture(scope="module", autouse=True)
def _compiled() -> None:
    """Compile (or load from numba's disk cache) the driver and every landscape used here, once."""
    tr.ensure_driver()
    for name, land in LANDSCAPES.items():
        assert tr.prepare(land, wait=True), name


@pytest.fixture(autouse=True)
def _defaults() -> Iterator[None]:
    """Every test runs with the default global backend and leaves the thread count as it found it."""
    threads = numba.get_num_threads()
    with fast.options(backend="auto"):
        yield
    numba.set_num_threads(threads)


@pytest.fixture
def fused_calls(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Counts the fused runs (calls of ``trajectory.run_plan``), to tell which path "auto" took."""
    calls: list[int] = []
    original = tr.run_plan

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        return original(*args, **kwargs)

    monkeypatch.setattr(tr, "run_plan", counting)
    return calls


def same_value(a: Any, b: Any) -> bool:
    """Equal to the last bit: same shape and dtype, NaN where the other is NaN, same bits elsewhere."""
    if isinstance(a, np.ndarray | np.generic) or isinstance(b, np.ndarray | np.generic):
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape or x.dtype != y.dtype or not np.array_equal(x, y, equal_nan=x.dtype.kind in "fc"):
            return False
        if x.dtype.kind == "f":  # also the sign of zeros (NaN payloads are not compared)
            nan = np.isnan(x)
            return bool(np.array_equal(np.where(nan, 0.0, x).view(np.int64), np.where(nan, 0.0, y).view(np.int64)))
        return True
    if isinstance(a, tuple | list) and isinstance(b, tuple | list):
        return len(a) == len(b) and all(same_value(u, v) for u, v in zip(a, b, strict=True))
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(same_value(a[k], b[k]) for k in a)
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return type(a) is type(b) and a == b


def assert_same(ref: BatchRecord, got: BatchRecord, what: str = "") -> None:
    """Every field of the two records equal to the last bit."""
    bad = [f.name for f in dataclasses.fields(BatchRecord)
           if not same_value(getattr(ref, f.name), getattr(got, f.name))]
    assert not bad, f"{what}: fields differ: {bad}"


def evaluated_alike(objective: Any) -> Any:
    """The objective the reference runs on to be compared bit for bit with the fused path: the
    landscape itself when its evaluation is exact, else its compiled evaluation."""
    if lc.compile_landscape(objective).exact:
        return objective
    return lc.compiled_objective(objective)


def both(objective: Any, optimizer: Any, starts: Any, **kw: Any) -> tuple[BatchRecord, BatchRecord]:
    """The reference and the fused record of one call (``backend="fused"`` raises if it cannot)."""
    ref = run_batch(evaluated_alike(objective), optimizer, starts, backend="reference", **kw)
    got = run_batch(objective, optimizer, starts, backend="fused", **kw)
    assert_same(ref, got, f"{getattr(optimizer, 'name', optimizer)} {kw}")
    return ref, got


def starts_in(land: Any, shape: tuple[int, ...], seed: int, scale: float = 0.8) -> np.ndarray:
    """Random starts of ``shape + (d,)`` inside ``scale`` × the landscape's plotting box."""
    dom = np.asarray(land.domain, dtype=np.float64)
    mid, half = dom.mean(axis=1), (dom[:, 1] - dom[:, 0]) / 2
    return np.random.default_rng(seed).uniform(mid - scale * half, mid + scale * half, shape + (land.dim,))


# ------------------------------------------------------------------------------------------------
# 1. every optimizer and option, on every landscape
# ------------------------------------------------------------------------------------------------
def test_every_landscape_is_fused() -> None:
    for name, land in LANDSCAPES.items():
        assert tr.explain(land, make_optimizer("sgd"), np.zeros(land.dim)) == "fused", name


def test_the_cases_cover_every_rule() -> None:
    assert {name for name, _ in OPTION_CASES} == set(FUSED_NAMES)


#: (landscape, relative agreement of its NumPy and compiled trajectories over 30 steps).
TRANSCENDENTAL = [("rastrigin", 1e-9), ("ackley", 1e-9), ("expr", 1e-9)]


@pytest.mark.parametrize(("key", "rtol"), TRANSCENDENTAL)
def test_transcendental_landscapes_agree_with_numpy_within_rounding(key: str, rtol: float) -> None:
    """NumPy's exp/cos/sin and the C library's differ by an ulp now and then (more with AVX-512): the
    fused runs on these landscapes follow the NumPy reference within a stated tolerance, not bit for
    bit; on a well-conditioned run the outcome is the same."""
    land = LANDSCAPES[key]
    assert not lc.compile_landscape(land).exact
    opt = make_optimizer("adam", lr=0.01)
    x0 = starts_in(land, (6,), seed=4, scale=0.5)
    ref = run_batch(land, opt, x0, steps=30, backend="reference")
    got = run_batch(land, opt, x0, steps=30, backend="fused")
    assert np.array_equal(ref.status_code, got.status_code) and np.array_equal(ref.stopped_at, got.stopped_at)
    np.testing.assert_allclose(got.positions, ref.positions, rtol=rtol, atol=1e-12)
    np.testing.assert_allclose(got.loss, ref.loss, rtol=rtol, atol=1e-12)


PARITY_LANDSCAPES = ["rosenbrock", "himmelblau", "rastrigin", "ackley", "beale", "goldstein_price", "quadratic",
                     "rosenbrock5", "double_well", "saddle", "expr"]


@pytest.mark.parametrize(("index", "name", "kwargs"), [(i, n, k) for i, (n, k) in enumerate(OPTION_CASES)],
                         ids=[f"{n}-{'-'.join(k)}" for n, k in OPTION_CASES])
def test_every_option_on_every_landscape(index: int, name: str, kwargs: dict[str, Any]) -> None:
    opt = make_optimizer(name, **kwargs)
    for j, key in enumerate(PARITY_LANDSCAPES):
        land = LANDSCAPES[key]
        shape = SHAPES[(index + j) % len(SHAPES)]
        x0 = starts_in(land, shape, seed=100 * index + j)
        ref, _ = both(land, opt, x0, steps=60, tol=1e-9, label=key)
        assert ref.batch_shape == shape


@pytest.mark.parametrize("shape", SHAPES, ids=str)
def test_every_calling_mode(shape: tuple[int, ...]) -> None:
    """Each batch shape on every landscape, with the value-and-gradient and the gradient-only code
    (textbook Nesterov's look-ahead)."""
    for j, key in enumerate(PARITY_LANDSCAPES):
        land = LANDSCAPES[key]
        for opt in (make_optimizer("adam", lr=0.05), make_optimizer("nesterov", lr=1e-3)):
            both(land, opt, starts_in(land, shape, seed=j), steps=25)


@pytest.mark.parametrize("steps", [0, 1, 2])
def test_zero_one_and_two_steps(steps: int) -> None:
    """The shortest runs (empty per-step tables; NumPy's ``x**1``/``x**2`` fast paths in the tables)."""
    land = LANDSCAPES["himmelblau"]
    for name, kwargs in OPTION_CASES[::3]:
        both(land, make_optimizer(name, **kwargs), starts_in(land, (4,), seed=steps), steps=steps)


def test_exact_zero_coordinates() -> None:
    """Starts on the axes and at the origin (zero gradients, signed zeros)."""
    x0 = np.array([[0.0, 0.0], [-0.0, 1.0], [1.5, -0.0], [0.0, -2.0]])
    for key in ("saddle", "quadratic", "rastrigin", "ackley", "expr"):
        for name, kwargs in OPTION_CASES:
            both(LANDSCAPES[key], make_optimizer(name, **kwargs), x0, steps=8)


# ------------------------------------------------------------------------------------------------
# 2. per-run hyperparameters and schedules
# ------------------------------------------------------------------------------------------------
LRS = np.array([1e-4, 1e-3, 1e-2, 5e-2, 0.2])
#: (optimizer, hyperparameters) with arrays: along the lr axis (L,), along the starts axis (S, 1).
ARRAY_CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"lr": LRS, "momentum": np.linspace(0.0, 0.95, 5), "dampening": 0.1}),
    ("sgd", {"lr": LRS, "momentum": 0.9, "nesterov": True, "weight_decay": np.zeros(5)}),
    ("momentum", {"lr": LRS, "momentum": np.array([[0.5], [0.9], [0.0]])}),
    ("nesterov", {"lr": LRS, "momentum": np.array([[0.5], [0.9], [0.0]]), "weight_decay": 0.01}),
    ("adam", {"lr": LRS, "betas": (np.linspace(0.0, 0.95, 5), 0.999), "amsgrad": True}),
    ("adam", {"lr": LRS, "betas": (0.9, np.array([[0.5], [0.9], [0.999]])), "eps": np.array([[1e-8], [1e-4], [0.1]]),
              "weight_decay": LRS}),
    ("adamw", {"lr": LRS, "weight_decay": np.array([[0.0], [0.1], [0.5]]), "weight_decay_form": "paper"}),
    ("adamw", {"lr": LRS, "weight_decay": np.array([[0.0], [0.1], [0.5]]), "eps_inside_sqrt": True}),
    ("rmsprop", {"lr": LRS, "alpha": np.array([0.0, 0.3, 0.6, 0.9, 0.99]), "centered": True,
                 "momentum": np.array([[0.0], [0.5], [0.9]])}),
    ("adagrad", {"lr": LRS, "lr_decay": np.array([[0.0], [0.01], [0.5]]), "initial_accumulator_value": LRS}),
    ("adadelta", {"lr": LRS * 100, "rho": np.array([[0.5], [0.9], [0.99]]), "eps": np.array([1e-6, 1e-3, 1e-8, 1e-4,
                                                                                           1e-2])}),
    ("adamax", {"lr": LRS, "betas": (np.array([[0.0], [0.6], [0.9]]), np.linspace(0.5, 0.999, 5))}),
    ("nadam", {"lr": LRS, "momentum_decay": np.array([[0.0], [4e-3], [0.1]]), "decoupled_weight_decay": True,
               "weight_decay": 0.1}),
    ("nadam", {"lr": LRS, "betas": (np.linspace(0.1, 0.95, 5), 0.99), "weight_decay": np.array([[0.0], [0.1], [1.0]])}),
    # beta2 = 0.5 and 0.6 never rectify (rho_inf < 5), the others after a few steps
    ("radam", {"lr": LRS, "betas": (0.9, np.array([0.5, 0.6, 0.9, 0.99, 0.999])), "decoupled_weight_decay": True,
               "weight_decay": np.array([[0.0], [0.1], [0.3]])}),
    ("radam", {"lr": LRS, "betas": (np.array([[0.0], [0.5], [0.9]]), 0.999), "eps_inside_sqrt": True}),
    ("lion", {"lr": LRS, "betas": (np.array([[0.0], [0.5], [0.9]]), 0.99), "weight_decay": LRS}),
    ("rprop", {"lr": LRS, "etas": (np.array([[0.3], [0.5], [0.9]]), 1.2),
               "step_sizes": (0.0, np.array([0.01, 0.1, 1.0, 10.0, 50.0]))}),
    ("asgd", {"lr": LRS, "lambd": np.array([[0.0], [0.1], [1.0]]), "t0": np.array([-5.0, 0.0, 10.0, 40.0, 1e6]),
              "alpha": 0.5}),
]


ARRAY_RUNS = [(n, k, "generic") for n, k in ARRAY_CASES] + [(n, k, "combined") for n, k in ARRAY_CASES[::3]]


@pytest.mark.parametrize(("name", "kwargs", "step"), ARRAY_RUNS, ids=[f"{n}-{step}" for n, _, step in ARRAY_RUNS])
def test_per_run_hyperparameters(name: str, kwargs: dict[str, Any], step: str) -> None:
    land = LANDSCAPES["rosenbrock"]
    opt = make_optimizer(name, **kwargs)
    with fast.options(trajectory_step=step):
        ref, _ = both(land, opt, starts_in(land, (3, 1), seed=7), steps=80)
        assert ref.batch_shape == (3, 5)
        ref, _ = both(land, opt, np.array([-1.2, 1.0]), steps=40)  # one start: the hyperparameters' batch
    assert ref.batch_shape == np.broadcast_shapes(*hyper_shapes(opt))


#: Every closed-form schedule and mode (checked against gdlab's registry below); a few with
#: per-run schedule hyperparameters of shape (S, 1).
SCHEDULE_CASES: list[tuple[str, dict[str, Any]]] = [
    ("constant", {}),
    ("constant_lr", {"factor": 0.3, "total_iters": 7}),
    ("step", {"step_size": 5, "gamma": 0.7}),
    ("step", {"step_size": 4, "gamma": np.array([[0.5], [0.8], [0.9]])}),
    ("multistep", {"milestones": [3, 10, 25], "gamma": 0.3}),
    ("exponential", {"gamma": 0.97}),
    ("exponential", {"gamma": np.array([[0.9], [0.95], [0.99]])}),
    ("cosine", {"T_max": 30, "eta_min": 1e-4}),
    ("cosine", {"T_max": 20, "eta_min": np.array([[0.0], [1e-3], [1e-2]])}),
    ("cosine_warm_restarts", {"T_0": 9}),
    ("cosine_warm_restarts", {"T_0": 7, "T_mult": 2, "eta_min": 1e-5}),
    ("linear", {"start_factor": 0.1, "total_iters": 12}),
    ("linear", {"start_factor": 0.5, "end_factor": 0.2, "total_iters": 30}),
    ("warmup_cosine", {"warmup_steps": 5, "total_steps": 40, "eta_min": 1e-4}),
    ("onecycle", {"total_steps": 50}),
    ("onecycle", {"total_steps": 60, "max_lr": 0.05, "three_phase": True, "anneal_strategy": "linear"}),
    ("onecycle", {"total_steps": 50, "max_lr": np.array([[0.01], [0.05], [0.1]])}),
    ("polynomial", {"total_iters": 30, "power": 2.5}),
    ("polynomial", {"total_iters": 40, "power": 2.0}),
    ("cyclic", {"max_lr": 0.05, "step_size_up": 6}),
    ("cyclic", {"max_lr": 0.05, "step_size_up": 4, "step_size_down": 7, "mode": "triangular2"}),
    ("cyclic", {"max_lr": np.array([[0.02], [0.05], [0.1]]), "step_size_up": 5, "mode": "exp_range", "gamma": 0.97}),
    ("lambda", {"lr_lambda": lambda t: 1.0 / (1.0 + 0.1 * t)}),
    ("multiplicative", {"lr_lambda": lambda t: 0.97}),
    ("sequential", {"schedulers": [make_schedule("linear", start_factor=0.1, total_iters=8),
                                   make_schedule("cosine", T_max=40)], "milestones": [8]}),
    ("chained", {"schedulers": [make_schedule("exponential", gamma=0.98), make_schedule("step", step_size=9)]}),
]
#: Optimizers whose update uses the scheduled rate in different ways (in the step, in the velocity,
#: in the decoupled decay, in Adagrad's decay, in NAdam's and RAdam's per-step factors).
SCHEDULED_OPTIMIZERS: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {"momentum": 0.9}),
    ("momentum", {}),
    ("nesterov", {}),
    ("adamw", {"weight_decay_form": "paper"}),
    ("adamw", {"weight_decay": 0.1}),
    ("adagrad", {"lr_decay": 0.05}),
    ("nadam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("radam", {"decoupled_weight_decay": True, "weight_decay": 0.1}),
    ("rmsprop", {"centered": True}),
    ("adamax", {}),
    ("adadelta", {}),
    ("adam", {"amsgrad": True}),
    ("lion", {"weight_decay": 0.1}),
    ("rprop", {}),
    ("asgd", {"lambd": 0.1, "t0": 10.0}),
]


def test_the_schedule_cases_cover_every_closed_form_schedule() -> None:
    closed = {name for name, cls in SCHEDULES.items() if not cls.needs_loss}
    assert {name for name, _ in SCHEDULE_CASES} == closed
    for name, kwargs in SCHEDULE_CASES:
        assert tr._schedule_reason(make_schedule(name, **kwargs)) is None, name


@pytest.mark.parametrize(("index", "name", "kwargs"), [(i, n, k) for i, (n, k) in enumerate(SCHEDULE_CASES)],
                         ids=[n for n, _ in SCHEDULE_CASES])
def test_schedules(index: int, name: str, kwargs: dict[str, Any]) -> None:
    land = LANDSCAPES["himmelblau"]
    schedule = make_schedule(name, **kwargs)
    for k in range(3):  # three optimizers per schedule, every optimizer under several schedules
        oname, okw = SCHEDULED_OPTIMIZERS[(3 * index + k) % len(SCHEDULED_OPTIMIZERS)]
        scalar = make_optimizer(oname, lr=0.02, **okw)
        swept = make_optimizer(oname, lr=np.array([0.005, 0.02, 0.05]), **okw)
        ref, _ = both(land, scalar, starts_in(land, (3, 1), seed=index), steps=70, schedule=schedule)
        assert ref.lr is not None and ref.lr.shape[1:] == (3, 1)
        both(land, swept, starts_in(land, (3, 1), seed=index), steps=70, schedule=schedule, tol=1e-8)


def test_plateau_is_explained_refused_and_run_by_the_reference(fused_calls: list[int]) -> None:
    land = LANDSCAPES["himmelblau"]
    opt = make_optimizer("adam", lr=np.array([0.01, 0.1]))
    plateau = make_schedule("plateau", patience=2, factor=0.5)
    x0 = starts_in(land, (4, 1), seed=3)
    reason = tr.explain(land, opt, x0, 50, plateau)
    assert "plateau" in reason and reason != "fused"
    with pytest.raises(ValueError, match="plateau"):
        run_batch(land, opt, x0, steps=50, schedule=plateau, backend="fused")
    auto = run_batch(land, opt, x0, steps=50, schedule=plateau)
    assert_same(run_batch(land, opt, x0, steps=50, schedule=plateau, backend="reference"), auto, "plateau")
    assert not fused_calls
    assert len(np.unique(auto.lr)) > 2  # the plateau schedule did act


class _Halving:
    """A schedule object that is not one of gdlab's (the engine accepts any such object)."""

    needs_loss = False

    def init(self) -> dict[str, Any]:
        return {}

    def lr(self, step: int, base_lr: Any, state: dict[str, Any]) -> Any:
        return base_lr * 0.5 ** (step // 10)

    def observe(self, state: dict[str, Any], loss: Any, base_lr: Any = None) -> dict[str, Any]:
        return state


class _Overriding(ExponentialLR):
    """A subclass of a closed form that changes what the engine calls."""

    def lr(self, step: Any, base_lr: Any, state: Any) -> Any:
        return super().lr(step, base_lr, state) * 0.5


@pytest.mark.parametrize(("schedule", "words"), [(_Halving(), "not one of gdlab's schedules"),
                                                  (_Overriding(gamma=0.9), "overrides the closed-form interface")])
def test_foreign_schedules_take_the_reference(schedule: Any, words: str, fused_calls: list[int]) -> None:
    land = LANDSCAPES["rosenbrock"]
    opt = make_optimizer("sgd", lr=1e-3, momentum=0.9)
    x0 = starts_in(land, (6,), seed=5)
    assert words in tr.explain(land, opt, x0, 30, schedule)
    with pytest.raises(ValueError, match=words):
        run_batch(land, opt, x0, steps=30, schedule=schedule, backend="fused")
    assert_same(run_batch(land, opt, x0, steps=30, schedule=schedule, backend="reference"),
                run_batch(land, opt, x0, steps=30, schedule=schedule), "foreign schedule")
    assert not fused_calls


# ------------------------------------------------------------------------------------------------
# 3. stopping rules
# ------------------------------------------------------------------------------------------------
HUGE = 10.0 ** np.arange(-4, 4)
#: (landscape, optimizer, hyperparameters, rules, reason codes the case must produce)
STOP_CASES: list[tuple[str, str, dict[str, Any], dict[str, Any], set[int]]] = [
    ("himmelblau", "sgd", {"lr": 0.01}, {"tol": 1e-3}, {R_GRAD_TOL}),
    ("himmelblau", "rmsprop", {"lr": 0.05}, {"tol": 0.1, "target": 1e-3}, {R_TARGET}),
    ("himmelblau", "sgd", {"lr": np.array([0.005, 0.01, 0.02]), "momentum": 0.5}, {"tol": 0.5, "target": 1e-2},
     {R_GRAD_TOL, R_TARGET, R_BOUND}),
    ("rosenbrock", "sgd", {"lr": HUGE}, {}, {R_BOUND, R_BLOWUP, R_MAX_STEPS}),
    ("rosenbrock", "sgd", {"lr": HUGE}, {"bound": math.inf, "blowup": None}, {R_NONFINITE_LOSS, R_MAX_STEPS}),
    ("rosenbrock", "sgd", {"lr": 1e308}, {"bound": math.inf, "blowup": None}, {R_NONFINITE_UPDATE}),
    ("rosenbrock", "momentum", {"lr": HUGE}, {"bound": 3.0, "tol": 1e-2}, {R_BOUND}),
    ("rosenbrock", "adam", {"lr": HUGE}, {"blowup": 10.0, "target": 1e-3}, {R_BLOWUP}),
    ("double_well", "nesterov", {"lr": HUGE}, {"bound": math.inf, "blowup": None}, {R_NONFINITE_LOSS}),
    ("log", "sgd", {"lr": HUGE}, {"bound": math.inf, "blowup": None}, {R_BAD_START, R_NONFINITE_LOSS}),
    ("log", "adagrad", {"lr": HUGE}, {"tol": 1e-3}, {R_BAD_START}),
    # λθ overflows v = (1 − β₂)g² to inf: every later step would be 0 (the parameters freeze)
    ("himmelblau", "adam", {"lr": 0.1, "weight_decay": 1e308}, {}, {R_NONFINITE_STATE, R_NONFINITE_UPDATE}),
    ("sqrt", "nesterov", {"lr": HUGE, "momentum": 0.9}, {"bound": math.inf}, {R_NONFINITE_UPDATE}),
    ("sqrt", "radam", {"lr": HUGE}, {"target": 0.5}, {R_NONFINITE_LOSS}),
    ("inv", "adadelta", {"lr": HUGE * 10}, {"target": 0.5, "blowup": 100.0}, {R_TARGET}),
    ("inv", "nadam", {"lr": HUGE}, {"bound": 2.0}, {R_BOUND}),
    ("exp", "momentum", {"lr": HUGE}, {"bound": math.inf, "blowup": None}, {R_NONFINITE_GRAD}),
    ("exp", "adamax", {"lr": HUGE}, {"tol": 1e-3, "blowup": 2.0, "blowup_floor": 0.5}, {R_BLOWUP}),
]


@pytest.mark.parametrize("step", STEP_KINDS)
@pytest.mark.parametrize(("land", "name", "kwargs", "rules", "codes"), STOP_CASES,
                         ids=[f"{c[0]}-{c[1]}-{'-'.join(c[3]) or 'default'}" for c in STOP_CASES])
def test_stopping_rules(land: str, name: str, kwargs: dict[str, Any], rules: dict[str, Any], codes: set[int],
                        step: str) -> None:
    with fast.options(trajectory_step=step):
        check_stopping_rules(land, name, kwargs, rules, codes)


def check_stopping_rules(land: str, name: str, kwargs: dict[str, Any], rules: dict[str, Any], codes: set[int]) -> None:
    objective = LANDSCAPES[land]
    opt = make_optimizer(name, **kwargs)
    x0 = starts_in(objective, (9, 1), seed=11, scale=1.2)
    ref, got = both(objective, opt, x0, steps=40, **rules)
    assert codes <= set(ref.reason_code.ravel().tolist())
    # finished runs are frozen: their record repeats the final point after their end
    assert got.positions is not None and got.loss is not None
    for idx in np.ndindex(got.batch_shape):
        n = int(got.n_points[idx])
        tail = (slice(n - 1, None),) + idx
        assert np.array_equal(got.positions[tail], np.broadcast_to(got.final_params[idx], got.positions[tail].shape),
                              equal_nan=True)
        assert np.array_equal(got.loss[tail], np.broadcast_to(got.final_loss[idx], got.loss[tail].shape),
                              equal_nan=True)
    # without the record: the same outcome and final values, no record arrays
    final = run_batch(objective, opt, x0, steps=40, backend="fused", record=False, **rules)
    assert_same(run_batch(evaluated_alike(objective), opt, x0, steps=40, backend="reference", record=False, **rules),
                final, "record=False")
    assert final.positions is None and final.lr is None
    for field in ("status_code", "reason_code", "reason_value", "stopped_at", "n_points", "final_params",
                  "final_loss", "final_grad_norm"):
        assert same_value(getattr(final, field), getattr(got, field)), field


def test_every_reason_code_is_covered() -> None:
    reached = set().union(*(codes for *_, codes in STOP_CASES))
    assert reached == {R_MAX_STEPS, R_GRAD_TOL, R_TARGET, R_NONFINITE_UPDATE, R_NONFINITE_LOSS, R_NONFINITE_GRAD,
                       R_BOUND, R_BLOWUP, R_BAD_START, R_NONFINITE_STATE}


def test_a_schedule_whose_rate_overflows_stops_the_run_before_the_step() -> None:
    """exponential(γ = 2) reaches 2¹⁰²⁴ = inf at t = 1024: the step is not taken, the run is diverged
    with its own reason, and the rate that overflowed is named; the fused path leaves it to the reference."""
    land = make_landscape("booth")
    opt = make_optimizer("sgd", lr=np.array([0.01, 0.0]))
    schedule = make_schedule("exponential", gamma=2.0)
    x0 = np.array([[1.0, 3.0], [1.0, 3.0]])  # the minimum: the gradient is 0, so only the rate can stop it
    rates = schedule(np.arange(1100).reshape(-1, 1), opt.lr)
    with np.errstate(invalid="ignore"):
        first_bad = np.argmax(~np.isfinite(rates), axis=0)
    assert first_bad.tolist() == [1024, 1024]
    with pytest.raises(ValueError, match="not finite"):
        run_batch(land, opt, x0, steps=1100, schedule=schedule, backend="fused")
    for record in (True, False):
        got = run_batch(land, opt, x0, steps=1100, schedule=schedule, record=record)
        assert got.stopped_at.tolist() == [1025, 1025]
        assert got.reason_code.tolist() == [R_NONFINITE_LR, R_NONFINITE_LR]
        assert (got.status_code == DIVERGED).all()
        assert np.array_equal(got.final_params, x0)
        assert "learning rate became inf at step 1025 (the step was not taken)" in got.reason(0)
        assert "became nan" in got.reason(1)  # 0 · inf
        if record:
            assert got.n_points.tolist() == [1025, 1025]  # x₀ … x₁₀₂₄: the untaken step adds no point


def test_stops_at_the_start() -> None:
    """Decided at step 0: converged starts (tol, target), starts outside the box, bad starts."""
    land = LANDSCAPES["log"]
    x0 = np.array([[1.0, 0.0], [0.5, 1e-9], [-1.0, 0.0], [40.0, 0.0], [0.0, 1.0], [2.0, 3.0]])
    for rules in ({"tol": 1e-3}, {"target": 0.5}, {"bound": 10.0}, {"tol": 0.6, "target": -0.5, "bound": 30.0}):
        ref, _ = both(land, make_optimizer("adam", lr=0.1), x0, steps=10, **rules)
        assert (ref.stopped_at == 0).any()


# ------------------------------------------------------------------------------------------------
# 4. threads and blocks
# ------------------------------------------------------------------------------------------------
def _grid(n: int) -> np.ndarray:
    """``n`` starts over Himmelblau's box, in an order that mixes early and late finishers."""
    return starts_in(LANDSCAPES["himmelblau"], (n,), seed=n, scale=1.3)


@pytest.mark.parametrize(("name", "kwargs"), [("sgd", {"lr": 0.02}), ("nesterov", {"lr": 0.01})])
def test_thread_count_does_not_change_results(name: str, kwargs: dict[str, Any], monkeypatch: pytest.MonkeyPatch,
                                              fused_calls: list[int]) -> None:
    land = LANDSCAPES["himmelblau"]
    opt = make_optimizer(name, **kwargs)
    R, steps = 3 * tr.BLOCK + 37, 100  # four blocks, the last one partial
    x0 = _grid(R)
    kw: dict[str, Any] = {"steps": steps, "tol": 1e-4, "target": 1e-9}
    ref = run_batch(land, opt, x0, backend="reference", **kw)
    assert len(np.unique(ref.stopped_at)) > 10 and len(np.unique(ref.reason_code)) >= 3
    default = run_batch(land, opt, x0, backend="fused", **kw)
    assert_same(ref, default, "default threads")
    assert tr._thread_count(R, steps) == min(numba.get_num_threads(), 4)
    numba.set_num_threads(1)
    assert tr._thread_count(R, steps) == 1
    assert_same(ref, run_batch(land, opt, x0, backend="fused", **kw), "one thread")
    monkeypatch.setattr(tr, "threads", lambda: 3)  # three threads over four blocks, on any machine
    assert tr._thread_count(R, steps) == 3
    assert_same(ref, run_batch(land, opt, x0, backend="fused", **kw), "three threads")
    assert_same(ref, run_batch(land, opt, x0, **kw), "auto")
    assert len(fused_calls) == 4


@pytest.mark.parametrize("n", [1, tr.BLOCK - 1, tr.BLOCK, tr.BLOCK + 1, 2 * tr.BLOCK + 3])
def test_batches_of_any_size(n: int) -> None:
    land = LANDSCAPES["himmelblau"]
    opt = make_optimizer("rmsprop", lr=np.array([0.01, 0.1]), centered=True)
    both(land, opt, _grid(n)[:, None, :], steps=40, tol=1e-4)


# ------------------------------------------------------------------------------------------------
# 5. random hyperparameters and starts
# ------------------------------------------------------------------------------------------------
#: (low, high, log scale) of each numeric hyperparameter the property test draws.
RANGES: dict[str, tuple[float, float, bool]] = {
    "lr": (1e-4, 1.0, True), "momentum": (0.0, 0.99, False), "dampening": (0.0, 0.9, False),
    "weight_decay": (0.0, 0.5, False), "eps": (1e-10, 1e-2, True), "alpha": (0.0, 0.999, False),
    "rho": (0.0, 0.999, False), "lr_decay": (0.0, 0.5, False), "initial_accumulator_value": (0.0, 1.0, False),
    "momentum_decay": (0.0, 0.1, False), "beta1": (0.0, 0.99, False), "beta2": (0.0, 0.9999, False),
    "etaminus": (0.1, 0.9, False), "etaplus": (1.1, 2.0, False), "step_min": (0.0, 1e-3, False),
    "step_max": (1e-2, 50.0, True), "lambd": (0.0, 0.5, False), "t0": (-5.0, 50.0, False),
}
#: The items of each pair hyperparameter, as names of RANGES (betas otherwise).
PAIRS = {"etas": ("etaminus", "etaplus"), "step_sizes": ("step_min", "step_max")}
N_RUNS = 3


@st.composite
def numbers(draw: st.DrawFn, name: str) -> Any:
    """A scalar (sometimes exactly 0 or the low end), or an array of ``N_RUNS`` per-run values."""
    low, high, log = RANGES[name]
    one = (st.floats(math.log10(low), math.log10(high)).map(lambda e: 10.0**e) if log
           else st.floats(low, high, allow_subnormal=False))
    kind = draw(st.sampled_from(["scalar", "scalar", "array", "edge"]))
    if kind == "array":
        return np.array(draw(st.lists(one, min_size=N_RUNS, max_size=N_RUNS)))
    if kind == "edge":
        return float(low)
    return float(draw(one))


@st.composite
def optimizers(draw: st.DrawFn) -> Any:
    name = draw(st.sampled_from(FUSED_NAMES))
    kwargs: dict[str, Any] = {}
    for spec in OPTIMIZERS[name].hyperparams:
        if spec.kind == "bool":
            kwargs[spec.name] = draw(st.booleans())
        elif spec.kind == "choice":
            kwargs[spec.name] = draw(st.sampled_from(spec.choices))
        elif spec.kind == "pair":
            first, second = PAIRS.get(spec.name, ("beta1", "beta2"))
            kwargs[spec.name] = (draw(numbers(first)), draw(numbers(second)))
        else:
            kwargs[spec.name] = draw(numbers(spec.name))
    if name == "sgd" and kwargs["nesterov"]:
        kwargs["dampening"] = 0.0
        if not np.all(np.asarray(kwargs["momentum"]) > 0):
            kwargs["momentum"] = 0.9
    return make_optimizer(name, **kwargs)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(opt=optimizers(), land=st.sampled_from(PARITY_LANDSCAPES + ["log", "sqrt", "inv", "exp"]),
       shape=st.sampled_from([(), (1,), (1, 1), (2, 1), (4, 1)]), seed=st.integers(0, 2**32 - 1),
       steps=st.integers(1, 40), scheduled=st.booleans(), tol=st.booleans())
def test_random_hyperparameters_and_starts(opt: Any, land: str, shape: tuple[int, ...], seed: int, steps: int,
                                           scheduled: bool, tol: bool) -> None:
    objective = LANDSCAPES[land]
    x0 = starts_in(objective, shape, seed=seed, scale=1.2)
    x0.reshape(-1)[0] = 0.0  # an exact zero coordinate in every example
    schedule = make_schedule("cosine_warm_restarts", T_0=7, T_mult=2, eta_min=1e-5) if scheduled else None
    both(objective, opt, x0, steps=steps, schedule=schedule, tol=1e-6 if tol else None)


# ------------------------------------------------------------------------------------------------
# 6. the sweeps
# ------------------------------------------------------------------------------------------------
def _same_fields(a: Any, b: Any) -> list[str]:
    return [f.name for f in dataclasses.fields(a) if not same_value(getattr(a, f.name), getattr(b, f.name))]


def test_lr_sweep_and_basin_map_use_the_fused_path(fused_calls: list[int]) -> None:
    rosen, himmel = LANDSCAPES["rosenbrock"], LANDSCAPES["himmelblau"]
    starts = np.array([[-1.5, 2.0], [0.5, -0.5], [1.2, 1.2]])
    lrs = np.geomspace(1e-5, 0.1, 25)
    runs: list[tuple[str, Any]] = [
        ("lr sweep sgd", lambda: lr_sweep(rosen, "sgd", lrs, starts, steps=200, hyperparams={"momentum": 0.9},
                                          tol=1e-4)),
        ("lr sweep adam", lambda: lr_sweep(rosen, "adam", lrs * 10, starts[0], steps=150,
                                           schedule=make_schedule("cosine", T_max=150), target=1e-3)),
        ("basin map", lambda: basin_map(himmel, "sgd", hyperparams={"lr": 0.01, "momentum": 0.5}, resolution=41,
                                        steps=300)),
        ("basin map nesterov", lambda: basin_map(himmel, "nesterov",
                                                 hyperparams={"lr": 0.02}, resolution=(30, 20), steps=200)),
    ]
    for what, run in runs:
        with fast.options(backend="reference"):
            before = len(fused_calls)
            ref = run()
            assert len(fused_calls) == before, what
        got = run()
        assert len(fused_calls) == before + 1, what
        assert not _same_fields(ref, got), (what, _same_fields(ref, got))


# ------------------------------------------------------------------------------------------------
# 7. what the fused path does not take
# ------------------------------------------------------------------------------------------------
NOT_FUSED: list[tuple[str, Any, Any, np.ndarray, str]] = [
    ("newton", LANDSCAPES["rosenbrock"], make_optimizer("newton", damping=1.0), np.array([[-1.2, 1.0], [0.5, 0.5]]),
     "not an elementwise rule"),
    ("lbfgs", LANDSCAPES["rosenbrock"], make_optimizer("lbfgs", lr=1.0), np.array([-1.2, 1.0]),
     "not an elementwise rule"),
    ("sam", LANDSCAPES["himmelblau"], make_optimizer("sam", base="adam", rho=0.05), np.array([[1.0, 1.0], [-2, 2]]),
     "not an elementwise rule"),
    ("rosenbrock dim=20", make_landscape("rosenbrock", dim=20), make_optimizer("adam", lr=1e-3), np.zeros((2, 20)),
     "20 dimensions"),
    ("quadratic objective", Quadratic(np.diag([2.0, 20.0])), make_optimizer("sgd", lr=0.01), np.ones((3, 2)),
     "not a gdlab landscape"),
]


@pytest.mark.parametrize(("what", "objective", "opt", "x0", "words"), NOT_FUSED, ids=[c[0] for c in NOT_FUSED])
def test_what_is_not_fused_takes_the_reference(what: str, objective: Any, opt: Any, x0: np.ndarray, words: str,
                                               fused_calls: list[int]) -> None:
    reason = tr.explain(objective, opt, x0, 20)
    assert words in reason, reason
    with pytest.raises(ValueError, match="backend='fused' cannot run this"):
        run_batch(objective, opt, x0, steps=20, backend="fused")
    assert_same(run_batch(objective, opt, x0, steps=20, backend="reference"), run_batch(objective, opt, x0, steps=20),
                what)
    assert not fused_calls


def test_a_subclass_and_more_dimensions_are_fused() -> None:
    """What the previous design refused: a subclass of a rule (it runs its own body) and a quadratic
    in three dimensions (every landscape up to 16 dimensions has a compiled form)."""

    class Slower(RULES["adam"]):
        pass

    both(LANDSCAPES["himmelblau"], Slower(lr=0.1), np.array([[1.0, 1.0], [-2.0, 2.0]]), steps=20)
    quadratic = make_landscape("quadratic", dim=3)
    both(quadratic, make_optimizer("sgd", lr=0.1, momentum=0.5), np.ones((2, 3)), steps=20)
    both(parse_expression("tanh(x) + y**2"), make_optimizer("adam", lr=0.1), np.array([[1.0, 1.0]]), steps=20)


def test_batched_lbfgs_is_refused_by_the_fused_backend() -> None:
    land = LANDSCAPES["rosenbrock"]
    with pytest.raises(ValueError, match="one run at a time"):
        run_batch(land, make_optimizer("lbfgs"), np.array([[-1.2, 1.0], [0.5, 0.5]]), steps=5, backend="fused")


def test_problems_take_the_reference(fused_calls: list[int]) -> None:
    problem = make_problem("linear_regression")
    objective = problem.objective(np.arange(60))
    opt = make_optimizer("adam", lr=np.array([0.01, 0.1]))
    x0 = problem.init_params(batch_shape=(2,))
    reason = tr.explain(objective, opt, x0, 30)
    assert "no compiled form" in reason and "not a gdlab landscape" in reason, reason
    with pytest.raises(ValueError, match="not a gdlab landscape"):
        run_batch(objective, opt, x0, steps=30, backend="fused")
    assert_same(run_batch(objective, opt, x0, steps=30, backend="reference"), run_batch(objective, opt, x0, steps=30),
                "problem")
    assert not fused_calls


def test_too_many_distinct_hyperparameters_for_the_tables() -> None:
    land = LANDSCAPES["himmelblau"]
    many = make_optimizer("sgd", lr=np.linspace(1e-4, 1e-2, 2**19))
    assert "per-step tables larger than" in tr.explain(land, many, np.zeros(2), steps=30)
    assert tr.explain(land, many, np.zeros(2), steps=2) == "fused"


# ------------------------------------------------------------------------------------------------
# 8. the two steps and the chunked driver
# ------------------------------------------------------------------------------------------------
#: Landscapes the combined code of each option case is compiled with (in turn).
COMBINED_LANDSCAPES = ["rosenbrock", "himmelblau", "rastrigin", "quadratic", "rosenbrock5", "saddle", "expr", "log",
                       "sqrt", "inv", "exp"]


#: One case of each rule's options for the combined code (each case compiles a module of its own).
COMBINED_CASES = [(i, n, k) for i, (n, k) in enumerate(OPTION_CASES) if i % 2 == 0 or n in ("adadelta", "lion")]


def test_the_combined_cases_cover_every_rule() -> None:
    assert {name for _, name, _ in COMBINED_CASES} == set(FUSED_NAMES)


@pytest.mark.parametrize(("index", "name", "kwargs"), COMBINED_CASES,
                         ids=[f"{n}-{'-'.join(k)}" for _, n, k in COMBINED_CASES])
def test_every_option_combined_with_a_landscape(index: int, name: str, kwargs: dict[str, Any]) -> None:
    """The rule and the landscape compiled into one loop give the reference's record, with and
    without every stopping rule and the record."""
    land = LANDSCAPES[COMBINED_LANDSCAPES[index % len(COMBINED_LANDSCAPES)]]
    opt = make_optimizer(name, **kwargs)
    x0 = starts_in(land, (7, 1), seed=index, scale=1.2)
    before = fast.stats["trajectory combined"]
    with fast.options(trajectory_step="combined"):
        both(land, opt, x0, steps=50, tol=1e-3, label="rules")
        both(land, opt, x0, steps=50, bound=math.inf, blowup=None, record=False)
        both(land, opt, x0, steps=50, target=0.5, bound=3.0, blowup=5.0)
    assert fast.stats["trajectory combined"] == before + 3


def test_the_step_is_chosen_as_configured() -> None:
    land = LANDSCAPES["himmelblau"]
    opt = make_optimizer("adamax", lr=0.05)
    x0 = starts_in(land, (5,), seed=1)
    counts = {}
    for step in STEP_KINDS:
        before = fast.stats[f"trajectory {step}"]
        with fast.options(trajectory_step=step):
            both(land, opt, x0, steps=20)
        counts[step] = fast.stats[f"trajectory {step}"] - before
    assert counts == {"generic": 1, "combined": 1}
    with pytest.raises(ValueError, match="trajectory_step must be one of 'auto', 'combined', 'generic', got 'fast'"):
        fast.configure(trajectory_step="fast")


@pytest.mark.parametrize("step", STEP_KINDS)
@pytest.mark.parametrize("chunk", [1, 2, 5, 64])
def test_the_chunk_length_does_not_change_results(chunk: int, step: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A chunk in which some run stops is replayed one step at a time from its checkpoint: runs
    stopping anywhere in a chunk, for every kind of reason, end where the reference ends them."""
    from gdlab.fast import driver

    monkeypatch.setattr(driver, "CHUNK", chunk)
    land = LANDSCAPES["inv"]
    opt = make_optimizer("sgd", lr=np.geomspace(1e-3, 3.0, 12), momentum=0.5)
    x0 = starts_in(land, (40, 1), seed=3, scale=1.3)
    with fast.options(trajectory_step=step):
        ref, _ = both(land, opt, x0, steps=70, tol=1e-3, target=0.2, bound=6.0, blowup=1e4)
        both(land, opt, x0, steps=70, tol=1e-3, target=0.2, bound=6.0, blowup=1e4, record=False)
    assert len(np.unique(ref.stopped_at)) > 20 and len(np.unique(ref.reason_code)) >= 4


def _finite_or_not() -> Any:
    return st.one_of(st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([0.0, -0.0, 1e308, 1e-320]))


@settings(max_examples=400, deadline=None)
@given(x=st.lists(_finite_or_not(), min_size=1, max_size=4), state=st.lists(_finite_or_not(), max_size=4),
       loss=_finite_or_not(), grad=st.lists(_finite_or_not(), min_size=1, max_size=4),
       bound=st.one_of(st.floats(1e-300, 1e300), st.just(math.inf)), limit=st.floats(allow_nan=False),
       tol=st.one_of(st.none(), st.floats(1e-150, 1e150)), target=st.one_of(st.none(), st.floats(allow_nan=False)),
       use_limit=st.booleans())
def test_the_check_flags_every_stop(x: list[float], state: list[float], loss: float, grad: list[float], bound: float,
                                    limit: float, tol: float | None, target: float | None, use_limit: bool) -> None:
    """:func:`~gdlab.core.stopping.may_stop`, what the driver checks at every step, holds whenever
    the exact decision stops a run (the driver then works out which rule, from the same values)."""
    from gdlab.core import stopping

    with np.errstate(all="ignore"):
        xs, ss, gs = np.array(x), np.array(state), np.array(grad)
        squared_grad = float(run_squared(gs))
        found = stopping.conditions(
            not np.isfinite(xs).all(), not np.isfinite(ss).all(), loss, squared_grad,
            bool(np.max(np.abs(xs)) > bound), limit if use_limit else math.inf, 0.0 if tol is None else tol * tol,
            -math.inf if target is None else target, use_limit, tol is not None, target is not None)
        flagged = stopping.may_stop(float(run_squared(xs)), float(np.sum(ss)) if ss.size else 0.0, loss,
                                    squared_grad, bound * bound, limit if use_limit else math.inf,
                                    0.0 if tol is None else tol * tol, -math.inf if target is None else target)
    if stopping.stops(*found):
        assert flagged


def run_squared(v: np.ndarray) -> float:
    """``Σ v_i²`` summed left to right (the compiled code's order)."""
    total = v[0] * v[0]
    for value in v[1:]:
        total = total + value * value
    return total


@pytest.mark.parametrize(("d", "nb"), [(1, 0), (2, 1), (2, 3), (16, 2)])
def test_a_block_state_and_its_checkpoint_are_consecutive_rows(d: int, nb: int) -> None:
    """The driver saves and restores a block's state (positions, buffers, loss, squared gradient
    norm) with one copy of consecutive rows: the layout keeps both runs in the same order."""
    rows = driver.layout(d, nb, 2, 3)
    for first, buffers, loss, grad in ((rows.X, rows.S, rows.F, rows.Q), (rows.CX, rows.CS, rows.CF, rows.CQ)):
        assert buffers == first + d and loss == buffers + nb * d and grad == loss + 1
    assert rows.CX >= rows.Q + 1  # the checkpoint does not overlap the state
