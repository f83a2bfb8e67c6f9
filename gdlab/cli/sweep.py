"""``gdlab sweep lr`` and ``gdlab sweep basin``: many runs in one batched engine call.

``gdlab sweep lr (--landscape NAME | --expr EXPR) --optimizer NAME [--set k=v ...]
(--lrs L1,L2,... | --lr-range LO:HI:N) [--start X[,Y]] [--steps N] [--schedule NAME
[--schedule-set k=v ...]] [--tol T] [--json] [--plot FILE]``
    Final loss, final point and status for every learning rate (``--lr-range`` is N values spaced
    geometrically from LO to HI). Table: lr, final x, final loss, status.

``gdlab sweep basin (--landscape NAME | --expr EXPR) --optimizer NAME [--set k=v ...]
[--xlim LO,HI] [--ylim LO,HI] [--resolution N|NX,NY] [--steps N] [--tol T] [--radius R] [--json]
[--plot FILE]``
    A grid of starts (default: the landscape's domain, 41×41) on a 2-D objective; every start is
    labelled with the minimum it ends within R of (``0``, ``1``, ... as listed), ``.`` for none,
    ``x`` for divergence. ``--tol`` (default 1e-6) stops converged runs.

``--plot`` (both kinds, see :mod:`gdlab.cli.plotting`) draws the final loss against the learning rate
on log axes, with GD's critical rate 2/λmax at the start as a dashed line when it is defined, or the
basin map (colour = minimum reached, darker = more steps, black = diverged).

Limits: ``--steps`` ≤ 100,000, at most 1,000 learning rates, 400×400 grid points, and runs × steps
≤ 2·10⁸.
"""

from __future__ import annotations

import argparse
import math

import numpy as np

from gdlab.cli import options as o
from gdlab.cli import plotting
from gdlab.cli.run import add_optimizer_arguments, add_schedule_arguments
from gdlab.core.limits import LIMITS

MAX_LRS = LIMITS.max_lrs
MAX_GRID = LIMITS.max_grid


def add_arguments(p: argparse.ArgumentParser) -> None:
    sub = p.add_subparsers(dest="sweep", metavar="KIND", parser_class=type(p), required=True)
    lr = sub.add_parser("lr", help="final loss against the learning rate", description="final loss vs lr")
    o.add_objective_arguments(lr)
    add_optimizer_arguments(lr)
    rates = lr.add_mutually_exclusive_group(required=True)
    rates.add_argument("--lrs", metavar="L1,L2,...", help="learning rates, e.g. 0.01,0.05,0.1")
    rates.add_argument("--lr-range", metavar="LO:HI:N", help="N rates spaced geometrically from LO to HI")
    lr.add_argument("--start", metavar="X[,Y]", help="start point (default: the landscape's); negative: --start=-1,2")
    lr.add_argument("--steps", type=int, default=100, help=f"steps per run, 1..{o.MAX_STEPS} (default 100)")
    add_schedule_arguments(lr)
    lr.add_argument("--tol", type=float, help="stop a run when its gradient norm falls below T")
    lr.add_argument("--json", action="store_true", help="print one JSON object")
    plotting.add_plot_arguments(lr)
    lr.set_defaults(_sweep=run_lr)

    basin = sub.add_parser("basin", help="basins of attraction over a grid of starts",
                           description="basins of attraction over a grid of starts")
    o.add_objective_arguments(basin)
    add_optimizer_arguments(basin)
    basin.add_argument("--xlim", metavar="LO,HI",
                       help="x range of the grid (default: the domain), e.g. --xlim=-2,2")
    basin.add_argument("--ylim", metavar="LO,HI", help="y range of the grid (default: the domain)")
    basin.add_argument("--resolution", default="41", metavar="N|NX,NY", help="grid points per axis (default 41)")
    basin.add_argument("--steps", type=int, default=500, help=f"steps per run, 1..{o.MAX_STEPS} (default 500)")
    basin.add_argument("--tol", type=float, default=1e-6, help="stop a run when |grad| < T (default 1e-6)")
    basin.add_argument("--radius", type=float, help="a run reached a minimum if it ends within R of it "
                       "(default 2%% of the larger side)")
    basin.add_argument("--json", action="store_true", help="print one JSON object")
    plotting.add_plot_arguments(basin)
    basin.set_defaults(_sweep=run_basin)


def run(args: argparse.Namespace) -> int:
    return int(args._sweep(args))


def parse_lrs(args: argparse.Namespace) -> np.ndarray:
    if args.lrs is not None:
        values = np.array(o.parse_list(args.lrs, "--lrs"))
    else:
        parts = args.lr_range.split(":")
        if len(parts) != 3:
            raise o.usage(f"--lr-range: expected LO:HI:N, got {args.lr_range!r}")
        lo = o.parse_number(parts[0], "--lr-range LO")
        hi = o.parse_number(parts[1], "--lr-range HI")
        n = int(o.parse_number(parts[2], "--lr-range N", integer=True))
        if not (0 < lo < hi) or n < 2:
            raise o.usage(f"--lr-range: expected 0 < LO < HI and N >= 2, got {args.lr_range!r}")
        values = np.geomspace(lo, hi, n)
    if len(values) > MAX_LRS:
        raise o.usage(f"at most {MAX_LRS} learning rates, got {len(values)}")
    if np.any(values < 0):
        raise o.usage("learning rates must be >= 0")
    return values


def run_lr(args: argparse.Namespace) -> int:
    from gdlab.engine.sweeps import lr_sweep

    steps = o.check_steps(args.steps)
    tol = o.check_tol(args.tol)
    lrs = parse_lrs(args)
    o.check_work(len(lrs), steps)
    pictures = plotting.plot_request(args)
    objective, info = o.resolve_objective(args)
    sets = list(args.set)
    if any(s.partition("=")[0].strip() == "lr" for s in sets):
        raise o.usage("--set lr=... conflicts with the swept learning rates (--lrs/--lr-range)")
    _, hp = o.build_optimizer(args.optimizer, sets)
    schedule = o.build_schedule(args.schedule, args.schedule_set)
    start = o.start_point(args, objective)
    sweep = lr_sweep(objective, args.optimizer, lrs, start, steps=steps, hyperparams=hp, schedule=schedule, tol=tol)
    label = f"{args.optimizer} {o.fmt_hyper(hp)}".rstrip() + (f" +{sweep.schedule}" if sweep.schedule else "")
    pictures.figure(lambda size: plotting.lr_sweep_figure(
        label, sweep, objective, start, size=size,
        title=f"{o.objective_title(info)}: final loss after {steps} steps from {o.fmt_point(start, 4)}"),
        "final loss vs learning rate")
    if args.json:
        o.emit_json({"objective": info, **sweep.to_json()})
        pictures.report()
        return 0
    print(f"{o.objective_title(info)}   start {o.fmt_point(start)}   {steps} steps")
    print(f"optimizer {args.optimizer} {o.fmt_hyper(hp)}".rstrip() + (f"   schedule {sweep.schedule}"
                                                                       if sweep.schedule else ""))
    rows = []
    for i, rate in enumerate(lrs):
        status = str(sweep.status[i])
        at = int(sweep.stopped_at[i])
        rows.append([f"{rate:g}", o.fmt_point(sweep.final_point[i], 10), o.fmt_num(sweep.final_loss[i], 10),
                     f"{status} at {at}"])
    print(o.table(["lr", "final x", "final loss", "status"], rows))
    best = sweep.best()
    if best["lr"] is not None:
        print(f"lowest final loss: lr={best['lr']:g} (f = {o.fmt_num(best['final_loss'], 8)})")
    pictures.report()
    return 0


def run_basin(args: argparse.Namespace) -> int:
    from gdlab.engine.sweeps import basin_map

    steps = o.check_steps(args.steps)
    tol = o.check_tol(args.tol)
    o.check_positive(args.radius, "--radius")
    res = o.parse_point(args.resolution, "--resolution")
    if len(res) not in (1, 2) or not all(float(v).is_integer() for v in res):
        raise o.usage(f"--resolution: expected N or NX,NY (integers), got {args.resolution!r}")
    nx, ny = (int(res[0]), int(res[0])) if len(res) == 1 else (int(res[0]), int(res[1]))
    if not (2 <= nx <= MAX_GRID and 2 <= ny <= MAX_GRID):
        raise o.usage(f"--resolution must be between 2 and {MAX_GRID} per axis, got {nx},{ny}")
    o.check_work(nx * ny, steps)
    pictures = plotting.plot_request(args)
    objective, info = o.resolve_objective(args)
    if getattr(objective, "dim", 2) != 2:
        raise o.usage(f"sweep basin needs a 2-D objective, this one has dim {objective.dim}")
    xlim = o.parse_range(args.xlim, "--xlim", nx) if args.xlim is not None else None
    ylim = o.parse_range(args.ylim, "--ylim", ny) if args.ylim is not None else None
    if (xlim is None or ylim is None) and getattr(objective, "domain", None) is None:
        raise o.usage("this objective has no domain; give --xlim and --ylim")
    optimizer, _ = o.build_optimizer(args.optimizer, args.set)
    bmap = basin_map(objective, optimizer, xlim=xlim, ylim=ylim, resolution=(nx, ny), steps=steps, tol=tol,
                     radius=args.radius)
    pictures.figure(lambda size: plotting.basin_plot(
        bmap, size=size, title=f"{o.objective_title(info)}: basins of "
        f"{plotting.optimizer_label(optimizer.name, optimizer.get_params())}, {steps} steps"), "basin map")
    if args.json:
        o.emit_json({"objective": info, **bmap.to_json()})
        pictures.report()
        return 0
    print(f"{o.objective_title(info)}   {optimizer.name} {o.fmt_hyper(optimizer.get_params())}")
    print(f"x in [{bmap.xs[0]:g}, {bmap.xs[-1]:g}] (left to right), y in [{bmap.ys[0]:g}, {bmap.ys[-1]:g}] "
          f"(bottom to top), {nx}x{ny} starts, {steps} steps, tol {tol}, radius {bmap.radius:g}")
    print(bmap.render())
    counts = bmap.counts()
    print()
    for i, m in enumerate(bmap.minima):
        mean_steps = _mean_steps(bmap, i)
        print(f"  {i}: minimum at {o.fmt_point(m['location'])} f = {o.fmt_num(m['value'])} ({m['kind']}): "
              f"{counts[f'minimum {i}']} starts, mean steps {mean_steps}")
    print(f"  .: no minimum reached: {counts['no minimum']} starts")
    print(f"  x: diverged: {counts['diverged']} starts")
    if bmap.minima_source == "clustered":
        print("  (minima found by grouping the end points of converged runs)")
    pictures.report()
    return 0


def _mean_steps(bmap, i: int) -> str:  # type: ignore[no-untyped-def]
    sel = bmap.basin == i
    if not sel.any():
        return "-"
    v = float(np.mean(bmap.steps_taken[sel]))
    return f"{v:.1f}" if math.isfinite(v) else "-"


COMMAND = ("sweep", "sweep learning rates (lr) or map basins of attraction (basin)", add_arguments, run)
