"""Benchmark: many short trajectories — 1,000,000 starts × 100 steps of Adam on Rosenbrock.

Workload: Adam (lr 1e-2, β = (0.9, 0.999), ε = 1e-8) on the 2-D Rosenbrock function (a = 1, b = 100)
in float64, from ``--starts`` starts drawn uniformly in the landscape's domain [-2, 2] × [-1, 3]
(seed 0), ``--steps`` steps each; only the final positions are kept. Throughput is counted in
trajectory-steps per second: starts × steps / seconds. Side by side, in one process:

- **gdlab fused**: ``run_batch(make_landscape("rosenbrock"), make_optimizer("adam", lr=1e-2), x0,
  steps=100, record=False)``, the default ``backend="auto"``, which runs :mod:`gdlab.fast.trajectory`
  (the landscape's gradient and the Adam update in one compiled loop, blocks of runs on
  ``numba.get_num_threads()`` threads). ``gdlab.fast.trajectory.warmup()`` is called first, untimed;
  its time (compiling the kernels, or loading them from numba's disk cache) is shown separately.
  Rows: the default stopping rules (``tol=None`` i.e. off, the default box bound, ``blowup=1e8``),
  the rules off (``blowup=None, bound=math.inf``), and the default call on a single thread.
- **gdlab reference**: the same call with ``backend="reference"`` (the NumPy batched engine: a Python
  loop over the steps, whole-batch array operations per step), timed on ``--reference-starts``
  starts and scaled linearly to ``--starts`` (its cost per step is proportional to the batch size).
- **optax (jax.jit)**: ``jax_enable_x64``; ``optax.adam(1e-2)``; one ``jax.jit`` of a ``lax.scan`` over
  the steps on params of shape (N, 2), the gradient by ``jax.grad`` of the summed Rosenbrock; compiled
  by one untimed call (compile seconds shown separately), ``block_until_ready``. XLA uses its default
  thread pool (all cores). The row says "not installed" when jax/optax cannot be imported.
- **torch autograd**: a (N, 2) float64 tensor with ``requires_grad``, ``torch.optim.Adam(lr=1e-2)``
  (the default ``foreach`` implementation); each step ``zero_grad``, ``rosenbrock(p).sum()``,
  ``backward``, ``step``; ``torch.set_num_threads(--threads)``.
- **numpy (plain)**: vectorised Adam and the analytic gradient over the (N, 2) array, new arrays
  each step, as a user would write it (NumPy runs it on one core).
- **seeds' loop**: the seeds' style, a Python loop over the starts, each with its own Adam object
  (seed 002's class) and ``f``/``grad_f`` on a 2-vector, timed on ``--loop-starts`` starts and
  scaled linearly.

Timing: every method runs once untimed (warm-up, compilation), then ``--repeat`` rounds time each
method once per round, the order rotating from round to round, so that background load (the machine
may be shared) affects all of them alike; the table shows the best and the median, and the ratios
(and the goal) use the best, the round least disturbed by other load. "cores" is the
process CPU time over the wall time of the timed runs (how many cores a method kept busy). Not timed:
gdlab fused's final positions are compared with ``backend="reference"`` on the first
``--check-starts`` starts (they must be equal to the last bit), and the other methods' final
positions with gdlab's (max absolute difference; they round differently).

Run: ``python bench/bench_trajectories.py`` (options: ``--starts``, ``--steps``, ``--repeat``,
``--threads``, ``--reference-starts``, ``--loop-starts``, ``--quick`` for a smoke run with small sizes).
Prints a table and writes ``bench/out/trajectories.json``. Goal: gdlab fused ≥ 1.5× optax.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from seed_style import SeedAdam, grad_f

from gdlab.core.optimizers import make_optimizer
from gdlab.engine.run import run_batch
from gdlab.landscapes import make_landscape

OUT = Path(__file__).resolve().parent / "out" / "trajectories.json"
LR = 1e-2
BETA1, BETA2, EPS = 0.9, 0.999, 1e-8
GOAL = 1.5  # gdlab fused / optax


# -- the plain implementations ----------------------------------------------------------------------
def numpy_plain(x0: np.ndarray, steps: int) -> np.ndarray:
    """Adam on Rosenbrock over the (N, 2) array, as a user would write it with NumPy."""
    x = x0.copy()
    m = np.zeros_like(x)
    v = np.zeros_like(x)
    for t in range(1, steps + 1):
        a, b = x[:, 0], x[:, 1]
        r = b - a * a
        g = np.stack([-2 * (1 - a) - 400 * a * r, 200 * r], axis=1)
        m = BETA1 * m + (1 - BETA1) * g
        v = BETA2 * v + (1 - BETA2) * g * g
        m_hat = m / (1 - BETA1**t)
        v_hat = v / (1 - BETA2**t)
        x = x - LR * m_hat / (np.sqrt(v_hat) + EPS)
    return x


def seed_loop(x0: np.ndarray, steps: int) -> np.ndarray:
    """One start after the other, one Adam object each (the seeds' style, final positions only)."""
    finals = []
    for start in x0:
        theta = start.copy()
        opt = SeedAdam(lr=LR)
        for _ in range(steps):
            theta = opt.update(theta, grad_f(theta))
        finals.append(theta)
    return np.array(finals)


# -- the methods: name → (job, starts it runs on), or why it is skipped ------------------------------------
Job = Callable[[], Any]


def gdlab_jobs(x0: np.ndarray, steps: int, reference_starts: int) -> dict[str, tuple[Job, int]]:
    import numba

    land = make_landscape("rosenbrock")
    n = len(x0)
    threads = numba.get_num_threads()

    def fused(**rules: Any) -> Job:
        return lambda: run_batch(land, make_optimizer("adam", lr=LR), x0, steps=steps, record=False, **rules)

    def one_thread() -> Any:
        numba.set_num_threads(1)  # gdlab.fast.trajectory.threads() reads it in this (the calling) thread
        try:
            return run_batch(land, make_optimizer("adam", lr=LR), x0, steps=steps, record=False)
        finally:
            numba.set_num_threads(threads)

    xr = x0[:reference_starts]
    return {
        "gdlab fused": (fused(), n),
        "gdlab fused, rules off": (fused(blowup=None, bound=math.inf), n),
        "gdlab fused, 1 thread": (one_thread, n),
        "gdlab reference": (
            lambda: run_batch(land, make_optimizer("adam", lr=LR), xr, steps=steps, record=False,
                              backend="reference"),
            len(xr),
        ),
    }


def optax_job(x0: np.ndarray, steps: int) -> tuple[Job, float] | str:
    """The optax job and its compile seconds, or why it cannot run."""
    try:
        import jax
        import optax
    except ImportError as exc:
        return f"not installed ({exc.name})"
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    tx = optax.adam(LR)

    def loss(p: Any) -> Any:
        a, b = p[:, 0], p[:, 1]
        return jnp.sum((1.0 - a) ** 2 + 100.0 * (b - a * a) ** 2)

    grad = jax.grad(loss)

    @jax.jit
    def run(p: Any) -> Any:
        def body(carry: Any, _: Any) -> Any:
            p, state = carry
            updates, state = tx.update(grad(p), state, p)
            return (optax.apply_updates(p, updates), state), None

        (p, _), _ = jax.lax.scan(body, (p, tx.init(p)), None, length=steps)
        return p

    params = jax.device_put(jnp.asarray(x0, dtype=jnp.float64))
    start = time.perf_counter()
    run(params).block_until_ready()
    compile_s = time.perf_counter() - start
    return (lambda: run(params).block_until_ready()), compile_s


def torch_job(x0: np.ndarray, steps: int, threads: int) -> Job | str:
    try:
        import torch
    except ImportError as exc:
        return f"not installed ({exc.name})"
    torch.set_num_threads(threads)

    def run() -> Any:
        p = torch.from_numpy(x0).clone().requires_grad_(True)
        opt = torch.optim.Adam([p], lr=LR)
        for _ in range(steps):
            opt.zero_grad()
            a, b = p[:, 0], p[:, 1]
            loss = ((1.0 - a) ** 2 + 100.0 * (b - a * a) ** 2).sum()
            loss.backward()
            opt.step()
        return p.detach()

    return run


def final_positions(result: Any) -> np.ndarray:
    if hasattr(result, "final_params"):
        return np.asarray(result.final_params)
    if hasattr(result, "numpy"):
        return result.numpy()
    return np.asarray(result)


# -- timing -------------------------------------------------------------------------------------------
def time_round_robin(jobs: dict[str, Job], repeat: int) -> tuple[dict[str, list[float]], dict[str, list[float]],
                                                                dict[str, Any]]:
    """Wall and CPU seconds of every job, ``repeat`` times, one of each per round in rotating order;
    each job runs once untimed first. Returns (wall, cpu, last result of each)."""
    names = list(jobs)
    last = {k: fn() for k, fn in jobs.items()}
    wall: dict[str, list[float]] = {k: [] for k in names}
    cpu: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeat):
        for k in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(0.05)  # let the other libraries' idle worker threads stop spinning
            c0, t0 = time.process_time(), time.perf_counter()
            last[k] = jobs[k]()
            wall[k].append(time.perf_counter() - t0)
            cpu[k].append(time.process_time() - c0)
    return wall, cpu, last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, default=None,
                    help="threads for gdlab (numba.set_num_threads) and torch; default: numba's default")
    ap.add_argument("--reference-starts", type=int, default=100_000, help="starts timed for gdlab reference")
    ap.add_argument("--loop-starts", type=int, default=200, help="starts timed for the seeds' loop")
    ap.add_argument("--check-starts", type=int, default=10_000, help="starts checked against the reference")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20,000 starts x 20 steps, 2 rounds")
    ap.add_argument("--only", nargs="*", default=None, metavar="WORD",
                    help="time only the methods whose name contains one of these words (gdlab fused always runs)")
    args = ap.parse_args()
    if args.quick:
        args.starts, args.steps, args.repeat = 20_000, 20, 2
        args.reference_starts, args.loop_starts, args.check_starts = 10_000, 20, 2_000

    import numba

    import gdlab.fast.trajectory as traj

    if args.threads is not None:
        numba.set_num_threads(args.threads)
    threads = numba.get_num_threads()
    n, steps = args.starts, args.steps
    land = make_landscape("rosenbrock")
    (lo0, hi0), (lo1, hi1) = land.domain
    rng = np.random.default_rng(0)
    x0 = np.column_stack([rng.uniform(lo0, hi0, n), rng.uniform(lo1, hi1, n)])

    warmup_s = traj.warmup()
    jobs: dict[str, tuple[Job, int]] = gdlab_jobs(x0, steps, min(args.reference_starts, n))
    skipped: dict[str, str] = {}
    compile_s: dict[str, float] = {"gdlab fused": warmup_s}
    built = optax_job(x0, steps)
    if isinstance(built, str):
        skipped["optax (jax.jit)"] = built
    else:
        jobs["optax (jax.jit)"] = (built[0], n)
        compile_s["optax (jax.jit)"] = built[1]
    tjob = torch_job(x0, steps, threads)
    if isinstance(tjob, str):
        skipped["torch autograd"] = tjob
    else:
        jobs["torch autograd"] = (tjob, n)
    jobs["numpy (plain)"] = (lambda: numpy_plain(x0, steps), n)
    xl = x0[: min(args.loop_starts, n)]
    jobs["seeds' loop"] = (lambda: seed_loop(xl, steps), len(xl))

    if args.only:
        jobs = {k: v for k, v in jobs.items() if k == "gdlab fused" or any(w in k for w in args.only)}
    wall, cpu, last = time_round_robin({k: job for k, (job, _) in jobs.items()}, args.repeat)

    # -- checks (untimed) ------------------------------------------------------------------------------
    nc = min(args.check_starts, n)
    fused_final = final_positions(last["gdlab fused"])
    ref = run_batch(land, make_optimizer("adam", lr=LR), x0[:nc], steps=steps, record=False, backend="reference")
    bitwise = bool(np.array_equal(fused_final[:nc], ref.final_params))
    rules_off = last.get("gdlab fused, rules off")
    rules_off_equal = None if rules_off is None else bool(np.array_equal(fused_final, final_positions(rules_off)))
    diffs = {}
    for k in jobs:
        got = final_positions(last[k])
        diffs[k] = float(np.max(np.abs(got - fused_final[: len(got)])))

    # -- table ---------------------------------------------------------------------------------------
    work = n * steps
    rows: dict[str, dict[str, Any]] = {}
    for k, (_, measured) in jobs.items():
        scale = n / measured
        best, med = min(wall[k]) * scale, statistics.median(wall[k]) * scale
        rows[k] = {
            "measured_starts": measured, "scale": scale,
            "seconds_best": best, "seconds_median": med,
            "seconds_all": [w * scale for w in wall[k]],
            "msteps_per_s_best": work / best / 1e6, "msteps_per_s_median": work / med / 1e6,
            "cores_busy": sum(cpu[k]) / sum(wall[k]),
            "max_abs_diff_vs_gdlab": diffs[k],
        }
        if k in compile_s:
            rows[k]["compile_seconds"] = compile_s[k]
    optax_med = rows.get("optax (jax.jit)", {}).get("msteps_per_s_median")
    optax_best = rows.get("optax (jax.jit)", {}).get("msteps_per_s_best")
    gd_med = rows["gdlab fused"]["msteps_per_s_median"]
    gd_best = rows["gdlab fused"]["msteps_per_s_best"]

    print(f"Adam lr={LR:g} on 2-D Rosenbrock, float64, {n:,} starts x {steps} steps (final positions only); "
          f"gdlab/torch threads: {threads}, jax: XLA default ({os.cpu_count()} cores); "
          f"{args.repeat} timed rounds (best; median)")
    header = (f"{'method':<24} {'M steps/s':>10} {'median':>8} {'job s':>8} {'median':>8} {'x optax':>8} "
              f"{'x gdlab':>8} {'cores':>6}  notes")
    print(header)
    print("-" * len(header))
    for k, res in rows.items():
        rate, rate_med = res["msteps_per_s_best"], res["msteps_per_s_median"]
        x_optax = f"{rate / optax_best:>8.2f}" if optax_best else f"{'-':>8}"
        notes = []
        if res["scale"] != 1:
            notes.append(f"timed on {res['measured_starts']:,} starts, scaled x{res['scale']:g}")
        if k in compile_s:
            notes.append(f"compile/load {compile_s[k]:.2f} s (excluded)")
        print(f"{k:<24} {rate:>10.2f} {rate_med:>8.2f} {res['seconds_best']:>8.3f} {res['seconds_median']:>8.3f} "
              f"{x_optax} {rate / gd_best:>8.2f} {res['cores_busy']:>6.1f}  {'; '.join(notes)}".rstrip())
    for k, why in skipped.items():
        print(f"{k:<24} {why}")
    print("(M steps/s: million trajectory-steps per second = starts x steps / s; job s: seconds for the whole "
          f"{n:,} x {steps} job;\n ratios use the best round, the least disturbed by other load)")
    goal_met = None
    if optax_med:
        ratio_med, ratio_best = gd_med / optax_med, gd_best / optax_best
        goal_met = ratio_best >= GOAL
        print(f"goal: gdlab fused >= {GOAL}x optax: {ratio_best:.2f}x (best), {ratio_med:.2f}x (median) -> "
              f"{'met' if goal_met else 'NOT met'} (gdlab fused {gd_best:.0f} M steps/s, optax {optax_best:.0f})")
    else:
        print(f"goal: gdlab fused >= {GOAL}x optax: optax not available")
    print(f"check: gdlab fused == backend='reference' on {nc:,} starts, bit for bit: {'yes' if bitwise else 'NO'}; "
          f"rules off gives the same finals: {'-' if rules_off_equal is None else 'yes' if rules_off_equal else 'no'}; "
          f"statuses {last['gdlab fused'].counts()}")
    others = ", ".join(f"{k} {v:.1e}" for k, v in diffs.items() if not k.startswith("gdlab"))
    print(f"max |final - gdlab final|: {others}")

    versions = {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}
    for mod in ("torch", "jax", "jaxlib", "optax"):
        try:
            versions[mod] = __import__(mod).__version__
        except ImportError:
            versions[mod] = None
    result = {
        "workload": {"optimizer": "adam", "lr": LR, "betas": [BETA1, BETA2], "eps": EPS, "landscape": "rosenbrock",
                     "dtype": "float64", "starts": n, "steps": steps,
                     "start_distribution": f"uniform [{lo0}, {hi0}] x [{lo1}, {hi1}], seed 0"},
        "repeat": args.repeat, "threads": threads, "cpus": os.cpu_count(),
        "gdlab_warmup_seconds": warmup_s,
        "methods": rows, "skipped": skipped,
        "goal": {"gdlab_over_optax": GOAL, "met": goal_met},
        "bitwise_equal_to_reference": bitwise, "check_starts": nc,
        "rules_off_same_finals": rules_off_equal,
        "versions": versions, "machine": platform.machine(),
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT.relative_to(Path.cwd()) if OUT.is_relative_to(Path.cwd()) else OUT}")


if __name__ == "__main__":
    main()
