"""Benchmark: one optimizer step on 10M float32 parameters, against the memory-bandwidth bound.

For Adam, AdamW, SGD with momentum and RMSprop (lr 1e-3; AdamW λ = 0.01; momentum 0.9), one step
``params, state ← step(params, grad, state)`` on a single run of ``--size`` float32 parameters:

- **gdlab fused**: ``opt.update_(g, state, p)``, the numba kernel of :mod:`gdlab.fast` (in place,
  one pass, all threads; the default ``atomic=True`` also scans the gradient first, so that a
  non-finite gradient leaves every parameter untouched);
- **gdlab fused, no scan**: the same with ``atomic=False`` (still never writes NaN/inf);
- **gdlab reference**: ``update_`` with ``backend="reference"``: the numpy ``_update`` + copy back;
- **numpy (seeds)**: the seeds' textbook numpy (seed 002's Adam class style, new arrays each step);
- **torch for-loop / foreach / fused**: ``torch.optim`` with ``foreach=False``, ``foreach=True``,
  ``fused=True`` (CPU), on tensors sharing the numpy memory;
- **torch fused + finite check**: ``torch.isfinite(grad).all()`` first, the check a GradScaler-style
  "skip the step on inf" needs (what ``atomic`` gives gdlab);
- **optax (jax.jit)**: only if jax is importable (not installed by this script).

Bandwidth bound, measured on the spot: the better of ``np.copyto`` and a two-thread numba copy of
a 256 MB array gives the copy bandwidth B (bytes read + written per second); a step that must read
and write ``b`` bytes per parameter cannot take less than ``b·size/B``: Adam and AdamW read p, g,
m, v and write p, m, v (28 bytes per float32 parameter), SGD-momentum and RMSprop read p, g and one
buffer and write p and the buffer (20 bytes). An in-place read-modify-write of a large array has no
write-allocate traffic and runs faster than a copy: its bandwidth gives a stricter bound, also shown.

Timing: every variant (and the bandwidth probes) has its own arrays; after two warm-up steps each,
``--repeat`` rounds time one step of every variant, in rotating order, so that all of them see the
same background load (the machine may be shared): the table shows the median and the minimum, and
ratios as the median over rounds of the ratio within a round ("x torch": to torch fused; "x alike":
to the torch variant with the same guarantee, torch fused + finite check for gdlab fused and torch
fused for gdlab fused, no scan).
``OMP_WAIT_POLICY=PASSIVE`` unless set (see the comment below).
Memory: each variant then runs a few steps in a fresh process; "extra MB" is the peak resident
memory during those steps minus the resident memory before them (Linux: the peak is reset through
``/proc/self/clear_refs``), i.e. what a step needs beyond the arrays themselves (params, gradient
and state: "arrays MB"). The machine is shared, so numbers vary from run to run.

Run: ``python bench/bench_step.py [--size 10000000] [--repeat 40] [--threads N]``. Prints a table,
a line per goal, and writes ``bench/out/step.json``. Goals: gdlab fused ≤ 1.15× the bandwidth bound
and no slower than torch fused.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

# numba (threading layer "omp") and torch each bring an OpenMP runtime; with the default active wait
# the idle threads of one spin on the cores the other needs, and both slow down several-fold when
# timed in one process. Passive waiting (threads sleep between parallel regions) is set before either
# library is imported; it costs a thread wake-up per step, negligible at this size.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

OUT = Path(__file__).resolve().parent / "out" / "step.json"
OPTIMIZERS = ("adam", "adamw", "sgd-momentum", "rmsprop")
VARIANTS = (
    "gdlab fused",
    "gdlab fused, no scan",
    "gdlab reference",
    "numpy (seeds)",
    "torch for-loop",
    "torch foreach",
    "torch fused",
    "torch fused + finite check",
    "optax (jax.jit)",
)
#: Bytes moved per float32 parameter by one step: (read + write) of p, g and the state buffers.
BYTES_PER_PARAM = {"adam": 28, "adamw": 28, "sgd-momentum": 20, "rmsprop": 20}
LR = 1e-3


# -- the seeds' style -------------------------------------------------------------------------------
class SeedStep:
    """The seeds' textbook numpy updates (new arrays each step, as their classes do)."""

    def __init__(self, name: str, params: np.ndarray) -> None:
        self.name, self.t = name, 0
        self.m = np.zeros_like(params)
        self.v = np.zeros_like(params)

    def update(self, params: np.ndarray, grads: np.ndarray) -> np.ndarray:
        lr, beta1, beta2, eps = LR, 0.9, 0.999, 1e-8
        self.t += 1
        if self.name in ("adam", "adamw"):
            self.m = beta1 * self.m + (1 - beta1) * grads
            self.v = beta2 * self.v + (1 - beta2) * grads**2
            m_hat = self.m / (1 - beta1**self.t)
            v_hat = self.v / (1 - beta2**self.t)
            if self.name == "adamw":
                return params - lr * (m_hat / (np.sqrt(v_hat) + eps) + 0.01 * params)
            return params - lr * m_hat / (np.sqrt(v_hat) + eps)
        if self.name == "sgd-momentum":
            self.v = 0.9 * self.v + lr * grads
            return params - self.v
        self.v = 0.99 * self.v + (1 - 0.99) * grads**2  # RMSprop
        return params - lr * grads / (np.sqrt(self.v) + eps)


# -- one variant, in a worker process -----------------------------------------------------------------
def _gdlab_optimizer(name: str) -> Any:
    from gdlab.core.optimizers import make_optimizer

    return {
        "adam": lambda: make_optimizer("adam", lr=LR),
        "adamw": lambda: make_optimizer("adamw", lr=LR, weight_decay=0.01),
        "sgd-momentum": lambda: make_optimizer("sgd", lr=LR, momentum=0.9),
        "rmsprop": lambda: make_optimizer("rmsprop", lr=LR),
    }[name]()


def _torch_optimizer(name: str, param: Any, mode: str) -> Any:
    import torch

    kwargs: dict[str, Any] = {"lr": LR}
    if mode == "fused":
        kwargs["fused"] = True
    else:
        kwargs["foreach"] = mode == "foreach"
    cls, extra = {
        "adam": (torch.optim.Adam, {}),
        "adamw": (torch.optim.AdamW, {"weight_decay": 0.01}),
        "sgd-momentum": (torch.optim.SGD, {"momentum": 0.9}),
        "rmsprop": (torch.optim.RMSprop, {}),
    }[name]
    return cls([param], **kwargs, **extra)


def _status_mb(field: str) -> float | None:
    """A memory line of ``/proc/self/status`` (Linux), in MB."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024.0
    except (OSError, ValueError):
        pass
    return None


def _reset_peak() -> bool:
    """Reset the peak resident size (``VmHWM``; Linux ≥ 4.0: write 5 to ``/proc/self/clear_refs``)."""
    try:
        Path("/proc/self/clear_refs").write_text("5")
    except OSError:
        return False
    return _status_mb("VmHWM") is not None


def _peak_mb() -> float:
    peak = _status_mb("VmHWM")
    return peak if peak is not None else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def make_step(name: str, variant: str, p: np.ndarray, g: np.ndarray, threads: int) -> tuple[Any, float]:
    """A zero-argument step function and the bytes of state it keeps (besides p and g)."""
    if variant.startswith("gdlab"):
        import numba

        import gdlab.fast as fast

        numba.set_num_threads(threads)
        opt = _gdlab_optimizer(name)
        state = opt.init(p)
        backend = "reference" if variant == "gdlab reference" else "fused"
        atomic = variant != "gdlab fused, no scan"  # set on every call: the setting is global
        state_bytes = sum(v.nbytes for v in state.values() if isinstance(v, np.ndarray))

        def gdlab_step() -> None:
            with fast.options(atomic=atomic):
                opt.update_(g, state, p, backend=backend)

        return gdlab_step, state_bytes
    if variant == "numpy (seeds)":
        seed = SeedStep(name, p)
        box = [p]

        def seed_step() -> None:
            box[0] = seed.update(box[0], g)

        return seed_step, seed.m.nbytes + seed.v.nbytes
    if variant.startswith("torch"):
        import torch

        torch.set_num_threads(threads)
        param = torch.from_numpy(p).requires_grad_(True)
        param.grad = torch.from_numpy(g)
        mode = {"torch for-loop": "for-loop", "torch foreach": "foreach"}.get(variant, "fused")
        opt = _torch_optimizer(name, param, mode)
        if variant == "torch fused + finite check":

            def checked() -> None:
                if bool(torch.isfinite(param.grad).all()):
                    opt.step()

            step = checked
        else:
            step = opt.step
        step()  # creates the state
        state_bytes = sum(t.nbytes for s in opt.state.values() for t in s.values() if torch.is_tensor(t) and t.dim())
        return step, state_bytes
    if variant == "optax (jax.jit)":
        import jax
        import jax.numpy as jnp
        import optax

        tx = {
            "adam": lambda: optax.adam(LR),
            "adamw": lambda: optax.adamw(LR, weight_decay=0.01),
            "sgd-momentum": lambda: optax.sgd(LR, momentum=0.9),
            "rmsprop": lambda: optax.rmsprop(LR),
        }[name]()
        params = jnp.asarray(p)
        grads = jnp.asarray(g)
        box = [params, tx.init(params)]

        @jax.jit
        def update(params: Any, opt_state: Any, grads: Any) -> Any:
            updates, opt_state = tx.update(grads, opt_state, params)
            return optax.apply_updates(params, updates), opt_state

        def jax_step() -> None:
            box[0], box[1] = update(box[0], box[1], grads)
            box[0].block_until_ready()

        return jax_step, 2 * p.nbytes
    raise ValueError(variant)


def _arrays(size: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    p = rng.standard_normal(size, dtype=np.float32)
    g = rng.standard_normal(size, dtype=np.float32)
    g *= np.float32(0.01)
    return p, g


def build(name: str, variant: str, size: int, threads: int) -> tuple[Any, float] | str:
    """(step, MB of params + gradient + state) for one variant, or why it is skipped."""
    p, g = _arrays(size)
    arrays_mb = (p.nbytes + g.nbytes) / 2**20
    try:
        step, state_bytes = make_step(name, variant, p, g, threads)
    except ImportError as exc:
        return f"not installed ({exc.name})"
    except (RuntimeError, TypeError, ValueError) as exc:
        return f"unavailable: {str(exc).splitlines()[0][:70]}"
    return step, arrays_mb + state_bytes / 2**20


def memory_worker(name: str, variant: str, size: int, threads: int) -> dict[str, Any]:
    """In a fresh process: the peak memory of a few steps beyond the arrays themselves."""
    built = build(name, variant, size, threads)
    if isinstance(built, str):
        return {"skipped": built}
    step, arrays_mb = built
    step()
    step()
    exact = _reset_peak()
    before = _status_mb("VmRSS") if exact else _peak_mb()
    for _ in range(3):
        step()
    return {"extra_mb": max(0.0, _peak_mb() - (before or 0.0)), "extra_mb_exact": exact, "arrays_mb": arrays_mb}


def time_round_robin(steps: dict[str, Any], repeat: int) -> dict[str, list[float]]:
    """Time every step ``repeat`` times, one of each per round (rotating the order), so that all
    variants see the same background load; a short pause lets idle worker threads go to sleep."""
    names = list(steps)
    for fn in steps.values():
        fn()
        fn()
    times: dict[str, list[float]] = {k: [] for k in names}
    for r in range(repeat):
        for k in names[r % len(names):] + names[: r % len(names)]:
            time.sleep(0.003)
            start = time.perf_counter()
            steps[k]()
            times[k].append(time.perf_counter() - start)
    return times


# -- the bandwidth bound ------------------------------------------------------------------------------
def bandwidth_steps(threads: int) -> tuple[dict[str, Any], int]:
    """Steps that copy (np.copyto; a two-thread numba loop) and scale in place a 256 MB array, and
    the bytes each moves (read + written)."""
    import numba
    from numba import njit, prange

    numba.set_num_threads(threads)

    @njit(parallel=True, cache=False)
    def copy(dst: np.ndarray, src: np.ndarray) -> None:
        for i in prange(src.size):
            dst[i] = src[i]

    @njit(parallel=True, cache=False)
    def scale(x: np.ndarray, c: np.float32) -> None:
        for i in prange(x.size):
            x[i] = x[i] * c

    src = np.ones(64 * 2**20, dtype=np.float32)
    dst = np.zeros_like(src)
    one = np.float32(1.0)
    steps = {
        "np.copyto": lambda: np.copyto(dst, src),
        "numba copy": lambda: copy(dst, src),
        "in-place": lambda: scale(src, one),
    }
    return steps, 2 * src.nbytes


#: The torch variant that gives the same guarantee as a gdlab variant ("x alike" column): without the
#: scan, neither reads the gradient twice (gdlab still never writes NaN/inf, torch does); with it,
#: both skip the step when the gradient has a non-finite entry.
ALIKE = {"gdlab fused": "torch fused + finite check", "gdlab fused, no scan": "torch fused"}


def paired_ratio(times: dict[str, list[float]], variant: str, reference: str) -> float | None:
    """Median over rounds of (variant's time ÷ reference's time in the same round): each round runs
    every variant back to back, so the ratio cancels most of the background load of a shared machine."""
    if variant not in times or reference not in times:
        return None
    return float(np.median(np.asarray(times[variant]) / np.asarray(times[reference])))


def print_goals(rows: dict[str, Any]) -> None:
    """The issue's goals for this optimizer: ≤ 1.15× the bound, and no slower than torch fused."""
    variants = rows["variants"]
    for variant in ("gdlab fused", "gdlab fused, no scan"):
        res = variants.get(variant, {})
        if "ms" not in res:
            continue
        line = f"goal {variant}: {res['ms'] / rows['bound_ms']:.2f}x bound (<= 1.15)"
        if res.get("x_torch") is not None:
            line += f", {res['x_torch']:.2f}x torch fused"
        alike = ALIKE[variant]
        if res.get("x_alike") is not None and alike != "torch fused":
            line += f", {res['x_alike']:.2f}x {alike}"
        print(line)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=40)
    parser.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--only", nargs="*", default=None, help="optimizers to run (default: all)")
    parser.add_argument("--no-memory", action="store_true", help="skip the per-variant memory processes")
    parser.add_argument("--memory-worker", nargs=2, metavar=("OPTIMIZER", "VARIANT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.memory_worker:
        print(json.dumps(memory_worker(*args.memory_worker, args.size, args.threads)))
        return

    bw_steps, bw_bytes = bandwidth_steps(args.threads)
    print(f"one step on {args.size:,} float32 params, {args.threads} threads, {args.repeat} rounds (median; min)")
    results: dict[str, dict[str, Any]] = {}
    bandwidths: dict[str, list[float]] = {}
    header = (
        f"{'optimizer':<13} {'variant':<27} {'ms/step':>8} {'min':>7} {'x bound':>8} {'x in-place':>10} "
        f"{'x torch':>8} {'x alike':>8} {'extra MB':>9} {'arrays MB':>9}"
    )
    for name in args.only or OPTIMIZERS:
        steps: dict[str, Any] = dict(bw_steps)
        rows: dict[str, Any] = {"variants": {}}
        for variant in VARIANTS:
            built = build(name, variant, args.size, args.threads)
            if isinstance(built, str):
                rows["variants"][variant] = {"skipped": built}
            else:
                steps[variant], arrays_mb = built
                rows["variants"][variant] = {"arrays_mb": arrays_mb}
        times = time_round_robin(steps, args.repeat)
        copy_s = min(float(np.median(times["np.copyto"])), float(np.median(times["numba copy"])))
        inplace_s = float(np.median(times["in-place"]))
        for key in bw_steps:
            bandwidths.setdefault(key, []).append(bw_bytes / float(np.median(times[key])) / 1e9)
        moved = BYTES_PER_PARAM[name] * args.size
        rows["bound_ms"] = bound_ms = 1e3 * moved * copy_s / bw_bytes
        rows["inplace_bound_ms"] = inplace_ms = 1e3 * moved * inplace_s / bw_bytes
        rows["copy_gbs"] = bw_bytes / copy_s / 1e9
        rows["inplace_gbs"] = bw_bytes / inplace_s / 1e9
        for variant, res in rows["variants"].items():
            if variant in times:
                res["ms"] = 1e3 * float(np.median(times[variant]))
                res["ms_min"] = 1e3 * float(np.min(times[variant]))
                res["x_torch"] = paired_ratio(times, variant, "torch fused")
                res["x_alike"] = paired_ratio(times, variant, ALIKE.get(variant, ""))
            if not args.no_memory and "skipped" not in res:
                cmd = [sys.executable, __file__, "--memory-worker", name, variant, "--size", str(args.size),
                       "--threads", str(args.threads)]
                done = subprocess.run(cmd, capture_output=True, text=True, check=False)
                try:
                    res.update(json.loads(done.stdout.strip().splitlines()[-1]))
                except (json.JSONDecodeError, IndexError):
                    res["memory"] = f"failed: {done.stderr.strip().splitlines()[-1:]}"
        del steps
        results[name] = rows
        print(f"\ncopy {rows['copy_gbs']:.1f} GB/s, in-place read-modify-write {rows['inplace_gbs']:.1f} GB/s, "
              f"{BYTES_PER_PARAM[name]} bytes/param")
        print(header)
        print("-" * len(header))
        print(f"{name:<13} {'bandwidth bound':<27} {bound_ms:>8.2f} {'':>7} {1:>8.2f} {bound_ms / inplace_ms:>10.2f}")
        for variant, res in rows["variants"].items():
            if "skipped" in res:
                print(f"{'':<13} {variant:<27} {res['skipped']}")
                continue
            ratio_torch = f"{res['x_torch']:>8.2f}" if res["x_torch"] is not None else f"{'-':>8}"
            ratio_alike = f"{res['x_alike']:>8.2f}" if res["x_alike"] is not None else f"{'-':>8}"
            extra = f"{res['extra_mb']:>9.1f}" if "extra_mb" in res else f"{'-':>9}"
            print(
                f"{'':<13} {variant:<27} {res['ms']:>8.2f} {res['ms_min']:>7.2f} {res['ms'] / bound_ms:>8.2f} "
                f"{res['ms'] / inplace_ms:>10.2f} {ratio_torch} {ratio_alike} {extra} {res['arrays_mb']:>9.1f}"
            )
        print_goals(rows)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "size": args.size, "dtype": "float32", "repeat": args.repeat, "threads": args.threads,
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpus": os.cpu_count()},
        "bandwidth_gbs": {k: float(np.median(v)) for k, v in bandwidths.items()},
        "bytes_per_param": BYTES_PER_PARAM, "results": results,
    }
    OUT.write_text(json.dumps(payload, indent=2))
    print(f"\nwrote {OUT}")


if __name__ == "__main__":
    main()
