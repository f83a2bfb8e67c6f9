"""The fused step kernels of gdlab.fast against the reference NumPy path: bit for bit, in place, NaN-safe.

The kernels are generated from each rule's element body, so they compute exactly the reference's
operations: every comparison here is bit for bit, in float64 and float32.
"""

from __future__ import annotations

import os
import sys
import tracemalloc
from pathlib import Path
from typing import Any

import numba
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdlab.fast as fast
from gdlab.core.optimizers import make_optimizer
from gdlab.core.rules import RULES
from gdlab.core.rules.momentum import Momentum
from gdlab.core.transforms import chain, make_transform
from gdlab.fast import _cache, config

STEPS = 100

#: Every rule, with option combinations covering every option of its element body.
CASES: list[tuple[str, dict[str, Any]]] = [
    ("sgd", {}),
    ("sgd", {"momentum": 0.9}),
    ("sgd", {"momentum": 0.9, "nesterov": True, "weight_decay": 0.1}),
    ("sgd", {"momentum": 0.5, "dampening": 0.3, "maximize": True, "weight_decay": 0.01}),
    ("momentum", {"weight_decay": 0.05, "maximize": True}),
    ("nesterov", {"weight_decay": 0.01}),
    ("adam", {}),
    ("adam", {"amsgrad": True, "weight_decay": 0.1}),
    ("adam", {"eps_inside_sqrt": True, "maximize": True, "betas": (0.3, 0.9)}),
    ("adam", {"betas": (0.7, 0.5), "amsgrad": True, "eps_inside_sqrt": True}),
    ("adamw", {}),
    ("adamw", {"weight_decay_form": "paper", "amsgrad": True, "lr": 0.01}),
    ("adamw", {"weight_decay": 0.0, "maximize": True}),
    ("rmsprop", {}),
    ("rmsprop", {"centered": True, "momentum": 0.9, "weight_decay": 0.1}),
    ("rmsprop", {"eps_inside_sqrt": True, "alpha": 0.3, "maximize": True}),
    ("rmsprop", {"centered": True, "alpha": 0.4, "eps_inside_sqrt": True}),
    ("adagrad", {}),
    ("adagrad", {"lr_decay": 0.1, "initial_accumulator_value": 0.5, "eps_inside_sqrt": True, "weight_decay": 0.1}),
    ("adadelta", {}),
    ("adadelta", {"weight_decay": 0.1, "maximize": True, "lr": 0.5}),
    ("adamax", {}),
    ("adamax", {"betas": (0.6, 0.99), "weight_decay": 0.2, "maximize": True}),
    ("nadam", {}),
    ("nadam", {"decoupled_weight_decay": True, "weight_decay": 0.1, "eps_inside_sqrt": True}),
    ("nadam", {"weight_decay": 0.1, "betas": (0.4, 0.9), "momentum_decay": 0.01}),
    ("radam", {}),
    ("radam", {"decoupled_weight_decay": True, "weight_decay": 0.1, "maximize": True}),
    ("radam", {"eps_inside_sqrt": True, "weight_decay": 0.1, "betas": (0.3, 0.8)}),
    ("lion", {}),
    ("lion", {"weight_decay": 0.1, "maximize": True, "betas": (0.5, 0.9)}),
    ("rprop", {}),
    ("rprop", {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05), "maximize": True}),
    ("asgd", {}),
    ("asgd", {"lambd": 0.1, "alpha": 0.5, "t0": 20.0, "weight_decay": 0.1, "maximize": True}),
]


@pytest.fixture(autouse=True)
def _defaults() -> Any:
    """Every test starts (and leaves) with the default settings and all threads."""
    threads = numba.get_num_threads()
    with fast.options(backend="auto", threshold=2**16, atomic=True):
        yield
    numba.set_num_threads(threads)


@pytest.fixture(scope="module", autouse=True)
def _warm() -> None:
    fast.warmup()


def rel_error(a: np.ndarray, b: np.ndarray) -> float:
    """Largest per-run error, relative to that run's largest magnitude."""
    if a.size == 0:
        return 0.0
    a64, b64 = a.astype(np.float64), b.astype(np.float64)
    scale = np.maximum(np.abs(b64).max(axis=-1), 1e-300)
    return float((np.abs(a64 - b64).max(axis=-1) / scale).max())


def run_both(opt: Any, shape: tuple[int, ...], dtype: Any, steps: int = STEPS, seed: int = 0,
             lrs: np.ndarray | None = None) -> tuple[np.ndarray, dict, np.ndarray, dict]:
    rng = np.random.default_rng(seed)
    x0 = rng.standard_normal(shape).astype(dtype)
    p_ref, p_fused = x0.copy(), x0.copy()
    s_ref, s_fused = opt.init(p_ref), opt.init(p_fused)
    for k in range(steps):
        g = (rng.standard_normal(shape) * (0.5 + k % 3)).astype(dtype)
        lr = None if lrs is None else float(lrs[k])
        bad_ref = opt.update_(g, s_ref, p_ref, lr=lr, backend="reference")
        bad_fused = opt.update_(g, s_fused, p_fused, lr=lr, backend="fused")
        assert not bad_ref.any() and not bad_fused.any()
    return p_ref, s_ref, p_fused, s_fused


def same(a: Any, b: Any) -> bool:
    """Bit for bit (so -0.0 differs from 0.0 and NaN payloads count), dtypes included."""
    a, b = np.asarray(a), np.asarray(b)
    return a.dtype == b.dtype and a.shape == b.shape and a.tobytes() == b.tobytes()


def assert_states_equal(s_ref: dict, s_fused: dict) -> None:
    assert s_ref.keys() == s_fused.keys()
    for key, value in s_ref.items():
        if isinstance(value, np.ndarray) and value.ndim > 0:
            assert same(s_fused[key], value), key
        else:
            assert s_fused[key] == value, key


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_fused_equals_reference(name: str, kwargs: dict[str, Any], dtype: Any) -> None:
    opt = make_optimizer(name, **kwargs)
    p_ref, s_ref, p_fused, s_fused = run_both(opt, (3, 257), dtype)
    assert p_fused.dtype == dtype
    assert same(p_fused, p_ref)
    assert_states_equal(s_ref, s_fused)
    assert s_fused["step"] == STEPS


def test_every_rule_is_covered() -> None:
    assert {type(make_optimizer(n)) for n, _ in CASES} == set(RULES.values())


@pytest.mark.parametrize("shape", [(0, 5), (1,), (7, 1), (2, 3, 40)])
def test_odd_shapes(shape: tuple[int, ...]) -> None:
    opt = make_optimizer("adam", amsgrad=True)
    p_ref, s_ref, p_fused, s_fused = run_both(opt, shape, np.float64, steps=5)
    assert same(p_ref, p_fused)
    assert_states_equal(s_ref, s_fused)


def _hyper_strategy(name: str) -> st.SearchStrategy[dict[str, Any]]:
    lr = st.floats(1e-4, 0.3)
    beta = st.floats(0.0, 0.999)
    beta2 = st.floats(0.5, 0.999)  # β2 near 0 divides by |g| itself: float32 rounding grows chaotically
    common: dict[str, Any] = {"lr": lr, "maximize": st.booleans(), "weight_decay": st.sampled_from([0.0, 0.01, 0.3])}
    extra: dict[str, Any] = {
        "sgd": {"momentum": st.sampled_from([0.0, 0.5, 0.9]), "dampening": st.sampled_from([0.0, 0.2])},
        "adam": {"betas": st.tuples(beta, beta2), "eps": st.sampled_from([1e-8, 1e-3]), "amsgrad": st.booleans(),
                 "eps_inside_sqrt": st.booleans()},
        "adamw": {"betas": st.tuples(beta, beta2), "amsgrad": st.booleans(),
                  "weight_decay_form": st.sampled_from(["torch", "paper"])},
        "rmsprop": {"alpha": st.floats(0.1, 0.999),  # alpha near 0: centred variance is ~0, steps explode
                    "momentum": st.sampled_from([0.0, 0.9]), "centered": st.booleans(),
                    "eps_inside_sqrt": st.booleans(), "eps": st.sampled_from([1e-8, 1e-2])},
        "adagrad": {"lr_decay": st.sampled_from([0.0, 0.05]), "initial_accumulator_value": st.sampled_from([0.0, 0.3]),
                    "eps_inside_sqrt": st.booleans()},
        "adadelta": {"rho": st.floats(0.0, 0.99), "eps": st.sampled_from([1e-6, 1e-3])},
        "adamax": {"betas": st.tuples(beta, beta2)},
        "nadam": {"betas": st.tuples(beta, beta2), "momentum_decay": st.sampled_from([4e-3, 0.05]),
                  "decoupled_weight_decay": st.booleans(), "eps_inside_sqrt": st.booleans()},
        "radam": {"betas": st.tuples(beta, st.floats(0.5, 0.999)), "decoupled_weight_decay": st.booleans(),
                  "eps_inside_sqrt": st.booleans()},
        "momentum": {"momentum": st.floats(0.0, 0.99)},
        "nesterov": {"momentum": st.floats(0.0, 0.99)},
        "lion": {"betas": st.tuples(beta, beta)},
        "rprop": {"etas": st.tuples(st.floats(0.1, 0.9), st.floats(1.1, 2.0)),
                  "step_sizes": st.tuples(st.sampled_from([0.0, 1e-6, 1e-3]), st.sampled_from([1e-2, 50.0]))},
        "asgd": {"lambd": st.sampled_from([0.0, 1e-4, 0.1]), "alpha": st.floats(0.0, 1.0),
                 "t0": st.sampled_from([-5.0, 10.0, 1e6])},
    }[name]
    names = {h.name for h in RULES[name].hyperparams}
    return st.fixed_dictionaries({k: v for k, v in {**common, **extra}.items() if k in names})


@pytest.mark.parametrize("name", sorted(RULES))
@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), dtype=st.sampled_from([np.float64, np.float32]), scheduled=st.booleans())
def test_fused_equals_reference_hypothesis(name: str, data: st.DataObject, dtype: Any, scheduled: bool) -> None:
    kwargs = data.draw(_hyper_strategy(name))
    if name == "sgd" and kwargs["momentum"] == 0.0:
        kwargs["dampening"] = 0.0
    opt = make_optimizer(name, **kwargs)
    # A schedule scales the base rate (as torch's schedulers do): AdamW's paper form decays by (η_t/η)λ,
    # which an unrelated table of rates could push past 1 and so diverge on purpose.
    lrs = opt.lr * np.geomspace(1.0, 1e-2, STEPS) if scheduled else None
    p_ref, s_ref, p_fused, s_fused = run_both(opt, (2, 129), dtype, lrs=lrs)
    assert same(p_fused, p_ref)
    assert_states_equal(s_ref, s_fused)


@pytest.mark.parametrize("dtype", [np.float64, np.float32], ids=["f64", "f32"])
@pytest.mark.parametrize("atomic", [True, False])
def test_long_runs_in_segments(dtype: Any, atomic: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """Runs longer than ROW_MAX are cut into segments (made tiny here) and give the same result."""
    monkeypatch.setattr(config, "ROW_MAX", 64)
    monkeypatch.setattr(config, "SEGMENT", 16)
    monkeypatch.setattr(config, "MIN_PER_THREAD", 32)
    with fast.options(atomic=atomic):
        for name, kwargs in (("adam", {"amsgrad": True}), ("rmsprop", {"centered": True, "momentum": 0.5})):
            opt = make_optimizer(name, **kwargs)
            p_ref, s_ref, p_fused, s_fused = run_both(opt, (3, 1000), dtype, steps=20)
            assert same(p_fused, p_ref)
            assert_states_equal(s_ref, s_fused)


# -- in place -------------------------------------------------------------------------------------------------


def test_update_in_place_keeps_the_arrays() -> None:
    opt = make_optimizer("adam", amsgrad=True)
    p = np.random.default_rng(1).standard_normal((4, 5000))
    state = opt.init(p)
    buffers = {k: v for k, v in state.items() if isinstance(v, np.ndarray)}
    before = p.copy()
    bad = opt.update_(np.ones_like(p), state, p, backend="fused")
    assert bad.shape == (4,) and not bad.any()
    assert state["step"] == 1
    assert all(state[k] is v for k, v in buffers.items())
    assert not np.array_equal(p, before)
    assert np.all(state["exp_avg"] != 0)


def test_step_on_a_million_params_allocates_under_a_megabyte() -> None:
    opt = make_optimizer("adam")
    p = np.random.default_rng(2).standard_normal(1_000_000).astype(np.float32)
    g = np.ones_like(p)
    state = opt.init(p)
    opt.update_(g, state, p)  # auto: above the threshold, so fused
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        base = tracemalloc.get_traced_memory()[0]
        opt.update_(g, state, p)
        peak = tracemalloc.get_traced_memory()[1] - base
    finally:
        tracemalloc.stop()
    assert peak < 1_000_000, peak
    assert config.stats["threads"] >= 1


def test_pure_update_uses_the_kernel_on_copies() -> None:
    opt = make_optimizer("rmsprop", centered=True, momentum=0.9)
    p = np.random.default_rng(3).standard_normal((2, 2**15 + 7))
    g = np.random.default_rng(4).standard_normal(p.shape)
    state = opt.init(p)
    p_copy, buf_copy = p.copy(), state["square_avg"].copy()
    fused_before = config.stats["fused"]
    new_p, new_state, bad = opt.update(g, state, p)
    assert config.stats["fused"] == fused_before + 1
    assert np.array_equal(p, p_copy) and np.array_equal(state["square_avg"], buf_copy) and state["step"] == 0
    with fast.options(backend="reference"):
        ref_p, ref_state, ref_bad = opt.update(g, state, p)
    assert np.array_equal(new_p, ref_p) and np.array_equal(bad, ref_bad)
    assert new_state.keys() == ref_state.keys()
    for key in ("square_avg", "grad_avg", "momentum_buffer"):
        assert np.array_equal(new_state[key], ref_state[key])


# -- non-finite ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RULES))
@pytest.mark.parametrize("bad_value", [np.nan, np.inf, -np.inf])
def test_nonfinite_gradient_flags_the_run_and_leaves_it(name: str, bad_value: float) -> None:
    opt = make_optimizer(name)
    rng = np.random.default_rng(5)
    p = rng.standard_normal((3, 300)).astype(np.float32)
    state = opt.init(p)
    opt.update_(rng.standard_normal(p.shape).astype(np.float32), state, p, backend="fused")
    g = rng.standard_normal(p.shape).astype(np.float32)
    g[1, 123] = bad_value
    p_ref, s_ref = p.copy(), {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    before_p = p.copy()
    before = {k: v.copy() for k, v in state.items() if isinstance(v, np.ndarray)}
    bad = opt.update_(g, state, p, backend="fused")
    bad_ref = opt.update_(g, s_ref, p_ref, backend="reference")
    assert bad.tolist() == [False, True, False] == bad_ref.tolist()
    assert np.array_equal(p[1], before_p[1])
    for key, value in before.items():
        assert np.array_equal(state[key][1], value[1]), key
    assert np.all(np.isfinite(p))
    assert same(p, p_ref)
    assert state["step"] == s_ref["step"] == 2


def _snapshot(p: np.ndarray, state: dict) -> dict[str, list[bytes]]:
    """The bytes of each run of params and of every buffer."""
    arrays = {"params": p, **{k: v for k, v in state.items() if isinstance(v, np.ndarray) and v.ndim > 0}}
    return {key: [row.tobytes() for row in value.reshape(value.shape[0], -1)] for key, value in arrays.items()}


@pytest.mark.parametrize("long_runs", [False, True], ids=["units", "segments"])
@pytest.mark.parametrize(("name", "kwargs"), CASES, ids=[f"{n}-{i}" for i, (n, _) in enumerate(CASES)])
def test_refused_values_are_kept_bit_for_bit(name: str, kwargs: dict[str, Any], long_runs: bool,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    """Every option of every kernel, in both modes, keeps the refused values exactly (bytes, so -0.0
    and NaN payloads too) in params and in each buffer it writes, while the other runs get the
    reference update. Units of short runs (backup mode): the bad run is restored whole. Segments of
    a long run without the scan (select mode): only the bad element keeps its values."""
    if long_runs:
        monkeypatch.setattr(config, "ROW_MAX", 64)
        monkeypatch.setattr(config, "SEGMENT", 16)
        monkeypatch.setattr(config, "MIN_PER_THREAD", 32)
        fast.configure(atomic=False)
    opt = make_optimizer(name, **kwargs)
    rng = np.random.default_rng(11)
    p = rng.standard_normal((3, 200)).astype(np.float32)
    state = opt.init(p)
    for _ in range(3):  # non-zero buffers, and past SGD's first momentum step
        opt.update_(rng.standard_normal(p.shape).astype(np.float32), state, p, backend="fused")
    p_ref, s_ref = p.copy(), {k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.items()}
    row_p, row_state = p[1:2].copy(), {k: (v[1:2].copy() if isinstance(v, np.ndarray) and v.ndim else v)
                                       for k, v in state.items()}
    g = rng.standard_normal(p.shape).astype(np.float32)
    g[1, 150] = np.nan
    before = _snapshot(p, state)
    bad = opt.update_(g, state, p, backend="fused")
    opt.update_(g, s_ref, p_ref, backend="reference")
    assert bad.tolist() == [False, True, False]
    after = _snapshot(p, state)
    for key in before:
        if long_runs:
            assert after[key][1][150 * 4 : 151 * 4] == before[key][1][150 * 4 : 151 * 4], key
        else:
            assert after[key][1] == before[key][1], key
        if key != "params":
            assert same(state[key][[0, 2]], s_ref[key][[0, 2]]), key
    assert same(p[[0, 2]], p_ref[[0, 2]])
    if long_runs:  # the rest of the bad run was updated as the reference updates it (elementwise)
        others = np.arange(200) != 150
        g_row = np.where(np.isnan(g[1:2]), np.float32(0), g[1:2])
        with fast.options(backend="reference"):
            expected = opt.update(g_row, row_state, row_p).params
        assert same(p[1:2, others], expected[:, others])


@pytest.mark.parametrize("overlap", ["same array", "shifted view"])
def test_gradient_that_overlaps_the_params(overlap: str) -> None:
    """A gradient sharing memory with the params sees the params as they were before the step."""
    opt = make_optimizer("sgd", lr=0.5, momentum=0.9)
    buffer = np.random.default_rng(12).standard_normal(3 * 4000 + 1)
    if overlap == "same array":
        p, g = buffer[:12000].reshape(3, 4000), buffer[:12000].reshape(3, 4000)
    else:
        p, g = buffer[1:].reshape(3, 4000), buffer[:-1].reshape(3, 4000)  # g[i] is p[i - 1]
    expected_p = p.copy()
    s_ref = opt.init(expected_p)
    opt.update_(g.copy(), s_ref, expected_p, backend="reference")
    state = opt.init(p)
    bad = opt.update_(g, state, p, backend="fused")
    assert not bad.any()
    assert np.array_equal(p, expected_p)
    assert np.array_equal(state["momentum_buffer"], s_ref["momentum_buffer"])


def test_nonfinite_update_with_finite_gradient_is_refused() -> None:
    """An update that overflows float32 is refused like a bad gradient."""
    opt = make_optimizer("sgd", lr=1e30)
    p = np.ones((2, 500), dtype=np.float32)
    g = np.ones_like(p)
    g[0, 7] = 1e15  # 1 − 1e45 overflows float32
    state = opt.init(p)
    bad = opt.update_(g, state, p, backend="fused")
    assert bad.tolist() == [True, False]
    assert np.all(p[0] == 1) and np.all(np.isfinite(p))
    assert np.allclose(p[1], 1 - 1e30)


def test_nonfinite_gradient_in_a_long_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Long runs (several segments): atomic keeps the run whole; without it only the bad element keeps
    its values, and nothing non-finite is written."""
    monkeypatch.setattr(config, "ROW_MAX", 64)
    monkeypatch.setattr(config, "SEGMENT", 16)
    monkeypatch.setattr(config, "MIN_PER_THREAD", 32)
    opt = make_optimizer("adam")
    rng = np.random.default_rng(6)
    p0 = rng.standard_normal((2, 1000))
    g = rng.standard_normal(p0.shape)
    g[1, 990] = np.nan
    for atomic in (True, False):
        p = p0.copy()
        state = opt.init(p)
        with fast.options(atomic=atomic):
            bad = opt.update_(g, state, p, backend="fused")
        assert bad.tolist() == [False, True]
        assert np.all(np.isfinite(p)) and np.all(np.isfinite(state["exp_avg"]))
        assert p[1, 990] == p0[1, 990] and state["exp_avg"][1, 990] == 0  # the NaN's element
        if atomic:
            assert np.array_equal(p[1], p0[1]) and np.all(state["exp_avg"][1] == 0)
        else:  # every other element of the run was updated, its own segment's too
            others = np.arange(1000) != 990
            assert np.all(p[1, others] != p0[1, others]) and np.all(state["exp_avg"][1, others] != 0)


# -- dispatch ----------------------------------------------------------------------------------------------------


def test_auto_threshold_and_explicit_backends() -> None:
    opt = make_optimizer("adam")
    small = np.ones(2**16 - 1)
    large = np.ones(2**16)
    counts = config.stats

    def path(params: np.ndarray, **kw: Any) -> str:
        fused, ref = counts["fused"], counts["reference"]
        opt.update_(np.ones_like(params), opt.init(params), params, **kw)
        assert counts["fused"] + counts["reference"] == fused + ref + 1
        return "fused" if counts["fused"] > fused else "reference"

    assert path(small) == "reference"
    assert path(large) == "fused"
    assert path(large, backend="reference") == "reference"
    assert path(small, backend="fused") == "fused"
    with fast.options(backend="reference"):
        assert path(large) == "reference"
        assert path(small, backend="fused") == "fused"
    assert fast.get_backend() == "auto"
    previous = fast.set_backend("fused")
    try:
        assert previous == "auto" and path(np.ones(5)) == "fused"
    finally:
        fast.set_backend("auto")
    with fast.options(threshold=10):
        assert path(np.ones(10)) == "fused" and path(np.ones(9)) == "reference"
    with pytest.raises(ValueError, match="backend"):
        fast.set_backend("gpu")
    with pytest.raises(ValueError, match="backend"):
        opt.update_(np.ones(3), opt.init(np.ones(3)), np.ones(3), backend="cuda")


def test_batched_hyperparameters_take_the_reference_path() -> None:
    p = np.ones((3, 100))
    opt = make_optimizer("adam", lr=np.array([0.1, 0.01, 0.001]))
    assert "batched" in fast.explain(opt, opt.init(p), p)
    plain = make_optimizer("adam")
    assert "batched" in fast.explain(plain, plain.init(p), p, lr=np.array([[0.1], [0.2], [0.3]]).ravel())
    assert fast.explain(plain, plain.init(p), p) == "fused"
    assert "float16" in fast.explain(plain, plain.init(p.astype(np.float16)), p.astype(np.float16))
    strided = np.ones((3, 200))[:, ::2]
    assert "contiguous" in fast.explain(plain, plain.init(strided), strided)

    assert "no fused kernel" in fast.explain(chain(make_transform("clip_by_value", clip_value=1.0), plain),
                                             plain.init(p), p)
    reference = config.stats["reference"]
    state = opt.init(p)
    opt.update_(np.ones_like(p), state, p, backend="fused")
    assert config.stats["reference"] == reference + 1
    assert state["step"] == 1 and np.all(p < 1)


def test_reference_update_in_place_for_optimizers_without_kernel() -> None:
    """The base update_ (update + copy back) works for any optimizer, e.g. a transform chain."""
    opt = chain(make_transform("clip_by_global_norm", max_norm=1.0), make_optimizer("adam"))
    p = np.random.default_rng(7).standard_normal((2, 50))
    g = np.random.default_rng(8).standard_normal(p.shape) * 10
    state = opt.init(p)
    new_p, new_state, _ = opt.update(g, state, p)
    inner_buf = state["inner"]["exp_avg"]
    bad = opt.update_(g, state, p, backend="fused")
    assert not bad.any()
    assert np.array_equal(p, new_p)
    assert state["inner"]["exp_avg"] is inner_buf and np.array_equal(inner_buf, new_state["inner"]["exp_avg"])
    assert state["step"] == 1 and state["inner"]["step"] == 1


def test_update_in_place_refuses_what_it_cannot_update() -> None:
    opt = make_optimizer("sgd")
    with pytest.raises(TypeError, match="in place"):
        opt.update_(np.ones(3), {"step": 0}, [1.0, 2.0, 3.0])
    frozen = np.ones(3)
    frozen.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        opt.update_(np.ones(3), {"step": 0}, frozen)


# -- threads, compilation cache ---------------------------------------------------------------------------------


def test_thread_count_is_respected() -> None:
    opt = make_optimizer("adam")
    rng = np.random.default_rng(9)
    p0 = rng.standard_normal(2**18).astype(np.float32)
    g = rng.standard_normal(p0.shape).astype(np.float32)
    results = {}
    for threads in sorted({1, numba.config.NUMBA_NUM_THREADS}):
        numba.set_num_threads(threads)
        p = p0.copy()
        state = opt.init(p)
        opt.update_(g, state, p)
        assert config.stats["threads"] == threads
        results[threads] = p
    assert all(np.array_equal(r, results[1]) for r in results.values())  # elementwise: no reduction order
    numba.set_num_threads(numba.config.NUMBA_NUM_THREADS)
    opt.update_(g[:100], opt.init(p0[:100].copy()), p0[:100].copy(), backend="fused")
    assert config.stats["threads"] == 1  # small steps do not wake threads


def test_the_caches_live_in_a_user_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert _cache.cache_root() == tmp_path / "cache" / "gdlab"
    blocker = tmp_path / "file"
    blocker.write_text("not a directory")
    fallback = _cache.cache_root({"XDG_CACHE_HOME": str(blocker)})  # cannot be created: a file is in the way
    assert fallback.is_dir() and not fallback.is_relative_to(blocker)
    from gdlab.fast import generated

    assert not generated.generated_dir().is_relative_to(_cache.PACKAGE_DIR)
    if not os.environ.get("NUMBA_CACHE_DIR"):
        assert not Path(fast.cache_dir()).is_relative_to(_cache.PACKAGE_DIR)


def test_numba_caches_gdlab_code_under_the_cache_root_and_nothing_else(tmp_path: Path) -> None:
    from numba.core import caching

    numba_dir = tmp_path / "numba"
    locator = _cache._locator_class(numba_dir, (_cache.PACKAGE_DIR,))
    from gdlab.fast import driver

    ours = driver.run_blocks.py_func
    found = locator.from_function(ours, ours.__code__.co_filename)
    assert found is not None and Path(found.get_cache_path()).is_relative_to(numba_dir)
    mine = test_numba_caches_gdlab_code_under_the_cache_root_and_nothing_else
    assert locator.from_function(mine, __file__) is None  # a user's own code keeps numba's usual places
    if not os.environ.get("NUMBA_CACHE_DIR"):
        assert caching.CacheImpl._locator_classes[0].__name__ == "GdlabCacheLocator"
    assert found.get_source_stamp()[1] == _cache.package_stamp()  # a change anywhere in gdlab recompiles


def test_the_disk_cache_is_pruned_least_recently_used_first(tmp_path: Path) -> None:
    for k in range(6):
        (tmp_path / f"m{k}.py").write_text("x = 1\n" * 100)
        (tmp_path / f"m{k}.ok").touch()
        os.utime(tmp_path / f"m{k}.py", (1000 + k, 1000 + k))
        os.utime(tmp_path / f"m{k}.ok", (1000 + k, 1000 + k))
    (tmp_path / "__pycache__").mkdir()
    (tmp_path / "__pycache__" / "m0.cpython.nbi").write_text("index")
    _cache.touch(tmp_path, "m1")  # used just now: the most recent
    assert _cache.prune(tmp_path, max_modules=3, max_bytes=10**9, keep="m0") == 3
    assert sorted(p.stem for p in tmp_path.glob("*.py")) == ["m0", "m1", "m5"]
    assert (tmp_path / "__pycache__" / "m0.cpython.nbi").exists()  # kept with its module
    assert _cache.prune(tmp_path, max_modules=10, max_bytes=1000) >= 1  # the byte bound too
    assert sum(f.stat().st_size for f in tmp_path.rglob("*") if f.is_file()) <= 1000 or \
        [p.stem for p in tmp_path.glob("*.py")] == []


def test_compiled_programs_per_process_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    from gdlab.core.limits import LIMITS, Limits
    from gdlab.fast import landscape_codegen as lc
    from gdlab.landscapes import parse_expression

    bounded = Limits(max_compiled_programs=len(lc._compiled))
    monkeypatch.setattr(lc, "LIMITS", bounded)
    land = parse_expression("x**2 + 3.25*y**2 + 0.125*x*y")
    with pytest.raises(lc.CodegenError, match="the most it keeps"):
        lc.compile_landscape(land)
    from gdlab.fast import trajectory

    assert "the most it keeps" in trajectory.explain(land, make_optimizer("sgd"), np.zeros(2))
    assert LIMITS.max_compiled_programs >= 64


def test_warmup_compiles_every_rule_for_both_dtypes() -> None:
    from gdlab.fast import kernels

    assert fast.warmup(trajectories=False) >= 0.0
    assert {kernels.rule_key(cls()) for cls in RULES.values()} <= set(kernels._compiled)
    for addresses in kernels._compiled.values():
        assert set(addresses) == {(dt, sel) for dt in ("float32", "float64") for sel in (False, True)}
    assert set(kernels._scans) == {"float32", "float64"}


def test_a_subclass_runs_its_own_element_body() -> None:
    """The kernel is generated from the class's own body: a subclass that changes the math gets it."""

    class Doubled(Momentum):
        @staticmethod
        def element(param, grad, velocity, lr, momentum, weight_decay, coupled, maximize):
            v = momentum * velocity + lr * grad
            return param - (v + v), v

    opt = Doubled(lr=0.1)
    p_ref, _, p_fused, _ = run_both(opt, (2, 300), np.float64, steps=5)
    assert same(p_fused, p_ref) and not same(p_ref, run_both(Momentum(lr=0.1), (2, 300), np.float64, steps=5)[0])


def test_compiling_in_a_thread_leaves_the_output_streams_alone() -> None:
    """numba must not colour its errors: colorama's init/deinit swap sys.stdout/sys.stderr for every
    thread, which lost the main thread's output while a background thread compiled."""
    import threading

    from numba.core import errors

    streams = (sys.stdout, sys.stderr)
    seen: set[tuple[int, int]] = set()
    stop = threading.Event()

    def format_errors() -> None:  # what compiling does when it tries a typing that fails
        for _ in range(3000):
            errors.termcolor().errmsg("no match")
            errors.termcolor().filename("f.py")
        stop.set()

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, so that a swap would be seen
    try:
        worker = threading.Thread(target=format_errors)
        worker.start()
        while not stop.is_set():
            seen.add((id(sys.stdout), id(sys.stderr)))
        worker.join()
    finally:
        sys.setswitchinterval(interval)
    assert seen <= {(id(streams[0]), id(streams[1]))}
    assert (sys.stdout, sys.stderr) == streams
