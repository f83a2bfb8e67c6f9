"""Learning-rate schedules: parity with torch.optim.lr_scheduler, vectorisation, batching, properties.

Parity drives a real torch optimizer (SGD with momentum on a seeded gradient stream) with the torch
scheduler for ≥ 200 steps, reads the rate of every step from its param group, and compares both the
rates and the trajectories with gdlab's closed forms (relative error ≤ 1e-12).

Torch advances most schedulers *recursively* (its "chainable" form: lr_{t+1} = lr_t · ratio), while
gdlab evaluates the closed form. The two differ in the last bits: measured on these cases, at most
1.5e-15 relative (ExponentialLR, CosineAnnealingLR, LinearLR accumulate one rounding per step), far
inside 1e-12. Where torch also has the closed form (``_get_closed_form_lr``, a private method that
torch uses when an epoch is passed to ``step``) we check gdlab against it too, and agreement there
is exact up to the rounding of ``cos`` (tolerance 1e-15).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from helpers import run_stream
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import rel_err

from gdlab.core.objective import Quadratic
from gdlab.core.optimizers import OPTIMIZERS, make_optimizer
from gdlab.core.rule import Rule
from gdlab.core.schedules import SCHEDULES, make_schedule

S = torch.optim.lr_scheduler
STEPS = 250
BASE_LR = 0.05


def lr_rel_err(ours: Any, ref: Any) -> float:
    """Largest per-step relative error of a rate sequence (absolute where the reference is 0)."""
    ours, ref = np.asarray(ours, dtype=np.float64), np.asarray(ref, dtype=np.float64)
    scale = np.where(ref != 0, np.abs(ref), 1.0)
    return float(np.max(np.abs(ours - ref) / scale))


@pytest.fixture(scope="module")
def stream() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261124)
    return rng.normal(size=6), rng.normal(size=(STEPS, 6))


# A fixed noisy loss with a fast descent, then a plateau: several reductions, cooldowns, patience.
_rng = np.random.default_rng(7)
LOSSES = np.exp(-np.arange(STEPS) / 40.0) + 0.05 * _rng.random(STEPS)
LOSSES[120:] = LOSSES[120] + 0.02 * _rng.random(STEPS - 120)


def torch_run(
    opt_cls: type,
    opt_kw: dict[str, Any],
    make: Callable[[torch.optim.Optimizer], Any],
    x0: np.ndarray,
    grads: np.ndarray,
    losses: np.ndarray | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """Trajectory, rate of each step, and (if torch has it) the closed-form rate of each step."""
    p = torch.tensor(x0.copy(), requires_grad=True)
    opt = opt_cls([p], **opt_kw)
    sched = make(opt)
    closed_form = getattr(sched, "_get_closed_form_lr", None)
    traj, lrs, closed = [x0.copy()], [], []
    for i, g in enumerate(grads):
        lrs.append(float(opt.param_groups[0]["lr"]))
        if closed_form is not None:
            closed.append(float(closed_form()[0]))
        p.grad = torch.tensor(g)
        opt.step()
        sched.step() if losses is None else sched.step(float(losses[i]))
        traj.append(p.detach().numpy().copy())
    return np.array(traj), np.array(lrs), (np.array(closed) if closed_form is not None else None)


# (gdlab name, gdlab hyperparameters, torch scheduler factory)
TORCH_CASES: list[tuple[str, dict[str, Any], Callable[[Any], Any]]] = [
    ("constant_lr", {}, lambda o: S.ConstantLR(o)),
    ("constant_lr", {"factor": 0.3, "total_iters": 37}, lambda o: S.ConstantLR(o, factor=0.3, total_iters=37)),
    ("step", {"step_size": 30, "gamma": 0.5}, lambda o: S.StepLR(o, 30, 0.5)),
    ("step", {"step_size": 7}, lambda o: S.StepLR(o, 7)),
    ("multistep", {"milestones": [10, 50, 120], "gamma": 0.3}, lambda o: S.MultiStepLR(o, [10, 50, 120], 0.3)),
    # in any order, a repeated milestone decaying twice: PyTorch counts them
    ("multistep", {"milestones": [50, 10, 10, 120]}, lambda o: S.MultiStepLR(o, [50, 10, 10, 120])),
    ("exponential", {"gamma": 0.98}, lambda o: S.ExponentialLR(o, 0.98)),
    ("cosine", {"T_max": 100, "eta_min": 1e-4}, lambda o: S.CosineAnnealingLR(o, 100, 1e-4)),
    ("cosine", {"T_max": 250}, lambda o: S.CosineAnnealingLR(o, 250)),
    ("cosine", {"T_max": 60}, lambda o: S.CosineAnnealingLR(o, 60)),
    ("cosine_warm_restarts", {"T_0": 17, "eta_min": 1e-3},
     lambda o: S.CosineAnnealingWarmRestarts(o, 17, eta_min=1e-3)),
    ("cosine_warm_restarts", {"T_0": 10, "T_mult": 2}, lambda o: S.CosineAnnealingWarmRestarts(o, 10, 2)),
    ("linear", {}, lambda o: S.LinearLR(o)),
    ("linear", {"start_factor": 0.01, "end_factor": 0.5, "total_iters": 100},
     lambda o: S.LinearLR(o, 0.01, 0.5, 100)),
    ("onecycle", {"max_lr": 0.5, "total_steps": STEPS},
     lambda o: S.OneCycleLR(o, 0.5, total_steps=STEPS, cycle_momentum=False)),
    ("onecycle", {"total_steps": STEPS, "anneal_strategy": "linear", "three_phase": True, "pct_start": 0.25},
     lambda o: S.OneCycleLR(o, BASE_LR, total_steps=STEPS, anneal_strategy="linear", three_phase=True,
                            pct_start=0.25, cycle_momentum=False)),
    ("onecycle", {"max_lr": 0.5, "total_steps": STEPS, "three_phase": True, "div_factor": 10.0},
     lambda o: S.OneCycleLR(o, 0.5, total_steps=STEPS, three_phase=True, div_factor=10.0, cycle_momentum=False)),
    ("polynomial", {"total_iters": 200, "power": 2.0}, lambda o: S.PolynomialLR(o, 200, 2.0)),
    ("polynomial", {}, lambda o: S.PolynomialLR(o)),
    ("cyclic", {"max_lr": 0.5, "step_size_up": 20},
     lambda o: S.CyclicLR(o, BASE_LR, 0.5, 20, cycle_momentum=False)),
    ("cyclic", {"max_lr": 0.5, "step_size_up": 20, "step_size_down": 13, "mode": "triangular2"},
     lambda o: S.CyclicLR(o, BASE_LR, 0.5, 20, 13, mode="triangular2", cycle_momentum=False)),
    ("cyclic", {"max_lr": 0.5, "step_size_up": 15, "mode": "exp_range", "gamma": 0.99},
     lambda o: S.CyclicLR(o, BASE_LR, 0.5, 15, mode="exp_range", gamma=0.99, cycle_momentum=False)),
    ("lambda", {"lr_lambda": lambda t: 0.95**t}, lambda o: S.LambdaLR(o, lambda t: 0.95**t)),
    ("lambda", {"lr_lambda": lambda t: 1 / (1 + 0.1 * t)}, lambda o: S.LambdaLR(o, lambda t: 1 / (1 + 0.1 * t))),
    ("multiplicative", {"lr_lambda": lambda t: 0.99}, lambda o: S.MultiplicativeLR(o, lambda t: 0.99)),
    ("multiplicative", {"lr_lambda": lambda t: 1 - 0.5 / (t + 10)},
     lambda o: S.MultiplicativeLR(o, lambda t: 1 - 0.5 / (t + 10))),
    ("sequential", {"schedulers": [make_schedule("linear", start_factor=0.1, total_iters=10),
                                   make_schedule("cosine", T_max=240)], "milestones": [10]},
     lambda o: S.SequentialLR(o, [S.LinearLR(o, 0.1, total_iters=10), S.CosineAnnealingLR(o, 240)], [10])),
    ("sequential", {"schedulers": [make_schedule("constant_lr", factor=0.5, total_iters=20),
                                   make_schedule("exponential", gamma=0.98),
                                   make_schedule("step", step_size=10, gamma=0.5)], "milestones": [30, 100]},
     lambda o: S.SequentialLR(o, [S.ConstantLR(o, 0.5, 20), S.ExponentialLR(o, 0.98), S.StepLR(o, 10, 0.5)],
                              [30, 100])),
    ("chained", {"schedulers": [make_schedule("exponential", gamma=0.99), make_schedule("step", step_size=30,
                                                                                         gamma=0.5)]},
     lambda o: S.ChainedScheduler([S.ExponentialLR(o, 0.99), S.StepLR(o, 30, 0.5)])),
    ("chained", {"schedulers": [make_schedule("linear", start_factor=0.2, total_iters=20),
                                make_schedule("multistep", milestones=[50, 120]),
                                make_schedule("polynomial", total_iters=200, power=2.0)]},
     lambda o: S.ChainedScheduler([S.LinearLR(o, 0.2, total_iters=20), S.MultiStepLR(o, [50, 120]),
                                   S.PolynomialLR(o, 200, 2.0)])),
    ("plateau", {"patience": 5}, lambda o: S.ReduceLROnPlateau(o, patience=5)),
    ("plateau", {"patience": 3, "cooldown": 4, "factor": 0.5, "min_lr": 0.004},
     lambda o: S.ReduceLROnPlateau(o, patience=3, cooldown=4, factor=0.5, min_lr=0.004)),
    ("plateau", {"mode": "max", "threshold_mode": "abs", "threshold": 0.01, "patience": 2},
     lambda o: S.ReduceLROnPlateau(o, mode="max", threshold_mode="abs", threshold=0.01, patience=2)),
    ("plateau", {"patience": 0, "factor": 0.5, "eps": 1e-3},
     lambda o: S.ReduceLROnPlateau(o, patience=0, factor=0.5, eps=1e-3)),
]
def _show(value: Any) -> str:
    if isinstance(value, list) and value and hasattr(value[0], "name"):
        return "+".join(v.name for v in value)
    return "fn" if callable(value) else str(value)


TORCH_IDS = [f"{n}{i}-{'-'.join(f'{k}={_show(v)}' for k, v in kw.items()) or 'defaults'}"
             for i, (n, kw, _) in enumerate(TORCH_CASES)]


def gdlab_rates(name: str, kw: dict[str, Any], base_lr: Any, losses: np.ndarray | None = LOSSES) -> np.ndarray:
    """Rates of steps 0..STEPS-1 through the uniform stateful interface (losses fed to observe)."""
    sched = make_schedule(name, **kw)
    if not sched.needs_loss:
        return np.asarray(sched(np.arange(STEPS), base_lr))
    state, out = sched.init(), []
    for t in range(STEPS):
        out.append(sched.lr(t, base_lr, state))
        state = sched.observe(state, losses[t], base_lr)
    return np.array(out)


def test_every_torch_schedule_is_covered():
    assert {n for n, _, _ in TORCH_CASES} == set(SCHEDULES) - {"constant", "warmup_cosine"}


@pytest.mark.parametrize(("name", "kw", "make"), TORCH_CASES, ids=TORCH_IDS)
def test_matches_torch_scheduler(name, kw, make, stream):
    x0, grads = stream
    ref_traj, ref_lrs, ref_closed = torch_run(
        torch.optim.SGD, {"lr": BASE_LR, "momentum": 0.9}, make, x0, grads, LOSSES if name == "plateau" else None
    )
    ours = gdlab_rates(name, kw, BASE_LR)
    assert lr_rel_err(ours, ref_lrs) <= 1e-12
    if ref_closed is not None:  # torch's own closed form: gdlab evaluates the same expression
        assert lr_rel_err(ours, ref_closed) <= 1e-15
    traj = run_stream(make_optimizer("sgd", lr=BASE_LR, momentum=0.9), x0, grads, ours)
    assert rel_err(traj, ref_traj) <= 1e-12
    if name == "plateau":
        assert len(np.unique(ours)) >= 4  # the loss sequence really triggers several reductions


def test_warmup_cosine_reproduces_seed_002_table():
    eta_max, warmup, total = 1e-3, 100, 1000
    sched = make_schedule("warmup_cosine", warmup_steps=warmup, total_steps=total)
    for t in range(0, total, 100):
        if t < warmup:
            expected = eta_max * t / warmup
        else:
            progress = (t - warmup) / (total - warmup)
            expected = eta_max * 0.5 * (1 + np.cos(progress * np.pi))
        assert sched(t, eta_max) == pytest.approx(expected, rel=1e-15, abs=0)
    assert f"{sched(500, eta_max):.6f}" == "0.000587"  # a row of the seed's printed table
    assert sched(total + 50, eta_max) == 0.0  # held at eta_min after total_steps


def _instance(name: str):
    """A valid configuration of every registered schedule."""
    kw: dict[str, dict[str, Any]] = {
        "step": {"step_size": 30}, "multistep": {"milestones": [5, 40, 41]}, "exponential": {"gamma": 0.97},
        "cosine": {"T_max": 50, "eta_min": 1e-3}, "cosine_warm_restarts": {"T_0": 7, "T_mult": 3},
        "warmup_cosine": {"warmup_steps": 20, "total_steps": 150}, "onecycle": {"total_steps": 120},
        "polynomial": {"total_iters": 90, "power": 0.5}, "cyclic": {"max_lr": 2.0, "step_size_up": 9},
        "lambda": {"lr_lambda": lambda t: 1.0 / (1.0 + t)},
        "multiplicative": {"lr_lambda": lambda t: 0.99},
        "sequential": {"schedulers": [make_schedule("linear", total_iters=20), make_schedule("cosine", T_max=50)],
                       "milestones": [20]},
        "chained": {"schedulers": [make_schedule("exponential", gamma=0.99), make_schedule("step", step_size=7)]},
    }
    return make_schedule(name, **kw.get(name, {}))


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_vectorised_equals_per_step(name):
    sched = _instance(name)
    steps = np.arange(300)
    curve = sched(steps, 0.3)
    assert curve.shape == (300,)
    singles = [sched(int(t), 0.3) for t in steps]
    assert all(isinstance(v, float) for v in singles)
    np.testing.assert_array_equal(curve, singles)
    np.testing.assert_array_equal(sched.curve(300, 0.3), curve)


@pytest.mark.parametrize("name", list(SCHEDULES))
def test_batched_base_lr_equals_individual(name):
    sched = _instance(name)
    bases = np.array([0.0, 1e-3, 0.1, 1.0])
    table = sched(np.arange(200)[:, None], bases)
    assert table.shape == (200, 4)
    for j, b in enumerate(bases):
        np.testing.assert_array_equal(table[:, j], sched(np.arange(200), float(b)))


def test_plateau_batched_losses_give_per_run_state():
    sched = make_schedule("plateau", patience=2, factor=0.5)
    rng = np.random.default_rng(3)
    losses = np.cumsum(rng.normal(size=(80, 3)), axis=0)  # three random walks: different plateaus
    bases = np.array([0.1, 0.2, 0.3])
    state, singles = sched.init(), [sched.init() for _ in range(3)]
    for t in range(80):
        rates = sched.lr(t, bases, state)
        for j in range(3):
            assert rates[j] == sched.lr(t, bases[j], singles[j])
            singles[j] = sched.observe(singles[j], losses[t, j], bases[j])
        state = sched.observe(state, losses[t], bases)
    assert len(set(state["num_reductions"].tolist())) > 1


def test_closed_form_schedules_have_trivial_state():
    sched = make_schedule("cosine", T_max=10)
    state = sched.init()
    assert state == {} and not sched.needs_loss
    assert sched.observe(state, 1.0) is state
    assert sched.lr(3, 0.1, state) == sched(3, 0.1)
    assert make_schedule("plateau").needs_loss


# -- properties ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", list(SCHEDULES))
@settings(max_examples=40, deadline=None)
@given(step=st.integers(0, 10_000), base=st.floats(0.0, 10.0))
def test_rates_are_finite_and_non_negative(name, step, base):
    sched = _instance(name)
    lr = sched.lr(step, base, sched.init())
    assert math.isfinite(lr) and lr >= 0.0


@settings(max_examples=100, deadline=None)
@given(
    T_max=st.integers(1, 500),
    base=st.floats(1e-6, 10.0),
    frac=st.floats(0.0, 1.0),
    step=st.integers(0, 5000),
)
def test_cosine_stays_between_eta_min_and_base(T_max, base, frac, step):
    eta_min = base * frac
    lr = make_schedule("cosine", T_max=T_max, eta_min=eta_min)(step, base)
    tol = 4 * np.finfo(np.float64).eps * base  # the rounding of η_min + (η₀ − η_min)·c
    assert eta_min - tol <= lr <= base + tol


@settings(max_examples=100, deadline=None)
@given(gamma=st.floats(0.0, 1.0), step_size=st.integers(1, 50), base=st.floats(0.0, 10.0))
def test_step_and_exponential_are_non_increasing(gamma, step_size, base):
    steps = np.arange(400)
    for sched in (make_schedule("step", step_size=step_size, gamma=gamma), make_schedule("exponential", gamma=gamma)):
        curve = sched(steps, base)
        assert np.all(np.diff(curve) <= 0.0)


# -- validation ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kw", "exc", "words"),
    [
        ("cosine", {"T_max": 0}, ValueError, ["T_max", "0"]),
        ("onecycle", {}, ValueError, ["total_steps"]),
        ("onecycle", {"total_steps": 10, "pct_start": 0.1}, ValueError, ["pct_start", "zero length"]),
        ("multistep", {"milestones": [30, -10]}, ValueError, ["milestones", "[30, -10]"]),
        ("multistep", {"milestones": [1.5]}, TypeError, ["milestones"]),
        ("warmup_cosine", {"warmup_steps": 100, "total_steps": 100}, ValueError, ["warmup_steps=100"]),
        ("exponential", {"gamma": -0.5}, ValueError, ["gamma"]),
        ("step", {}, TypeError, ["step_size"]),
        ("linear", {"start_factor": 0.0}, ValueError, ["start_factor"]),
        ("plateau", {"factor": 1.0}, ValueError, ["factor"]),
        ("cosine", {"T_max": 10, "tmax": 3}, TypeError, ["tmax", "T_max"]),
    ],
)
def test_invalid_parameters_are_refused(name, kw, exc, words):
    with pytest.raises(exc) as info:
        make_schedule(name, **kw)
    for word in words:
        assert word in str(info.value)


def test_unknown_schedule_suggests_a_name():
    with pytest.raises(ValueError, match=r"'cosin'.*did you mean 'cosine'.*valid: constant, "):
        make_schedule("cosin")


def test_bad_steps_and_rates_are_refused():
    sched = make_schedule("cosine", T_max=10)
    with pytest.raises(ValueError, match="step"):
        sched(-1, 0.1)
    with pytest.raises(TypeError, match="step"):
        sched(1.5, 0.1)
    with pytest.raises(ValueError, match="base_lr"):
        sched(1, -0.1)
    with pytest.raises(ValueError, match="broadcast"):
        sched(np.arange(5), np.ones(3))


# -- schedules drive any optimizer -------------------------------------------------------------

TORCH_OPTIMIZERS: dict[str, tuple[type, dict[str, Any]]] = {
    "sgd": (torch.optim.SGD, {"momentum": 0.9}),
    "adam": (torch.optim.Adam, {}),
    "adamw": (torch.optim.AdamW, {}),
    "adagrad": (torch.optim.Adagrad, {}),
    "rmsprop": (torch.optim.RMSprop, {}),
    "adamax": (torch.optim.Adamax, {}),
    "adadelta": (torch.optim.Adadelta, {}),
    "nadam": (torch.optim.NAdam, {}),
    "radam": (torch.optim.RAdam, {}),
    # Rprop reads the rate at its first step only (the initial step sizes), in torch and in gdlab
    "rprop": (torch.optim.Rprop, {}),
    # ASGD is left out: under a schedule torch computes η_t from the previous step's rate, gdlab from
    # this step's (the README says so); with a constant rate they agree (tests/test_parity_torch.py)
}
WITH_TORCH = [n for n in TORCH_OPTIMIZERS if n in OPTIMIZERS and issubclass(OPTIMIZERS[n], Rule)]
DRIVING = [
    ("step", {"step_size": 40, "gamma": 0.5}, lambda o: S.StepLR(o, 40, 0.5)),
    ("cosine", {"T_max": 90, "eta_min": 1e-4}, lambda o: S.CosineAnnealingLR(o, 90, 1e-4)),
    ("onecycle", {"total_steps": 200}, lambda o: S.OneCycleLR(o, 0.01, total_steps=200, cycle_momentum=False)),
]


def test_torch_counterparts_present():
    assert {"sgd", "adam"} <= set(WITH_TORCH)


@pytest.mark.parametrize("opt_name", WITH_TORCH)
@pytest.mark.parametrize(("sched_name", "kw", "make"), DRIVING, ids=[d[0] for d in DRIVING])
def test_schedule_drives_optimizer_like_torch(opt_name, sched_name, kw, make, stream):
    x0, grads = stream
    grads = grads[:200]
    torch_cls, extra = TORCH_OPTIMIZERS[opt_name]
    opt = make_optimizer(opt_name, lr=0.01, **extra)
    sched = make_schedule(sched_name, **kw)
    p, state = x0.copy(), opt.init(x0)
    traj = [p]
    for t, g in enumerate(grads):
        p, state, bad = opt.update(g, state, p, lr=sched(t, opt.lr))
        assert not bad.any()
        traj.append(p)
    ref, _, _ = torch_run(torch_cls, {"lr": 0.01, **extra}, make, x0, grads)
    assert rel_err(np.array(traj), ref) <= 1e-12


@pytest.mark.parametrize("opt_name", [n for n, c in OPTIMIZERS.items() if issubclass(c, Rule)])
def test_batched_scheduled_rates_equal_individual_runs(opt_name, stream):
    x0, grads = stream
    sched = make_schedule("cosine_warm_restarts", T_0=15)
    bases = np.array([1e-3, 1e-2, 5e-2])
    opt = make_optimizer(opt_name)
    batch = np.tile(x0, (3, 1))
    state = opt.init(batch)
    singles = [(x0.copy(), opt.init(x0)) for _ in bases]
    for t, g in enumerate(grads[:60]):
        batch, state, _ = opt.update(np.tile(g, (3, 1)), state, batch, lr=sched(t, bases))
        for j, b in enumerate(bases):
            p, s = singles[j]
            p, s, _ = opt.update(g, s, p, lr=sched(t, float(b)))
            singles[j] = (p, s)
    for j in range(3):
        np.testing.assert_allclose(batch[j], singles[j][0], rtol=1e-13, atol=0)


def _quadratic() -> Quadratic:
    A = np.array([[3.0, 0.4, 0.0], [0.4, 1.0, 0.2], [0.0, 0.2, 0.1]])
    return Quadratic(A, np.array([1.0, -2.0, 0.5]))


def _torch_sgd_on(objective, x0, steps, kwargs, make=None) -> np.ndarray:
    p = torch.tensor(x0.copy(), requires_grad=True)
    opt = torch.optim.SGD([p], **kwargs)
    sched = make(opt) if make else None
    out = [x0.copy()]
    for _ in range(steps):
        p.grad = torch.tensor(objective.grad(p.detach().numpy()))
        opt.step()
        if sched:
            sched.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


@pytest.mark.parametrize("scheduled", [False, True], ids=["constant-lr", "step-schedule"])
def test_textbook_momentum_vs_torch_sgd(scheduled):
    """v = γv + ηg equals torch's η·b only while η is constant; a schedule rescales torch's whole buffer."""
    objective, x0, steps, lr = _quadratic(), np.array([2.0, -1.0, 3.0]), 200, 0.05
    sched = make_schedule("step", step_size=20, gamma=0.5) if scheduled else make_schedule("constant")
    opt = make_optimizer("momentum", lr=lr, momentum=0.9)
    p, state = x0.copy(), opt.init(x0)
    traj = [p]
    for t in range(steps):
        p, state, _ = opt.step(objective, p, state, lr=sched(t, lr))
        traj.append(p)
    make = (lambda o: S.StepLR(o, 20, 0.5)) if scheduled else None
    ref = _torch_sgd_on(objective, x0, steps, {"lr": lr, "momentum": 0.9}, make)
    err = rel_err(np.array(traj), ref)
    if scheduled:
        assert err > 1e-6
    else:
        assert err <= 1e-12


@pytest.mark.parametrize("scheduled", [False, True], ids=["constant-lr", "step-schedule"])
def test_textbook_nesterov_lookahead_vs_torch_nesterov(scheduled):
    """The look-ahead points θ − γv of textbook NAG are torch's nesterov iterates under a constant η."""
    objective, x0, steps, lr = _quadratic(), np.array([2.0, -1.0, 3.0]), 200, 0.05
    sched = make_schedule("step", step_size=20, gamma=0.5) if scheduled else make_schedule("constant")
    opt = make_optimizer("nesterov", lr=lr, momentum=0.9)
    p, state = x0.copy(), opt.init(x0)
    looks = [opt.gradient_point(p, state)]
    for t in range(steps):
        p, state, _ = opt.step(objective, p, state, lr=sched(t, lr))
        looks.append(opt.gradient_point(p, state))
    make = (lambda o: S.StepLR(o, 20, 0.5)) if scheduled else None
    ref = _torch_sgd_on(objective, x0, steps, {"lr": lr, "momentum": 0.9, "nesterov": True}, make)
    err = rel_err(np.array(looks), ref)
    if scheduled:
        assert err > 1e-6
    else:
        assert err <= 1e-12


# -- momentum cycling (OneCycleLR's and CyclicLR's cycle_momentum) ---------------------------------
MOMENTUM_CASES = [
    ("sgd", {"momentum": 0.9}, torch.optim.SGD, "onecycle", {"total_steps": STEPS, "cycle_momentum": True},
     lambda o: S.OneCycleLR(o, BASE_LR, total_steps=STEPS)),
    ("sgd", {"momentum": 0.9, "nesterov": True}, torch.optim.SGD, "onecycle",
     {"total_steps": STEPS, "cycle_momentum": True, "three_phase": True, "base_momentum": 0.7, "max_momentum": 0.9,
      "anneal_strategy": "linear"},
     lambda o: S.OneCycleLR(o, BASE_LR, total_steps=STEPS, three_phase=True, base_momentum=0.7, max_momentum=0.9,
                            anneal_strategy="linear")),
    ("adam", {}, torch.optim.Adam, "onecycle", {"total_steps": STEPS, "cycle_momentum": True},
     lambda o: S.OneCycleLR(o, BASE_LR, total_steps=STEPS)),
    ("sgd", {"momentum": 0.9}, torch.optim.SGD, "cyclic",
     {"max_lr": 0.5, "step_size_up": 20, "mode": "triangular2", "cycle_momentum": True},
     lambda o: S.CyclicLR(o, BASE_LR, 0.5, 20, mode="triangular2")),
    ("adamw", {}, torch.optim.AdamW, "cyclic",
     {"max_lr": 0.2, "step_size_up": 15, "mode": "exp_range", "gamma": 0.99, "cycle_momentum": True,
      "base_momentum": 0.85, "max_momentum": 0.95},
     lambda o: S.CyclicLR(o, BASE_LR, 0.2, 15, mode="exp_range", gamma=0.99, base_momentum=0.85,
                          max_momentum=0.95)),
]


@pytest.mark.parametrize(("opt_name", "opt_kw", "torch_cls", "sched_name", "kw", "make"), MOMENTUM_CASES,
                         ids=[f"{c[0]}-{c[3]}-{i}" for i, c in enumerate(MOMENTUM_CASES)])
def test_momentum_cycling_matches_torch(opt_name, opt_kw, torch_cls, sched_name, kw, make, stream):
    """The schedule's momentum drives SGD's μ or Adam's β₁ step by step as torch's schedulers do."""
    from gdlab.core.cycling import with_momentum

    x0, grads = stream
    ref_traj, ref_lrs, _ = torch_run(torch_cls, {"lr": BASE_LR, **opt_kw}, make, x0, grads)
    sched = make_schedule(sched_name, **kw)
    lrs = sched(np.arange(STEPS), BASE_LR)
    assert lr_rel_err(lrs, ref_lrs) <= 1e-12
    opt = make_optimizer(opt_name, lr=BASE_LR, **opt_kw)
    p, state, traj = np.array(x0), opt.init(x0), [x0.copy()]
    for t, g in enumerate(grads):
        p, state, _ = with_momentum(opt, sched.cycled_momentum(t)).update(g, state, p, lr=lrs[t])
        traj.append(p.copy())
    assert rel_err(np.array(traj), ref_traj) <= 1e-12


def test_momentum_cycling_reaches_the_engine_and_training():
    """run_batch (the reference loop; the fused path says why it steps aside) and train() use it."""
    from gdlab.engine.run import run_batch
    from gdlab.fast import trajectory
    from gdlab.landscapes import make_landscape
    from gdlab.problems.train import train

    land = make_landscape("rosenbrock")
    cyc = make_schedule("onecycle", total_steps=60, cycle_momentum=True)
    flat = make_schedule("onecycle", total_steps=60)
    opt = make_optimizer("sgd", lr=1e-3, momentum=0.9)
    start = np.array([-1.5, 2.0])
    a = run_batch(land, opt, start, steps=60, schedule=cyc)
    b = run_batch(land, opt, start, steps=60, schedule=flat)
    assert not np.array_equal(a.positions, b.positions)
    assert "cycle of μ or β₁" in str(trajectory._schedule_reason(cyc))
    with pytest.raises(ValueError, match="neither momentum nor betas"):
        run_batch(land, make_optimizer("adagrad"), start, steps=5, schedule=cyc)
    result = train("logistic_regression", make_optimizer("adam", lr=0.01), epochs=2, schedule=cyc)
    assert np.all(np.isfinite(result.train_loss))


@settings(max_examples=30, deadline=None)
@given(gamma=st.floats(0.5, 1.0), base=st.floats(0.0, 1.0), steps=st.integers(1, 300))
def test_lambda_and_multiplicative_of_a_constant_are_exponential(gamma, base, steps):
    """λ(t) = γᵗ (lambda) and λ ≡ γ (multiplicative) are ExponentialLR(γ): the same closed form within
    rounding (multiplicative rounds a product step after step, as torch does)."""
    exponential = make_schedule("exponential", gamma=gamma).curve(steps, base)
    lam = make_schedule("lambda", lr_lambda=lambda t: gamma**t).curve(steps, base)
    mul = make_schedule("multiplicative", lr_lambda=lambda t: gamma).curve(steps, base)
    # below the smallest normal float (2.2e-308) an ulp is 5e-324 whatever the value: absolute there
    tiny = np.finfo(np.float64).tiny
    np.testing.assert_allclose(lam, exponential, rtol=1e-15, atol=tiny)
    np.testing.assert_allclose(mul, exponential, rtol=1e-12, atol=tiny)


def test_sequential_restarts_each_schedule_at_its_milestone():
    a, b = make_schedule("exponential", gamma=0.9), make_schedule("step", step_size=3, gamma=0.5)
    seq = make_schedule("sequential", schedulers=[a, b], milestones=[10])
    t = np.arange(30)
    np.testing.assert_array_equal(seq(t, 0.1), np.where(t < 10, a(t, 0.1), b(np.maximum(t - 10, 0), 0.1)))
    with pytest.raises(ValueError, match="2 schedulers need 1 milestones"):
        make_schedule("sequential", schedulers=[a, b], milestones=[3, 5])
    with pytest.raises(TypeError, match="lr_lambda must be a function"):
        make_schedule("lambda", lr_lambda="0.9**t")
