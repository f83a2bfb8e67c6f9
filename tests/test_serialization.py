"""Saving and loading optimizer states: every registered optimizer resumes bit for bit, batched
hyperparameters round-trip, and bad files are refused with a ValueError naming the problem."""

from __future__ import annotations

import io
import json
import zipfile

import numpy as np
import pytest

import gdlab
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
    with pytest.raises(ValueError, match="integer step"):
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
    opt = make_optimizer("sgd")
    state = {"step": 3, "f": 0.1, "nan": float("nan"), "n64": np.float64(2.5), "i64": np.int64(7), "flag": True,
             "none": None, "pair": (1.0, np.array([1.0, 2.0])), "zero_d": np.array(4.0)}
    save_state(tmp_path / "s.npz", opt, state)
    _, loaded = load_state(tmp_path / "s.npz")
    assert_same(loaded, state)


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
