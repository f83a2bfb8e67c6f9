"""Benchmark: the batched run engine against a plain Python loop over runs, in the seeds' style.

Workload: Adam (lr 0.01) on the 2-D Rosenbrock function from 10,000 random starts in [-2, 2]²,
500 steps each, recording position, loss and gradient norm at every step.

- **engine**: one :func:`gdlab.engine.run.run_batch` call (Python loops over the 500 steps only).
- **loop**: the seeds' code: one ``Adam`` object per run (seed 002's class), ``f``/``grad_f`` on a
  2-vector, a Python loop over steps inside a Python loop over runs, appending to history lists.
  The loop is timed on a subset (200 runs by default) and scaled linearly to 10,000 runs — it does
  the same work for every run, so its time is proportional to the number of runs.

Run: ``python bench/bench_engine.py`` (options: ``--runs``, ``--steps``, ``--loop-runs``). Prints a
table and writes ``bench/out/engine.json``. Goal: a ratio of at least 100x.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import numpy as np
from seed_style import SeedAdam, f, grad_f

from gdlab.core.optimizers import make_optimizer
from gdlab.engine.run import run_batch
from gdlab.landscapes import make_landscape

OUT = Path(__file__).resolve().parent / "out" / "engine.json"
LR = 0.01


# -- the seeds' style -------------------------------------------------------------------------------
def seed_loop(starts: np.ndarray, steps: int) -> tuple[np.ndarray, list[list[float]]]:
    """One run after the other, recording like seed 000's ``history`` (plus loss and |grad|)."""
    finals, losses = [], []
    for x0 in starts:
        theta = x0.copy()
        opt = SeedAdam(lr=LR)
        history, loss, gnorm = [theta.copy()], [f(theta)], []
        for _ in range(steps):
            g = grad_f(theta)
            gnorm.append(np.linalg.norm(g))
            theta = opt.update(theta, g)
            history.append(theta.copy())
            loss.append(f(theta))
        finals.append(theta)
        losses.append(loss)
    return np.array(finals), losses


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10_000)
    ap.add_argument("--steps", type=int, default=500)
    ap.add_argument("--loop-runs", type=int, default=200, help="runs actually timed for the loop")
    args = ap.parse_args()

    rng = np.random.default_rng(0)
    starts = rng.uniform(-2.0, 2.0, size=(args.runs, 2))
    landscape = make_landscape("rosenbrock")

    run_batch(landscape, make_optimizer("adam", lr=LR), starts[:100], steps=5)  # warm-up
    engine_times = []
    for _ in range(3):  # best of 3: the engine call is short, so one noisy moment weighs a lot
        t0 = time.perf_counter()
        rec = run_batch(landscape, make_optimizer("adam", lr=LR), starts, steps=args.steps)
        engine_times.append(time.perf_counter() - t0)
    engine_s = min(engine_times)

    n_loop = min(args.loop_runs, args.runs)
    t0 = time.perf_counter()
    loop_final, _ = seed_loop(starts[:n_loop], args.steps)
    loop_subset_s = time.perf_counter() - t0
    loop_s = loop_subset_s * args.runs / n_loop

    agree = float(np.max(np.abs(rec.final_params[:n_loop] - loop_final)))
    ratio = loop_s / engine_s
    per_step_us = engine_s / args.steps * 1e6
    rows = [
        ("engine (one batched call)", f"{engine_s:.3f} s", f"{args.runs} runs measured (best of 3)"),
        ("seeds' loop over runs", f"{loop_s:.1f} s", f"{n_loop} runs measured ({loop_subset_s:.2f} s), "
                                                      f"scaled linearly x{args.runs / n_loop:g}"),
    ]
    print(f"Adam lr={LR} on Rosenbrock, {args.runs:,} runs x {args.steps} steps "
          "(position, loss, |grad| recorded every step)")
    width = max(len(r[0]) for r in rows)
    for name, t, note in rows:
        print(f"  {name:<{width}}  {t:>10}   {note}")
    print(f"  speed-up: {ratio:.0f}x  (goal >= 100x)   engine: {per_step_us:.0f} us per step for all runs")
    print(f"  max |final engine - final loop| over the {n_loop} shared runs: {agree:.2e}")
    result = {
        "workload": {"optimizer": "adam", "lr": LR, "landscape": "rosenbrock", "runs": args.runs,
                     "steps": args.steps, "starts": "uniform [-2, 2]^2, seed 0"},
        "engine_seconds": engine_s,
        "engine_seconds_all": engine_times,
        "loop_runs_measured": n_loop,
        "loop_subset_seconds": loop_subset_s,
        "loop_seconds_scaled": loop_s,
        "loop_scaling": f"linear: measured on {n_loop} runs, multiplied by {args.runs / n_loop:g}",
        "speedup": ratio,
        "goal": 100,
        "engine_us_per_step": per_step_us,
        "max_abs_final_difference": agree,
        "statuses": rec.counts(),
        "python": platform.python_version(),
        "numpy": np.__version__,
        "machine": platform.machine(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()
