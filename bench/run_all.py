"""Run every gdlab benchmark side by side and record the results in bench/RESULTS.md.

    python bench/run_all.py            # all benchmarks (installs jax/optax for the comparison if missing)
    python bench/run_all.py step web   # only some of them

Each benchmark prints its own table (gdlab next to its reference, with the ratio) and writes JSON
in bench/out/. This script runs them one after another in fresh processes, so they do not share
warm caches or threads, and writes bench/RESULTS.md: the machine description, then each table.
"""

from __future__ import annotations

import datetime
import os
import platform
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent

#: name → (script, what it measures)
BENCHMARKS = {
    "step": ("bench_step.py", "one optimizer step on 10M float32 params vs torch.optim, optax and the bandwidth bound"),
    "trajectories": ("bench_trajectories.py", "1M starts × 100 steps of Adam on Rosenbrock vs optax, torch, numpy"),
    "engine": ("bench_engine.py", "the batched engine vs the seeds' Python loop (10,000 runs × 500 steps)"),
    "web": ("bench_web.py", "lab server latency, page load and animation frame rate"),
    "plots": ("bench_plots.py", "contour comparison and animation rendering"),
}


def machine_description() -> str:
    """CPU, cores, memory and the versions that matter, as Markdown lines."""
    lines = [f"- date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M} UTC"]
    cpu = _cpu_model()
    lines.append(f"- CPU: {cpu}, {os.cpu_count()} logical cores")
    try:
        mem_kb = int(next(line for line in Path("/proc/meminfo").read_text().splitlines()
                          if line.startswith("MemTotal")).split()[1])
        lines.append(f"- memory: {mem_kb / 2**20:.1f} GiB")
    except (OSError, StopIteration, ValueError):
        pass
    lines.append(f"- Python {platform.python_version()} on {platform.system()} {platform.machine()}")
    for module in ("numpy", "numba", "scipy", "matplotlib", "torch", "jax", "optax"):
        try:
            version = __import__(module).__version__
        except Exception:  # an optional package may fail to import in many ways
            version = "not installed"
        lines.append(f"- {module} {version}")
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str]) -> int:
    chosen = argv or list(BENCHMARKS)
    unknown = [name for name in chosen if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    sections = []
    failed = []
    for name in chosen:
        script, what = BENCHMARKS[name]
        print(f"\n=== {name}: {what}", flush=True)
        proc = subprocess.run([sys.executable, str(HERE / script)], capture_output=True, text=True, cwd=HERE.parent)
        print(proc.stdout, end="")
        if proc.returncode != 0:
            failed.append(name)
            print(proc.stderr[-2000:], file=sys.stderr)
        body = proc.stdout.strip() or "(no output)"
        status = "" if proc.returncode == 0 else f" — FAILED (exit {proc.returncode})"
        sections.append(f"## {name}: {what}{status}\n\n`python bench/{script}`\n\n```\n{body}\n```\n")
    results = HERE / "RESULTS.md"
    results.write_text(
        "# Benchmark results\n\nWritten by `python bench/run_all.py` (JSON for each in bench/out/).\n\n"
        "## Machine\n\n" + machine_description() + "\n\n" + "\n".join(sections)
    )
    print(f"\nwrote {results}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
