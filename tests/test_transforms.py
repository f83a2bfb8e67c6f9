"""Gradient transforms and chain: parity with torch.nn.utils / torch.optim / torch.amp, accumulation."""

from __future__ import annotations

import io
import math
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from torch_oracle import rel_err

from gdlab.core.objective import Quadratic
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers import make_optimizer
from gdlab.core.schedules import make_schedule
from gdlab.core.transforms import (
    TRANSFORMS,
    Chain,
    accumulate,
    add_decayed_weights,
    chain,
    clip_by_global_norm,
    clip_by_value,
    decoupled_weight_decay,
    loss_scale,
    make_transform,
)

SHAPES = [(3,), (2, 4), (5,)]  # several tensors for torch; one concatenated vector for gdlab


def _tensors(rng: np.random.Generator, scale: float) -> list[np.ndarray]:
    return [rng.normal(size=s) * scale for s in SHAPES]


def _apply(tr, grad: np.ndarray, params: np.ndarray | None = None) -> np.ndarray:
    params = np.zeros_like(grad) if params is None else params
    out, _ = tr(grad, tr.init(params), params)
    return out


# -- clipping --------------------------------------------------------------------------------


@pytest.mark.parametrize("norm_type", [2.0, math.inf, "inf", 1.0, 3.0])
@pytest.mark.parametrize("scale", [1e-3, 0.3, 1.0, 50.0])
def test_clip_by_global_norm_matches_torch(norm_type, scale):
    rng = np.random.default_rng(11)
    for max_norm in (0.5, 1.0, 7.0):
        parts = _tensors(rng, scale)
        tensors = [torch.tensor(a, requires_grad=True) for a in parts]
        for t, a in zip(tensors, parts, strict=True):
            t.grad = torch.tensor(a)
        torch_norm = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type=float(norm_type))
        ref = np.concatenate([t.grad.numpy().ravel() for t in tensors])
        tr = clip_by_global_norm(max_norm, norm_type=norm_type)
        flat = np.concatenate([a.ravel() for a in parts])
        # torch takes the norm of the per-tensor norms: the same number up to rounding
        assert float(tr.norm(flat)) == pytest.approx(float(torch_norm), rel=1e-14)
        np.testing.assert_allclose(_apply(tr, flat), ref, rtol=1e-14, atol=0)


def test_clip_by_global_norm_is_per_run():
    rng = np.random.default_rng(5)
    grads = rng.normal(size=(4, 7)) * np.array([[0.01], [1.0], [10.0], [100.0]])
    max_norm = np.array([1.0, 0.1, 5.0, 50.0])
    tr = clip_by_global_norm(max_norm)
    batched = _apply(tr, grads)
    for i in range(4):
        np.testing.assert_array_equal(batched[i], _apply(clip_by_global_norm(float(max_norm[i])), grads[i]))


@settings(max_examples=100, deadline=None)
@given(
    grad=hnp.arrays(np.float64, st.integers(1, 12), elements=st.floats(-1e3, 1e3)),
    max_norm=st.floats(1e-2, 1e2),
    norm_type=st.sampled_from([2.0, math.inf, 1.0]),
)
def test_clipping_is_idempotent(grad, max_norm, norm_type):
    """Idempotent up to torch's ε: a second clip shrinks by at most ε/max_norm (exactly, with ε = 0)."""
    for eps in (1e-6, 0.0):
        tr = clip_by_global_norm(max_norm, norm_type=norm_type, eps=eps)
        once = _apply(tr, grad)
        twice = _apply(tr, once)
        assert float(tr.norm(once)) <= max_norm * (1 + 1e-15)
        tol = eps / max_norm + 4 * np.finfo(np.float64).eps
        np.testing.assert_allclose(twice, once, rtol=tol, atol=0)


@pytest.mark.parametrize("clip_value", [0.0, 0.1, 1.0, 10.0])
def test_clip_by_value_matches_torch(clip_value):
    rng = np.random.default_rng(2)
    parts = _tensors(rng, 3.0)
    tensors = [torch.tensor(a, requires_grad=True) for a in parts]
    for t, a in zip(tensors, parts, strict=True):
        t.grad = torch.tensor(a)
    torch.nn.utils.clip_grad_value_(tensors, clip_value)
    ref = np.concatenate([t.grad.numpy().ravel() for t in tensors])
    flat = np.concatenate([a.ravel() for a in parts])
    np.testing.assert_array_equal(_apply(clip_by_value(clip_value), flat), ref)


# -- weight decay ------------------------------------------------------------------------------


def _torch_stream(cls: type, kwargs: dict[str, Any], x0: np.ndarray, grads: np.ndarray, sched=None) -> np.ndarray:
    p = torch.tensor(x0.copy(), requires_grad=True)
    opt = cls([p], **kwargs)
    s = sched(opt) if sched else None
    out = [x0.copy()]
    for g in grads:
        p.grad = torch.tensor(g)
        opt.step()
        if s:
            s.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


def _gdlab_stream(opt: Optimizer, x0: np.ndarray, grads: np.ndarray, lrs: Any = None) -> np.ndarray:
    p, state = x0.copy(), opt.init(x0)
    out = [p]
    for t, g in enumerate(grads):
        p, state, bad = opt.update(g, state, p, lr=None if lrs is None else lrs[t])
        assert not bad.any()
        out.append(p)
    return np.array(out)


@pytest.fixture(scope="module")
def stream() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(99)
    return rng.normal(size=8), rng.normal(size=(200, 8))


def test_coupled_decay_chain_equals_sgd_weight_decay(stream):
    x0, grads = stream
    kw = {"lr": 0.02, "momentum": 0.9}
    ours = _gdlab_stream(chain(add_decayed_weights(0.1), make_optimizer("sgd", **kw)), x0, grads)
    ref = _torch_stream(torch.optim.SGD, {**kw, "weight_decay": 0.1}, x0, grads)
    assert rel_err(ours, ref) <= 1e-12
    np.testing.assert_array_equal(ours, _gdlab_stream(make_optimizer("sgd", weight_decay=0.1, **kw), x0, grads))


def test_decoupled_decay_chain_equals_adamw_under_a_schedule(stream):
    x0, grads = stream
    sched = make_schedule("cosine", T_max=150, eta_min=1e-4)
    lrs = sched(np.arange(len(grads)), 0.01)
    opt = chain(decoupled_weight_decay(0.3), make_optimizer("adam", lr=0.01, weight_decay=0.0))
    ours = _gdlab_stream(opt, x0, grads, lrs)
    ref = _torch_stream(
        torch.optim.AdamW, {"lr": 0.01, "weight_decay": 0.3}, x0, grads,
        lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, 150, 1e-4),
    )
    assert rel_err(ours, ref) <= 1e-12
    adamw = make_optimizer("adamw", lr=0.01, weight_decay=0.3)
    np.testing.assert_array_equal(ours, _gdlab_stream(adamw, x0, grads, lrs))


# -- accumulation ------------------------------------------------------------------------------


def _least_squares(k: int, b: int, d: int = 5):
    rng = np.random.default_rng(123)
    X = rng.normal(size=(k * b, d))
    y = X @ rng.normal(size=d) + 0.1 * rng.normal(size=k * b)

    def grad(theta: np.ndarray, rows: slice) -> np.ndarray:
        Xi, yi = X[rows], y[rows]
        return Xi.T @ (Xi @ theta - yi) / len(yi)

    return grad, d


@pytest.mark.parametrize(("name", "kw"), [("sgd", {"lr": 0.05, "momentum": 0.9}), ("adam", {"lr": 0.05})])
def test_accumulated_micro_batches_equal_one_large_batch(name, kw):
    k, b, updates = 4, 8, 60
    grad, d = _least_squares(k, b)
    full = make_optimizer(name, **kw)
    acc = chain(accumulate(k), make_optimizer(name, **kw))
    theta_full = theta_acc = np.zeros(d)
    s_full, s_acc = full.init(theta_full), acc.init(theta_acc)
    for _ in range(updates):
        theta_full, s_full, _ = full.update(grad(theta_full, slice(None)), s_full, theta_full)
        start = theta_acc
        for i in range(k):
            theta_acc, s_acc, _ = acc.update(grad(theta_acc, slice(i * b, (i + 1) * b)), s_acc, theta_acc)
            if i < k - 1:  # params untouched between the micro-batches of one update
                assert theta_acc is start or np.array_equal(theta_acc, start)
                assert s_acc["transforms"][0]["mini_step"] == i + 1
        assert s_acc["transforms"][0]["mini_step"] == 0
        assert not s_acc["transforms"][0]["grad_sum"].any()
        assert rel_err(theta_acc, theta_full) <= 1e-12
    assert s_acc["step"] == k * updates and s_acc["inner"]["step"] == updates


# -- dynamic loss scaling ----------------------------------------------------------------------

INF_STEPS = {2: np.inf, 3: -np.inf, 11: np.nan, 12: np.inf, 20: np.inf, 31: np.nan}


def test_loss_scaler_matches_torch_grad_scaler():
    rng = np.random.default_rng(8)
    x0, grads = rng.normal(size=4), rng.normal(size=(45, 4))
    hp = {"init_scale": 2.0**10, "growth_interval": 3}

    p = torch.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.SGD([p], lr=0.05, momentum=0.9)
    scaler = torch.amp.GradScaler("cpu", **hp)
    ref_scales, ref_skipped, ref_traj = [], [], [x0.copy()]
    for t, g in enumerate(grads):
        s = float(scaler.scale(torch.tensor(1.0)))  # the scale this step's loss is multiplied by
        scaled = g * s
        if t in INF_STEPS:
            scaled[t % 4] = INF_STEPS[t]
        p.grad = torch.tensor(scaled)
        before = p.detach().clone()
        scaler.step(topt)
        scaler.update()
        ref_skipped.append(bool(torch.equal(before, p.detach())))
        ref_scales.append(float(scaler.get_scale()))
        ref_traj.append(p.detach().numpy().copy())

    opt = chain(loss_scale(**hp), make_optimizer("sgd", lr=0.05, momentum=0.9))
    theta, state = x0.copy(), opt.init(x0)
    scales, skipped, traj = [], [], [x0.copy()]
    for t, g in enumerate(grads):
        scaled = g * state["transforms"][0]["scale"]
        if t in INF_STEPS:
            scaled[t % 4] = INF_STEPS[t]
        theta, state, bad = opt.update(scaled, state, theta)
        assert not bad.any() and np.all(np.isfinite(theta))
        skipped.append(bool(state["transforms"][0]["found_inf"]))
        scales.append(float(state["transforms"][0]["scale"]))
        traj.append(theta)

    assert scales == ref_scales
    assert skipped == ref_skipped
    assert {t for t, s in enumerate(skipped) if s} == set(INF_STEPS)
    assert max(scales) > hp["init_scale"]  # it grew after clean stretches, too
    assert rel_err(np.array(traj), np.array(ref_traj)) <= 1e-12
    assert state["inner"]["step"] == len(grads) - len(INF_STEPS)


def test_loss_scaler_is_per_run_and_never_writes_nonfinite():
    rng = np.random.default_rng(4)
    opt = chain(loss_scale(init_scale=8.0, growth_interval=2), make_optimizer("adam", lr=0.01))
    theta = rng.normal(size=(3, 5))
    state = opt.init(theta)
    for t in range(30):
        scaled = rng.normal(size=(3, 5)) * state["transforms"][0]["scale"][:, None]
        if t % 3 == 0:
            scaled[0, t % 5] = np.inf  # run 0 overflows every third step
        if t % 7 == 0:
            scaled[2, :] = np.nan  # run 2 every seventh
        before = theta
        theta, state, bad = opt.update(scaled, state, theta)
        assert not bad.any() and np.all(np.isfinite(theta))
        found = state["transforms"][0]["found_inf"]
        np.testing.assert_array_equal(found, [t % 3 == 0, False, t % 7 == 0])
        np.testing.assert_array_equal(theta[found], before[found])
        assert np.all(theta[~found] != before[~found])
    scale = state["transforms"][0]["scale"]
    assert scale[0] < scale[2] < scale[1]


def test_loss_scaler_emulates_float16_backward_on_an_objective():
    """Through ``step``, the scaled gradient is rounded to float16: large scales overflow and back off."""
    objective = Quadratic(np.diag([4.0, 1.0]))
    opt = chain(loss_scale(), make_optimizer("sgd", lr=0.1))
    theta = np.array([30.0, -20.0])  # gradient (120, -20): times 2**16 overflows float16 (max 65504)
    state = opt.init(theta)
    skipped = 0
    for _ in range(40):
        theta, state, bad = opt.step(objective, theta, state)
        assert not bad.any() and np.all(np.isfinite(theta))
        skipped += bool(state["transforms"][0]["found_inf"])
    assert skipped == 7  # 120 · 2**16 / 2**7 < 65504 ≤ 120 · 2**16 / 2**6; then the gradient only shrinks
    assert state["transforms"][0]["scale"] == 2.0**9
    assert float(objective.value(theta)) < 1.0


# -- chain mechanics ----------------------------------------------------------------------------


def test_chain_state_is_serialisable_and_nested():
    theta = np.arange(6.0).reshape(2, 3)
    opt = chain(
        accumulate(2), loss_scale(), clip_by_global_norm(1.0), clip_by_value(0.5),
        add_decayed_weights(0.01), decoupled_weight_decay(0.01), make_optimizer("adam"),
    )
    state = opt.init(theta)
    for _ in range(3):
        theta, state, _ = opt.update(np.ones_like(theta) * state["transforms"][1]["scale"][:, None], state, theta)
    assert set(state) == {"step", "transforms", "inner"} and len(state["transforms"]) == 6

    leaves: dict[str, np.ndarray] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                assert isinstance(key, str)
                walk(item, f"{path}.{key}")
        elif isinstance(value, list):
            for i, item in enumerate(value):
                walk(item, f"{path}.{i}")
        else:
            assert isinstance(value, int | float | bool | np.ndarray | np.generic), (path, type(value))
            leaves[path] = np.asarray(value)

    walk(state, "state")
    buf = io.BytesIO()
    np.savez(buf, **leaves)
    buf.seek(0)
    with np.load(buf, allow_pickle=False) as loaded:
        for key, value in leaves.items():
            np.testing.assert_array_equal(loaded[key], value)


def test_chain_with_lookahead_nesterov_equals_nesterov():
    objective = Quadratic(np.diag([3.0, 0.5]))
    plain, wrapped = make_optimizer("nesterov", lr=0.05), chain(make_optimizer("nesterov", lr=0.05))
    a = b = np.array([1.0, 2.0])
    sa, sb = plain.init(a), wrapped.init(b)
    for _ in range(50):
        a, sa, _ = plain.step(objective, a, sa)
        b, sb, _ = wrapped.step(objective, b, sb)
    np.testing.assert_array_equal(a, b)


def test_chain_refuses_bad_parts():
    class NeedsHessian(Optimizer):
        name = "needs_hessian"
        needs = "hessian"

    with pytest.raises(ValueError, match="needs='hessian'"):
        chain(clip_by_value(1.0), NeedsHessian())
    with pytest.raises(TypeError, match="optimizer"):
        chain(clip_by_value(1.0), clip_by_value(2.0))
    with pytest.raises(TypeError, match="transforms"):
        chain(make_optimizer("sgd"), make_optimizer("sgd"))
    assert isinstance(chain(make_optimizer("sgd")), Chain)


def test_chain_reports_nonfinite_and_keeps_params():
    opt = chain(clip_by_value(1.0), make_optimizer("sgd", lr=0.1))
    theta = np.zeros((2, 3))
    state = opt.init(theta)
    grad = np.array([[1.0, np.nan, 0.0], [1.0, 2.0, 3.0]])
    new, state, bad = opt.update(grad, state, theta)
    np.testing.assert_array_equal(bad, [True, False])
    np.testing.assert_array_equal(new[0], theta[0])
    np.testing.assert_array_equal(new[1], [-0.1, -0.1, -0.1])


def test_registry_and_validation():
    assert set(TRANSFORMS) == {
        "clip_by_global_norm", "clip_by_value", "add_decayed_weights", "decoupled_weight_decay",
        "accumulate", "loss_scale",
    }
    assert make_transform("accumulate", k=3).k == 3
    with pytest.raises(ValueError, match="did you mean 'clip_by_value'"):
        make_transform("clip_by_valu")
    with pytest.raises(ValueError, match="max_norm"):
        clip_by_global_norm(-1.0)
    with pytest.raises(ValueError, match="norm_type"):
        clip_by_global_norm(1.0, norm_type=0.0)
    with pytest.raises(ValueError, match="k=0"):
        accumulate(0)
    with pytest.raises(ValueError, match="backoff_factor"):
        loss_scale(backoff_factor=1.5)
