"""Invariants every elementwise optimizer must satisfy, checked over the whole registry.

New optimizers are covered automatically: the tests iterate over ``OPTIMIZERS``.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from gdlab.core.objective import GivenGradient
from gdlab.core.optimizers import OPTIMIZERS, make_optimizer
from gdlab.core.rule import Rule

ELEMENTWISE = sorted(name for name, cls in OPTIMIZERS.items() if issubclass(cls, Rule))


def _names(cls) -> set[str]:
    return {spec.name for spec in cls.hyperparams}


def no_decay(name: str, **extra) -> dict:
    """Hyperparameters with weight decay off (decay moves params even at zero gradient; so does
    ASGD's λ, which shrinks θ by 1 − λη_t)."""
    kw = dict(extra)
    for decay in ("weight_decay", "lambd"):
        if decay in _names(OPTIMIZERS[name]):
            kw[decay] = 0.0
    return kw


def run(opt, x0, grads, lr=None):
    p = np.array(x0, dtype=np.float64)
    state = opt.init(p)
    for g in grads:
        p, state, bad = opt.update(g, state, p, lr=lr)
        assert not np.any(bad)
    return p


finite_grads = arrays(np.float64, (6, 3), elements=st.floats(-50, 50, allow_nan=False, allow_subnormal=False))


@pytest.mark.parametrize("name", ELEMENTWISE)
@settings(max_examples=15, deadline=None)
@given(grads=finite_grads, lrs=st.lists(st.floats(1e-4, 0.5), min_size=3, max_size=3))
def test_batched_run_equals_individual_runs(name, grads, lrs):
    """One call with an lr array advances every run exactly as the separate runs do."""
    x0 = np.array([0.5, -1.0, 2.0])
    batched_grads = np.stack([grads * (i + 1) for i in range(3)], axis=1)  # (steps, 3 runs, 3)
    opt = make_optimizer(name, lr=np.array(lrs))
    p = np.tile(x0, (3, 1))
    state = opt.init(p)
    for g in batched_grads:
        p, state, bad = opt.update(g, state, p)
        assert not np.any(bad)
    for i, lr in enumerate(lrs):
        single = run(make_optimizer(name, lr=lr), x0, batched_grads[:, i])
        np.testing.assert_array_equal(p[i], single)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_batched_hyperparameter_grid(name):
    """Starts × learning rates: params (S, L, d) with lr of shape (L,) equal the separate runs."""
    rng = np.random.default_rng(1)
    starts = rng.normal(size=(2, 1, 3))
    lrs = np.array([1e-3, 1e-2, 1e-1])
    grads = rng.normal(size=(5, 2, 3, 3))
    opt = make_optimizer(name, lr=lrs)
    p = np.broadcast_to(starts, (2, 3, 3)).copy()
    state = opt.init(p)
    for g in grads:
        p, state, _ = opt.update(g, state, p)
    for s in range(2):
        for j, lr in enumerate(lrs):
            single = run(make_optimizer(name, lr=lr), starts[s, 0], grads[:, s, j])
            np.testing.assert_array_equal(p[s, j], single)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_gradient_moves_nothing(name):
    opt = make_optimizer(name, **no_decay(name))
    x0 = np.array([1.0, -2.0, 3.0])
    np.testing.assert_array_equal(run(opt, x0, np.zeros((5, 3))), x0)


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if "weight_decay" in _names(OPTIMIZERS[n])])
def test_zero_gradient_with_decay_shrinks_params(name):
    opt = make_optimizer(name, lr=0.1, weight_decay=0.5)
    x0 = np.array([1.0, -2.0, 3.0])
    p = run(opt, x0, np.zeros((3, 3)))
    assert np.all(np.abs(p) < np.abs(x0))
    assert np.all(np.sign(p) == np.sign(x0))


@pytest.mark.parametrize("name", [n for n in ELEMENTWISE if "maximize" in _names(OPTIMIZERS[n])])
@settings(max_examples=10, deadline=None)
@given(grads=finite_grads)
def test_maximize_flips_direction(name, grads):
    x0 = np.array([0.3, 0.0, -0.7])
    up = run(make_optimizer(name, maximize=True), x0, grads)
    down = run(make_optimizer(name, maximize=False), x0, -grads)
    np.testing.assert_array_equal(up, down)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_zero_learning_rate_freezes(name):
    rng = np.random.default_rng(2)
    x0 = rng.normal(size=3)
    extra = {"weight_decay_form": "torch"} if "weight_decay_form" in _names(OPTIMIZERS[name]) else {}
    if name == "rprop":  # η only sets Rprop's first step sizes, which are then clamped to at least s_min
        extra["step_sizes"] = (0.0, 50.0)
    opt = make_optimizer(name, lr=0.0, **extra)
    np.testing.assert_array_equal(run(opt, x0, rng.normal(size=(5, 3))), x0)


@pytest.mark.parametrize("name", ELEMENTWISE)
@pytest.mark.parametrize("poison", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_never_reaches_params(name, poison):
    """Only the run with the bad gradient is refused; the others step normally."""
    opt = make_optimizer(name, lr=0.1)
    p = np.array([[1.0, 2.0], [3.0, 4.0]])
    state = opt.init(p)
    g = np.array([[0.5, poison], [0.5, 0.5]])
    new_p, new_state, bad = opt.update(g, state, p)
    assert bad.tolist() == [True, False]
    np.testing.assert_array_equal(new_p[0], p[0])
    assert np.all(np.isfinite(new_p))
    for key, value in new_state.items():
        if isinstance(value, np.ndarray) and value.shape == p.shape:
            np.testing.assert_array_equal(value[0], state[key][0], err_msg=key)
    single = make_optimizer(name, lr=0.1)
    ref, _, _ = single.update(g[1], single.init(p[1]), p[1])
    np.testing.assert_array_equal(new_p[1], ref)


@pytest.mark.parametrize("name", ELEMENTWISE)
def test_overflowing_update_is_refused(name):
    """An update that overflows is refused (flagged), one that stays finite is applied: never inf."""
    opt = make_optimizer(name, lr=1e300)
    p = np.array([1e300, 1.0])
    new_p, _, bad = opt.update(np.array([1e300, 1.0]), opt.init(p), p)
    assert np.all(np.isfinite(new_p))
    if bad:
        np.testing.assert_array_equal(new_p, p)


def test_plain_sgd_is_gradient_descent():
    rng = np.random.default_rng(3)
    x0, grads = rng.normal(size=4), rng.normal(size=(20, 4))
    expected = x0.copy()
    for g in grads:
        expected = expected - 0.05 * g
    np.testing.assert_array_equal(run(make_optimizer("sgd", lr=0.05), x0, grads), expected)
    np.testing.assert_array_equal(run(make_optimizer("sgd", lr=0.05, momentum=0.0), x0, grads), expected)


def test_step_through_given_gradient_equals_update():
    opt = make_optimizer("adam", lr=0.1)
    p = np.array([1.0, 2.0])
    g = np.array([0.3, -0.4])
    a = opt.update(g, opt.init(p), p)
    b = opt.step(GivenGradient(g), p, opt.init(p))
    np.testing.assert_array_equal(a.params, b.params)


def test_inputs_are_not_mutated():
    for name in ELEMENTWISE:
        opt = make_optimizer(name, lr=0.1)
        p = np.array([1.0, 2.0])
        g = np.array([0.3, -0.4])
        state = opt.init(p)
        opt.update(g, state, p)
        snapshot = {k: v.copy() for k, v in state.items() if isinstance(v, np.ndarray)}
        opt.update(g, state, p)
        np.testing.assert_array_equal(p, [1.0, 2.0])
        np.testing.assert_array_equal(g, [0.3, -0.4])
        for k, v in snapshot.items():
            np.testing.assert_array_equal(state[k], v)
        assert state["step"] == 0


# -- bad input -----------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("name", "kwargs", "error", "fragment"),
    [
        ("sgd", {"lr": -0.1}, ValueError, "lr=-0.1"),
        ("adam", {"eps": -1e-8}, ValueError, "eps=-1e-08"),
        ("adam", {"betas": (0.9, 1.0)}, ValueError, "betas[1]=1"),
        ("adam", {"betas": (-0.1, 0.9)}, ValueError, "betas[0]=-0.1"),
        ("adam", {"betas": (0.9,)}, ValueError, "betas"),
        ("sgd", {"momentum": -0.5}, ValueError, "momentum=-0.5"),
        ("sgd", {"momentum": 0.9, "nesterov": True, "dampening": 0.1}, ValueError, "dampening=0.1"),
        ("sgd", {"nesterov": True}, ValueError, "momentum=0.0"),
        ("sgd", {"lrr": 0.1}, TypeError, "did you mean 'lr'"),
        ("adam", {"lr": "fast"}, TypeError, "lr must be a number"),
        ("adam", {"lr": float("nan")}, ValueError, "lr=nan must be finite"),
        ("adam", {"amsgrad": "yes"}, TypeError, "amsgrad must be true or false"),
        ("adamw", {"weight_decay_form": "keras"}, ValueError, "weight_decay_form='keras'"),
        ("sgd", {"lr": np.array([0.1, -0.2])}, ValueError, "lr=-0.2"),
    ],
)
def test_invalid_hyperparameters_are_named(name, kwargs, error, fragment):
    with pytest.raises(error) as info:
        make_optimizer(name, **kwargs)
    assert fragment in str(info.value)
    assert name in str(info.value)


def test_unknown_optimizer_lists_valid_names():
    with pytest.raises(ValueError, match=r"unknown optimizer 'adan'.*did you mean 'adam'.*valid: "):
        make_optimizer("adan")


def test_wrong_shapes_are_refused():
    opt = make_optimizer("adam", lr=np.array([0.1, 0.2, 0.3]))
    with pytest.raises(ValueError, match=r"lr has shape \(3,\).*batch shape \(2,\)"):
        opt.init(np.zeros((2, 4)))
    opt = make_optimizer("adam")
    p = np.zeros(3)
    with pytest.raises(ValueError, match=r"grad has shape \(4,\), but params have shape \(3,\)"):
        opt.update(np.zeros(4), opt.init(p), p)
    with pytest.raises(ValueError, match="scalar"):
        opt.init(np.float64(1.0))
    with pytest.raises(TypeError, match="dtype"):
        opt.init(np.array(["a", "b"]))
    with pytest.raises(ValueError, match=r"lr=-1 is out of range"):
        opt.update(np.zeros(3), opt.init(p), p, lr=-1.0)
