"""Learning problems on bundled scikit-learn data, data regimes and the training loop.

Oracles: central finite differences and PyTorch autograd for every gradient, ``np.linalg.lstsq`` for
linear regression, hand-rolled loops for accumulation and batched runs.
"""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from gdlab.core.optimizers import make_optimizer
from gdlab.problems import (
    PROBLEMS,
    MeanObjective,
    epoch_batches,
    group_batches,
    list_problems,
    load_dataset,
    make_problem,
    minibatches,
    steps_per_epoch,
    train,
)

NAMES = ["linear_regression", "logistic_regression", "softmax_regression", "mlp"]


@pytest.fixture(scope="module")
def problems():
    return {name: make_problem(name) for name in NAMES}


def random_params(problem, seed, batch=(), scale=0.5):
    return scale * np.random.default_rng(seed).standard_normal(tuple(batch) + (problem.n_params,))


# -- registry, data, parameters ------------------------------------------------------------------


def test_registry_and_listing():
    assert list(PROBLEMS) == NAMES
    info = list_problems()
    assert [i["name"] for i in info] == NAMES
    json.dumps(info)  # JSON-ready
    by_name = {i["name"]: i for i in info}
    assert by_name["mlp"]["n_params"] == 64 * 32 + 32 + 32 * 10 + 10
    assert by_name["softmax_regression"]["n_params"] == 650
    assert by_name["linear_regression"]["task"] == "regression"


def test_unknown_problem_lists_names_and_suggests():
    with pytest.raises(ValueError, match="unknown problem 'lin_regression'") as err:
        make_problem("lin_regression")
    assert "did you mean 'linear_regression'" in str(err.value)
    for name in NAMES:
        assert name in str(err.value)


def test_bad_problem_params():
    with pytest.raises(ValueError, match="hidden=0"):
        make_problem("mlp", hidden=0)
    with pytest.raises(ValueError, match="val_fraction"):
        make_problem("logistic_regression", val_fraction=1.0)
    with pytest.raises(TypeError, match="did you mean 'hidden'"):
        make_problem("mlp", hiden=3)


@pytest.mark.parametrize("name", NAMES)
def test_split_and_standardisation_use_train_rows_only(problems, name):
    problem = problems[name]
    X, _ = load_dataset(problem.dataset)
    n = len(X)
    assert problem.n_val == round(0.2 * n) and problem.n_train == n - problem.n_val
    rows = np.concatenate([problem.train_rows, problem.val_rows])
    assert np.array_equal(np.sort(rows), np.arange(n))
    np.testing.assert_allclose(problem.feature_mean, X[problem.train_rows].mean(axis=0))
    np.testing.assert_allclose(problem.X_train.mean(axis=0), 0, atol=1e-12)
    std = problem.X_train.std(axis=0)
    varying = X[problem.train_rows].std(axis=0) > 0
    np.testing.assert_allclose(std[varying], 1)
    assert np.all(np.isfinite(problem.X_val))
    # seeded: same seed same split, another seed another split
    again = make_problem(name)
    assert np.array_equal(again.val_rows, problem.val_rows)
    assert not np.array_equal(make_problem(name, split_seed=1).val_rows, problem.val_rows)


def test_linear_regression_target_is_standardised(problems):
    problem = problems["linear_regression"]
    assert abs(problem.y_train.mean()) < 1e-12 and abs(problem.y_train.std() - 1) < 1e-12
    assert problem.loss(np.zeros(problem.n_params)) == pytest.approx(0.5)
    _, y = load_dataset("diabetes")
    X, _ = load_dataset("diabetes")
    pred = problem.predict(problem.solution(), X[problem.val_rows])
    assert pred.shape == (problem.n_val,)
    assert np.corrcoef(pred, y[problem.val_rows])[0, 1] > 0.6


@pytest.mark.parametrize("name", NAMES)
def test_pack_unpack_roundtrip(problems, name):
    problem = problems[name]
    p = random_params(problem, 1, batch=(2, 3))
    blocks = problem.unpack(p)
    assert [k for k, _ in problem.layout] == list(blocks)
    for key, shape in problem.layout:
        assert blocks[key].shape == (2, 3) + shape
    np.testing.assert_array_equal(problem.pack(**blocks), p)


def test_layout_is_row_major(problems):
    soft = problems["softmax_regression"]
    p = np.arange(soft.n_params, dtype=float)
    W = soft.unpack(p)["W"]
    assert W[3, 7] == 10 * 3 + 7 and soft.unpack(p)["b"][0] == 640
    mlp = problems["mlp"]
    blocks = mlp.unpack(np.arange(mlp.n_params, dtype=float))
    assert blocks["W1"][2, 5] == 2 * 32 + 5
    assert blocks["b1"][0] == 64 * 32
    assert blocks["W2"][0, 0] == 64 * 32 + 32


def test_init_params(problems):
    mlp = problems["mlp"]
    a, b = mlp.init_params(0), mlp.init_params(0)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, mlp.init_params(1))
    batch = mlp.init_params(0, (3,))
    assert batch.shape == (3, mlp.n_params) and not np.array_equal(batch[0], batch[1])
    assert np.abs(mlp.unpack(a)["b1"]).max() == 0 and 0.05 < mlp.unpack(a)["W1"].std() < 0.25
    lin = problems["logistic_regression"]
    assert np.array_equal(lin.init_params(5, (2,)), np.zeros((2, lin.n_params)))


# -- gradients -----------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.0, 0.3])
@pytest.mark.parametrize("name", NAMES)
def test_gradient_matches_central_differences(name, alpha):
    problem = make_problem(name, alpha=alpha)
    rng = np.random.default_rng(7)
    rows = rng.choice(problem.n_train, size=40, replace=False)
    objective = problem.objective(rows)
    P = random_params(problem, 3, batch=(2,))
    loss, grad = objective.value_and_grad(P)
    assert loss.shape == (2,) and grad.shape == P.shape
    np.testing.assert_allclose(objective.value(P), loss)
    np.testing.assert_allclose(objective.grad(P), grad)
    h = 1e-6
    for i in rng.choice(problem.n_params, size=6, replace=False):
        e = np.zeros(problem.n_params)
        e[i] = h
        fd = (objective.value(P + e) - objective.value(P - e)) / (2 * h)
        np.testing.assert_allclose(grad[:, i], fd, rtol=1e-5, atol=1e-8)


@pytest.mark.parametrize("name", NAMES)
def test_batched_evaluation_equals_single_runs(problems, name):
    problem = problems[name]
    objective = problem.objective()
    P = random_params(problem, 4, batch=(2, 2))
    loss, grad = objective.value_and_grad(P)
    for i in range(2):
        for j in range(2):
            one_loss, one_grad = objective.value_and_grad(P[i, j])
            np.testing.assert_allclose(loss[i, j], one_loss, rtol=1e-12)
            np.testing.assert_allclose(grad[i, j], one_grad, rtol=1e-10, atol=1e-15)
    acc = problem.accuracy(P, "val")
    if problem.task == "classification":
        assert acc.shape == (2, 2)
        assert acc[1, 0] == problem.accuracy(P[1, 0], "val")
    else:
        assert acc is None


def _torch_loss(problem, p, X, y, alpha):
    X = torch.tensor(X)
    blocks = {k: torch.tensor(v, requires_grad=True) for k, v in problem.unpack(p).items()}
    if problem.name == "logistic_regression":
        z = X @ blocks["w"] + blocks["b"]
        loss = torch.nn.functional.binary_cross_entropy_with_logits(z, torch.tensor(y))
        penalty = (blocks["w"] ** 2).sum()
    elif problem.name == "softmax_regression":
        loss = torch.nn.functional.cross_entropy(X @ blocks["W"] + blocks["b"], torch.tensor(y))
        penalty = (blocks["W"] ** 2).sum()
    else:
        H = torch.tanh(X @ blocks["W1"] + blocks["b1"])
        loss = torch.nn.functional.cross_entropy(H @ blocks["W2"] + blocks["b2"], torch.tensor(y))
        penalty = (blocks["W1"] ** 2).sum() + (blocks["W2"] ** 2).sum()
    total = loss + 0.5 * alpha * penalty
    total.backward()
    grad = problem.pack(**{k: v.grad.numpy() for k, v in blocks.items()})
    return total.item(), grad


@pytest.mark.parametrize("alpha", [0.0, 0.1])
@pytest.mark.parametrize("name", ["logistic_regression", "softmax_regression", "mlp"])
def test_gradient_matches_torch_autograd(name, alpha):
    problem = make_problem(name, alpha=alpha)
    rows = np.random.default_rng(0).choice(problem.n_train, size=100, replace=False)
    objective = problem.objective(rows)
    for seed in range(2):
        p = random_params(problem, seed, scale=1.0)
        loss, grad = objective.value_and_grad(p)
        t_loss, t_grad = _torch_loss(problem, p, problem.X_train[rows], problem.y_train[rows], alpha)
        assert loss == pytest.approx(t_loss, rel=1e-12)
        np.testing.assert_allclose(grad, t_grad, rtol=1e-9, atol=1e-14)


def test_losses_are_stable_for_huge_logits(problems):
    for name in ["logistic_regression", "softmax_regression", "mlp"]:
        problem = problems[name]
        loss, grad = problem.objective().value_and_grad(random_params(problem, 0, scale=1e4))
        assert np.isfinite(loss) and np.all(np.isfinite(grad))


@pytest.mark.parametrize("name", ["linear_regression", "logistic_regression"])
def test_hessian_matches_differences_of_gradient(name):
    problem = make_problem(name, alpha=0.2)
    objective = problem.objective(np.arange(60))
    P = random_params(problem, 2, batch=(2,), scale=0.3)
    H = objective.hessian(P)
    assert H.shape == (2, problem.n_params, problem.n_params)
    h = 1e-6
    for i in [0, 3, problem.n_params - 1]:
        e = np.zeros(problem.n_params)
        e[i] = h
        fd = (objective.grad(P + e) - objective.grad(P - e)) / (2 * h)
        np.testing.assert_allclose(H[..., i], fd, rtol=1e-6, atol=1e-8)


def test_solution_is_the_least_squares_minimiser():
    for alpha in [0.0, 0.5]:
        problem = make_problem("linear_regression", alpha=alpha)
        sol = problem.solution()
        assert np.abs(problem.objective().grad(sol)).max() < 1e-12


# -- data regimes --------------------------------------------------------------------------------


def test_minibatch_regimes():
    full = list(minibatches(10, None, epochs=3, seed=0))
    assert len(full) == 3 and all(np.array_equal(b, np.arange(10)) for b in full)
    assert all(np.array_equal(b, np.arange(10)) for b in minibatches(10, 50, epochs=2))
    sgd = list(minibatches(10, 1, epochs=2, seed=0))
    assert len(sgd) == 20 and all(len(b) == 1 for b in sgd)
    mini = list(minibatches(10, 3, epochs=2, seed=0))
    assert [len(b) for b in mini] == [3, 3, 3, 1] * 2  # the last partial batch is kept
    assert steps_per_epoch(10) == 1 and steps_per_epoch(10, 1) == 10 and steps_per_epoch(10, 3) == 4
    assert steps_per_epoch(10, 3, accumulate=3) == 2 and steps_per_epoch(10, 1, accumulate=4) == 3
    assert [len(g) for g in group_batches(epoch_batches(10, 3, 0), 3)] == [3, 1]


def test_reshuffling_is_seeded_and_covers_every_row():
    n = 23
    epochs = [np.concatenate(epoch_batches(n, 4, e, seed=5)) for e in range(4)]
    for order in epochs:
        assert np.array_equal(np.sort(order), np.arange(n))  # every row exactly once
    assert not np.array_equal(epochs[0], epochs[1]) and not np.array_equal(epochs[1], epochs[2])
    again = [np.concatenate(epoch_batches(n, 4, e, seed=5)) for e in range(4)]
    assert all(np.array_equal(a, b) for a, b in zip(epochs, again, strict=True))
    assert not np.array_equal(np.concatenate(epoch_batches(n, 4, 0, seed=6)), epochs[0])
    flat = np.concatenate(list(minibatches(n, 4, epochs=4, seed=5)))
    assert np.array_equal(flat, np.concatenate(epochs))


@pytest.mark.parametrize(
    ("batch_size", "accumulate", "expected"),
    [(None, 1, 1), (1, 1, 354), (32, 1, 12), (10_000, 1, 1), (32, 5, 3), (59, 3, 2)],
)
def test_steps_per_epoch_in_training(problems, batch_size, accumulate, expected):
    problem = problems["linear_regression"]
    assert problem.n_train == 354
    result = train(problem, make_optimizer("sgd", lr=0.01), batch_size=batch_size, epochs=2, accumulate=accumulate)
    assert result.steps_per_epoch == expected and result.n_steps == 2 * expected
    assert result.train_loss.shape == (3,) and result.step_loss.shape == (2 * expected,)
    assert result.status == "max_steps" and result.stopped_at == 2 * expected


def test_accumulation_equals_one_batch_of_the_same_rows(problems):
    problem = problems["logistic_regression"]
    n = problem.n_train  # 455 = 5 · 91
    b, k = 13, 7  # 35 micro-batches of 13 rows, 5 groups of 91 rows per epoch
    assert n % (b * k) == 0
    opt = make_optimizer("sgd", lr=0.3, momentum=0.5)
    p0 = random_params(problem, 1, scale=0.1)
    result = train(problem, opt, batch_size=b, accumulate=k, epochs=2, seed=3, params=p0)
    assert result.n_steps == 2 * n // (b * k)
    p, state = p0, opt.init(p0)
    for epoch in range(2):
        for group in group_batches(epoch_batches(n, b, epoch, seed=3), k):
            union = problem.objective(np.concatenate(group))
            mean = MeanObjective([problem.objective(idx) for idx in group])
            np.testing.assert_allclose(mean.grad(p), union.grad(p), rtol=1e-12, atol=1e-15)
            p, state, _ = opt.step(union, p, state)
    np.testing.assert_allclose(result.params, p, rtol=1e-11, atol=1e-14)


# -- training ------------------------------------------------------------------------------------


def test_gradient_descent_converges_to_least_squares(problems):
    problem = problems["linear_regression"]
    H = problem.objective().hessian(np.zeros(problem.n_params))
    eigs = np.linalg.eigvalsh(H)
    lr = 1.8 / eigs[-1]  # stable: < 2/L
    result = train(problem, make_optimizer("sgd", lr=lr), epochs=4000)
    sol = problem.solution()
    assert np.linalg.norm(result.params - sol) / np.linalg.norm(sol) < 1e-6
    assert np.all(np.diff(result.train_loss) <= 1e-15)  # GD with lr < 2/L is monotone here


def test_seed_004_full_stochastic_and_minibatch_all_approach_least_squares(problems):
    """Seed 004: batch GD, SGD and mini-batch GD all approach the least-squares fit; SGD is noisier."""
    problem = problems["linear_regression"]
    sol = problem.solution()
    best = problem.loss(sol)
    # each regime with a suitable learning rate
    suited = {
        "full": train(problem, make_optimizer("sgd", lr=0.4), epochs=1500),
        "mini": train(problem, make_optimizer("sgd", lr=0.05), batch_size=32, epochs=60),
        "sgd": train(problem, make_optimizer("sgd", lr=0.003), batch_size=1, epochs=6),
    }
    for result in suited.values():
        excess = (result.train_loss[-1] - best) / best
        assert 0 <= excess < 0.03
    full = suited["full"].params
    assert np.linalg.norm(full - sol) / np.linalg.norm(sol) < 1e-2

    # the same learning rate and the same number of steps: the smaller the batch, the noisier
    lr, steps = 0.01, problem.n_train * 4
    same = {
        "full": train(problem, make_optimizer("sgd", lr=lr), epochs=steps),
        "mini": train(problem, make_optimizer("sgd", lr=lr), batch_size=32, epochs=math.ceil(steps / 12)),
        "sgd": train(problem, make_optimizer("sgd", lr=lr), batch_size=1, epochs=4),
    }
    excess = {k: (r.train_loss[-1] - best) / best for k, r in same.items()}
    assert excess["full"] < excess["mini"] < excess["sgd"] < 0.2
    wobble = {k: np.std(r.train_loss[-max(len(r.train_loss) // 3, 2):]) for k, r in same.items()}
    assert np.all(np.diff(same["full"].train_loss) <= 0)
    assert wobble["sgd"] > wobble["mini"] > wobble["full"]
    # the gradient noise itself, at the least-squares solution (where the full gradient is zero)
    noise = {
        size: np.mean([np.linalg.norm(problem.objective(idx).grad(sol)) for idx in epoch_batches(
            problem.n_train, size, 0, seed=0)])
        for size in (None, 32, 1)
    }
    assert noise[None] < 1e-12 < noise[32] < noise[1]


def test_batched_learning_rates_equal_separate_runs(problems):
    problem = problems["logistic_regression"]
    lrs = np.array([0.01, 0.1, 1.0])
    batched = train(problem, make_optimizer("sgd", lr=lrs, momentum=0.9), batch_size=32, epochs=3, seed=2)
    assert batched.params.shape == (3, problem.n_params)
    assert batched.train_loss.shape == (4, 3) and batched.lr.shape == (batched.n_steps, 3)
    assert list(batched.status) == ["max_steps"] * 3
    for i, lr in enumerate(lrs):
        single = train(problem, make_optimizer("sgd", lr=float(lr), momentum=0.9), batch_size=32, epochs=3, seed=2)
        np.testing.assert_allclose(batched.params[i], single.params, rtol=1e-10, atol=1e-13)
        np.testing.assert_allclose(batched.step_loss[:, i], single.step_loss, rtol=1e-10)
        np.testing.assert_allclose(batched.val_accuracy[:, i], single.val_accuracy)
        np.testing.assert_allclose(batched.lr[:, i], lr)


def test_batched_mlp_starts_equal_separate_runs(problems):
    problem = problems["mlp"]
    starts = problem.init_params(4, (2,))
    opt = make_optimizer("adam", lr=0.01)
    batched = train(problem, opt, batch_size=128, epochs=1, params=starts)
    for i in range(2):
        single = train(problem, opt, batch_size=128, epochs=1, params=starts[i])
        np.testing.assert_allclose(batched.params[i], single.params, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(
    ("name", "lr", "epochs", "threshold"),
    [("logistic_regression", 0.01, 20, 0.95), ("softmax_regression", 0.01, 5, 0.90), ("mlp", 0.01, 6, 0.90)],
)
def test_adam_reaches_good_validation_accuracy(problems, name, lr, epochs, threshold):
    result = train(problems[name], make_optimizer("adam", lr=lr), batch_size=32, epochs=epochs)
    assert result.status == "max_steps"
    assert result.val_accuracy[-1] > threshold
    assert result.train_loss[-1] < result.train_loss[0]


def test_nesterov_lookahead_goes_through_the_objective(problems):
    problem = problems["linear_regression"]
    result = train(problem, make_optimizer("nesterov", lr=0.1, momentum=0.9), epochs=300)
    assert (result.train_loss[-1] - problem.loss(problem.solution())) < 1e-4


def test_divergence_is_reported_with_the_step_and_no_nan(problems):
    problem = problems["linear_regression"]
    result = train(problem, make_optimizer("sgd", lr=1e3), epochs=500)
    assert result.status == "diverged"
    assert isinstance(result.stopped_at, int) and 0 < result.stopped_at < 500
    assert str(result.stopped_at) in result.reason
    assert np.all(np.isfinite(result.params))
    assert result.epochs_run < 500
    json.dumps(result.to_json(), allow_nan=False)

    mixed = train(problem, make_optimizer("sgd", lr=np.array([0.1, 1e3])), epochs=200)
    assert list(mixed.status) == ["max_steps", "diverged"]
    assert mixed.stopped_at[0] == 200 and mixed.stopped_at[1] == result.stopped_at
    assert np.all(np.isfinite(mixed.params))
    assert np.isnan(mixed.step_loss[-1, 1]) and np.isnan(mixed.train_loss[-1, 1])
    calm = train(problem, make_optimizer("sgd", lr=0.1), epochs=200)
    np.testing.assert_allclose(mixed.params[0], calm.params, rtol=1e-12, atol=1e-14)
    json.dumps(mixed.to_json(), allow_nan=False)


class HalvingSchedule:
    """A schedule following the protocol: halve every 10 steps; records what it observes."""

    name = "halving"

    def __init__(self) -> None:
        self.seen: list[float] = []

    def init(self):
        return {"observed": 0}

    def lr(self, step, base_lr, state):
        return base_lr * 0.5 ** (step // 10)

    def observe(self, state, loss):
        self.seen.append(loss)
        return {"observed": state["observed"] + 1}


def test_schedule_protocol_and_epoch_callback(problems):
    problem = problems["logistic_regression"]
    schedule = HalvingSchedule()
    calls = []
    result = train(
        problem, make_optimizer("sgd", lr=0.5), batch_size=100, epochs=6, schedule=schedule,
        on_epoch=lambda epoch, metrics: calls.append((epoch, metrics)),
    )
    steps = np.arange(result.n_steps)
    np.testing.assert_allclose(result.lr, 0.5 * 0.5 ** (steps // 10))
    np.testing.assert_allclose(schedule.seen, result.step_loss)
    assert result.schedule == "halving"
    assert [e for e, _ in calls] == list(range(1, 7))
    last = calls[-1][1]
    assert last["step"] == result.n_steps and last["val_accuracy"] == result.val_accuracy[-1]
    assert set(last) >= {"epoch", "train_loss", "val_loss", "train_accuracy", "val_accuracy", "lr"}
    payload = json.loads(json.dumps(result.to_json(), allow_nan=False))
    assert payload["status"] == "max_steps" and len(payload["val_accuracy"]) == 7


def test_gdlab_schedules_drive_training(problems):
    schedules = pytest.importorskip("gdlab.core.schedules")
    problem = problems["logistic_regression"]
    lrs = np.array([0.05, 0.5])
    cosine = schedules.make_schedule("cosine", T_max=40)
    result = train(problem, make_optimizer("sgd", lr=lrs), batch_size=64, epochs=5, schedule=cosine)
    np.testing.assert_allclose(result.lr, cosine.curve(result.n_steps, lrs))
    plateau = schedules.make_schedule("plateau", patience=0, factor=0.5)
    result = train(problem, make_optimizer("sgd", lr=0.5), batch_size=16, epochs=2, schedule=plateau)
    assert result.lr[0] == 0.5 and result.lr[-1] < 0.5 and np.all(np.diff(result.lr) <= 0)


@pytest.mark.parametrize(
    ("kwargs", "pattern"),
    [
        ({"batch_size": 0}, "batch_size=0"),
        ({"batch_size": -4}, "batch_size=-4"),
        ({"batch_size": 2.5}, "batch_size=2.5"),
        ({"epochs": 0}, "epochs=0"),
        ({"accumulate": 0}, "accumulate=0"),
        ({"params": np.zeros(5)}, r"shape \(5,\)"),
        ({"params": np.zeros((2, 12))}, r"shape \(2, 12\)"),
    ],
)
def test_bad_training_input_raises(problems, kwargs, pattern):
    with pytest.raises(ValueError, match=pattern):
        train(problems["linear_regression"], make_optimizer("sgd"), **kwargs)


def test_bad_input_elsewhere(problems):
    problem = problems["linear_regression"]
    with pytest.raises(ValueError, match="unknown problem 'nope'"):
        train("nope", "sgd")
    with pytest.raises(ValueError, match="split='test'"):
        problem.loss(np.zeros(problem.n_params), "test")
    with pytest.raises(ValueError, match="indices"):
        problem.objective([0, problem.n_train])
    with pytest.raises(ValueError, match="batch_size=0"):
        list(minibatches(10, 0))
    with pytest.raises(ValueError, match="epochs=0"):
        list(minibatches(10, 2, epochs=0))
    with pytest.raises(ValueError, match="shape"):
        problem.objective().grad(np.zeros(3))
