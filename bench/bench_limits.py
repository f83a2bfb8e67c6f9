"""Benchmark: gdlab's fused trajectories against the machine's limit, four workloads.

For each workload, float64, ``--starts`` starts (default 1,000,000, uniform in the landscape's
domain, seed 0) × ``--steps`` steps (100), final positions only, on 1 and 2 threads:

==================  ============================================================================
workload            optimizer and landscape
==================  ============================================================================
adam/rosenbrock     Adam (lr 1e-2) on Rosenbrock (a = 1, b = 100)
heavy-ball/ellipse  SGD with momentum 0.9 (lr 1e-2) on the elliptic bowl x² + 10y²
rmsprop/rastrigin   RMSprop (lr 1e-2, α 0.99) on Rastrigin (A = 10; sin and cos in the program)
nadam/himmelblau    NAdam (lr 1e-2) on Himmelblau
==================  ============================================================================

Rows, each timed in the same process on the same starts and threads:

- **limit**: the minimal hand-written numba kernel of the workload (``limit_kernels.py``: blocks of
  512 starts as separate arrays, step loop outside, no stopping rules, ``prange`` over blocks);
- **gdlab, rules on**: ``run_batch(land, opt, x0, steps=100, record=False)`` with the default
  stopping rules (the box bound, ``blowup=1e8``; every non-finite value stops a run);
- **gdlab, rules off**: the same with ``bound=math.inf, blowup=None`` (non-finite values still stop).

gdlab runs its combined code (the rule and the landscape compiled together), compiled once before
timing. Timing: ``--repeat`` rounds; in each round every row runs once, in rotating order; the ratio
gdlab / limit is taken within a round (paired, so that load on a shared machine touches both), and
the table shows the best round's ratio and the median. Goals: ≥ 0.8× the limit with the rules on,
≥ 0.9× with them off.

On heavy-ball/ellipse, whose gradient costs two multiplications, the limit kernel is also timed
computing the loss and a stopping test at every step (``heavy_ball_elliptic_checked``): the least
that exact stopping rules add there, since the blow-up and non-finite-loss rules need the loss of
every point, which the limit kernel never computes.

Then, on Adam/Rosenbrock: **per-run hyperparameters** (100 learning rates × starts, batch (S, 100),
against one scalar learning rate on as many starts; goal ≥ 0.6×) and **recorded** runs
(``record=True`` on ``--record-starts`` starts, against the same call with ``record=False`` and
against NumPy allocating and writing arrays of the record's size: the memory bound).

The SIMD level is read from the compiled code: the widest vector registers in the assembly of the
combined Adam/Rosenbrock advance (zmm: AVX-512, ymm: AVX2, xmm only: SSE), with the CPU's name.

Run: ``python bench/bench_limits.py`` (``--quick`` for a smoke run). Writes ``bench/out/limits.json``.
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

import limit_kernels as kernels
import machine
import numba
import numpy as np

import gdlab.fast as fast
from gdlab.core.optimizers import make_optimizer
from gdlab.engine.run import run_batch
from gdlab.landscapes import make_landscape

OUT = Path(__file__).resolve().parent / "out" / "limits.json"
GOAL_ON, GOAL_OFF, GOAL_PER_RUN = 0.8, 0.9, 0.6

#: name → (landscape, optimizer, hyperparameters, the limit kernel's call on (x, y, steps))
WORKLOADS: dict[str, tuple[str, str, dict[str, Any], Callable[..., Any]]] = {
    "adam/rosenbrock": ("rosenbrock", "adam", {"lr": 1e-2},
                        lambda x, y, s: kernels.adam_rosenbrock(x, y, s, 1e-2, 0.9, 0.999, 1e-8)),
    "heavy-ball/ellipse": ("elliptic", "sgd", {"lr": 1e-2, "momentum": 0.9},
                           lambda x, y, s: kernels.heavy_ball_elliptic(x, y, s, 1e-2, 0.9)),
    "rmsprop/rastrigin": ("rastrigin", "rmsprop", {"lr": 1e-2},
                          lambda x, y, s: kernels.rmsprop_rastrigin(x, y, s, 1e-2, 0.99, 1e-8)),
    "nadam/himmelblau": ("himmelblau", "nadam", {"lr": 1e-2},
                         lambda x, y, s: kernels.nadam_himmelblau(x, y, s, 1e-2, 0.9, 0.999, 1e-8, 4e-3)),
}

Job = Callable[[], Any]


def starts(landscape: Any, n: int) -> np.ndarray:
    (lo0, hi0), (lo1, hi1) = landscape.domain
    rng = np.random.default_rng(0)
    return np.column_stack([rng.uniform(lo0, hi0, n), rng.uniform(lo1, hi1, n)])


def paired_rounds(jobs: dict[str, Job], repeat: int) -> dict[str, list[float]]:
    """Seconds of every job in each of ``repeat`` rounds (rotating order), after one untimed run."""
    for job in jobs.values():
        job()
    names = list(jobs)
    seconds: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeat):
        for k in names[r % len(names):] + names[: r % len(names)]:
            t0 = time.perf_counter()
            jobs[k]()
            seconds[k].append(time.perf_counter() - t0)
    return seconds


def ratios(seconds: dict[str, list[float]], reference: str, name: str) -> tuple[float, float]:
    """(best, median) over rounds of ``reference`` seconds / ``name`` seconds, round by round."""
    per_round = [a / b for a, b in zip(seconds[reference], seconds[name], strict=True)]
    return max(per_round), statistics.median(per_round)


def simd_level() -> dict[str, str]:
    """The widest vector registers in the compiled combined Adam/Rosenbrock advance, and the CPU."""
    from llvmlite import binding

    from gdlab.fast import landscape_codegen as lc
    from gdlab.fast import primitives, stepcode

    primitives.register_helpers()
    code = lc.code_for(make_landscape("rosenbrock"))
    lc.compile_code(code)
    source = stepcode.combined_source(make_optimizer("adam", lr=1e-2), code)
    namespace: dict[str, Any] = {"__name__": "simd_probe"}  # compiled in memory, not cached: to read its assembly
    exec(compile(source.replace("**JIT)", "error_model='numpy', fastmath=False)"), "<probe>", "exec"), namespace)
    asm = namespace["advance"]._library.get_asm_str()
    level = "AVX-512 (zmm)" if "%zmm" in asm else "AVX2 (ymm)" if "%ymm" in asm else "SSE (xmm)"
    return {"kernels": level, "cpu": binding.get_host_cpu_name(), "numba_target": numba.config.CPU_NAME or "host",
            "cpu_features": " ".join(f for f in machine.simd_flags() if f in ("avx512f", "avx2", "fma")),
            "model": machine.cpu_model()}


def workload_rows(n: int, steps: int, repeat: int, threads: list[int]) -> list[dict[str, Any]]:
    rows = []
    for name, (lname, oname, hyper, limit) in WORKLOADS.items():
        land = make_landscape(lname)
        opt = make_optimizer(oname, **hyper)
        x0 = starts(land, n)
        xs, ys = np.ascontiguousarray(x0[:, 0]), np.ascontiguousarray(x0[:, 1])
        with fast.options(trajectory_step="combined"):
            run_batch(land, opt, x0[:1000], steps=2, record=False)  # compile the combined code once
        for k in threads:
            numba.set_num_threads(k)
            jobs: dict[str, Job] = {
                "limit": lambda limit=limit, xs=xs, ys=ys: limit(xs, ys, steps),
                "rules on": lambda land=land, opt=opt, x0=x0: run_batch(land, opt, x0, steps=steps, record=False),
                "rules off": lambda land=land, opt=opt, x0=x0: run_batch(land, opt, x0, steps=steps, record=False,
                                                                         bound=math.inf, blowup=None),
            }
            before = fast.stats["trajectory combined"]
            seconds = paired_rounds(jobs, repeat)
            assert fast.stats["trajectory combined"] - before == 2 * (repeat + 1), "gdlab did not run combined code"
            lx, ly = limit(xs, ys, steps)
            final = run_batch(land, opt, x0, steps=steps, record=False).final_params
            row = {"workload": name, "threads": k,
                   "limit_msteps": n * steps / min(seconds["limit"]) / 1e6,
                   "on_msteps": n * steps / min(seconds["rules on"]) / 1e6,
                   "off_msteps": n * steps / min(seconds["rules off"]) / 1e6,
                   "on_ratio": ratios(seconds, "limit", "rules on"),
                   "off_ratio": ratios(seconds, "limit", "rules off"),
                   "median_abs_diff": float(np.nanmedian(np.abs(final - np.column_stack([lx, ly])))),
                   "seconds": seconds}
            rows.append(row)
            print(f"{name:<20} {k:>2} {row['limit_msteps']:>9.0f} {row['on_msteps']:>9.0f} "
                  f"{row['on_ratio'][0]:>6.2f} {row['on_ratio'][1]:>6.2f} {row['off_msteps']:>9.0f} "
                  f"{row['off_ratio'][0]:>6.2f} {row['off_ratio'][1]:>6.2f}  {row['median_abs_diff']:.0e}", flush=True)
    return rows


def checked_row(n: int, steps: int, repeat: int) -> dict[str, Any]:
    """Heavy-ball on the elliptic bowl: the limit kernel, the same kernel computing the loss and a
    stopping test at every step (what exact stopping rules cost at the least), and gdlab, paired."""
    land = make_landscape("elliptic")
    opt = make_optimizer("sgd", lr=1e-2, momentum=0.9)
    x0 = starts(land, n)
    xs, ys = np.ascontiguousarray(x0[:, 0]), np.ascontiguousarray(x0[:, 1])
    limit = 1e8 * (np.abs(land.value(x0)).max() + 1.0)
    jobs: dict[str, Job] = {
        "limit": lambda: kernels.heavy_ball_elliptic(xs, ys, steps, 1e-2, 0.9),
        "limit with loss and test": lambda: kernels.heavy_ball_elliptic_checked(xs, ys, steps, 1e-2, 0.9,
                                                                               1e20, limit),
        "rules on": lambda: run_batch(land, opt, x0, steps=steps, record=False),
    }
    seconds = paired_rounds(jobs, repeat)
    rate = {k: n * steps / min(v) / 1e6 for k, v in seconds.items()}
    return {"starts": n, "msteps": rate, "checked_over_limit": ratios(seconds, "limit", "limit with loss and test"),
            "gdlab_over_checked": ratios(seconds, "limit with loss and test", "rules on")}


def per_run_row(n: int, steps: int, repeat: int) -> dict[str, Any]:
    land = make_landscape("rosenbrock")
    x0 = starts(land, n - n % 100)
    lrs = np.geomspace(1e-3, 1e-2, 100)
    swept = make_optimizer("adam", lr=lrs)
    scalar = make_optimizer("adam", lr=1e-2)
    grid = x0.reshape(-1, 100, 2)
    with fast.options(trajectory_step="combined"):
        run_batch(land, swept, grid[:10], steps=2, record=False)
        run_batch(land, scalar, x0[:10], steps=2, record=False)
    seconds = paired_rounds({"scalar lr": lambda: run_batch(land, scalar, x0, steps=steps, record=False),
                             "per-run lr": lambda: run_batch(land, swept, grid, steps=steps, record=False)}, repeat)
    return {"starts": len(x0), "scalar_msteps": len(x0) * steps / min(seconds["scalar lr"]) / 1e6,
            "per_run_msteps": len(x0) * steps / min(seconds["per-run lr"]) / 1e6,
            "ratio": ratios(seconds, "scalar lr", "per-run lr")}


def record_row(n: int, steps: int, repeat: int) -> dict[str, Any]:
    land = make_landscape("rosenbrock")
    opt = make_optimizer("adam", lr=1e-2)
    x0 = starts(land, n)

    def write_bound() -> None:  # fresh arrays of the record's size, written once by NumPy
        for shape in ((steps + 1, n, 2), (steps + 1, n), (steps + 1, n), (steps, n)):
            np.empty(shape).fill(1.0)

    seconds = paired_rounds({"unrecorded": lambda: run_batch(land, opt, x0, steps=steps, record=False),
                             "recorded": lambda: run_batch(land, opt, x0, steps=steps, record=True),
                             "write bound": write_bound}, repeat)
    rate = {k: n * steps / min(v) / 1e6 for k, v in seconds.items()}
    return {"starts": n, "msteps": rate, "recorded_over_bound": ratios(seconds, "write bound", "recorded"),
            "recorded_over_unrecorded": ratios(seconds, "unrecorded", "recorded")}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--starts", type=int, default=1_000_000)
    ap.add_argument("--steps", type=int, default=100)
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--threads", type=int, nargs="*", default=None, help="thread counts (default: 1 and 2)")
    ap.add_argument("--record-starts", type=int, default=100_000)
    ap.add_argument("--quick", action="store_true", help="a smoke run: 20,000 starts, 2 rounds")
    args = ap.parse_args()
    if args.quick:
        args.starts, args.repeat, args.record_starts = 20_000, 2, 5_000
    threads = args.threads or sorted({1, min(2, os.cpu_count() or 1)})
    simd = simd_level()
    print(f"float64, {args.starts:,} starts x {args.steps} steps, final positions; {args.repeat} paired rounds; "
          f"CPU {simd['model']} ({simd['cpu']}, {simd['cpu_features']}); kernels compiled for {simd['kernels']}")
    print(f"{'workload':<20} {'th':>2} {'limit M/s':>9} {'rules on':>9} {'x lim':>6} {'median':>6} "
          f"{'rules off':>9} {'x lim':>6} {'median':>6}  |gdlab - limit|")
    rows = workload_rows(args.starts, args.steps, args.repeat, threads)
    numba.set_num_threads(max(threads))
    per_run = per_run_row(args.starts, args.steps, args.repeat)
    print(f"per-run hyperparameters (adam/rosenbrock, 100 learning rates, {per_run['starts']:,} runs, "
          f"{max(threads)} threads): {per_run['per_run_msteps']:.0f} M/s vs {per_run['scalar_msteps']:.0f} "
          f"with one lr: {per_run['ratio'][0]:.2f}x (median {per_run['ratio'][1]:.2f}; goal >= {GOAL_PER_RUN})")
    checked = checked_row(args.starts, args.steps, args.repeat)
    print(f"the price of exact stopping rules (heavy-ball/ellipse, {max(threads)} threads): the limit "
          f"{checked['msteps']['limit']:.0f} M/s; the same kernel also computing the loss and a stopping test "
          f"each step {checked['msteps']['limit with loss and test']:.0f} "
          f"({checked['checked_over_limit'][0]:.2f}x the limit); gdlab rules on {checked['msteps']['rules on']:.0f} "
          f"({checked['gdlab_over_checked'][0]:.2f}x that kernel)")
    rec = record_row(args.record_starts, args.steps, args.repeat)
    print(f"recording (adam/rosenbrock, {rec['starts']:,} runs): recorded {rec['msteps']['recorded']:.0f} M/s, "
          f"unrecorded {rec['msteps']['unrecorded']:.0f}, NumPy writing arrays of the record's size "
          f"{rec['msteps']['write bound']:.0f} (recorded / that bound: {rec['recorded_over_bound'][0]:.2f}x)")
    met_on = all(r["on_ratio"][0] >= GOAL_ON for r in rows)
    met_off = all(r["off_ratio"][0] >= GOAL_OFF for r in rows)
    print(f"goals (best paired round): rules on >= {GOAL_ON}x limit: {'met' if met_on else 'NOT met'}; rules off >= "
          f"{GOAL_OFF}x: {'met' if met_off else 'NOT met'}; per-run >= {GOAL_PER_RUN}x: "
          f"{'met' if per_run['ratio'][0] >= GOAL_PER_RUN else 'NOT met'}")
    result = {"starts": args.starts, "steps": args.steps, "repeat": args.repeat, "simd": simd, "workloads": rows,
              "per_run": per_run, "record": rec, "checked": checked,
              "goals": {"on": GOAL_ON, "off": GOAL_OFF, "per_run": GOAL_PER_RUN, "on_met": met_on,
                        "off_met": met_off},
              "versions": {"python": platform.python_version(), "numpy": np.__version__, "numba": numba.__version__}}
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
