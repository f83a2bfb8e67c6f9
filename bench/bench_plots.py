"""Benchmark: how long the pictures take, through the same code paths as ``gdlab ... --plot/--animate``.

Workload: the gallery's Rosenbrock race — six optimizers (GD, momentum, Nesterov, RMSprop, Adam,
Adagrad), 500 steps each from (-1.5, 2).

- **contour PNG (render only)**: the runs computed beforehand; the contour map with the six paths
  built (:func:`gdlab.cli.plotting.landscape_figure`) and saved as a 1200×900 PNG. Goal < 2 s.
- **compare --plot (end to end)**: ``gdlab compare`` with the six ``--optimizer`` specs and
  ``--plot out.png --plot-size 1200x900``, in-process (the runs and the picture). Goal < 2 s.
- **compare --plot (new process)**: the same command as a subprocess, including the interpreter
  start and imports (for information).
- **GIF, 100 frames**: :func:`gdlab.plots.animate` of the six runs, 800×600. Goal < 15 s.
- **MP4, 100 frames**: the same through ffmpeg, when it is installed. Goal < 15 s.

Each timing is the median of ``--repeat`` runs (default 3; the minimum is recorded as well).
Run: ``python bench/bench_plots.py``. Prints a table and writes ``bench/out/plots.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import matplotlib

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # measure this checkout, whichever gdlab is installed

from gdlab.cli import plotting  # noqa: E402
from gdlab.cli.main import main  # noqa: E402
from gdlab.engine.run import compare  # noqa: E402
from gdlab.landscapes import make_landscape  # noqa: E402
from gdlab.plots import animate, save_figure  # noqa: E402
from gdlab.plots.gallery import ROSENBROCK_RACE  # noqa: E402

OUT = Path(__file__).resolve().parent / "out" / "plots.json"
START = (-1.5, 2.0)
STEPS = 500
SIZE = (1200, 900)
FRAMES = 100


def compare_argv(target: Path) -> list[str]:
    """``gdlab compare`` of the gallery's six optimizers with ``--plot`` at 1200×900."""
    argv = ["compare", "--landscape", "rosenbrock", "--start=-1.5,2", "--steps", str(STEPS)]
    for spec in ROSENBROCK_RACE:
        items = ",".join(f"{k}={str(v).lower() if isinstance(v, bool) else v}" for k, v in spec.hyperparams.items())
        argv += ["--optimizer", f"{spec.label.replace('=', ' ')}={spec.optimizer}:{items}"]
    return argv + ["--plot", str(target), "--plot-size", f"{SIZE[0]}x{SIZE[1]}"]


def timed(action: Callable[[], Any], repeat: int) -> dict[str, float]:
    """Median and minimum wall time of ``action`` over ``repeat`` calls."""
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        action()
        times.append(time.perf_counter() - t0)
    return {"median_s": statistics.median(times), "min_s": min(times)}


def in_process(argv: list[str]) -> None:
    with contextlib.redirect_stdout(io.StringIO()):
        code = main(argv)
    if code != 0:
        raise SystemExit(f"gdlab {' '.join(argv)} failed with exit code {code}")


def new_process(argv: list[str]) -> None:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    subprocess.run([sys.executable, "-m", "gdlab", *argv], check=True, capture_output=True, env=env)


def main_bench(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3, help="timings per case (median reported; default 3)")
    parser.add_argument("--out", type=Path, default=OUT, help=f"JSON report (default {OUT})")
    args = parser.parse_args(argv)

    landscape = make_landscape("rosenbrock")
    t0 = time.perf_counter()
    runs = compare(landscape, ROSENBROCK_RACE, START, STEPS)
    runs_s = time.perf_counter() - t0
    title = f"Six optimizers in the Rosenbrock valley ({STEPS} steps from {START})"
    has_ffmpeg = shutil.which("ffmpeg") is not None
    cases: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)

        def contour() -> None:
            save_figure(plotting.landscape_figure(landscape, runs, title=title, size=SIZE), folder / "race.png")

        cases.append({"case": "contour PNG 1200x900, 6 runs x 500 steps (render only)", "goal_s": 2.0,
                      **timed(contour, args.repeat), "bytes": (folder / "race.png").stat().st_size})
        cli_png = folder / "cli.png"
        cases.append({"case": "compare --plot 1200x900 (end to end, in-process)", "goal_s": 2.0,
                      **timed(lambda: in_process(compare_argv(cli_png)), args.repeat),
                      "bytes": cli_png.stat().st_size})
        cases.append({"case": "compare --plot 1200x900 (new process, incl. imports)", "goal_s": None,
                      **timed(lambda: new_process(compare_argv(folder / "sub.png")), args.repeat),
                      "bytes": (folder / "sub.png").stat().st_size})
        gif = folder / "race.gif"
        cases.append({"case": f"GIF {FRAMES} frames 800x600, 6 balls", "goal_s": 15.0,
                      **timed(lambda: animate(landscape, runs, gif, frames=FRAMES, fps=20), args.repeat),
                      "bytes": gif.stat().st_size})
        if has_ffmpeg:
            mp4 = folder / "race.mp4"
            cases.append({"case": f"MP4 {FRAMES} frames 800x600, 6 balls (ffmpeg)", "goal_s": 15.0,
                          **timed(lambda: animate(landscape, runs, mp4, frames=FRAMES, fps=20), args.repeat),
                          "bytes": mp4.stat().st_size})
    for case in cases:
        case["meets_goal"] = None if case["goal_s"] is None else bool(case["median_s"] < case["goal_s"])

    print(f"workload: {len(runs)} optimizers x {STEPS} steps on Rosenbrock from {START} "
          f"(runs computed in {runs_s:.3f} s); median of {args.repeat}")
    width = max(len(c["case"]) for c in cases)
    print(f"{'case'.ljust(width)}  {'median s':>9}  {'min s':>7}  {'goal':>7}  {'ok':>3}  {'size':>8}")
    print(f"{'-' * width}  {'-' * 9}  {'-' * 7}  {'-' * 7}  {'-' * 3}  {'-' * 8}")
    for c in cases:
        goal = "-" if c["goal_s"] is None else f"< {c['goal_s']:g} s"
        ok = "-" if c["meets_goal"] is None else "yes" if c["meets_goal"] else "NO"
        print(f"{c['case'].ljust(width)}  {c['median_s']:9.3f}  {c['min_s']:7.3f}  {goal:>7}  {ok:>3}  "
              f"{c['bytes'] / 1024:6.0f} kB")
    if not has_ffmpeg:
        print("(MP4 skipped: ffmpeg is not installed)")
    report = {
        "workload": {"landscape": "rosenbrock", "start": START, "steps": STEPS, "optimizers":
                     [spec.display() for spec in ROSENBROCK_RACE], "runs_s": runs_s, "size": SIZE,
                     "frames": FRAMES, "repeat": args.repeat},
        "cases": cases,
        "platform": {"python": platform.python_version(), "machine": platform.machine(),
                     "system": platform.system(), "matplotlib": matplotlib.__version__, "ffmpeg": has_ffmpeg},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.out}")
    return 0 if all(c["meets_goal"] is not False for c in cases) else 1


if __name__ == "__main__":
    sys.exit(main_bench())
