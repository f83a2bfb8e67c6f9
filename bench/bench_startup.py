"""Benchmark: how long ``gdlab`` takes to start for the commands that compute nothing.

Each command runs as a whole new process, the way the ``gdlab`` script runs it (interpreter start
and every import included): ``python -c "from gdlab.cli.main import main; ..." ARGS`` from a neutral
folder, with ``PYTHONPATH`` pointing at the checkout measured. The commands: ``list`` (one category
and all), ``--help``, a subcommand's ``--help``, and two usage errors (an unknown name, a value
starting with ``-``).

Paired timing: the working tree and a baseline git revision run in the same invocation, alternating
command by command, so both see the same machine and load. The baseline is checked out with
``git worktree add --detach`` into a temporary folder (removed afterwards). By default it is the
commit before the one that added this script, i.e. before the lazy imports (``HEAD`` while that
change is not committed yet). Each command runs once unmeasured in each tree (compiling the
``.pyc`` files), then ``--repeat`` times (default 7); the table shows the medians and their ratio.

Goal: every command of the working tree under 0.3 s, except ``list`` of everything, which loads
scikit-learn's data sets to describe the learning problems.
Run: ``python bench/bench_startup.py [--baseline REV] [--repeat N]``. Prints a table and writes
``bench/out/startup.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent / "out" / "startup.json"
GOAL = 0.3

#: (label, arguments, exit status): what is timed.
COMMANDS: list[tuple[str, list[str], int]] = [
    ("list landscapes", ["list", "landscapes"], 0),
    ("list optimizers", ["list", "optimizers"], 0),
    ("list schedules", ["list", "schedules"], 0),
    ("list (all, with problems)", ["list"], 0),
    ("--help", ["--help"], 0),
    ("run --help", ["run", "--help"], 0),
    ("sweep lr --help", ["sweep", "lr", "--help"], 0),
    ("usage error: unknown landscape", ["run", "--landscape", "nope", "--optimizer", "sgd"], 2),
    ("usage error: --lr-range -1:1:10", ["sweep", "lr", "--landscape", "booth", "--optimizer", "sgd",
                                         "--lr-range", "-1:1:10"], 2),
]
#: Commands exempt from the goal (they read data to describe it).
NO_GOAL = {"list (all, with problems)"}

#: How a command is started: exactly what the ``gdlab`` console script does.
LAUNCH = "import sys; from gdlab.cli.main import main; sys.exit(main())"


def git(*args: str) -> str:
    return subprocess.run(["git", "-C", str(ROOT), *args], capture_output=True, text=True, check=True).stdout.strip()


def default_baseline() -> str:
    """The commit before the one that added this script (``HEAD`` while it is not committed)."""
    added = git("log", "--diff-filter=A", "--format=%H", "--", "bench/bench_startup.py").split()
    return f"{added[-1]}^" if added else "HEAD"


@contextlib.contextmanager
def worktree(revision: str) -> Iterator[Path]:
    """A temporary checkout of ``revision`` (``git worktree``), removed on exit."""
    folder = Path(tempfile.mkdtemp(prefix="gdlab-baseline-"))
    git("worktree", "add", "--detach", str(folder), revision)
    try:
        yield folder
    finally:
        subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(folder)], capture_output=True,
                       check=False)


def environment(tree: Path) -> dict[str, str]:
    """``tree`` first on the import path; ``.pyc`` files written (the warm-up run compiles them once)."""
    return {**os.environ, "PYTHONPATH": str(tree), "PYTHONDONTWRITEBYTECODE": ""}


def check_imports_from(tree: Path, cwd: Path) -> None:
    """Refuse to time a tree whose ``gdlab`` is not the one imported (an installed copy shadowing it)."""
    found = subprocess.run([sys.executable, "-c", "import gdlab; print(gdlab.__file__)"], capture_output=True,
                           text=True, env=environment(tree), cwd=cwd, check=True).stdout.strip()
    if not Path(found).resolve().is_relative_to(tree.resolve()):
        raise SystemExit(f"bench_startup: PYTHONPATH={tree} imports gdlab from {found}; cannot time that tree")


def run_once(tree: Path, args: list[str], cwd: Path) -> tuple[float, int]:
    """Seconds of one whole process of ``gdlab ARGS`` from ``tree``, and its exit status."""
    start = time.perf_counter()
    proc = subprocess.run([sys.executable, "-c", LAUNCH, *args], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL, env=environment(tree), cwd=cwd, check=False)
    return time.perf_counter() - start, proc.returncode


def measure(trees: dict[str, Path], repeat: int, cwd: Path) -> dict[str, dict[str, list[float]]]:
    """Per command and tree, the seconds of ``repeat`` runs (after one warm-up each), interleaved."""
    times: dict[str, dict[str, list[float]]] = {label: {name: [] for name in trees} for label, _, _ in COMMANDS}
    for _, args, status in COMMANDS:
        for name, tree in trees.items():
            _, code = run_once(tree, args, cwd)  # warm-up: .pyc files, page cache
            if code != status and name == "working tree":
                raise SystemExit(f"bench_startup: `gdlab {' '.join(args)}` exited {code}, expected {status}")
    for _ in range(repeat):
        for label, args, _ in COMMANDS:
            for name, tree in trees.items():
                seconds, _ = run_once(tree, args, cwd)
                times[label][name].append(seconds)
    return times


def table(times: dict[str, dict[str, list[float]]], baseline: str | None) -> str:
    header = f"{'command':34} {'baseline (s)':>13} {'working tree (s)':>17} {'ratio':>7}  goal < {GOAL} s"
    lines = [header, "-" * len(header)]
    for label, per_tree in times.items():
        now = statistics.median(per_tree["working tree"])
        before = statistics.median(per_tree["baseline"]) if baseline else None
        ratio = f"{before / now:6.1f}x" if before else "      -"
        goal = "(n/a)" if label in NO_GOAL else "ok" if now < GOAL else "MISSED"
        shown = f"{before:13.3f}" if before is not None else f"{'-':>13}"
        lines.append(f"{label:34} {shown} {now:17.3f} {ratio}  {goal}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--baseline", help="git revision to compare with (default: the commit before this script)")
    ap.add_argument("--no-baseline", action="store_true", help="time the working tree only")
    ap.add_argument("--repeat", type=int, default=7, help="measured runs per command and tree (default 7)")
    ap.add_argument("--quick", action="store_true", help="3 runs per command (a smoke run)")
    ap.add_argument("--out", type=Path, default=OUT, help="where to write the JSON")
    args = ap.parse_args(argv)
    repeat = 3 if args.quick else args.repeat
    if repeat < 1:
        ap.error("--repeat must be >= 1")
    revision = None if args.no_baseline else (args.baseline or default_baseline())
    with tempfile.TemporaryDirectory(prefix="gdlab-startup-") as neutral, contextlib.ExitStack() as stack:
        cwd = Path(neutral)
        trees = {"working tree": ROOT}
        if revision is not None:
            trees["baseline"] = stack.enter_context(worktree(revision))
        for tree in trees.values():
            check_imports_from(tree, cwd)
        times = measure(trees, repeat, cwd)
        resolved = git("rev-parse", "--short", revision) if revision else None
    print(f"gdlab start-up: whole processes, median of {repeat} runs; baseline {resolved or '(none)'}, "
          f"working tree {ROOT}")
    print(table(times, resolved))
    report = {
        "python": platform.python_version(),
        "machine": platform.machine(),
        "repeat": repeat,
        "baseline": resolved,
        "goal_seconds": GOAL,
        "commands": {label: {tree: {"median": statistics.median(values), "min": min(values)}
                             for tree, values in per_tree.items()} for label, per_tree in times.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    missed = [label for label, per_tree in times.items()
              if label not in NO_GOAL and statistics.median(per_tree["working tree"]) >= GOAL]
    if missed:
        print(f"goal missed by: {', '.join(missed)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
