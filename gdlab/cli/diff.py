"""``gdlab diff``: where two optimizers part, step by step, on the same gradients.

``gdlab diff --optimizer adam --against torch:torch.optim.Adam --set lr=1e-3
[--landscape NAME [--start X,Y] | --stream random [--dim D] [--seed S]] [--steps N] [--tol T]
[--schedule NAME --schedule-set k=v] [--json]``

``--set`` applies to both optimizers, ``--optimizer-set`` only to the first (gdlab's) and
``--against-set`` only to the second. Both receive the same gradients: random ones (``--stream``,
the default) or, on a landscape, the gradient at the first optimizer's point (see
:mod:`gdlab.engine.diff`). Exit 0 whether or not they part (the output says which).
"""

from __future__ import annotations

import argparse

from gdlab.cli import options as o
from gdlab.cli.run import add_schedule_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--optimizer", metavar="NAME", required=True, help="the first optimizer (gdlab's, or foreign)")
    p.add_argument("--against", metavar="NAME", required=True, help="the second optimizer, e.g. torch:torch.optim.Adam")
    p.add_argument("--set", action="append", metavar="K=V", default=[], help="a hyperparameter of both (repeatable)")
    p.add_argument("--optimizer-set", action="append", metavar="K=V", default=[],
                   help="a hyperparameter of the first only (repeatable)")
    p.add_argument("--against-set", action="append", metavar="K=V", default=[],
                   help="a hyperparameter of the second only (repeatable)")
    p.add_argument("--landscape", metavar="NAME", help="take the gradients on this landscape (at the first's points)")
    p.add_argument("--start", metavar="X[,Y]", help="start point (default: the landscape's, or zeros for --stream)")
    p.add_argument("--stream", choices=("random",), default="random", help="gradients without a landscape (default)")
    p.add_argument("--dim", type=int, default=8, help="dimension of the --stream parameters (default 8)")
    p.add_argument("--seed", type=int, default=0, help="seed of the --stream gradients (default 0)")
    p.add_argument("--steps", type=int, default=100, help="steps (default 100)")
    p.add_argument("--tol", type=float, default=1e-10, help="relative tolerance (default 1e-10)")
    add_schedule_arguments(p)
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from gdlab.engine.diff import diff_optimizers

    steps = o.check_steps(args.steps)
    if not (np.isfinite(args.tol) and args.tol >= 0):
        raise o.usage(f"--tol must be a finite number >= 0, got {args.tol}")
    if not 1 <= args.dim <= 10_000:
        raise o.usage(f"--dim must be in 1..10000, got {args.dim}")
    a, hp_a = o.build_optimizer(args.optimizer, args.set + args.optimizer_set)
    b, _ = o.build_optimizer(args.against, args.set + args.against_set)
    schedule = o.build_schedule(args.schedule, args.schedule_set)
    objective = None
    if args.landscape is not None:
        from gdlab.landscapes import make_landscape

        try:
            objective = make_landscape(args.landscape)
        except (KeyError, ValueError, TypeError) as exc:
            raise o.usage(f"--landscape: {exc}") from None
        x0 = o.parse_point(args.start, "--start", objective.dim) if args.start else np.asarray(
            objective.default_start, dtype=np.float64)
    else:
        x0 = o.parse_point(args.start, "--start", args.dim) if args.start else np.zeros(args.dim)

    def rebuild(changes: dict) -> object:
        from gdlab.core.optimizers import make_optimizer

        changes = dict(changes)
        name = changes.pop("optimizer", args.optimizer)
        return make_optimizer(name, **{**hp_a, **changes})

    try:
        result = diff_optimizers(a, b, x0, steps=steps, tol=args.tol, objective=objective, seed=args.seed,
                                 schedule=schedule, rebuild=None if ":" in args.optimizer else rebuild)
    except TypeError as exc:
        raise o.usage(str(exc)) from None
    if args.json:
        o.emit_json({"optimizer": a.name, "against": b.name, **result.as_dict()})
        return 0
    source = f"landscape {args.landscape}" if objective is not None else f"random gradients (seed {args.seed})"
    print(f"{a.name} vs {b.name}: {steps} steps on {source}, relative tolerance {args.tol:g}")
    if result.agree:
        print(f"they agree: largest relative difference {result.max_rel_diff:.3g} (step {result.max_rel_step})")
        return 0
    print(f"they part at step {result.first_step}, parameter {result.first_index}; "
          f"largest relative difference {result.max_rel_diff:.3g} (step {result.max_rel_step})")
    for e in result.explanations:
        print(f"explained by: {e['convention']} — with {', '.join(f'{k}={v}' for k, v in e['set'].items())} "
              "they agree")
    if not result.explanations:
        print("no convention gdlab knows explains it")
    return 0


COMMAND = ("diff", "where two optimizers part, step by step, on the same gradients", add_arguments, run)
