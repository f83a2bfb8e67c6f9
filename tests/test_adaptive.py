"""Adaptive optimizers: ε placement, identities between optimizers, AdamW's decay forms, batching.

The ε-inside-the-root forms have no PyTorch counterpart, so they are checked against direct numpy
implementations of the seed formulas written here from the math, not from gdlab's code.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from helpers import run_stream
from torch_oracle import rel_err, torch_on_stream

from gdlab.core.optimizers import make_optimizer

STEPS = 80
D = 5


@pytest.fixture(scope="module")
def grads() -> np.ndarray:
    """A gradient stream of mixed scales, without exact zeros (so ε = 0 never divides 0 by 0)."""
    rng = np.random.default_rng(7)
    return rng.normal(size=(STEPS, D)) * rng.choice([1e-2, 1.0, 10.0], size=(STEPS, 1))


@pytest.fixture(scope="module")
def x0() -> np.ndarray:
    return np.random.default_rng(8).normal(size=D)


# -- (1) ε inside the root: the seed formulas, by hand --------------------------------------------


def seed_adagrad(x0: np.ndarray, grads: np.ndarray, lr: float, eps: float, g0: float) -> np.ndarray:
    """θ ← θ − η g/√(G + ε), G = G₀ + Σ g²."""
    theta, G, out = x0.copy(), np.full_like(x0, g0), [x0.copy()]
    for g in grads:
        G = G + g**2
        theta = theta - lr * g / np.sqrt(G + eps)
        out.append(theta.copy())
    return np.array(out)


def seed_rmsprop(x0: np.ndarray, grads: np.ndarray, lr: float, eps: float, alpha: float, centered: bool) -> np.ndarray:
    """θ ← θ − η g/√(E[g²] + ε) (centered: √(E[g²] − E[g]² + ε))."""
    theta, Eg2, Eg, out = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), [x0.copy()]
    for g in grads:
        Eg2 = alpha * Eg2 + (1 - alpha) * g**2
        Eg = alpha * Eg + (1 - alpha) * g
        var = Eg2 - Eg**2 if centered else Eg2
        theta = theta - lr * g / np.sqrt(var + eps)
        out.append(theta.copy())
    return np.array(out)


def seed_adam(x0: np.ndarray, grads: np.ndarray, lr: float, eps: float, b1: float, b2: float) -> np.ndarray:
    """θ ← θ − η m̂/√(v̂ + ε)."""
    theta, m, v, out = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), [x0.copy()]
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        theta = theta - lr * m_hat / np.sqrt(v_hat + eps)
        out.append(theta.copy())
    return np.array(out)


def seed_nadam(
    x0: np.ndarray, grads: np.ndarray, lr: float, eps: float, b1: float, b2: float, psi: float
) -> np.ndarray:
    """θ ← θ − η[(1−μ_t)/(1−Π_t) g + μ_{t+1}/(1−Π_t μ_{t+1}) m_t]/√(v̂ + ε), μ_t = β₁(1 − ½·0.96^{tψ})."""
    theta, m, v, prod, out = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), 1.0, [x0.copy()]
    for t, g in enumerate(grads, start=1):
        mu, mu_next = (b1 * (1 - 0.5 * 0.96 ** (k * psi)) for k in (t, t + 1))
        prod *= mu
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        v_hat = v / (1 - b2**t)
        direction = (1 - mu) / (1 - prod) * g + mu_next / (1 - prod * mu_next) * m
        theta = theta - lr * direction / np.sqrt(v_hat + eps)
        out.append(theta.copy())
    return np.array(out)


def radam_rho(b2: float, t: int) -> tuple[float, float]:
    """(ρ∞, ρ_t): maximum and current length of RAdam's approximated simple moving average."""
    rho_inf = 2 / (1 - b2) - 1
    return rho_inf, rho_inf - 2 * t * b2**t / (1 - b2**t)


def seed_radam(x0: np.ndarray, grads: np.ndarray, lr: float, eps: float, b1: float, b2: float) -> np.ndarray:
    """θ ← θ − η r_t m̂/√(v̂ + ε) when ρ_t > 5, else θ ← θ − η m̂."""
    theta, m, v, out = x0.copy(), np.zeros_like(x0), np.zeros_like(x0), [x0.copy()]
    for t, g in enumerate(grads, start=1):
        m = b1 * m + (1 - b1) * g
        v = b2 * v + (1 - b2) * g**2
        m_hat, v_hat = m / (1 - b1**t), v / (1 - b2**t)
        rho_inf, rho_t = radam_rho(b2, t)
        if rho_t > 5:
            r = math.sqrt((rho_t - 4) * (rho_t - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * rho_t))
            theta = theta - lr * r * m_hat / np.sqrt(v_hat + eps)
        else:
            theta = theta - lr * m_hat
        out.append(theta.copy())
    return np.array(out)


EPS = 1e-2  # large enough that the placement of ε changes the trajectory visibly

SEEDS = [
    ("adagrad", {"lr": 0.1, "eps": EPS, "initial_accumulator_value": 0.3},
     lambda x, g: seed_adagrad(x, g, 0.1, EPS, 0.3)),
    ("rmsprop", {"lr": 0.01, "eps": EPS, "alpha": 0.9},
     lambda x, g: seed_rmsprop(x, g, 0.01, EPS, 0.9, centered=False)),
    ("rmsprop", {"lr": 0.01, "eps": EPS, "alpha": 0.9, "centered": True},
     lambda x, g: seed_rmsprop(x, g, 0.01, EPS, 0.9, centered=True)),
    ("adam", {"lr": 0.01, "eps": EPS, "betas": (0.8, 0.99)},
     lambda x, g: seed_adam(x, g, 0.01, EPS, 0.8, 0.99)),
    ("nadam", {"lr": 0.01, "eps": EPS, "betas": (0.8, 0.99), "momentum_decay": 0.01},
     lambda x, g: seed_nadam(x, g, 0.01, EPS, 0.8, 0.99, 0.01)),
    ("radam", {"lr": 0.01, "eps": EPS, "betas": (0.8, 0.99)},
     lambda x, g: seed_radam(x, g, 0.01, EPS, 0.8, 0.99)),
]


@pytest.mark.parametrize(("name", "kwargs", "seed"), SEEDS, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(SEEDS)])
def test_eps_inside_sqrt_is_the_seed_formula(name, kwargs, seed, x0, grads):
    inside = run_stream(make_optimizer(name, eps_inside_sqrt=True, **kwargs), x0, grads)
    assert rel_err(inside, seed(x0, grads)) <= 1e-12
    outside = run_stream(make_optimizer(name, **kwargs), x0, grads)
    assert rel_err(inside, outside) > 1e-6  # the flag really moves ε


@pytest.mark.parametrize(
    ("name", "kwargs"),
    [
        ("adagrad", {"lr": 0.1}),
        ("adagrad", {"lr": 0.1, "initial_accumulator_value": 0.5, "lr_decay": 0.1}),
        ("rmsprop", {"alpha": 0.9}),
        ("rmsprop", {"centered": True, "momentum": 0.5}),
        ("adam", {"betas": (0.8, 0.99)}),
        ("nadam", {"weight_decay": 0.1}),
        ("radam", {"betas": (0.8, 0.99)}),
        ("radam", {"betas": (0.9, 0.6)}),
    ],
)
def test_eps_placement_is_irrelevant_when_eps_is_zero(name, kwargs, x0, grads):
    outside = run_stream(make_optimizer(name, eps=0.0, **kwargs), x0, grads)
    inside = run_stream(make_optimizer(name, eps=0.0, eps_inside_sqrt=True, **kwargs), x0, grads)
    assert rel_err(inside, outside) <= 1e-13


# -- (2) Adam without first moment = bias-corrected RMSprop ----------------------------------------


@pytest.mark.parametrize("beta2", [0.9, 0.999])
def test_adam_without_momentum_is_bias_corrected_rmsprop(beta2, x0, grads):
    lr = 0.01
    adam = run_stream(make_optimizer("adam", lr=lr, betas=(0.0, beta2), eps=0.0), x0, grads)
    lrs = lr * np.sqrt(1.0 - beta2 ** np.arange(1, STEPS + 1))
    rmsprop = run_stream(make_optimizer("rmsprop", lr=lr, alpha=beta2, eps=0.0), x0, grads, lrs=lrs)
    assert rel_err(adam, rmsprop) <= 1e-13


# -- (3), (4) AdamW -----------------------------------------------------------------------------------


@pytest.mark.parametrize("amsgrad", [False, True])
def test_adamw_without_decay_is_adam_bit_for_bit(amsgrad, x0, grads):
    kwargs = {"lr": 0.01, "betas": (0.8, 0.99), "weight_decay": 0.0, "amsgrad": amsgrad}
    lrs = 0.01 * (1.0 + np.cos(np.linspace(0.0, np.pi, STEPS))) / 2.0 + 1e-4
    for schedule in (None, lrs):
        adamw = run_stream(make_optimizer("adamw", **kwargs), x0, grads, lrs=schedule)
        adam = run_stream(make_optimizer("adam", **kwargs), x0, grads, lrs=schedule)
        assert np.array_equal(adamw, adam)


def test_adamw_decay_forms_agree_at_unit_constant_lr(x0, grads):
    forms = [make_optimizer("adamw", lr=1.0, weight_decay=0.05, weight_decay_form=f) for f in ("torch", "paper")]
    torch_form, paper_form = (run_stream(opt, x0, grads) for opt in forms)
    assert np.array_equal(torch_form, paper_form)


def test_adamw_decay_forms_differ_under_a_schedule(x0, grads):
    lrs = np.geomspace(0.05, 0.001, STEPS)
    torch_form, paper_form = (
        run_stream(make_optimizer("adamw", lr=0.05, weight_decay=0.5, weight_decay_form=f), x0, grads, lrs=lrs)
        for f in ("torch", "paper")
    )
    assert rel_err(torch_form, paper_form) > 1e-3
    # and the torch form is what torch.optim.AdamW does under the same schedule
    ref = torch_on_stream(torch.optim.AdamW, {"lr": 0.05, "weight_decay": 0.5}, x0, grads, lrs=lrs)
    assert rel_err(torch_form, ref) <= 1e-12


def test_adamw_paper_form_decays_by_schedule_multiplier_one_step(x0, grads):
    base, lr_t, wd, (b1, b2), eps = 0.1, 0.025, 0.2, (0.9, 0.999), 1e-8
    g = grads[0]
    adam_step = lr_t * (((1 - b1) * g) / (1 - b1)) / (np.sqrt((1 - b2) * g**2 / (1 - b2)) + eps)
    expected = {
        "paper": x0 * (1 - (lr_t / base) * wd) - adam_step,  # decays by 0.25·λ = 0.05
        "torch": x0 * (1 - lr_t * wd) - adam_step,  # decays by η_t·λ = 0.005
    }
    for form, want in expected.items():
        opt = make_optimizer("adamw", lr=base, weight_decay=wd, weight_decay_form=form)
        got, _, bad = opt.update(g, opt.init(x0), x0, lr=lr_t)
        assert not bad.any()
        np.testing.assert_allclose(got, want, rtol=1e-14, atol=0)


# -- (5) batching ------------------------------------------------------------------------------------


def test_radam_batched_betas_switch_per_run(x0, grads):
    beta1, beta2 = np.array([0.9, 0.8]), np.array([0.999, 0.6])
    rho = np.array([[radam_rho(b, t)[1] for t in range(1, STEPS + 1)] for b in beta2])
    assert (rho[0] > 5).any() and np.argmax(rho[0] > 5) < 10  # run 0 is rectified from an early step on
    assert not (rho[1] > 5).any()  # run 1 never is (ρ∞ = 4)
    x = np.stack([x0, -x0])
    g = np.stack([grads, grads[::-1]], axis=1)
    for kwargs in ({}, {"eps_inside_sqrt": True, "weight_decay": 0.1, "decoupled_weight_decay": True}):
        batched = run_stream(make_optimizer("radam", lr=0.01, betas=(beta1, beta2), **kwargs), x, g)
        for i in range(2):
            single = run_stream(make_optimizer("radam", lr=0.01, betas=(beta1[i], beta2[i]), **kwargs), x[i], g[:, i])
            assert np.array_equal(batched[:, i], single)


BATCHED = [
    ("adagrad", {"lr": np.array([0.1, 0.03, 0.01]), "lr_decay": np.array([0.0, 0.1, 0.01]),
                 "initial_accumulator_value": np.array([0.0, 1.0, 0.1]), "weight_decay": np.array([0.0, 0.1, 0.2])}),
    ("rmsprop", {"alpha": np.array([0.9, 0.99, 0.5]), "momentum": np.array([0.9, 0.5, 0.1]),
                 "eps": np.array([1e-8, 1e-3, 1e-1]), "centered": True}),
    ("adadelta", {"lr": np.array([1.0, 0.5, 0.1]), "rho": np.array([0.9, 0.5, 0.99]),
                  "eps": np.array([1e-6, 1e-3, 1e-8])}),
    ("adamax", {"betas": (np.array([0.9, 0.5, 0.0]), np.array([0.999, 0.9, 0.5])), "eps": np.array([1e-8, 1e-3, 1.0])}),
    ("nadam", {"betas": (np.array([0.9, 0.5, 0.0]), np.array([0.999, 0.9, 0.5])),
               "momentum_decay": np.array([4e-3, 0.0, 0.1]), "weight_decay": np.array([0.0, 0.1, 0.2])}),
    ("nadam", {"lr": np.array([0.1, 0.03, 0.01]), "weight_decay": np.array([0.0, 0.1, 0.2]),
               "decoupled_weight_decay": True}),
]


@pytest.mark.parametrize(("name", "kwargs"), BATCHED, ids=[f"{n}-{i}" for i, (n, _) in enumerate(BATCHED)])
def test_batched_hyperparameters_equal_individual_runs(name, kwargs, x0, grads):
    x = np.stack([x0, 2 * x0, -x0])
    g = np.stack([grads, 0.5 * grads, grads[::-1]], axis=1)
    batched = run_stream(make_optimizer(name, **kwargs), x, g)
    for i in range(3):
        single_kwargs = {k: _pick(v, i) for k, v in kwargs.items()}
        single = run_stream(make_optimizer(name, **single_kwargs), x[i], g[:, i])
        np.testing.assert_array_equal(batched[:, i], single)


def _pick(value, i):
    if isinstance(value, tuple):
        return tuple(_pick(v, i) for v in value)
    return float(value[i]) if isinstance(value, np.ndarray) else value


def test_nadam_mu_product_follows_the_batch_convention(x0, grads):
    scalar = make_optimizer("nadam")
    assert scalar.init(x0)["mu_product"] == 1.0
    opt = make_optimizer("nadam", betas=(np.array([0.9, 0.5]), 0.999))
    x = np.stack([x0, x0])
    state = opt.init(x)
    assert np.shape(state["mu_product"]) == ()  # 1.0 until the first step, then one value per β₁
    g = np.stack([grads[0], grads[0]])
    g[1, 0] = np.inf
    x1, state1, bad = opt.update(g, state, x)
    assert bad.tolist() == [False, True]
    assert np.array_equal(x1[1], x[1]) and np.array_equal(state1["exp_avg"][1], state["exp_avg"][1])
    # the product follows the step count, which the whole batch advances (the refused run included)
    assert state1["step"] == 1 and state1["mu_product"].shape == (2,)
    assert state1["mu_product"][0] == 0.9 * (1 - 0.5 * 0.96**4e-3)
    assert state1["mu_product"][1] == 0.5 * (1 - 0.5 * 0.96**4e-3)


# -- per-step learning rates (what a schedule does) against torch.optim -------------------------------

SCHEDULED = [
    ("adagrad", torch.optim.Adagrad, {"lr_decay": 0.05, "weight_decay": 0.1}),
    ("rmsprop", torch.optim.RMSprop, {"momentum": 0.9, "centered": True}),
    ("adadelta", torch.optim.Adadelta, {"weight_decay": 0.1}),
    ("adamax", torch.optim.Adamax, {"weight_decay": 0.1}),
    ("nadam", torch.optim.NAdam, {"weight_decay": 0.2, "decoupled_weight_decay": True}),
    ("radam", torch.optim.RAdam, {"weight_decay": 0.2, "decoupled_weight_decay": True}),
]


@pytest.mark.parametrize(("name", "torch_cls", "kwargs"), SCHEDULED, ids=[c[0] for c in SCHEDULED])
def test_per_step_lr_matches_torch(name, torch_cls, kwargs, x0, grads):
    lrs = 0.01 * (1.0 + np.cos(np.linspace(0.0, np.pi, STEPS))) / 2.0 + 1e-4
    ours = run_stream(make_optimizer(name, lr=0.01, **kwargs), x0, grads, lrs=lrs)
    ref = torch_on_stream(torch_cls, {"lr": 0.01, **kwargs}, x0, grads, lrs=lrs)
    assert rel_err(ours, ref) <= 1e-12


# -- refused combinations -------------------------------------------------------------------------------


def test_invalid_combinations_are_refused():
    with pytest.raises(ValueError, match=r"alpha=1.*eps=0"):
        make_optimizer("rmsprop", alpha=1.0, eps=0.0)
    with pytest.raises(ValueError, match=r"alpha=1.*eps="):
        make_optimizer("rmsprop", alpha=np.array([0.9, 1.0]), eps=np.array([1e-8, 0.0]))
    make_optimizer("rmsprop", alpha=np.array([0.9, 1.0]), eps=np.array([0.0, 1e-8]))  # fine run by run
    with pytest.raises(ValueError, match="eps=0"):
        make_optimizer("adadelta", eps=0.0)
    with pytest.raises(ValueError, match="momentum_decay=-1"):
        make_optimizer("nadam", momentum_decay=-1.0)
    with pytest.raises(ValueError, match=r"betas\[1\]=1"):
        make_optimizer("radam", betas=(0.9, 1.0))
