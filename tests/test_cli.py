"""The command line: the seeds' numbers (computed independently here), JSON contracts, bad input.

Most commands run in-process through ``main(argv)``; a few through a subprocess to check the real
exit code and that no traceback reaches the user.
"""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from gdlab.cli.main import main
from gdlab.core.limits import LIMITS


def no_nan(text: str):
    def refuse(name: str):
        raise AssertionError(f"non-standard JSON constant {name}")

    return json.loads(text, parse_constant=refuse)


def run_json(capsys, argv: list[str]) -> dict:
    assert main(argv + ["--json"]) == 0
    out = capsys.readouterr().out
    assert out.count("\n") == 1, "--json prints exactly one line"
    return no_nan(out)


def fails(capsys, argv: list[str]) -> str:
    """Run a bad command: exit code 2 and one line on stderr, which is returned."""
    with pytest.raises(SystemExit) as exc:  # argparse's own errors exit through SystemExit
        code = main(argv)
        raise SystemExit(code)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.endswith("\n") and err.count("\n") == 1, err
    assert "Traceback" not in err
    return err


# -- seed 002: the double well x⁴ − 3x² + 2 from x = 2, 100 steps --------------------------------
def double_well_numpy(lr: float, x: float = 2.0, steps: int = 100) -> tuple[list[float], list[float]]:
    xs = [x]
    for _ in range(steps):
        x = x - lr * (4 * x**3 - 6 * x)
        xs.append(x)
    return xs, [v**4 - 3 * v**2 + 2 for v in xs]


@pytest.mark.parametrize("lr", [0.01, 0.05, 0.1])
def test_seed_double_well_run(capsys, lr):
    xs, fs = double_well_numpy(lr)
    for objective in (["--landscape", "double_well"], ["--expr", "x^4 - 3*x^2 + 2"]):
        data = run_json(capsys, ["run", *objective, "--optimizer", "sgd", "--set", f"lr={lr}", "--start", "2",
                                 "--steps", "100"])
        assert data["status"] == "max_steps" and data["stopped_at"] == 100
        np.testing.assert_allclose(np.array(data["trajectory"])[:, 0], xs, rtol=1e-12, atol=1e-300)
        np.testing.assert_allclose(data["loss"], fs, rtol=1e-12, atol=1e-12)
        assert len(data["grad_norm"]) == 101 and len(data["lr"]) == 100
    # the seed prints x_final and f(x) with 6 decimals
    assert f"{xs[-1]:.6f}" == {0.01: "1.224746", 0.05: "1.224745", 0.1: "0.000000"}[lr]


def test_seed_double_well_sweep_in_one_command(capsys):
    data = run_json(capsys, ["sweep", "lr", "--landscape", "double_well", "--optimizer", "sgd",
                             "--lrs", "0.01,0.05,0.1", "--start", "2", "--steps", "100"])
    for i, lr in enumerate([0.01, 0.05, 0.1]):
        xs, fs = double_well_numpy(lr)
        assert data["final_point"][i][0] == pytest.approx(xs[-1], rel=1e-12, abs=1e-300)
        assert data["final_loss"][i] == pytest.approx(fs[-1], rel=1e-12)
    assert main(["sweep", "lr", "--landscape", "double_well", "--optimizer", "sgd", "--lrs", "0.01,0.05,0.1",
                 "--start", "2", "--steps", "100"]) == 0
    text = capsys.readouterr().out
    assert "(1.224745838)" in text and "max_steps at 100" in text


# -- seed 002: SGD (lr 0.01) vs Adam (lr 0.1) on x² + 10y² from (5, 5) ---------------------------
def seed_sgd_vs_adam(steps: int = 50) -> tuple[list[float], list[float]]:
    """The seed's own loop (its Adam: eps outside the root), losses after each update."""
    f = lambda p: p[0] ** 2 + 10 * p[1] ** 2  # noqa: E731
    grad = lambda p: np.array([2 * p[0], 20 * p[1]])  # noqa: E731
    sgd, adam = np.array([5.0, 5.0]), np.array([5.0, 5.0])
    m = v = np.zeros(2)
    out_sgd, out_adam = [f(sgd)], [f(adam)]
    for t in range(1, steps + 1):
        sgd = sgd - 0.01 * grad(sgd)
        g = grad(adam)
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g**2
        adam = adam - 0.1 * (m / (1 - 0.9**t)) / (np.sqrt(v / (1 - 0.999**t)) + 1e-8)
        out_sgd.append(f(sgd))
        out_adam.append(f(adam))
    return out_sgd, out_adam


def test_seed_sgd_vs_adam_table(capsys):
    sgd, adam = seed_sgd_vs_adam()
    argv = ["compare", "--landscape", "elliptic", "--start", "5,5", "--steps", "50",
            "--optimizer", "sgd:lr=0.01", "--optimizer", "adam:lr=0.1", "--at", "1,11,21,31,41"]
    data = run_json(capsys, argv)
    rows = data["loss_at"]["loss"]
    np.testing.assert_allclose(rows[0], [sgd[k] for k in (1, 11, 21, 31, 41)], rtol=1e-12)
    np.testing.assert_allclose(rows[1], [adam[k] for k in (1, 11, 21, 31, 41)], rtol=1e-12)
    # the seed's printed table (its row "step s" is the loss after s + 1 updates)
    assert [f"{v:.4f}" for v in rows[0]] == ["184.0100", "17.8739", "10.7225", "7.1445", "4.7696"]
    assert [f"{v:.4f}" for v in rows[1]] == ["264.1100", "168.1767", "97.0211", "49.6428", "21.9048"]
    run0, run1 = data["runs"]
    np.testing.assert_allclose(run0["loss"], sgd, rtol=1e-12)
    np.testing.assert_allclose(run1["loss"], adam, rtol=1e-12)
    assert run0["label"] == "sgd lr=0.01" and run0["distance_to_minimum"] == pytest.approx(
        math.hypot(*run0["final_point"]))
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "184.01" in text and "21.904801" in text


# -- seed 002: warmup + cosine and cosine with eta_min --------------------------------------------
def test_seed_schedule_tables(capsys):
    cos = run_json(capsys, ["schedule", "cosine", "--set", "T_max=1000", "--set", "eta_min=1e-6", "--lr", "1e-3",
                            "--steps", "1000"])
    warm = run_json(capsys, ["schedule", "warmup_cosine", "--set", "warmup_steps=100", "--set", "total_steps=1000",
                             "--lr", "1e-3", "--steps", "1000"])
    for t in range(0, 1000, 100):
        seed_cos = 1e-6 + 0.5 * (1e-3 - 1e-6) * (1 + np.cos(t * np.pi / 1000))
        seed_warm = 1e-3 * t / 100 if t < 100 else 1e-3 * 0.5 * (1 + np.cos((t - 100) / 900 * np.pi))
        assert cos["lr"][t] == pytest.approx(seed_cos, rel=1e-12)
        assert warm["lr"][t] == pytest.approx(seed_warm, rel=1e-12, abs=1e-18)
    printed = [f"{cos['lr'][t]:.6f} | {warm['lr'][t]:.6f}" for t in (0, 100, 500, 900)]
    assert printed == ["0.001000 | 0.000000", "0.000976 | 0.001000", "0.000501 | 0.000587", "0.000025 | 0.000030"]
    assert len(cos["lr"]) == 1000 and cos["step"][:3] == [0, 1, 2]
    assert main(["schedule", "cosine", "--set", "T_max=1000", "--set", "eta_min=1e-6", "--lr", "1e-3",
                 "--steps", "1000", "--every", "100"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert len([ln for ln in lines if ln.strip() and ln.split()[0].isdigit()]) == 10


# -- seed 004: batch vs stochastic vs mini-batch linear regression ---------------------------------
def test_seed_linear_regression_regimes(capsys):
    from gdlab.problems import make_problem
    from gdlab.problems.batches import epoch_batches

    prob = make_problem("linear_regression")
    A = np.hstack([prob.X_train, np.ones((prob.n_train, 1))])
    y = prob.y_train
    epochs = 100

    def numpy_gd(batch_size):
        """The seed's update θ ← θ − η (1/|B|) Bᵀ(Bθ − y_B), over the engine's documented row order."""
        theta = np.zeros(A.shape[1])
        for e in range(epochs):
            for rows in epoch_batches(len(A), batch_size, e, 0):
                Xb, yb = A[rows], y[rows]
                theta = theta - 0.01 * Xb.T @ (Xb @ theta - yb) / len(rows)
        return theta, 0.5 * np.mean((A @ theta - y) ** 2)

    data = run_json(capsys, ["compare", "--problem", "linear_regression", "--epochs", str(epochs),
                             "--optimizer", "batch=sgd:lr=0.01",
                             "--optimizer", "stochastic=sgd:lr=0.01,batch_size=1",
                             "--optimizer", "mini-batch=sgd:lr=0.01,batch_size=32"])
    assert [r["label"] for r in data["runs"]] == ["batch", "stochastic", "mini-batch"]
    for run, bs in zip(data["runs"], [None, 1, 32], strict=True):
        theta, loss = numpy_gd(bs)
        np.testing.assert_allclose(run["params"], theta, rtol=1e-9, atol=1e-12)
        assert run["train_loss"][-1] == pytest.approx(loss, rel=1e-10)
        assert run["batch_size"] == bs
    steps = [r["n_steps"] for r in data["runs"]]
    assert steps == [100, 100 * prob.n_train, 100 * math.ceil(prob.n_train / 32)]
    # seed 004's claims: full batch decreases smoothly (monotone); one-sample SGD is noisy (not monotone)
    batch_curve = np.array(data["runs"][0]["train_loss"])
    sgd_curve = np.array(data["runs"][1]["train_loss"])
    assert np.all(np.diff(batch_curve) < 0)
    assert np.any(np.diff(sgd_curve) > 0)
    assert sgd_curve[10] < batch_curve[10]  # many cheap updates per epoch get there sooner


# -- too small / too large learning rate -------------------------------------------------------------
def test_too_small_and_too_large_learning_rates(capsys):
    lrs = [0.0001, 0.01, 0.09, 0.11]
    data = run_json(capsys, ["sweep", "lr", "--landscape", "elliptic", "--optimizer", "sgd", "--lrs",
                             ",".join(map(str, lrs)), "--start", "5,5", "--steps", "100", "--tol", "1e-6"])
    assert data["status"] == ["max_steps", "max_steps", "converged", "diverged"]
    # too small: after 100 steps the loss is still most of the start's 275 (the x part barely moved)
    x = 5 * (1 - 2 * 0.0001) ** 100
    yv = 5 * (1 - 20 * 0.0001) ** 100
    assert data["final_loss"][0] == pytest.approx(x**2 + 10 * yv**2, rel=1e-12)
    ana = run_json(capsys, ["analyze", "--landscape", "elliptic", "--at", "5,5"])
    assert ana["at"]["critical_lr"] == pytest.approx(0.1)  # 0.09 < 2/λmax = 0.1 < 0.11


# -- JSON contracts --------------------------------------------------------------------------------
def test_run_json_contract_on_divergence(capsys):
    data = run_json(capsys, ["run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=0.11",
                             "--start", "5,5", "--steps", "1000"])
    assert data["status"] == "diverged" and data["stopped_at"] < 1000
    assert "step" in data["reason"]
    n = len(data["trajectory"])
    assert n == len(data["loss"]) == len(data["grad_norm"]) == data["stopped_at"] + 1
    assert len(data["lr"]) == n - 1
    assert data["trajectory"][0] == [5.0, 5.0]


def test_run_with_schedule_and_typed_hyperparameters(capsys):
    data = run_json(capsys, ["run", "--landscape", "rosenbrock", "--optimizer", "sgd", "--set", "lr=0.001",
                             "--set", "momentum=0.9", "--set", "nesterov=true", "--schedule", "cosine",
                             "--schedule-set", "T_max=50", "--steps", "50", "--start=-1.5,2", "--tol", "1e-8"])
    assert data["hyperparams"]["nesterov"] is True and data["schedule"] == "cosine"
    assert data["lr"][0] == pytest.approx(0.001) and data["lr"][-1] < 1e-5
    data = run_json(capsys, ["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "betas=0.8,0.99",
                             "--steps", "5", "--start", "-1.5,2"])
    assert data["hyperparams"]["betas"] == [0.8, 0.99] and data["trajectory"][0] == [-1.5, 2.0]


def test_compare_spec_syntax(capsys):
    data = run_json(capsys, ["compare", "--landscape", "rosenbrock", "--steps", "30",
                             "--optimizer", "fast=adam:lr=0.1,betas=0.9/0.99",
                             "--optimizer", "sgd:lr=0.001,momentum=0.9+cosine:T_max=30",
                             "--optimizer", "newton"])
    labels = [r["label"] for r in data["runs"]]
    assert labels == ["fast", "sgd lr=0.001 momentum=0.9 +cosine T_max=30", "newton"]
    assert data["runs"][0]["hyperparams"]["betas"] == [0.9, 0.99]
    assert data["runs"][1]["schedule"] == "cosine"
    assert main(["compare", "--landscape", "rosenbrock", "--steps", "30", "--optimizer", "adam:lr=0.1",
                 "--optimizer", "sgd:lr=0.1"]) == 0
    text = capsys.readouterr().out
    assert "diverged at" in text and "steps to tol" in text


def test_list_json_has_every_category(capsys):
    data = run_json(capsys, ["list"])
    assert set(data) == {"landscapes", "optimizers", "schedules", "problems"}
    names = {o["name"] for o in data["optimizers"]}
    assert {"sgd", "adam", "lbfgs", "sam"} <= names
    sgd = next(o for o in data["optimizers"] if o["name"] == "sgd")
    assert {"name": "lr", "default": 0.001}.items() <= sgd["hyperparams"][0].items()
    data = run_json(capsys, ["list", "schedules"])
    assert set(data) == {"schedules"}
    assert main(["list", "landscapes"]) == 0
    assert "rosenbrock" in capsys.readouterr().out


def test_train_json_and_no_progress_bar_off_a_terminal(capsys):
    data = run_json(capsys, ["train", "--problem", "logistic_regression", "--optimizer", "adam", "--set", "lr=0.05",
                             "--batch-size", "32", "--epochs", "3", "--seed", "1"])
    assert len(data["train_loss"]) == 4 and len(data["train_accuracy"]) == 4
    assert data["train_accuracy"][-1] > 0.9
    assert main(["train", "--problem", "logistic_regression", "--optimizer", "sgd", "--set", "lr=0.1",
                 "--epochs", "2"]) == 0
    captured = capsys.readouterr()
    assert captured.err == "" and "train acc" in captured.out


def test_analyze_json(capsys):
    data = run_json(capsys, ["analyze", "--expr", "x^2 - y^2", "--at", "0,0"])
    assert data["at"]["kind"] == "saddle" and data["at"]["eigenvalues"] == [-2.0, 2.0]
    data = run_json(capsys, ["analyze", "--landscape", "monkey_saddle", "--at", "0,0"])
    assert data["at"]["kind"] == "degenerate"


def test_sweep_basin_json(capsys):
    data = run_json(capsys, ["sweep", "basin", "--landscape", "himmelblau", "--optimizer", "sgd", "--set", "lr=0.01",
                             "--resolution", "6,5", "--steps", "300"])
    assert np.array(data["basin"]).shape == (5, 6) and len(data["minima"]) == 4
    assert sum(data["counts"].values()) == 30
    assert main(["sweep", "basin", "--expr", "(x^2-1)^2 + y^2", "--optimizer", "sgd", "--set", "lr=0.05",
                 "--xlim=-2,2", "--ylim=-1,1", "--resolution", "8,3"]) == 0
    assert "minima found by grouping" in capsys.readouterr().out


# -- bad input -------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["run", "--landscape", "rosenbrok", "--optimizer", "adam"], "did you mean 'rosenbrock'"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adm"], "did you mean 'adam'"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "lrr=1"], "did you mean 'lr'"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "lr=abc"], "--set lr=abc"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "lr"], "NAME=VALUE"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "lr=-1"], "lr=-1"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--set", "betas=0.9"], "two numbers"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "sgd", "--set", "nesterov=maybe"], "true or false"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--steps", str(LIMITS.max_steps + 1)], "--steps"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--tol", "-1"], "--tol"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--start", "1,x"], "--start"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--start", "1,2,3"], "--start"),
        (["run", "--expr", "x^^2", "--optimizer", "adam"], "column"),
        (["run", "--expr", "log(x)", "--optimizer", "sgd", "--start=-1"], "not finite"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adam", "--schedule", "cosin"], "did you mean 'cosine'"),
        (["run", "--landscape", "rosenbrock", "--landscape-set", "c=1", "--optimizer", "adam"], "--landscape-set"),
        (["run", "--landscape", "rosenbrock"], "--optimizer"),
        (["compare", "--landscape", "elliptic", "--optimizer", "adam:lr=0.1,betas=0.9"], "two numbers"),
        (["compare", "--landscape", "elliptic", "--optimizer", "adamm:lr=0.1"], "did you mean 'adam'"),
        (["compare", "--landscape", "elliptic", "--optimizer", "sgd:lr=0.1,batch_size=4"], "--problem"),
        (["compare", "--landscape", "elliptic", "--optimizer", "sgd", "--at", "5,500"], "--at"),
        (["schedule", "cosine", "--steps", "10"], "T_max"),
        (["schedule", "cosine", "--set", "T_max=10", "--steps", "0"], "--steps"),
        (["list", "optimiser"], "did you mean 'optimizers'"),
        (["train", "--problem", "logistic_regresion", "--optimizer", "sgd"], "did you mean 'logistic_regression'"),
        (["train", "--problem", "mlp", "--optimizer", "sgd", "--batch-size", "0"], "--batch-size"),
        (["analyze", "--landscape", "saddle", "--at", "0"], "--at"),
        (["sweep", "lr", "--landscape", "elliptic", "--optimizer", "sgd", "--lrs", "0.1,abc"], "--lrs"),
        (["sweep", "lr", "--landscape", "elliptic", "--optimizer", "sgd", "--lr-range", "1:0.1:5"], "--lr-range"),
        (["sweep", "basin", "--landscape", "elliptic", "--optimizer", "sgd", "--resolution", "1000"], "--resolution"),
        (["sweep", "basin", "--landscape", "rosenbrock", "--landscape-set", "dim=3", "--optimizer", "sgd"], "2-D"),
        # the matrix optimizers and the schedules of issue 15
        (["run", "--landscape", "rosenbrock", "--optimizer", "muon"], "only 2-D parameters"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "muon", "--set", "ns_coefficients=1,2"], "3 numbers"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "rprop", "--set", "etas=0.5,0.9"], "etaplus"),
        (["schedule", "lambda", "--set", "lr_lambda=os.system(1)", "--steps", "5"], "unknown name 'os'"),
        (["schedule", "multiplicative", "--set", "lr_lambda=0.9*x", "--steps", "5"], "unknown name 'x'"),
        (["schedule", "lambda", "--steps", "5"], "lr_lambda must be set"),
        (["schedule", "chained", "--set", "schedulers=exponential(gamma=0.9)|cosine(T_max=9)", "--steps", "5"],
         "not the base rate times a factor"),
        (["schedule", "sequential", "--set", "schedulers=linear|cosine(T_max=9)", "--steps", "5"], "milestones"),
        (["schedule", "sequential", "--set", "schedulers=linear|cosin(T_max=9)", "--set", "milestones=3",
          "--steps", "5"], "did you mean 'cosine'"),
        (["schedule", "chained", "--set", "schedulers=plateau", "--steps", "5"], "reacts to the loss"),
        (["run", "--landscape", "rosenbrock", "--optimizer", "adagrad", "--schedule", "onecycle", "--schedule-set",
          "total_steps=10", "--schedule-set", "cycle_momentum=true", "--steps", "10"], "neither momentum nor betas"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(capsys, argv, needle):
    err = fails(capsys, argv)
    assert needle in err


def test_subprocess_exit_codes_and_no_traceback():
    def gdlab(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-m", "gdlab", *args], capture_output=True, text=True, timeout=120)

    bad = gdlab("run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=abc")
    assert bad.returncode == 2 and bad.stdout == ""
    assert bad.stderr.count("\n") == 1 and "Traceback" not in bad.stderr and "--set lr=abc" in bad.stderr
    diverging = gdlab("run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=0.5", "--start", "5,5",
                      "--json")
    assert diverging.returncode == 0 and diverging.stderr == ""
    data = no_nan(diverging.stdout)
    assert data["status"] == "diverged"
    text = gdlab("run", "--landscape", "elliptic", "--optimizer", "sgd", "--set", "lr=0.5", "--start", "5,5")
    assert text.returncode == 0 and "diverged at step" in text.stdout


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["sweep", "basin", "--landscape", "booth", "--optimizer", "sgd", "--xlim=-1e308,1e308"],
         "gdlab sweep: error: --xlim: the range '-1e308,1e308' is too wide; LO and HI must be between -1e+100 "
         "and 1e+100"),
        (["sweep", "basin", "--landscape", "booth", "--optimizer", "sgd", "--ylim=1,1.0000000000000002"],
         "gdlab sweep: error: --ylim: the range '1,1.0000000000000002' is too narrow for 41 distinct grid points"),
        (["run", "--landscape", "", "--optimizer", "sgd"], "gdlab run: error: unknown landscape ''; valid: sphere, "),
        (["run", "--expr", "--x", "--optimizer", "sgd"],
         "gdlab: error: argument --expr: expected one argument (a value starting with '-' must be written "
         "--expr=--x)"),
        (["sweep", "lr", "--landscape", "booth", "--optimizer", "sgd", "--lr-range", "-1:1:10"],
         "gdlab: error: argument --lr-range: expected one argument (a value starting with '-' must be written "
         "--lr-range=-1:1:10)"),
        (["sweep", "lr", "--landscape", "booth", "--optimizer", "sgd", "--lr-r", "-1:1:10"],
         "must be written --lr-range=-1:1:10)"),
        (["run", "--landscape", "booth", "--optimizer", "sgd", "--start"], "gdlab: error: argument --start: expected "
         "one argument\n"),
    ],
)
def test_bad_ranges_names_and_dashed_values_say_what_is_wrong(capsys, argv, message):
    """No NumPy warnings and no complaint about an option never given (``radius``); an empty name is an
    unknown landscape; a value starting with '-' gets the --opt=value hint (only when there is one)."""
    err = fails(capsys, argv)
    assert err.startswith(message) if message.endswith("\n") else message in err
    assert "radius" not in err and "NoneType" not in err and "Warning" not in err


# -- output that cannot be written --------------------------------------------------------------
def gdlab_with_stdout(stdout, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "gdlab", *args], stdout=stdout, stderr=subprocess.PIPE, text=True,
                          timeout=120)


@pytest.mark.parametrize(("argv", "prefix"), [(["list", "landscapes"], "gdlab list"),
                                              (["list", "landscapes", "--json"], "gdlab list"),
                                              (["--help"], "gdlab")])
def test_a_full_disk_is_one_line_and_exit_74(argv, prefix):
    with open("/dev/full", "w") as full:
        result = gdlab_with_stdout(full, *argv)
    assert result.returncode == 74  # EX_IOERR: an input/output error, not a usage error (2)
    assert result.stderr == f"{prefix}: error: cannot write the output: No space left on device\n"


@pytest.mark.parametrize("argv", [["list", "landscapes"], ["list", "optimizers", "--json"]])
def test_a_closed_stdout_is_one_line_and_exit_74(argv):
    closed = subprocess.run(["sh", "-c", 'exec "$0" "$@" >&-', sys.executable, "-m", "gdlab", *argv],
                            capture_output=True, text=True, timeout=120)
    assert closed.returncode == 74
    assert closed.stderr == "gdlab list: error: cannot write the output: standard output is closed\n"


def test_a_reader_that_stops_early_is_not_an_error():
    """``gdlab list | head``: the reader is gone before gdlab writes; exit 0 and nothing on stderr."""
    proc = subprocess.Popen([sys.executable, "-m", "gdlab", "list"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    proc.stdout.close()
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0 and err == b""


# -- start-up: what the commands that compute nothing import ------------------------------------------
HEAVY = ("sympy", "scipy", "numba", "matplotlib", "fastapi", "sklearn", "uvicorn", "PIL", "plotly")


@pytest.mark.parametrize("argv", [["list", "landscapes"], ["list", "optimizers"], ["list", "schedules"], ["--help"],
                                  ["run", "--help"], ["sweep", "basin", "--help"],
                                  ["run", "--landscape", "nope", "--optimizer", "sgd"],
                                  ["run", "--landscape", "booth", "--optimizer", "sgd", "--set", "lr=x"]])
def test_commands_that_compute_nothing_import_nothing_heavy(argv):
    """``gdlab list``, ``--help`` and usage errors load none of SymPy, SciPy, numba, matplotlib,
    FastAPI (they cost a second of start-up); bench/bench_startup.py times them."""
    code = (
        "import contextlib, io, json, sys\n"
        "from gdlab.cli.main import main\n"
        "with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):\n"
        "    status = main(sys.argv[1:])\n"
        "print(json.dumps([status, sorted({m.split('.')[0] for m in sys.modules})]))\n"
    )
    result = subprocess.run([sys.executable, "-c", code, *argv], capture_output=True, text=True, timeout=120)
    status, modules = json.loads(result.stdout)
    assert status in (0, 2)
    assert set(HEAVY).isdisjoint(modules), sorted(set(HEAVY) & set(modules))


# -- the help says what is accepted ------------------------------------------------------------------
def test_the_expr_help_names_only_accepted_variables(capsys):
    assert main(["run", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    assert "x1..xn" not in text and "a custom function of x (and y)" in text
    assert main(["run", "--expr", "x^2 + 10*y^2", "--optimizer", "sgd", "--steps", "2"]) == 0
    assert main(["run", "--expr=-x^2 - y^2 + 10", "--optimizer", "sgd", "--steps", "2"]) == 0
    capsys.readouterr()
    fails(capsys, ["run", "--expr", "x1^2 + x2^2", "--optimizer", "sgd"])


def test_the_readme_names_the_parameters_it_lists():
    """The README's table lists each landscape's parameters by their names (``condition``, not κ)."""
    from gdlab.landscapes import LANDSCAPES

    readme = (Path(__file__).parents[1] / "README.md").read_text()
    row = next(line for line in readme.splitlines() if line.startswith("| **Landscapes**"))
    for name, params in re.findall(r"(\w+) \(([^)]*)\)", row.split("|")[2]):
        declared = {h.name for h in LANDSCAPES[name].hyperparams}
        assert set(params.split(", ")) <= declared, (name, params)
