"""``gdlab schedule``: the learning rate of a schedule at every step.

``gdlab schedule NAME [--set k=v ...] [--lr BASE] --steps N [--every K] [--json] [--plot FILE]``

Step t (0-based) is the rate of the (t+1)-th update, as ``torch.optim.lr_scheduler`` gives it
after t calls of ``scheduler.step()``. The text output lists steps ``0, K, 2K, ... < N`` (default
K: about 20 rows); ``--json`` prints every step: ``{"schedule", "params", "base_lr", "steps",
"step": [0..N-1], "lr": [...]}``. Loss-driven schedules (``plateau``) need a run; here they show
the base rate. ``--plot`` draws the learning rate against the step (see :mod:`gdlab.cli.plotting`).
"""

from __future__ import annotations

import argparse

import numpy as np

from gdlab.cli import options as o
from gdlab.cli import plotting


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("name", metavar="NAME", help="schedule (see `gdlab list schedules`)")
    p.add_argument("--set", action="append", metavar="K=V", default=[], dest="set",
                   help="a schedule parameter, e.g. --set T_max=1000 --set eta_min=1e-6 (repeatable)")
    p.add_argument("--lr", type=float, default=1.0, help="base learning rate η₀ (default 1)")
    p.add_argument("--steps", type=int, required=True, help=f"number of steps, 1..{o.MAX_STEPS}")
    p.add_argument("--every", type=int, help="print every K-th step (text output)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    plotting.add_plot_arguments(p)


def run(args: argparse.Namespace) -> int:
    steps = o.check_steps(args.steps)
    base = args.lr
    if not (np.isfinite(base) and base >= 0):
        raise o.usage(f"--lr must be a finite number >= 0, got {base:g}")
    if args.every is not None and args.every < 1:
        raise o.usage(f"--every must be >= 1, got {args.every}")
    pictures = plotting.plot_request(args)
    sched = o.build_schedule(args.name, args.set, "--set")
    lrs = np.asarray(sched.curve(steps, base), dtype=np.float64)
    label = f"{sched.name} {o.fmt_hyper(sched.get_params())}".rstrip()
    pictures.figure(lambda size: plotting.schedule_plot(
        label, lrs, size=size, title=f"learning-rate schedule {sched.name}, base lr {base:g}, {steps} steps"),
        "learning-rate curve")
    if args.json:
        o.emit_json({"schedule": sched.name, "params": sched.get_params(), "base_lr": base, "steps": steps,
                     "needs_loss": bool(sched.needs_loss), "step": np.arange(steps), "lr": lrs})
        pictures.report()
        return 0
    every = args.every or max(1, steps // 20)
    print(f"schedule {sched.name} {o.fmt_hyper(sched.get_params())}   base lr {base:g}   {steps} steps")
    if sched.needs_loss:
        print("(this schedule reacts to the loss; without a run it keeps the base rate)")
    rows = [[str(t), f"{lrs[t]:.9g}"] for t in range(0, steps, every)]
    print(o.table(["step", "lr"], rows, "rr"))
    pictures.report()
    return 0


COMMAND = ("schedule", "print a learning-rate schedule step by step", add_arguments, run)
