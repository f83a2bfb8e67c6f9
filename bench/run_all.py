"""Run every gdlab benchmark side by side and record the results in bench/RESULTS.md.

    python bench/run_all.py            # all benchmarks (installs torch/jax/optax for the comparison if missing)
    python bench/run_all.py step web   # only some of them
    python bench/run_all.py --quick    # a smoke run with small sizes (results in bench/out/RESULTS-quick.md)

torch and jax/optax are benchmark-only extras, never needed to use gdlab: before running, this script
checks (in a fresh interpreter) that ``torch``, ``jax`` and ``optax`` import, and installs the missing
ones with ``python -m pip install`` (torch pinned to the version the results were measured with);
``--no-install`` skips that. When the installation fails the script goes on, and the benchmarks show
the comparisons they cannot make as "not installed".

Each benchmark prints its own table (gdlab next to its reference, with the ratio) and writes JSON
in bench/out/. This script runs them one after another in fresh processes, so they do not share
warm caches or threads, and writes bench/RESULTS.md: the machine description, then each table.
``--quick`` passes small sizes to every benchmark (``--quick`` itself to those that take it, else the
options of :data:`QUICK` that the script accepts).
"""

from __future__ import annotations

import argparse
import datetime
import importlib
import os
import platform
import subprocess
import sys
from pathlib import Path

import machine

HERE = Path(__file__).resolve().parent

#: name → (script, what it measures)
BENCHMARKS = {
    "step": ("bench_step.py", "one optimizer step on 10M float32 params vs torch.optim, optax and the bandwidth bound"),
    "torch_adapter": ("bench_torch_adapter.py", "gdlab.torch.Adam vs torch.optim.Adam(fused=True), 10M float32 params"),
    "trajectories": ("bench_trajectories.py", "1M starts × 100 steps of Adam on Rosenbrock vs optax, torch, numpy"),
    "limits": ("bench_limits.py", "fused trajectories vs hand-written kernels of four workloads (the machine's limit)"),
    "engine": ("bench_engine.py", "the batched engine vs the seeds' Python loop (10,000 runs × 500 steps)"),
    "web": ("bench_web.py", "lab server latency, page load and animation frame rate"),
    "plots": ("bench_plots.py", "contour comparison and animation rendering"),
    "startup": ("bench_startup.py", "start-up of `gdlab list`, `--help` and usage errors vs the previous commit"),
}

#: Small sizes for ``--quick``, for the benchmarks that have no ``--quick`` option of their own; an
#: option is passed only when the script still declares it (see :func:`quick_args`).
QUICK: dict[str, list[str]] = {
    "step": ["--size", "1000000", "--repeat", "5", "--no-memory"],
    "engine": ["--runs", "1000", "--steps", "100", "--loop-runs", "20"],
    "web": ["--repeat", "5", "--loads", "1", "--no-browser"],
    "plots": ["--repeat", "1"],
}

#: The benchmark-only extras: module → what pip installs when it does not import.
EXTRAS = {"torch": "torch==2.13.0", "jax": "jax", "optax": "optax"}


def missing_extras() -> list[str]:
    """The modules of :data:`EXTRAS` that do not import (checked in a fresh interpreter)."""
    code = (
        "import importlib, sys\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "    except Exception:\n"
        "        print(name)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code, *EXTRAS], capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        return list(EXTRAS)
    return [line.strip() for line in proc.stdout.splitlines() if line.strip() in EXTRAS]


def install_extras() -> None:
    """Install torch, jax and optax when they do not import; go on (with a message) if that fails."""
    missing = missing_extras()
    if not missing:
        print("benchmark extras: torch, jax and optax are installed", flush=True)
        return
    cmd = [sys.executable, "-m", "pip", "install", *(EXTRAS[name] for name in missing)]
    print(f"benchmark extras: {', '.join(missing)} missing; running: {' '.join(cmd)}", flush=True)
    try:
        proc = subprocess.run(cmd, check=False)
    except OSError as exc:
        print(f"could not run pip ({exc}); the benchmarks will report the missing rows", file=sys.stderr)
        return
    importlib.invalidate_caches()
    still = missing_extras()
    if proc.returncode != 0 or still:
        print(f"pip install failed (exit {proc.returncode}); still missing: {', '.join(still) or 'none'}; "
              "going on, the benchmarks will report the missing rows", file=sys.stderr, flush=True)


def quick_args(name: str) -> list[str]:
    """The small-size options for benchmark ``name``: ``--quick`` if the script takes it, else those
    of :data:`QUICK` it declares (a flag with its value, or alone)."""
    script = HERE / BENCHMARKS[name][0]
    try:
        source = script.read_text()
    except OSError:
        return []
    if '"--quick"' in source:
        return ["--quick"]
    out: list[str] = []
    args = QUICK.get(name, [])
    i = 0
    while i < len(args):
        flag = args[i]
        value = args[i + 1:i + 2] if i + 1 < len(args) and not args[i + 1].startswith("--") else []
        if f'"{flag}"' in source:
            out += [flag, *value]
        i += 1 + len(value)
    return out


def machine_description() -> str:
    """CPU, cores, memory and the versions that matter, as Markdown lines."""
    lines = [f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"]
    simd = " ".join(machine.simd_flags()) or "SSE2 only"
    lines.append(f"- CPU: {machine.cpu_model()}, {os.cpu_count()} logical cores; SIMD: {simd}; "
                 f"numba compiles for {machine.numba_target()}")
    try:
        mem_kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")).split()[1])
        lines.append(f"- memory: {mem_kb / 2**20:.1f} GiB")
    except (OSError, StopIteration, ValueError):
        pass
    lines.append(f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    for module in ("numpy", "numba", "scipy", "matplotlib", "torch", "jax", "jaxlib", "optax"):
        try:
            version = __import__(module).__version__
        except Exception:  # an optional package may fail to import in many ways
            version = "not installed"
        lines.append(f"- {module} {version}")
    return "\n".join(lines)


def previous_sections(results: Path) -> dict[str, str]:
    """The sections of an earlier results file, by benchmark name (empty when there is none)."""
    if not results.is_file():
        return {}
    found: dict[str, str] = {}
    for part in ("\n" + results.read_text()).split("\n## ")[1:]:
        name = part.split(":", 1)[0].strip()
        if name in BENCHMARKS:
            found[name] = "## " + part.rstrip("\n") + "\n"
    return found


def main(argv: list[str]) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("names", nargs="*", metavar="BENCHMARK", help=f"benchmarks to run (default: all of "
                                                                   f"{', '.join(BENCHMARKS)})")
    ap.add_argument("--quick", action="store_true", help="small sizes (a smoke run), results in bench/out/")
    ap.add_argument("--no-install", action="store_true", help="do not pip install torch/jax/optax when missing")
    args = ap.parse_args(argv)
    chosen = args.names or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    if not args.no_install:
        install_extras()
    sections: dict[str, str] = {}
    failed = []
    for name in chosen:
        script, what = BENCHMARKS[name]
        extra = quick_args(name) if args.quick else []
        print(f"\n=== {name}: {what}" + (f" ({' '.join(extra)})" if extra else ""), flush=True)
        proc = subprocess.run([sys.executable, str(HERE / script), *extra], capture_output=True, text=True,
                              cwd=HERE.parent)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stderr[-2000:], file=sys.stderr)
        body = proc.stdout.strip() or "(no output)"
        status = "" if proc.returncode == 0 else f" — FAILED (exit {proc.returncode})"
        command = " ".join([f"python bench/{script}", *extra])
        when = f"{datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"
        sections[name] = f"## {name}: {what}{status}\n\n`{command}` ({when})\n\n```\n{body}\n```\n"
    # A smoke run must not overwrite the real results.
    results = HERE / "out" / "RESULTS-quick.md" if args.quick else HERE / "RESULTS.md"
    results.parent.mkdir(parents=True, exist_ok=True)
    how = "python bench/run_all.py --quick" if args.quick else "python bench/run_all.py"
    note = " (a smoke run with small sizes: not the measured results)" if args.quick else ""
    # Benchmarks not run this time keep their earlier section (each section carries its date).
    kept = {} if args.quick else previous_sections(results)
    ordered = [sections.get(name) or kept.get(name) for name in BENCHMARKS]
    results.write_text(
        f"# Benchmark results{note}\n\nWritten by `{how}` (JSON for each in bench/out/).\n\n"
        "## Machine\n\n" + machine_description() + "\n\n" + "\n".join(part for part in ordered if part)
    )
    print(f"\nwrote {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
