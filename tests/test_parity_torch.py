"""Parity of every gdlab optimizer that PyTorch also has, against torch.optim in float64.

Two streams per case: ≥ 200 steps of a seeded random gradient stream (relative error ≤ 1e-12) and
100 steps on the Rosenbrock function from (-1.5, 2) (relative error ≤ 1e-9). Add new optimizers to
``CASES`` with a learning rate that keeps the Rosenbrock run finite.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from helpers import run_objective, run_stream
from torch_oracle import rel_err, torch_on_function, torch_on_stream, torch_rosenbrock

from gdlab.core.objective import Rosenbrock
from gdlab.core.optimizers import make_optimizer

# (gdlab name, torch class, hyperparameters shared by both, Rosenbrock lr)
CASES = [
    ("sgd", torch.optim.SGD, {}, 1e-4),
    ("sgd", torch.optim.SGD, {"momentum": 0.9}, 1e-4),
    ("sgd", torch.optim.SGD, {"momentum": 0.9, "dampening": 0.5, "weight_decay": 0.1}, 1e-4),
    ("sgd", torch.optim.SGD, {"momentum": 0.8, "nesterov": True, "weight_decay": 0.05}, 1e-4),
    ("sgd", torch.optim.SGD, {"momentum": 0.9, "maximize": True}, None),
    ("adam", torch.optim.Adam, {}, 1e-2),
    ("adam", torch.optim.Adam, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, 1e-2),
    ("adam", torch.optim.Adam, {"amsgrad": True}, 1e-2),
    ("adam", torch.optim.Adam, {"maximize": True, "amsgrad": True}, None),
    ("adamw", torch.optim.AdamW, {}, 1e-2),
    ("adamw", torch.optim.AdamW, {"weight_decay": 0.3, "amsgrad": True}, 1e-2),
    ("adagrad", torch.optim.Adagrad, {}, 0.3),
    ("adagrad", torch.optim.Adagrad, {"lr_decay": 0.01, "weight_decay": 0.1, "initial_accumulator_value": 0.5}, 0.3),
    ("adagrad", torch.optim.Adagrad, {"eps": 1e-3, "maximize": True}, None),
    ("rmsprop", torch.optim.RMSprop, {}, 3e-2),
    ("rmsprop", torch.optim.RMSprop, {"alpha": 0.9, "eps": 1e-6, "weight_decay": 0.1}, 3e-2),
    ("rmsprop", torch.optim.RMSprop, {"momentum": 0.9}, 3e-2),
    ("rmsprop", torch.optim.RMSprop, {"centered": True}, 3e-2),
    ("rmsprop", torch.optim.RMSprop, {"centered": True, "momentum": 0.5, "weight_decay": 0.05}, 0.1),
    ("rmsprop", torch.optim.RMSprop, {"momentum": 0.9, "centered": True, "maximize": True}, None),
    ("adadelta", torch.optim.Adadelta, {}, 1.0),
    ("adadelta", torch.optim.Adadelta, {"rho": 0.5, "eps": 1e-4, "weight_decay": 0.1}, 0.1),
    ("adadelta", torch.optim.Adadelta, {"maximize": True}, None),
    ("adamax", torch.optim.Adamax, {}, 0.1),
    ("adamax", torch.optim.Adamax, {"betas": (0.8, 0.99), "eps": 1e-6, "weight_decay": 0.1}, 0.1),
    ("adamax", torch.optim.Adamax, {"maximize": True}, None),
    ("nadam", torch.optim.NAdam, {}, 0.1),
    ("nadam", torch.optim.NAdam, {"betas": (0.8, 0.99), "eps": 1e-6, "momentum_decay": 0.01, "weight_decay": 0.1}, 0.1),
    ("nadam", torch.optim.NAdam, {"weight_decay": 0.3, "decoupled_weight_decay": True}, 0.1),
    ("nadam", torch.optim.NAdam, {"maximize": True}, None),
    ("radam", torch.optim.RAdam, {}, 1e-2),
    ("radam", torch.optim.RAdam, {"betas": (0.8, 0.9), "eps": 1e-6, "weight_decay": 0.1}, 1e-2),
    ("radam", torch.optim.RAdam, {"weight_decay": 0.3, "decoupled_weight_decay": True}, 1e-2),
    # β₂ = 0.6 gives ρ∞ = 4 < 5: never rectified, RAdam is SGD with bias-corrected momentum.
    ("radam", torch.optim.RAdam, {"betas": (0.9, 0.6)}, 1e-2),
    ("radam", torch.optim.RAdam, {"maximize": True}, None),
    ("rprop", torch.optim.Rprop, {}, 1e-2),
    ("rprop", torch.optim.Rprop, {"etas": (0.3, 1.5), "step_sizes": (1e-3, 0.05)}, 1e-2),
    ("rprop", torch.optim.Rprop, {"maximize": True}, None),
    ("asgd", torch.optim.ASGD, {}, 1e-4),
    ("asgd", torch.optim.ASGD, {"lambd": 0.1, "alpha": 0.5, "t0": 20.0, "weight_decay": 0.1}, 1e-4),
    ("asgd", torch.optim.ASGD, {"t0": -3.0, "maximize": True}, None),
]

STREAM_STEPS = 250
IDS = [f"{name}-{'-'.join(f'{k}={v}' for k, v in kw.items()) or 'defaults'}" for name, _, kw, _ in CASES]


@pytest.fixture(scope="module")
def stream() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20261123)
    x0 = rng.normal(size=9)
    # Gradients of varying scale, including exact zeros, to exercise every branch.
    grads = rng.normal(size=(STREAM_STEPS, 9)) * rng.choice([1e-3, 1.0, 30.0], size=(STREAM_STEPS, 1))
    grads[::17, 2] = 0.0
    return x0, grads


@pytest.mark.parametrize(("name", "torch_cls", "kwargs", "rosen_lr"), CASES, ids=IDS)
def test_random_stream_matches_torch(name, torch_cls, kwargs, rosen_lr, stream):
    x0, grads = stream
    lr = 0.01
    ours = run_stream(make_optimizer(name, lr=lr, **kwargs), x0, grads)
    ref = torch_on_stream(torch_cls, {"lr": lr, **kwargs}, x0, grads)
    assert rel_err(ours, ref) <= 1e-12


# maximize ascends without bound on Rosenbrock: those cases are covered by the random stream only.
ROSEN = [(case, i) for case, i in zip(CASES, IDS, strict=True) if case[3] is not None]


@pytest.mark.parametrize(("name", "torch_cls", "kwargs", "rosen_lr"), [c for c, _ in ROSEN], ids=[i for _, i in ROSEN])
def test_rosenbrock_matches_torch(name, torch_cls, kwargs, rosen_lr):
    x0 = np.array([-1.5, 2.0])
    ours = run_objective(make_optimizer(name, lr=rosen_lr, **kwargs), Rosenbrock(), x0, 100)
    ref = torch_on_function(torch_cls, {"lr": rosen_lr, **kwargs}, x0, torch_rosenbrock, 100)
    assert np.all(np.isfinite(ref))
    assert rel_err(ours, ref) <= 1e-9


def test_asgd_average_matches_torch(stream):
    """ASGD's averaged parameters (state ``ax``) follow PyTorch's, averaging switched on from t₀ = 30."""
    x0, grads = stream
    kwargs = {"lr": 0.01, "lambd": 0.01, "t0": 30.0}
    opt = make_optimizer("asgd", **kwargs)
    p, state = np.array(x0), opt.init(x0)
    tp = torch.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.ASGD([tp], **kwargs)
    for g in grads:
        p, state, _ = opt.update(g, state, p)
        tp.grad = torch.tensor(g)
        topt.step()
    ax = topt.state[tp]["ax"].numpy()
    assert rel_err(state["ax"], ax) <= 1e-12 and not np.array_equal(ax, tp.detach().numpy())


def test_rprop_step_sizes_match_torch(stream):
    x0, grads = stream
    opt = make_optimizer("rprop", lr=0.01)
    p, state = np.array(x0), opt.init(x0)
    tp = torch.tensor(x0.copy(), requires_grad=True)
    topt = torch.optim.Rprop([tp], lr=0.01)
    for g in grads:
        p, state, _ = opt.update(g, state, p)
        tp.grad = torch.tensor(g)
        topt.step()
    assert np.array_equal(state["step_size"], topt.state[tp]["step_size"].numpy())
    assert np.array_equal(state["prev"], topt.state[tp]["prev"].numpy())
