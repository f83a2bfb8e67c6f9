"""``gdlab run``: one optimizer run on a landscape or a custom expression.

``gdlab run --landscape NAME [--landscape-set k=v ...] | --expr "EXPR" --optimizer NAME [--set k=v ...]
[--start X[,Y]] [--steps N] [--schedule NAME [--schedule-set k=v ...]] [--tol T] [--target T]
[--noise SIGMA[,B[,SEED]]] [--every K] [--json]
[--plot FILE [--surface]] [--animate FILE [--frames N] [--fps F]] [--plot-size WxH]``

``--json`` prints one object: the :class:`~gdlab.engine.result.RunResult` fields (``trajectory``
start first; ``loss[i]`` and ``grad_norm[i]`` belong to ``trajectory[i]``; ``lr[i]`` moved point i
to i+1; ``status``, ``stopped_at``, ``reason``) plus ``objective``, ``start``, ``steps``,
``final_point``, ``final_loss`` and ``nearest_minimum``. Only finite numbers are written: a
diverging run's record stops at its last finite point. A diverging run is a result (exit 0).

``--plot`` draws the contour map with the path (the curve f(x) for 1-D objectives, the 3-D surface
with ``--surface``); ``--animate`` writes the ball rolling as a GIF or MP4 (see
:mod:`gdlab.cli.plotting`).
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING, Any

import numpy as np

from gdlab.cli import options as o
from gdlab.cli import plotting

if TYPE_CHECKING:
    from gdlab.engine.result import RunResult


def add_optimizer_arguments(p: argparse.ArgumentParser, required: bool = True) -> None:
    p.add_argument("--optimizer", metavar="NAME", required=required, help="optimizer (see `gdlab list optimizers`)")
    p.add_argument("--set", action="append", metavar="K=V", default=[], dest="set",
                   help="an optimizer hyperparameter, e.g. --set lr=0.01 --set betas=0.9,0.999 (repeatable)")


def add_schedule_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--schedule", metavar="NAME", help="learning-rate schedule (see `gdlab list schedules`)")
    p.add_argument("--schedule-set", action="append", metavar="K=V", default=[],
                   help="a schedule parameter, e.g. --schedule-set T_max=100 (repeatable)")


def add_arguments(p: argparse.ArgumentParser) -> None:
    o.add_objective_arguments(p)
    add_optimizer_arguments(p)
    p.add_argument("--start", metavar="X[,Y]",
                   help="start point (default: the landscape's); negative first value: --start=-1.5,2")
    p.add_argument("--steps", type=int, default=100, help=f"number of steps, 1..{o.MAX_STEPS} (default 100)")
    add_schedule_arguments(p)
    p.add_argument("--tol", type=float, help="stop (converged) when the gradient norm falls below T")
    p.add_argument("--target", type=float, help="stop (converged) when the loss falls below T")
    o.add_noise_argument(p)
    p.add_argument("--every", type=int, help="print the trajectory every K steps (text output)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    plotting.add_plot_arguments(p, animation=True, surface=True)


def run(args: argparse.Namespace) -> int:
    from gdlab.engine.analysis import nearest_known_minimum
    from gdlab.engine.run import run_single

    steps = o.check_steps(args.steps)
    tol = o.check_tol(args.tol)
    noise = o.parse_noise(args.noise)
    if args.every is not None and args.every < 1:
        raise o.usage(f"--every must be >= 1, got {args.every}")
    pictures = plotting.plot_request(args)
    objective, info = o.resolve_objective(args)
    pictures.check_objective(objective)
    optimizer, _ = o.build_optimizer(args.optimizer, args.set)
    schedule = o.build_schedule(args.schedule, args.schedule_set)
    start = o.start_point(args, objective)
    res = run_single(objective, optimizer, start, steps=steps, schedule=schedule, tol=tol, target=args.target,
                     noise=noise)
    near = nearest_known_minimum(objective, res.final_point)
    pictures.landscape(objective, [res], plotting.landscape_title(info, start, steps))
    if args.json:
        o.emit_json(run_json(res, info, start, steps, near))
    else:
        print(summary(res, info, start, steps, near, args.every))
    pictures.report()
    return 0


def run_json(res: RunResult, info: dict[str, Any], start: np.ndarray, steps: int,
             near: dict[str, Any] | None) -> dict[str, Any]:
    """The JSON object of ``gdlab run --json``."""
    out = res.to_json()
    out.update(
        objective=info,
        start=start,
        steps=steps,
        final_point=res.final_point,
        final_loss=res.final_loss,
        final_grad_norm=float(res.grad_norm[-1]) if len(res.grad_norm) else None,
        nearest_minimum=near,
    )
    return out


def status_text(res: RunResult) -> str:
    if res.status == "diverged":
        return f"diverged at step {res.stopped_at}: {res.reason}"
    if res.status == "converged":
        return f"converged at step {res.stopped_at}: {res.reason}"
    return f"max_steps: {res.reason}"


def summary(res: RunResult, info: dict[str, Any], start: np.ndarray, steps: int,
            near: dict[str, Any] | None, every: int | None) -> str:
    """The readable output of ``gdlab run``."""
    lines = [
        o.objective_title(info),
        f"optimizer  {res.optimizer} {o.fmt_hyper(res.hyperparams)}",
    ]
    if res.schedule:
        sp = res.extra.get("schedule_params", {})
        lines.append(f"schedule   {res.schedule} {o.fmt_hyper(sp)}".rstrip())
    if res.extra.get("noise"):
        nz = res.extra["noise"]
        lines.append(f"noise      sigma={o.fmt_num(nz['sigma'])} batch={nz['batch_size']} seed={nz['seed']} "
                     "(gradient noise sigma/sqrt(batch))")
    lines += [
        f"start      {o.fmt_point(start)}   steps {steps}",
        f"status     {status_text(res)}",
        f"final      x = {o.fmt_point(res.final_point, 10)}   f = {o.fmt_num(res.final_loss, 10)}   "
        f"|grad| = {o.fmt_num(res.grad_norm[-1], 3)}",
    ]
    if near is not None:
        lines.append(f"nearest minimum  {o.fmt_point(near['location'])} ({near['kind']}, f = "
                     f"{o.fmt_num(near['value'])}), distance {o.fmt_num(near['distance'], 3)}")
    n = len(res.trajectory)
    k = every or max(1, (n - 1) // 10)
    rows = []
    idx = list(range(0, n, k))
    if idx[-1] != n - 1:
        idx.append(n - 1)
    for i in idx:
        lr = o.fmt_num(res.lr[i], 4) if i < len(res.lr) else ""
        rows.append([str(i), o.fmt_point(res.trajectory[i]), o.fmt_num(res.loss[i], 8),
                     o.fmt_num(res.grad_norm[i], 3), lr])
    lines += ["", o.table(["step", "x", "loss", "|grad|", "lr"], rows, "rlrrr")]
    return "\n".join(lines)


COMMAND = ("run", "run one optimizer on a landscape or expression", add_arguments, run)
