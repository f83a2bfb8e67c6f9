"""``gdlab compare``: several optimizers, each with its own hyperparameters, side by side.

Syntax of one ``--optimizer`` (repeat the flag for each optimizer)::

    [LABEL=]NAME[:k=v,k=v,...][+SCHEDULE[:k=v,...]]

- assignments are separated by commas, so a pair inside a spec is written with ``/``:
  ``"adam:lr=0.1,betas=0.9/0.99"``;
- ``LABEL=`` names the row: ``"heavy=sgd:lr=0.01,momentum=0.9"``;
- ``+SCHEDULE`` adds a learning-rate schedule: ``"sgd:lr=0.1+cosine:T_max=100"``;
- with ``--problem``, the keys ``batch_size`` (an integer or ``full``) and ``accumulate`` set the
  training regime of that one optimizer: ``"sgd:lr=0.01,batch_size=32"``.

On a landscape or expression (``--landscape``/``--expr``) every optimizer starts at ``--start``
and runs ``--steps`` steps; the table shows the final loss, the distance to the nearest known
minimum, the steps to tolerance (the first step whose gradient norm is below ``--tol``, default
1e-6 for this column; runs stop there only when ``--tol`` is given) and the status. ``--every K``
or ``--at S1,S2,...`` adds the loss at those steps (a finished run keeps its last value).

On a learning problem (``--problem``) each optimizer trains ``--epochs`` epochs; the table shows
the final training/validation loss (and accuracy for classifiers), the distance to the exact
solution when the problem has one, the steps taken and the status; ``--every K`` adds the training
loss every K epochs.

Pictures (:mod:`gdlab.cli.plotting`): on a landscape ``--plot`` draws the contour map with every
path (``--surface``: the 3-D surface) and ``--animate`` the balls rolling; on a problem ``--plot``
draws the training (solid) and validation (dashed) loss per epoch of every optimizer.
"""

from __future__ import annotations

import argparse
import math
from typing import Any

import numpy as np

from gdlab.cli import options as o
from gdlab.cli import plotting

#: Tolerance of the "steps to tol" column when --tol is not given.
REPORT_TOL = 1e-6


def add_arguments(p: argparse.ArgumentParser) -> None:
    o.add_objective_arguments(p, problem=True)
    p.add_argument("--optimizer", action="append", metavar="SPEC", required=True, dest="specs",
                   help='repeatable: [LABEL=]NAME[:k=v,...][+SCHEDULE[:k=v,...]], e.g. "adam:lr=0.1,betas=0.9/0.99"')
    p.add_argument("--start", metavar="X[,Y]", help="start point (default: the landscape's); negative: --start=-1,2")
    p.add_argument("--steps", type=int, default=100, help=f"steps per run, 1..{o.MAX_STEPS} (default 100)")
    p.add_argument("--tol", type=float, help="stop a run when its gradient norm falls below T")
    p.add_argument("--target", type=float, help="stop a run when its loss falls below T")
    o.add_noise_argument(p)
    p.add_argument("--every", type=int, help="also print the loss every K steps (epochs for --problem)")
    p.add_argument("--at", metavar="S1,S2,...", help="also print the loss after these step counts")
    p.add_argument("--epochs", type=int, default=10, help="epochs per run with --problem (default 10)")
    p.add_argument("--batch-size", metavar="B", help="with --problem: full (default), 1 (SGD) or a mini-batch size")
    p.add_argument("--accumulate", type=int, default=1, help="with --problem: micro-batches per step (default 1)")
    p.add_argument("--seed", type=int, default=0, help="with --problem: seed of the shuffling and init (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    plotting.add_plot_arguments(p, animation=True, surface=True)


def run(args: argparse.Namespace) -> int:
    from gdlab.engine.run import RunSpec, compare

    if args.every is not None and args.every < 1:
        raise o.usage(f"--every must be >= 1, got {args.every}")
    if args.every is not None and args.at is not None:
        raise o.usage("give --every or --at, not both")
    pictures = plotting.plot_request(args)
    noise = o.parse_noise(args.noise)
    if args.problem and noise is not None:
        raise o.usage("--noise applies to landscapes and expressions; a --problem's gradients come from its batches")
    if args.problem:
        pictures.refuse_animation("applies to landscapes; with --problem, --plot draws the loss per epoch")
        return _run_problem(args, pictures)
    if args.problem_set:
        raise o.usage("--problem-set needs --problem NAME")
    steps = o.check_steps(args.steps)
    tol = o.check_tol(args.tol)
    at = _steps_list(args.at, steps) if args.at else None
    specs = [o.parse_run_spec(s, training=True) for s in args.specs]
    for s in specs:
        if s.training:
            raise o.usage(f"--optimizer {s.text!r}: {', '.join(s.training)} only applies with --problem")
    objective, info = o.resolve_objective(args)
    pictures.check_objective(objective)
    start = o.start_point(args, objective)
    run_specs = [RunSpec(s.optimizer, s.hyperparams, s.schedule, s.schedule_params, s.label) for s in specs]
    results = compare(objective, run_specs, start, steps, tol=tol, target=args.target, noise=noise)
    report_tol = tol if tol is not None else REPORT_TOL
    rows = []
    for res in results:
        hit = np.nonzero(res.grad_norm < report_tol)[0]
        near = res.extra.get("nearest_minimum")
        rows.append({
            "label": res.label,
            "final_loss": res.final_loss,
            "distance_to_minimum": None if near is None else near["distance"],
            "steps_to_tol": int(hit[0]) if len(hit) else None,
            "status": res.status,
            "stopped_at": res.stopped_at,
            "reason": res.reason,
        })
    marks = _marks(args.every, at, steps)
    pictures.landscape(objective, results, plotting.landscape_title(info, start, steps))
    if args.json:
        runs = []
        for res, row in zip(results, rows, strict=True):
            item = res.to_json()
            item.update(final_point=res.final_point, final_loss=res.final_loss,
                        distance_to_minimum=row["distance_to_minimum"], steps_to_tol=row["steps_to_tol"],
                        nearest_minimum=res.extra.get("nearest_minimum"))
            runs.append(item)
        out: dict[str, Any] = {"objective": info, "start": start, "steps": steps, "tol": tol,
                               "report_tol": report_tol, "runs": runs}
        if marks is not None:
            out["loss_at"] = {"steps": marks, "loss": [[_loss_at(r.loss, k) for k in marks] for r in results]}
        o.emit_json(out)
        pictures.report()
        return 0
    print(f"{o.objective_title(info)}   start {o.fmt_point(start)}   {steps} steps")
    table_rows = [[r["label"], o.fmt_num(r["final_loss"], 8), o.fmt_num(r["distance_to_minimum"], 4),
                   "-" if r["steps_to_tol"] is None else str(r["steps_to_tol"]),
                   f"{r['status']} at {r['stopped_at']}"] for r in rows]
    print(o.table(["optimizer", "final loss", "dist. to min", f"steps to tol {report_tol:g}", "status"],
                  table_rows))
    for r in rows:
        if r["status"] == "diverged":
            print(f"  {r['label']}: {r['reason']}")
    if marks is not None:
        print()
        loss_rows = [[str(k)] + [o.fmt_num(_loss_at(res.loss, k), 8) for res in results] for k in marks]
        print(o.table(["step"] + [r.label for r in results], loss_rows))
    pictures.report()
    return 0


def _marks(every: int | None, at: list[int] | None, last: int) -> list[int] | None:
    if at is not None:
        return at
    if every is not None:
        marks = list(range(0, last + 1, every))
        return marks
    return None


def _loss_at(loss: np.ndarray, k: int) -> float:
    """Loss after ``k`` steps; a run that stopped earlier keeps its last recorded value."""
    return float(loss[min(k, len(loss) - 1)])


def _steps_list(text: str, steps: int) -> list[int]:
    values = o.parse_list(text, "--at")
    out = []
    for v in values:
        if not float(v).is_integer() or not 0 <= v <= steps:
            raise o.usage(f"--at: {v:g} is not a step count between 0 and --steps {steps}")
        out.append(int(v))
    return out


# ------------------------------------------------------------------------------------------------
# learning problems
# ------------------------------------------------------------------------------------------------
def parse_batch_size(text: str | None, option: str) -> int | None:
    if text is None or str(text).strip().lower() in ("full", "none", "all"):
        return None
    v = o.parse_number(str(text), option, integer=True)
    if v < 1:
        raise o.usage(f"{option} must be >= 1 or 'full', got {text}")
    return int(v)


def build_problem(name: str, sets: list[str]) -> Any:
    from gdlab.core.hyper import suggest
    from gdlab.problems import PROBLEMS, make_problem

    if name not in PROBLEMS:
        raise o.usage(f"unknown problem {name!r}{suggest(name, PROBLEMS)}; valid: {', '.join(PROBLEMS)}")
    params = o.parse_assignments(sets, tuple(PROBLEMS[name].hyperparams), name, "--problem-set")
    return make_problem(name, **params)


def check_epochs(epochs: int) -> int:
    if not 1 <= epochs <= 10_000:
        raise o.usage(f"--epochs must be between 1 and 10000, got {epochs}")
    return epochs


def _run_problem(args: argparse.Namespace, pictures: plotting.PlotRequest) -> int:
    from gdlab.core.optimizers import make_optimizer
    from gdlab.core.schedules import make_schedule
    from gdlab.engine.run import RunSpec
    from gdlab.problems import train

    epochs = check_epochs(args.epochs)
    if args.landscape_set:
        raise o.usage("--landscape-set needs --landscape NAME")
    if args.tol is not None or args.target is not None:
        raise o.usage("--tol and --target apply to landscapes; training runs all --epochs")
    if args.start is not None or args.at is not None:
        raise o.usage("--start and --at apply to landscapes; with --problem use --epochs and --every")
    if args.accumulate < 1:
        raise o.usage(f"--accumulate must be >= 1, got {args.accumulate}")
    if args.seed < 0:
        raise o.usage(f"--seed must be >= 0, got {args.seed}")
    default_bs = parse_batch_size(args.batch_size, "--batch-size")
    specs = [o.parse_run_spec(s, training=True) for s in args.specs]
    problem = build_problem(args.problem, args.problem_set)
    solution = problem.solution() if hasattr(problem, "solution") else None
    results, rows = [], []
    for s in specs:
        bs = parse_batch_size(s.training["batch_size"], f"--optimizer {s.text!r} batch_size") \
            if "batch_size" in s.training else default_bs
        acc = int(o.parse_number(s.training["accumulate"], f"--optimizer {s.text!r} accumulate", integer=True)) \
            if "accumulate" in s.training else args.accumulate
        if acc < 1:
            raise o.usage(f"--optimizer {s.text!r}: accumulate must be >= 1")
        opt = RunSpec(s.optimizer, s.hyperparams).make_optimizer() if ":" in s.optimizer \
            else make_optimizer(s.optimizer, **s.hyperparams)
        sched = make_schedule(s.schedule, **s.schedule_params) if s.schedule else None
        res = train(problem, opt, batch_size=bs, epochs=epochs, schedule=sched, accumulate=acc, seed=args.seed)
        label = s.label or RunSpec(s.optimizer, s.hyperparams, s.schedule, s.schedule_params).display()
        if bs is not None:
            label = label if s.label else f"{label} batch_size={bs}"
        dist = None
        if solution is not None and res.status != "diverged":
            dist = float(np.linalg.norm(np.asarray(res.params) - solution))
        results.append(res)
        rows.append({"label": label, "batch_size": bs, "accumulate": acc, "distance_to_solution": dist})
    curves = {row["label"]: (res.train_loss, res.val_loss) for res, row in zip(results, rows, strict=True)}
    pictures.figure(lambda size: plotting.epoch_loss_figure(
        curves, title=f"problem {problem.name}: loss per epoch (solid: train, dashed: validation)", size=size),
        f"loss per epoch of {len(results)} optimizer(s)")
    if args.json:
        runs = []
        for res, row in zip(results, rows, strict=True):
            item = res.to_json()
            item.update(label=row["label"], distance_to_solution=row["distance_to_solution"])
            runs.append(item)
        o.emit_json({"problem": problem.name, "problem_params": problem.get_params(), "epochs": epochs,
                     "seed": args.seed, "runs": runs})
        pictures.report()
        return 0
    classify = results[0].train_accuracy is not None
    head = ["optimizer", "train loss", "val loss"] + (["train acc", "val acc"] if classify else []) + \
        (["dist. to solution"] if solution is not None else []) + ["steps", "status"]
    trows = []
    for res, row in zip(results, rows, strict=True):
        last = _last_finite(res.train_loss)
        cells = [row["label"], o.fmt_num(last, 8), o.fmt_num(_last_finite(res.val_loss), 8)]
        if classify:
            cells += [o.fmt_num(_last_finite(res.train_accuracy), 4), o.fmt_num(_last_finite(res.val_accuracy), 4)]
        if solution is not None:
            cells.append(o.fmt_num(row["distance_to_solution"], 4))
        cells += [str(res.n_steps), f"{res.status} at {res.stopped_at}"]
        trows.append(cells)
    print(f"problem {problem.name}: {problem.description}   {epochs} epochs, seed {args.seed}")
    print(o.table(head, trows))
    for res, row in zip(results, rows, strict=True):
        if res.status == "diverged":
            print(f"  {row['label']}: {res.reason}")
    if args.every is not None:
        print()
        marks = list(range(0, epochs + 1, args.every))
        loss_rows = [[str(e)] + [o.fmt_num(_epoch_value(r.train_loss, e), 8) for r in results] for e in marks]
        print(o.table(["epoch"] + [row["label"] for row in rows], loss_rows))
    pictures.report()
    return 0


def _last_finite(values: Any) -> float | None:
    arr = np.asarray(values, dtype=np.float64).ravel()
    ok = arr[np.isfinite(arr)]
    return float(ok[-1]) if len(ok) else None


def _epoch_value(values: np.ndarray, e: int) -> float | None:
    if e >= len(values):
        return None
    v = float(values[e])
    return v if math.isfinite(v) else None


COMMAND = ("compare", "compare several optimizers (each with its own hyperparameters) side by side",
           add_arguments, run)
