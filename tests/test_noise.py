"""Stochastic gradients: the seeded Gaussian noise model g̃ = ∇f + (σ/√B)·ξ in the engine and the CLI."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gdlab.cli.main import main
from gdlab.core.noise import Noise
from gdlab.core.objective import FunctionObjective
from gdlab.core.optimizers import make_optimizer
from gdlab.engine.run import run_batch, run_single
from gdlab.landscapes import make_landscape

TWO_WELLS_LOCAL = np.array([-1.44, -0.48])  # next to the shallow local minimum ≈ (−1.4395, −0.4798)


def flat() -> FunctionObjective:
    """f = 0 everywhere: the steps of gradient descent with lr 1 are exactly minus the noise."""
    return FunctionObjective(lambda x: np.zeros(x.shape[:-1]), lambda x: np.zeros_like(x))


@pytest.mark.parametrize("optimizer", [("sgd", {"lr": 0.05}), ("adam", {"lr": 0.1}), ("nesterov", {"lr": 0.02})])
def test_sigma_zero_is_the_noiseless_run_bit_for_bit(optimizer):
    land = make_landscape("elliptic")
    opt = make_optimizer(optimizer[0], **optimizer[1])
    plain = run_batch(land, opt, np.array([5.0, 5.0]), steps=200)
    zero = run_batch(land, opt, np.array([5.0, 5.0]), steps=200, noise=Noise(0.0, 7, 3))
    for name in ("positions", "loss", "grad_norm", "lr", "status_code", "stopped_at"):
        assert np.array_equal(getattr(plain, name), getattr(zero, name)), name


def test_same_seed_same_trajectory_and_other_seed_differs():
    land = make_landscape("two_wells")
    opt = make_optimizer("sgd", lr=0.1, momentum=0.5)
    a = run_batch(land, opt, TWO_WELLS_LOCAL, steps=300, noise=Noise(0.5, 4, 11))
    b = run_batch(land, opt, TWO_WELLS_LOCAL, steps=300, noise=Noise(0.5, 4, 11))
    c = run_batch(land, opt, TWO_WELLS_LOCAL, steps=300, noise=Noise(0.5, 4, 12))
    assert np.array_equal(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)


def test_noisy_runs_take_the_reference_loop_on_every_backend():
    land = make_landscape("elliptic")
    opt = make_optimizer("sgd", lr=0.05)
    noise = Noise(1.0, 2, 5)
    auto = run_batch(land, opt, np.array([5.0, 5.0]), steps=100, noise=noise)
    ref = run_batch(land, opt, np.array([5.0, 5.0]), steps=100, noise=noise, backend="reference")
    assert np.array_equal(auto.positions, ref.positions)
    with pytest.raises(ValueError, match="no gradient noise"):
        run_batch(land, opt, np.array([5.0, 5.0]), steps=100, noise=noise, backend="fused")


def test_gradient_descent_steps_follow_the_stated_model():
    """x_{t+1} = x_t − η(A x_t + (σ/√B) ξ_t), ξ_t the t-th draw of shape (d,) from default_rng(seed)."""
    land = make_landscape("elliptic")  # f = x² + 10y², ∇f = (2x, 20y)
    sigma, batch, seed, lr = 0.8, 16, 42, 0.02
    rec = run_batch(land, make_optimizer("sgd", lr=lr), np.array([1.0, -2.0]), steps=50,
                    noise=Noise(sigma, batch, seed))
    rng = np.random.default_rng(seed)
    x = np.array([1.0, -2.0])
    for t in range(50):
        x = x - lr * (np.array([2.0, 20.0]) * x + sigma / math.sqrt(batch) * rng.standard_normal(2))
        np.testing.assert_allclose(rec.positions[t + 1], x, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("sigma", "batch"), [(1.0, 1), (2.0, 16), (0.3, 9)])
def test_noise_standard_deviation_is_sigma_over_sqrt_batch(sigma, batch):
    """On f = 0 with lr 1 every step is −(σ/√B)ξ: 200 runs × 100 steps × 2 coordinates = 40,000 samples,
    whose sample standard deviation is within 3% of σ/√B (its relative standard error is 1/√(2N) ≈ 0.35%)
    and whose mean is within 5 standard errors of 0."""
    starts = np.zeros((200, 2))
    rec = run_batch(flat(), make_optimizer("sgd", lr=1.0), starts, steps=100, noise=Noise(sigma, batch, 7))
    steps = np.diff(rec.positions, axis=0).ravel()
    expected = sigma / math.sqrt(batch)
    assert steps.size == 40_000
    assert abs(steps.std() / expected - 1.0) < 0.03
    assert abs(steps.mean()) < 5 * expected / math.sqrt(steps.size)


def test_noise_carries_balls_out_of_the_shallow_well_where_gd_stays():
    """two_wells from its local minimum: gradient descent stays in the shallow well; with σ = 2 (B = 1) most
    of 50 seeded runs cross to the deep well (x > 0) within 2000 steps, and a batch of 100 (σ/√B = 0.2)
    smooths the noise so that every run stays."""
    land = make_landscape("two_wells")
    opt = make_optimizer("sgd", lr=0.1)
    gd = run_batch(land, opt, TWO_WELLS_LOCAL, steps=2000, tol=None)
    assert gd.final_params[0] < 0 and np.linalg.norm(gd.final_params - TWO_WELLS_LOCAL) < 0.01
    starts = np.broadcast_to(TWO_WELLS_LOCAL, (50, 2))
    noisy = run_batch(land, opt, starts, steps=2000, tol=None, noise=Noise(2.0, 1, 0))
    assert np.mean(noisy.final_params[:, 0] > 0) > 0.5
    smooth = run_batch(land, opt, starts, steps=2000, tol=None, noise=Noise(2.0, 100, 0))
    assert np.all(smooth.final_params[:, 0] < 0)


def test_noise_leaves_the_recorded_gradient_norm_true():
    land = make_landscape("elliptic")
    rec = run_batch(land, make_optimizer("sgd", lr=0.01), np.array([5.0, 5.0]), steps=30, noise=Noise(3.0, 1, 1))
    true = np.linalg.norm(land.grad(rec.positions), axis=-1)
    np.testing.assert_allclose(rec.grad_norm, true, rtol=1e-12)


def test_looped_optimizers_draw_one_seed_per_run():
    land = make_landscape("elliptic")
    opt = make_optimizer("lbfgs", lr=0.5)
    starts = np.array([[5.0, 5.0], [5.0, 5.0]])
    rec = run_batch(land, opt, starts, steps=5, noise=Noise(1.0, 1, 3))
    one = run_batch(land, opt, starts[0], steps=5, noise=Noise(1.0, 1, 3))
    two = run_batch(land, opt, starts[0], steps=5, noise=Noise(1.0, 1, 4))
    assert np.array_equal(rec.positions[:, 0], one.positions)
    assert np.array_equal(rec.positions[:, 1], two.positions)


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"sigma": -0.1}, "sigma must be between 0"),
    ({"sigma": math.nan}, "sigma must be between 0"),
    ({"sigma": math.inf}, "sigma must be between 0"),
    ({"sigma": 1e9}, "sigma must be between 0"),
    ({"sigma": 1.0, "batch_size": 0}, "batch_size must be between 1"),
    ({"sigma": 1.0, "seed": -1}, "seed must be between 0"),
])
def test_bad_noise_values_are_refused_with_the_value(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Noise(**kwargs)


@pytest.mark.parametrize("kwargs", [{"sigma": "1"}, {"sigma": True}, {"sigma": 1.0, "batch_size": 2.5},
                                    {"sigma": 1.0, "seed": "3"}])
def test_wrong_types_are_refused(kwargs):
    with pytest.raises(TypeError):
        Noise(**kwargs)


@given(sigma=st.floats(0, 1000), batch=st.integers(1, 10**6), seed=st.integers(0, 2**31 - 1))
@settings(max_examples=50, deadline=None)
def test_parse_round_trips_both_spellings(sigma, batch, seed):
    want = Noise(sigma, batch, seed)
    assert Noise.parse(f"{sigma!r},{batch},{seed}") == want
    assert Noise.parse(f"seed={seed},batch={batch},sigma={sigma!r}") == want


def test_parse_defaults_and_mistakes():
    assert Noise.parse("0.5") == Noise(0.5, 1, 0)
    assert Noise.parse("sigma=0.5,batch=4") == Noise(0.5, 4, 0)
    for bad in ("", "a", "1,2,3,4", "sigma=1,foo=2", "batch=2", "1,2.5", "sigma=1,sigma=2", "1,nan"):
        with pytest.raises(ValueError):
            Noise.parse(bad)


def test_run_single_reports_its_noise():
    res = run_single(make_landscape("elliptic"), "sgd", [5.0, 5.0], steps=5, hyperparams={"lr": 0.01},
                     noise=Noise(0.5, 4, 2))
    assert res.extra["noise"] == {"sigma": 0.5, "batch_size": 4, "seed": 2}


# -- the command line -----------------------------------------------------------------------------
def test_cli_run_with_noise_is_reproducible(capsys):
    argv = ["run", "--landscape", "two_wells", "--optimizer", "sgd", "--set", "lr=0.1", "--start=-1.44,-0.48",
            "--steps", "200", "--noise", "sigma=1,batch=4,seed=9", "--json"]
    outs = []
    for _ in range(2):
        assert main(argv) == 0
        outs.append(json.loads(capsys.readouterr().out))
    assert outs[0]["trajectory"] == outs[1]["trajectory"]
    assert outs[0]["extra"]["noise"] == {"sigma": 1.0, "batch_size": 4, "seed": 9}
    assert main(argv[:-3] + ["--json"]) == 0
    assert json.loads(capsys.readouterr().out)["trajectory"] != outs[0]["trajectory"]


def test_cli_compare_takes_noise(capsys):
    argv = ["compare", "--landscape", "elliptic", "--optimizer", "sgd:lr=0.01", "--optimizer", "adam:lr=0.1",
            "--steps", "20", "--noise", "1,4,2", "--json"]
    assert main(argv) == 0
    assert json.loads(capsys.readouterr().out)


@pytest.mark.parametrize(("value", "needle"), [("-1", "sigma must be between 0"), ("1,0", "batch_size"),
                                                ("1,x", "batch_size must be an integer"),
                                                ("abc", "sigma must be a number")])
def test_cli_bad_noise_exits_2_with_one_line(capsys, value, needle):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(["run", "--landscape", "elliptic", "--optimizer", "sgd", f"--noise={value}"]))
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "--noise" in err and needle in err and "Traceback" not in err
