"""``gdlab demo``: a short comparison table of optimizers on the seeds' elliptic bowl x² + 10y²."""

from __future__ import annotations

import argparse

import numpy as np

from gdlab.cli import options as o

# The seeds' comparison: SGD vs Adam (and friends) on f(x, y) = x² + 10y² from (5, 5), 50 steps.
DEMO_RUNS = [
    ("sgd", {"lr": 0.01}),
    ("sgd", {"lr": 0.01, "momentum": 0.9}),
    ("nesterov", {"lr": 0.01, "momentum": 0.9}),
    ("adam", {"lr": 0.1}),
    ("adamw", {"lr": 0.1}),
]


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--steps", type=int, default=50, help="number of steps (default 50)")


def run(args: argparse.Namespace) -> int:
    from gdlab.core.objective import Quadratic
    from gdlab.core.optimizers import make_optimizer

    if not 1 <= args.steps <= o.MAX_STEPS:
        raise o.usage(f"--steps must be between 1 and {o.MAX_STEPS}, got {args.steps}")
    bowl = Quadratic(np.diag([2.0, 20.0]))  # ½xᵀAx = x² + 10y²
    print(f"f(x, y) = x² + 10y² from (5, 5), {args.steps} steps")
    print(f"{'optimizer':<34} {'final loss':>12} {'x':>10} {'y':>10}")
    for name, hyper in DEMO_RUNS:
        opt = make_optimizer(name, **hyper)
        params = np.array([5.0, 5.0])
        state = opt.init(params)
        for _ in range(args.steps):
            params, state, _ = opt.step(bowl, params, state)
        label = name + " " + " ".join(f"{k}={v}" for k, v in hyper.items())
        print(f"{label:<34} {float(bowl.value(params)):>12.6g} {params[0]:>10.4g} {params[1]:>10.4g}")
    return 0


COMMAND = ("demo", "compare optimizers on the seeds' elliptic bowl and print a table", add_arguments, run)
