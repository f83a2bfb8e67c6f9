"""Adafactor and Muon, the matrix optimizers, against torch.optim in float64.

A random gradient stream of 250 steps (relative error ≤ 1e-12) on a vector (Adafactor's unfactored
path) and on a layout of matrices, a vector and a 3-D block (the factored path, one torch tensor per
block); Rosenbrock for Adafactor; Muon both in PyTorch's bfloat16 Newton–Schulz iteration (emulated
bit for bit on small matrices) and in float64 (against PyTorch's iteration with the bfloat16 cast taken
out). And the training loop on the MLP, one torch tensor per block of its layout: ≤ 1e-12, except
Muon's bfloat16 iteration on the 64 × 32 matrix (≤ 1e-5: float32 sums in another order than torch's
kernel flip a bfloat16 rounding now and then).
"""

from __future__ import annotations

from unittest import mock

import numpy as np
import pytest
import torch
import torch.optim._muon as torch_muon
from helpers import run_objective, run_stream
from hypothesis import given, settings
from hypothesis import strategies as st
from torch_oracle import rel_err, torch_on_function, torch_on_stream, torch_rosenbrock

from gdlab.core.objective import Rosenbrock
from gdlab.core.optimizers import make_optimizer
from gdlab.core.optimizers.muon import newton_schulz
from gdlab.problems.train import train

STEPS = 250
LAYOUT = (("W", (5, 3)), ("b", (4,)), ("V", (3, 4)), ("T", (2, 3, 2)))
MATRICES = (("W", (5, 3)), ("V", (3, 4)))


@pytest.fixture(scope="module")
def rng() -> np.random.Generator:
    return np.random.default_rng(20261202)


def blocks_of(x: np.ndarray, layout) -> list[np.ndarray]:
    out, start = [], 0
    for _, shape in layout:
        size = int(np.prod(shape))
        out.append(x[start:start + size].reshape(shape))
        start += size
    return out


def torch_on_layout(cls, kwargs, layout, x0, grads) -> np.ndarray:
    """One torch tensor per block, fed the stream's slices."""
    ts = [torch.tensor(b.copy(), requires_grad=True) for b in blocks_of(x0, layout)]
    opt = cls(ts, **kwargs)
    out = [x0.copy()]
    for g in grads:
        for t, gb in zip(ts, blocks_of(g, layout), strict=True):
            t.grad = torch.tensor(gb.copy())
        opt.step()
        out.append(np.concatenate([t.detach().numpy().ravel() for t in ts]))
    return np.array(out)


def stream(rng, d):
    x0 = rng.normal(size=d)
    grads = rng.normal(size=(STEPS, d)) * rng.choice([1e-3, 1.0, 30.0], size=(STEPS, 1))
    grads[::17, 2] = 0.0
    return x0, grads


ADAFACTOR = [{}, {"weight_decay": 0.1, "maximize": True, "eps": (1e-20, 1e-2), "d": 2.0, "beta2_decay": -0.5},
             {"lr": 0.5, "eps": (None, 0.0)}]


@pytest.mark.parametrize("kwargs", ADAFACTOR)
def test_adafactor_vector_matches_torch(kwargs, rng):
    x0, grads = stream(rng, 9)
    kw = {"lr": 0.01, **kwargs}
    ours = run_stream(make_optimizer("adafactor", **kw), x0, grads)
    assert rel_err(ours, torch_on_stream(torch.optim.Adafactor, kw, x0, grads)) <= 1e-12


@pytest.mark.parametrize("kwargs", ADAFACTOR)
def test_adafactor_factored_matches_torch(kwargs, rng):
    x0, grads = stream(rng, 15 + 4 + 12 + 12)
    kw = {"lr": 0.01, **kwargs}
    opt = make_optimizer("adafactor", **kw).with_layout(LAYOUT)
    ours = run_stream(opt, x0, grads)
    assert rel_err(ours, torch_on_layout(torch.optim.Adafactor, kw, LAYOUT, x0, grads)) <= 1e-12
    state = opt.init(x0)
    assert state["W.row_var"].shape == (5, 1) and state["W.col_var"].shape == (1, 3)
    assert state["T.row_var"].shape == (2, 3, 1) and state["b.variance"].shape == (4,)


def test_adafactor_rosenbrock_matches_torch():
    x0 = np.array([-1.5, 2.0])
    ours = run_objective(make_optimizer("adafactor", lr=0.05), Rosenbrock(), x0, 100)
    ref = torch_on_function(torch.optim.Adafactor, {"lr": 0.05}, x0, torch_rosenbrock, 100)
    assert np.all(np.isfinite(ref)) and rel_err(ours, ref) <= 1e-9


def ns_in_params_dtype(grad, ns_coefficients, ns_steps, eps):
    """PyTorch's ``_zeropower_via_newtonschulz`` without its cast to bfloat16."""
    a, b, c = ns_coefficients
    x = grad.clone()
    tall = grad.size(0) > grad.size(1)
    if tall:
        x = x.T
    x.div_(x.norm().clamp(min=eps))
    for _ in range(ns_steps):
        gram = x @ x.T
        x = torch.addmm(x, torch.addmm(gram, gram, gram, beta=b, alpha=c), x, beta=a)
    return x.T if tall else x


MUON = [{}, {"nesterov": False, "weight_decay": 0.0, "adjust_lr_fn": "match_rms_adamw", "momentum": 0.5},
        {"ns_steps": 3, "ns_coefficients": (2.0, -1.5, 0.5), "eps": 1e-3, "weight_decay": 0.3}]


@pytest.mark.parametrize("ns_dtype", ["bfloat16", "params"])
@pytest.mark.parametrize("kwargs", MUON)
def test_muon_matches_torch(kwargs, ns_dtype, rng):
    x0, grads = stream(rng, 27)
    kw = {"lr": 0.01, **kwargs}
    opt = make_optimizer("muon", ns_dtype=ns_dtype, **kw).with_layout(MATRICES)
    ours = run_stream(opt, x0, grads)
    iteration = torch_muon._zeropower_via_newtonschulz if ns_dtype == "bfloat16" else ns_in_params_dtype
    with mock.patch.object(torch_muon, "_zeropower_via_newtonschulz", iteration):
        ref = torch_on_layout(torch.optim.Muon, kw, MATRICES, x0, grads)
    assert rel_err(ours, ref) <= 1e-12


def test_bfloat16_newton_schulz_is_torchs_bit_for_bit(rng):
    """The emulated bfloat16 iteration equals PyTorch's on CPU exactly; a rare difference in the order
    of a float32 sum (large matrices) is the only way they can part."""
    same = 0
    for k in range(300):
        shape = [(5, 3), (3, 4), (4, 4), (2, 7)][k % 4]
        g = rng.normal(size=shape) * rng.choice([1e-3, 1.0, 30.0])
        ref = torch_muon._zeropower_via_newtonschulz(torch.tensor(g), (3.4445, -4.7750, 2.0315), 5, 1e-7)
        same += np.array_equal(newton_schulz(g, (3.4445, -4.7750, 2.0315), 5, 1e-7, True), ref.double().numpy())
    assert same == 300


def test_muon_others_adamw_is_torchs_pairing(rng):
    """Muon for the matrices and AdamW (Muon's lr and weight_decay) for the rest, as torch's docs pair them."""
    x0, grads = stream(rng, 15 + 4 + 12)
    layout = (("W", (5, 3)), ("b", (4,)), ("V", (3, 4)))
    ours = run_stream(make_optimizer("muon", lr=0.01).with_layout(layout), x0, grads)
    ts = [torch.tensor(b.copy(), requires_grad=True) for b in blocks_of(x0, layout)]
    muon = torch.optim.Muon([ts[0], ts[2]], lr=0.01)
    adamw = torch.optim.AdamW([ts[1]], lr=0.01, weight_decay=0.1)
    ref = [x0.copy()]
    for g in grads:
        for t, gb in zip(ts, blocks_of(g, layout), strict=True):
            t.grad = torch.tensor(gb.copy())
        muon.step()
        adamw.step()
        ref.append(np.concatenate([t.detach().numpy().ravel() for t in ts]))
    assert rel_err(ours, np.array(ref)) <= 1e-12


def test_muon_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match=r"only 2-D parameters.*landscape point"):
        make_optimizer("muon").init(np.zeros(2))
    with pytest.raises(ValueError, match=r"only 2-D parameters.*block 'b'"):
        make_optimizer("muon", others="refuse").with_layout((("W", (2, 2)), ("b", (2,))))
    with pytest.raises(ValueError, match="ns_steps=100 is out of range"):
        make_optimizer("muon", ns_steps=100)
    with pytest.raises(ValueError, match="ns_coefficients must have exactly 3 values"):
        make_optimizer("muon", ns_coefficients=(1.0, 2.0))
    with pytest.raises(ValueError, match=r"beta2_decay=0\.5 is out of range"):
        make_optimizer("adafactor", beta2_decay=0.5)


@pytest.mark.parametrize("name", ["adafactor", "muon"])
def test_a_batch_of_runs_is_runs_one_by_one(name, rng):
    layout = (("W", (3, 2)), ("b", (2,)))
    lrs = np.array([1e-3, 1e-2, 1e-1])
    x0 = rng.normal(size=(3, 8))
    grads = rng.normal(size=(20, 3, 8))
    batched = run_stream(make_optimizer(name, lr=lrs).with_layout(layout), x0, grads)
    for j, lr in enumerate(lrs):
        single = run_stream(make_optimizer(name, lr=float(lr)).with_layout(layout), x0[j], grads[:, j])
        np.testing.assert_allclose(batched[:, j], single, rtol=1e-14, atol=1e-300)


@settings(max_examples=20, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), name=st.sampled_from(["adafactor", "muon"]))
def test_zero_lr_freezes_and_maximize_flips(seed, name):
    r = np.random.default_rng(seed)
    x0, grads = r.normal(size=12), r.normal(size=(8, 12))
    layout = (("W", (3, 4)),)
    frozen = run_stream(make_optimizer(name, lr=0.0).with_layout(layout), x0, grads)
    assert np.array_equal(frozen[-1], x0)
    up = run_stream(make_optimizer(name, lr=0.01, maximize=True).with_layout(layout), x0, grads) \
        if name == "adafactor" else None
    if up is not None:
        down = run_stream(make_optimizer(name, lr=0.01).with_layout(layout), x0, -grads)
        assert np.array_equal(up, down)


@pytest.mark.parametrize("name", ["adafactor", "muon"])
def test_training_gives_each_weight_matrix_as_a_matrix(name):
    result = train("mlp", name, epochs=3)
    assert np.all(np.isfinite(result.train_loss)) and result.train_loss[-1] < result.train_loss[0]


@pytest.mark.parametrize(("name", "torch_cls", "kwargs", "ours", "tolerance"), [
    ("adafactor", torch.optim.Adafactor, {"lr": 0.05}, {}, 1e-12),
    ("muon", torch.optim.Muon, {"lr": 0.02, "weight_decay": 0.01}, {"ns_dtype": "params"}, 1e-12),
    # bfloat16 on the MLP's 64 × 32 matrix: the float32 sums of 32 or 64 products are added in another
    # order than PyTorch's kernel now and then, a bfloat16 rounding flips, and 30 steps carry it on
    ("muon", torch.optim.Muon, {"lr": 0.02, "weight_decay": 0.01}, {}, 1e-5),
], ids=["adafactor", "muon-float64", "muon-bfloat16"])
def test_training_the_mlp_matches_torch_per_weight_matrix(name, torch_cls, kwargs, ours, tolerance):
    """gdlab's training loop on the MLP (full batch) against torch stepping one tensor per block of the
    problem's layout, fed the same gradients: W1 and W2 are matrices to both (Muon's biases: AdamW)."""
    from gdlab.problems import make_problem

    problem = make_problem("mlp")
    epochs = 30
    result = train(problem, make_optimizer(name, **kwargs, **ours), epochs=epochs)
    objective = problem.objective()
    x = problem.init_params(0)
    ts = [torch.tensor(b.copy(), requires_grad=True) for b in blocks_of(x, problem.layout)]
    if name == "muon":
        matrices = [t for t in ts if t.ndim == 2]
        others = [t for t in ts if t.ndim != 2]
        opts = [torch_cls(matrices, **kwargs), torch.optim.AdamW(others, **kwargs)]
    else:
        opts = [torch_cls(ts, **kwargs)]
    iteration = ns_in_params_dtype if ours.get("ns_dtype") == "params" else torch_muon._zeropower_via_newtonschulz
    with mock.patch.object(torch_muon, "_zeropower_via_newtonschulz", iteration):
        for _ in range(epochs):
            flat = np.concatenate([t.detach().numpy().ravel() for t in ts])
            for t, gb in zip(ts, blocks_of(objective.grad(flat), problem.layout), strict=True):
                t.grad = torch.tensor(gb.copy())
            for opt in opts:
                opt.step()
    ref = np.concatenate([t.detach().numpy().ravel() for t in ts])
    assert rel_err(result.params, ref) <= tolerance
