"""Saving and loading optimizer states: every registered optimizer resumes bit for bit, batched
hyperparameters round-trip, and bad files are refused with a ValueError naming the problem."""

from __future__ import annotations

import errno
import io
import json
import os
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdlab
from gdlab.core.atomic import WriteError
from gdlab.core.objective import Objective, Quadratic, Rosenbrock
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers import OPTIMIZERS, make_optimizer
from gdlab.core.serialization import FORMAT_VERSION, load_state, save_state

X0 = np.array([-1.5, 2.0])


def objective_for(opt: Optimizer) -> Objective:
    """A mild Rosenbrock valley (b = 10, so that every default learning rate stays stable; it has
    value, gradient and Hessian), a quadratic for optimizers that would need something else."""
    if opt.needs in ("grad", "value", "hessian"):
        return Rosenbrock(b=10.0)
    return Quadratic(np.array([[3.0, 1.0], [1.0, 2.0]]), np.array([1.0, -1.0]))


def run(opt: Optimizer, objective: Objective, p: np.ndarray, state: dict, steps: int):
    traj = []
    for _ in range(steps):
        p, state, bad = opt.step(objective, p, state)
        assert not np.any(bad)
        traj.append(p)
    return p, state, np.array(traj)


def assert_same(a, b, where="state"):
    """Equal values of equal types, recursively; arrays bit for bit (NaN == NaN)."""
    assert type(a) is type(b), f"{where}: {type(a).__name__} != {type(b).__name__}"
    if isinstance(a, dict):
        assert a.keys() == b.keys(), where
        for key in a:
            assert_same(a[key], b[key], f"{where}[{key!r}]")
    elif isinstance(a, list | tuple):
        assert len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, np.ndarray):
        assert a.dtype == b.dtype and a.shape == b.shape, where
        assert np.array_equal(a, b, equal_nan=True), where
    elif isinstance(a, float | np.floating) and np.isnan(a):
        assert np.isnan(b), where
    else:
        assert a == b, where


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_every_optimizer_resumes_bit_for_bit(name, tmp_path):
    opt = make_optimizer(name)
    if name == "muon":  # a matrix optimizer: the two coordinates as a 1 × 2 matrix (the layout is stored)
        opt = opt.with_layout((("W", (1, 2)),))
    objective = objective_for(opt)
    state = opt.init(X0)
    straight, _, traj = run(opt, objective, X0, state, 20)
    assert np.all(np.isfinite(traj)) and not np.array_equal(traj[0], traj[19])

    p, state, _ = run(opt, objective, X0, opt.init(X0), 10)
    path = tmp_path / f"{name}.npz"
    save_state(path, opt, state)
    loaded_opt, loaded_state = load_state(path)
    assert type(loaded_opt) is type(opt)
    assert_same(loaded_opt.get_params(), opt.get_params(), "hyperparams")
    assert_same(loaded_state, state)
    resumed, _, traj2 = run(loaded_opt, objective, p, loaded_state, 10)
    assert np.array_equal(resumed, straight)
    assert np.array_equal(traj2, traj[10:])


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adam", {"lr": np.array([1e-3, 1e-2, 3e-2]), "betas": (np.array([0.9, 0.8, 0.5]), 0.999)}),
        ("sgd", {"lr": np.array([1e-4, 2e-4, 5e-5]), "momentum": np.array([0.0, 0.9, 0.5])}),
        ("sam", {"base": "adam", "lr": np.array([1e-3, 1e-2, 3e-2]), "rho": np.array([0.0, 0.05, 0.1])}),
        ("sam", {"base": "sgd", "lr": 1e-4, "momentum": 0.9, "adaptive": True, "eta": np.array([0.0, 0.01, 0.1])}),
        ("newton", {"damping": np.array([0.0, 1.0, 0.1]), "adaptive_damping": True, "line_search": "backtracking"}),
    ],
)
def test_batched_hyperparameters_round_trip(name, kwargs, tmp_path):
    opt = make_optimizer(name, **kwargs)
    P = np.array([[-1.5, 2.0], [0.5, 0.3], [2.0, 2.0]])
    objective = Rosenbrock()
    straight, _, _ = run(opt, objective, P, opt.init(P), 16)
    p, state, _ = run(opt, objective, P, opt.init(P), 8)
    save_state(tmp_path / "batched.npz", opt, state)
    loaded_opt, loaded_state = load_state(tmp_path / "batched.npz")
    assert_same(loaded_opt.get_params(), opt.get_params(), "hyperparams")
    resumed, _, _ = run(loaded_opt, objective, p, loaded_state, 8)
    assert np.array_equal(resumed, straight)


def test_file_layout_is_plain_npz_with_json_metadata(tmp_path):
    opt = make_optimizer("sam", base="adam", lr=np.array([0.1, 0.2]), rho=0.05)
    P = np.zeros((2, 3))
    _, state, _ = run(opt, Rosenbrock(), P, opt.init(P), 3)
    path = tmp_path / "state.npz"
    save_state(path, opt, state)
    with np.load(path, allow_pickle=False) as archive:
        meta = json.loads(str(archive["__meta__"]))
        assert all(archive[k].dtype != object for k in archive.files)
    assert meta["format_version"] == FORMAT_VERSION and meta["gdlab_version"] == gdlab.__version__
    assert meta["optimizer"] == "sam" and meta["step"] == 3
    assert meta["hyperparams"]["base"] == "adam" and "__array__" in meta["hyperparams"]["base_kwargs"]["lr"]
    assert meta["state"]["base"]["step"] == 3  # SAM's nested base state
    assert sorted(path.parent.iterdir()) == [path]  # written in place, no stray temporary files


def write_archive(path, meta=None, **arrays) -> None:
    if meta is not None:
        arrays["__meta__"] = np.array(json.dumps(meta))
    with open(path, "wb") as handle:
        np.savez(handle, **arrays)


def good_meta(**changes):
    meta = {
        "format": "gdlab-optimizer-state",
        "format_version": FORMAT_VERSION,
        "gdlab_version": gdlab.__version__,
        "optimizer": "sgd",
        "step": 0,
        "hyperparams": {"lr": 0.1},
        "state": {"step": 0},
    }
    meta.update(changes)
    return meta


def test_minimal_hand_written_file_loads(tmp_path):
    write_archive(tmp_path / "ok.npz", good_meta())
    opt, state = load_state(tmp_path / "ok.npz")
    assert opt.name == "sgd" and opt.lr == 0.1 and state == {"step": 0}


@pytest.mark.parametrize(
    ("contents", "message"),
    [
        (b"definitely not a zip archive", "not a gdlab state file"),
        (b"PK\x03\x04 truncated zip", "not a gdlab state file"),
    ],
)
def test_garbage_files_are_refused(tmp_path, contents, message):
    path = tmp_path / "bad.npz"
    path.write_bytes(contents)
    with pytest.raises(ValueError, match=message):
        load_state(path)


def test_corrupt_archives_are_refused(tmp_path):
    path = tmp_path / "f.npz"
    write_archive(path, None, a0=np.zeros(2))
    with pytest.raises(ValueError, match="no '__meta__' entry"):
        load_state(path)
    write_archive(path, None, __meta__=np.array("{not json"))
    with pytest.raises(ValueError, match="not valid JSON"):
        load_state(path)
    write_archive(path, good_meta(format="something-else"))
    with pytest.raises(ValueError, match="format is not"):
        load_state(path)
    write_archive(path, good_meta(state={"step": 0, "buf": {"__array__": "a7"}}))
    with pytest.raises(ValueError, match=r"corrupt.*'a7' is missing"):
        load_state(path)
    write_archive(path, good_meta(state={"buf": 1}))
    with pytest.raises(ValueError, match=r"state\['step'\] is missing"):
        load_state(path)
    write_archive(path, good_meta(hyperparams={"lr": -5.0}))
    with pytest.raises(ValueError, match=r"stored hyperparameters of 'sgd' are not valid.*lr=-5"):
        load_state(path)
    # a damaged member inside a valid zip
    save_state(path, make_optimizer("adam"), make_optimizer("adam").init(np.ones(4)))
    buffer = io.BytesIO()
    with zipfile.ZipFile(path) as src, zipfile.ZipFile(buffer, "w") as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            dst.writestr(item, data[:20] if item.filename == "a0.npy" else data)
    path.write_bytes(buffer.getvalue())
    with pytest.raises(ValueError, match="corrupt gdlab state file: entry 'a0'"):
        load_state(path)


def test_wrong_version_is_refused(tmp_path):
    path = tmp_path / "future.npz"
    write_archive(path, good_meta(format_version=FORMAT_VERSION + 1, gdlab_version="9.0"))
    with pytest.raises(ValueError, match=rf"unsupported gdlab state format version {FORMAT_VERSION + 1}.*gdlab 9\.0"):
        load_state(path)


def test_unknown_optimizer_is_refused(tmp_path):
    path = tmp_path / "unknown.npz"
    write_archive(path, good_meta(optimizer="adamm"))
    with pytest.raises(ValueError, match="unknown optimizer 'adamm'"):
        load_state(path)


def test_pickled_objects_are_refused(tmp_path):
    path = tmp_path / "pickled.npz"
    evil = np.array([{"x": 1}, None], dtype=object)  # np.savez pickles object arrays
    write_archive(path, good_meta(state={"step": 0, "buf": {"__array__": "a0"}}), a0=evil)
    with pytest.raises(ValueError, match="pickled"):
        load_state(path)
    write_archive(path, None, __meta__=np.array([good_meta()], dtype=object))
    with pytest.raises(ValueError, match="pickled"):
        load_state(path)


def test_unstorable_values_are_refused_on_save(tmp_path):
    opt = make_optimizer("sgd")
    with pytest.raises(TypeError, match=r"state\['buf'\] is a object"):
        save_state(tmp_path / "x.npz", opt, {"step": 0, "buf": object()})
    with pytest.raises(TypeError, match="object array"):
        save_state(tmp_path / "x.npz", opt, {"step": 0, "buf": np.array([None])})
    with pytest.raises(TypeError, match="reserved"):
        save_state(tmp_path / "x.npz", opt, {"step": 0, "__array__": 1})
    with pytest.raises(TypeError, match="must be a gdlab Optimizer"):
        save_state(tmp_path / "x.npz", "sgd", {"step": 0})
    assert not (tmp_path / "x.npz").exists()


def test_scalar_types_survive(tmp_path):
    """Python floats, NumPy scalars, ints, None and arrays keep their types (L-BFGS after a line search
    holds all of them; NAdam's carry is a NumPy scalar)."""
    for opt in (make_optimizer("lbfgs", line_search_fn="strong_wolfe", history_size=5), make_optimizer("nadam")):
        _, state, _ = run(opt, Rosenbrock(b=10.0), X0, opt.init(X0), 4)
        save_state(tmp_path / "s.npz", opt, state)
        _, loaded = load_state(tmp_path / "s.npz")
        assert_same(loaded, state)
    assert isinstance(state["mu_product"], np.float64)


def test_chain_of_transforms_round_trips_bit_for_bit(tmp_path):
    """A chain (clip + accumulate + loss scaling + AdamW) resumes exactly where it stopped."""
    from gdlab.core.objective import Rosenbrock
    from gdlab.core.optimizers import make_optimizer
    from gdlab.core.serialization import load_state, save_state
    from gdlab.core.transforms import accumulate, chain, clip_by_global_norm, loss_scale

    def build():
        return chain(clip_by_global_norm(1.0), accumulate(2), loss_scale(init_scale=2.0**8),
                     make_optimizer("adamw", lr=0.01))

    objective = Rosenbrock()
    opt = build()
    p = np.array([-1.5, 2.0])
    state = opt.init(p)
    straight_p, straight_state = p, state
    for _ in range(20):
        straight_p, straight_state, _ = opt.step(objective, straight_p, straight_state)
    for _ in range(10):
        p, state, _ = opt.step(objective, p, state)
    save_state(tmp_path / "chain.npz", opt, state)
    loaded, state = load_state(tmp_path / "chain.npz")
    assert repr(loaded) == repr(opt)
    for _ in range(10):
        p, state, _ = loaded.step(objective, p, state)
    np.testing.assert_array_equal(p, straight_p)


# -- every state round-trips (property) -----------------------------------------------------------
@st.composite
def optimizer_runs(draw):
    """A registered optimizer (some with options that add state), params of any batch shape and
    dtype, and a few steps (none included)."""
    from gdlab.core.transforms import accumulate, chain, clip_by_global_norm, loss_scale

    name = draw(st.sampled_from([*sorted(OPTIMIZERS), "chain"]))
    kwargs = {"lbfgs": {"history_size": draw(st.integers(1, 4))}, "adam": {"amsgrad": draw(st.booleans())},
              "newton": {"adaptive_damping": draw(st.booleans())}, "sam": {"base": "nadam"}}.get(name, {})
    if name == "chain":
        opt = chain(clip_by_global_norm(1.0), accumulate(2), loss_scale(init_scale=256.0), make_optimizer("nadam"))
    else:
        opt = make_optimizer(name, **kwargs)
    batch = () if name == "lbfgs" else draw(st.lists(st.integers(1, 3), max_size=2).map(tuple))
    d = draw(st.integers(1, 4))
    if name in ("muon", "adafactor"):  # matrix optimizers: a (2, d) matrix and a bias of 2
        d_matrix = d
        opt = opt.with_layout((("W", (2, d_matrix)), ("b", (2,))))
        d = 2 * d_matrix + 2
    dtype = draw(st.sampled_from([np.float64, np.float32])) if name not in ("lbfgs", "newton") else np.float64
    params = np.random.default_rng(draw(st.integers(0, 2**16))).uniform(-1, 1, batch + (d,)).astype(dtype)
    return opt, params, draw(st.integers(0, 4))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(optimizer_runs())
def test_save_then_load_gives_the_same_state(tmp_path_factory, case):
    """Whatever state an optimizer makes, save_state writes it and load_state gives it back bit for bit
    (so save_state never writes a file that load_state refuses)."""
    opt, params, steps = case
    objective = Quadratic(np.eye(params.shape[-1]) * 2.0)
    state = opt.init(params)
    for _ in range(steps):
        params, state, _ = opt.step(objective, params, state)
    path = tmp_path_factory.mktemp("roundtrip") / "state.npz"
    save_state(path, opt, state)
    loaded_opt, loaded = load_state(path)
    assert repr(loaded_opt.get_params()) == repr(opt.get_params())
    assert_same(loaded, state)


def test_save_refuses_a_state_that_does_not_fit_the_optimizer(tmp_path):
    adam = make_optimizer("adam")
    state = adam.init(np.zeros(3))
    cases = [
        ({k: v for k, v in state.items() if k != "exp_avg_sq"}, r"state\['exp_avg_sq'\] is missing"),
        ({**state, "extra": 1.0}, "has an entry 'extra'"),
        ({**state, "exp_avg": np.zeros(4)},
         r"state\['exp_avg_sq'\] has shape \(3,\), expected \(4,\) to agree with state\['exp_avg'\]"),
        ({**state, "step": -1}, r"state\['step'\] must be an integer from 0"),
    ]
    for bad, message in cases:
        with pytest.raises(ValueError, match=message):
            save_state(tmp_path / "x.npz", adam, bad)
    assert list(tmp_path.iterdir()) == []


# -- a file is not trusted --------------------------------------------------------------------------
def npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def write_members(path, members: dict[str, bytes]) -> None:
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name + ".npy", data)


def saved(tmp_path, name, params, steps=2, **kwargs):
    """(meta, arrays) of a real saved state, to be altered."""
    opt = make_optimizer(name, **kwargs)
    _, state, _ = run(opt, Quadratic(np.eye(params.shape[-1])), params, opt.init(params), steps)
    save_state(tmp_path / "real.npz", opt, state)
    with np.load(tmp_path / "real.npz", allow_pickle=False) as archive:
        arrays = {key: archive[key] for key in archive.files}
    return json.loads(str(arrays.pop("__meta__"))), arrays


def adam_arrays(meta):
    return meta["state"]["exp_avg"]["__array__"], meta["state"]["exp_avg_sq"]["__array__"]


def nested(depth: int):
    value: object = 0
    for _ in range(depth):
        value = [value]
    return value


def hostile_cases(tmp_path):
    meta, arrays = saved(tmp_path, "adam", np.zeros((2, 3)))
    first, second = adam_arrays(meta)
    state = meta["state"]
    without_first = {k: v for k, v in arrays.items() if k != first}
    yield "missing key", {**meta, "state": {k: v for k, v in state.items() if k != "exp_avg"}}, without_first, \
        r"state\['exp_avg'\] is missing"
    yield "unknown key", {**meta, "state": {**state, "extra": 1.5}}, arrays, "has an entry 'extra'"
    yield "wrong shape", meta, {**arrays, second: np.zeros((2, 4))}, \
        r"state\['exp_avg_sq'\] has shape \(2, 4\), expected \(2, 3\)"
    yield "string array", meta, {**arrays, first: np.array(["ab", "cd"])}, r"state\['exp_avg'\] has dtype <U2"
    yield "integer buffer", meta, {**arrays, first: np.zeros((2, 3), dtype=np.int64)}, "has dtype int64"
    yield "negative step", {**meta, "state": {**state, "step": -7}}, arrays, \
        r"state\['step'\] must be an integer from 0 .* got -7"
    yield "boolean step", {**meta, "state": {**state, "step": True}}, arrays, \
        r"state\['step'\] must be an integer from 0 .* got true"
    yield "array as step", {**meta, "state": {**state, "step": {"__array__": "a9"}}}, {**arrays, "a9": np.zeros(3)}, \
        r"state\['step'\] must be an integer from 0 .* got \{\"__array__\": \"a9\"\}"
    yield "one array twice", {**meta, "state": {**state, "exp_avg_sq": {"__array__": first}}}, \
        {k: v for k, v in arrays.items() if k != second}, f"the array '{first}' is used twice"
    yield "unused entry", meta, {**arrays, "a9": np.zeros(10)}, "entry 'a9' is not part of the optimizer"
    yield "deep JSON", {**meta, "hyperparams": {**meta["hyperparams"], "eps": nested(500)}}, arrays, \
        "nested deeper than 64 levels"
    deeper = json.dumps({**meta, "state": "HERE"}).replace('"HERE"', "[" * 100_000 + "]" * 100_000)
    yield "deeper JSON", deeper, arrays, "nested deeper than 64 levels"
    yield "list for an array", {**meta, "state": {**state, "exp_avg": [1.0]}}, without_first, \
        r"state\['exp_avg'\] must be an array, got \[1.0\]"
    lbfgs_meta, lbfgs_arrays = saved(tmp_path, "lbfgs", np.zeros(3), history_size=4)
    hist = lbfgs_meta["state"]["s_hist"]["__array__"]
    yield "history rows", lbfgs_meta, {**lbfgs_arrays, hist: np.zeros((5, 3))}, \
        r"state\['s_hist'\] has shape \(5, 3\), expected \(4, 3\)"
    yield "history length", {**lbfgs_meta, "state": {**lbfgs_meta["state"], "hist_len": 5}}, lbfgs_arrays, \
        r"state\['hist_len'\] must be an integer from 0 to 4"
    sam_meta, sam_arrays = saved(tmp_path, "sam", np.zeros((4, 2)), base="adam")
    buf = sam_meta["state"]["base"]["exp_avg"]["__array__"]
    yield "nested shape", sam_meta, {**sam_arrays, buf: np.zeros((4, 3))}, \
        r"state\['base'\]\['exp_avg_sq'\] has shape \(4, 2\), expected \(4, 3\) to agree with " \
        r"state\['base'\]\['exp_avg'\]"


def test_hostile_files_are_refused_with_one_clear_error(tmp_path):
    """Missing keys, wrong shapes, string arrays, step=-7, step=true, deep JSON, unused or aliased
    entries: each is one ValueError naming the problem (before, these loaded and failed later, or
    raised RecursionError)."""
    seen = set()
    for label, meta, arrays, message in hostile_cases(tmp_path):
        path = tmp_path / f"{label.replace(' ', '_')}.npz"
        members = {key: npy(value) for key, value in arrays.items()}
        members["__meta__"] = npy(np.array(meta if isinstance(meta, str) else json.dumps(meta)))
        write_members(path, members)
        with pytest.raises(ValueError, match=message) as err:
            load_state(path)
        assert str(err.value).count("\n") == 0, label
        seen.add(label)
    assert len(seen) == 16


def test_state_arrays_are_not_read_before_the_state_is_checked(tmp_path, monkeypatch):
    """Only the metadata (and the hyperparameters' arrays) are read before the checks pass."""
    meta, arrays = saved(tmp_path, "adam", np.zeros((2, 3)), lr=np.array([0.1, 0.2]))
    first, _ = adam_arrays(meta)
    members = {key: npy(value) for key, value in {**arrays, first: np.zeros((2, 4))}.items()}
    members["__meta__"] = npy(np.array(json.dumps(meta)))
    write_members(tmp_path / "bad.npz", members)
    read = []
    original = np.lib.format.read_array

    def spy(handle, *args, **kwargs):
        read.append(handle.name)
        return original(handle, *args, **kwargs)

    monkeypatch.setattr(np.lib.format, "read_array", spy)
    with pytest.raises(ValueError, match="has shape"):
        load_state(tmp_path / "bad.npz")
    lr_ref = meta["hyperparams"]["lr"]["__array__"]
    assert sorted(read) == sorted(["__meta__.npy", f"{lr_ref}.npy"])


def test_declared_sizes_are_bounded_before_reading(tmp_path, monkeypatch):
    from dataclasses import replace

    import gdlab.core.serialization as serialization

    meta, arrays = saved(tmp_path, "adam", np.zeros(300))
    members = {key: npy(value) for key, value in arrays.items()}
    members["__meta__"] = npy(np.array(json.dumps(meta)))
    write_members(tmp_path / "big.npz", members)
    limits = serialization.LIMITS
    monkeypatch.setattr(serialization, "LIMITS", replace(limits, max_state_bytes=4000))
    with pytest.raises(ValueError, match="declare 4,800 bytes, more than the limit of 4,000"):
        load_state(tmp_path / "big.npz")
    monkeypatch.setattr(serialization, "LIMITS", replace(limits, max_state_meta_chars=100))
    with pytest.raises(ValueError, match=r"metadata has .* characters, more than the limit of 100"):
        load_state(tmp_path / "big.npz")
    monkeypatch.setattr(serialization, "LIMITS", limits)
    # a header that declares more data than its member holds (or less) is corrupt, found without reading
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (2**40,)})
    members[adam_arrays(meta)[0]] = header.getvalue() + bytes(64)
    write_members(tmp_path / "lying.npz", members)
    with pytest.raises(ValueError, match=r"declares 8,796,093,022,208 bytes of data but holds 64"):
        load_state(tmp_path / "lying.npz")


@pytest.fixture(scope="module")
def huge_unused_entry(tmp_path_factory):
    """A 10 MB file whose unused entry holds 2 GiB of (compressed) zeros."""
    path = tmp_path_factory.mktemp("huge") / "huge.npz"
    header = io.BytesIO()
    n = 2**28
    np.lib.format.write_array_header_1_0(header, {"descr": "<f8", "fortran_order": False, "shape": (n,)})
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        archive.writestr("__meta__.npy", npy(np.array(json.dumps(good_meta()))))
        with archive.open("a0.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            zeros = bytes(2**26)
            for _ in range(n * 8 // len(zeros)):
                member.write(zeros)
    return path


def test_a_huge_unused_entry_is_refused_without_memory(huge_unused_entry):
    """The issue's file (a small archive holding a huge unused entry) under a 1 GiB address-space cap:
    one ValueError at once, never a MemoryError (nor minutes of reading)."""
    code = (
        "import resource, sys\n"
        "resource.setrlimit(resource.RLIMIT_AS, (2**30, 2**30))\n"
        "from gdlab.core.serialization import load_state\n"
        "try:\n"
        "    load_state(sys.argv[1])\n"
        "except ValueError as err:\n"
        "    print('ValueError:', err)\n"
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1", "NUMBA_NUM_THREADS": "1"}
    result = subprocess.run([sys.executable, "-c", code, str(huge_unused_entry)], capture_output=True, text=True,
                            timeout=120, env=env)
    assert result.returncode == 0, result.stderr[-500:]
    assert "ValueError:" in result.stdout and "refused" in result.stdout, result.stdout


# -- writing: whole or not at all, never onto a link or a device, errors name the target -----------
def test_save_refuses_targets_that_are_not_regular_files(tmp_path):
    opt = make_optimizer("adam")
    state = opt.init(np.zeros(3))
    real = tmp_path / "real.npz"
    real.write_bytes(b"keep me")
    link = tmp_path / "link.npz"
    link.symlink_to(real)
    fifo = tmp_path / "pipe.npz"
    os.mkfifo(fifo)
    folder = tmp_path / "folder.npz"
    folder.mkdir()
    for target, kind in ((link, "a symbolic link"), (fifo, "a fifo"), (folder, "a folder"),
                         (Path(os.devnull), "a character device")):
        with pytest.raises(WriteError) as err:
            save_state(target, opt, state)
        assert str(err.value) == f"cannot write '{target}': it is {kind}, not a regular file; refusing to replace it"
    assert link.is_symlink() and real.read_bytes() == b"keep me" and stat.S_ISFIFO(fifo.lstat().st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folder.npz", "link.npz", "pipe.npz", "real.npz"]


def test_write_errors_name_the_target(tmp_path, monkeypatch):
    opt = make_optimizer("adam")
    state = opt.init(np.zeros(3))
    missing = tmp_path / "missing" / "x.npz"
    with pytest.raises(WriteError) as err:
        save_state(missing, opt, state)
    assert str(err.value) == f"cannot write '{missing}': folder '{missing.parent}' does not exist"
    assert err.value.errno == errno.ENOENT

    def full_disk(handle, **arrays):
        handle.write(b"PK partial")
        raise OSError(errno.ENOSPC, "No space left on device", handle.name)

    monkeypatch.setattr(np, "savez", full_disk)
    target = tmp_path / "x.npz"
    with pytest.raises(OSError) as err:
        save_state(target, opt, state)
    assert str(err.value) == f"cannot write '{target}': No space left on device"
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert list(tmp_path.iterdir()) == []  # no partial file, no temporary one
