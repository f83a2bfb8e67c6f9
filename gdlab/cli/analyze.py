"""``gdlab analyze``: gradient, curvature, critical learning rates and the kind of a point.

``gdlab analyze --landscape NAME [--landscape-set k=v ...] | --expr EXPR --at X[,Y]
[--momentum B] [--grad-tol T] [--json]``

Shows f, ∇f, ‖∇f‖, the Hessian and its eigenvalues, the condition number, the critical learning
rates 2/λ_max (gradient descent) and 2(1+β)/λ_max (heavy-ball momentum β), and the classification
(minimum, maximum, saddle, degenerate, not stationary); then the same at the nearest known minimum
(landscapes). See :mod:`gdlab.engine.analysis` for the math.
"""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from gdlab.cli import options as o

if TYPE_CHECKING:
    from gdlab.engine.analysis import PointAnalysis


def add_arguments(p: argparse.ArgumentParser) -> None:
    o.add_objective_arguments(p)
    p.add_argument("--at", metavar="X[,Y]", required=True, help="the point; negative first value: --at=-1,2")
    p.add_argument("--momentum", type=float, default=0.9, help="β of the momentum critical rate (default 0.9)")
    p.add_argument("--grad-tol", type=float, default=1e-6,
                   help="a point is stationary when the gradient norm is at most T (default 1e-6)")
    p.add_argument("--json", action="store_true", help="print one JSON object")


def run(args: argparse.Namespace) -> int:
    from gdlab.engine.analysis import analyze

    if not 0 <= args.momentum < 1:
        raise o.usage(f"--momentum must be in [0, 1), got {args.momentum:g}")
    o.check_tol(args.grad_tol, "--grad-tol")
    objective, info = o.resolve_objective(args)
    x = o.parse_point(args.at, "--at", getattr(objective, "dim", None))
    result = analyze(objective, x, momentum=args.momentum, grad_tol=args.grad_tol)
    if args.json:
        o.emit_json({"objective": info, **result.to_json()})
        return 0
    print(o.objective_title(info))
    print(describe(result.at, f"at {o.fmt_point(x)}"))
    if result.nearest_minimum is not None and result.at_minimum is not None:
        near = result.nearest_minimum
        print()
        print(f"nearest known minimum ({near['kind']}), distance {o.fmt_num(near['distance'], 4)}:")
        print(describe(result.at_minimum, f"at {o.fmt_point(near['location'])}"))
    return 0


def describe(a: PointAnalysis, title: str) -> str:
    """Readable lines for one :class:`PointAnalysis`."""
    lines = [
        f"{title}: {a.kind}" + ("" if a.kind == "not stationary" else f" (Hessian {a.curvature})"),
        f"  f          {o.fmt_num(a.value, 10)}",
        f"  grad       {o.fmt_point(a.grad)}   |grad| {o.fmt_num(a.grad_norm, 4)}",
        f"  Hessian    {'; '.join(o.fmt_point(row) for row in a.hessian)}   ({a.hessian_source})",
        f"  eigenvalues {o.fmt_point(a.eigenvalues)}",
        f"  condition number {o.fmt_num(a.condition_number, 6)}",
    ]
    if a.critical_lr is None:
        lines.append("  critical lr: none (no positive curvature here, so no stability limit)")
    else:
        lines.append(f"  critical lr: gradient descent 2/λmax = {o.fmt_num(a.critical_lr, 6)}; "
                     f"momentum β={a.momentum:g}: 2(1+β)/λmax = {o.fmt_num(a.critical_lr_momentum, 6)}")
    return "\n".join(lines)


COMMAND = ("analyze", "gradient, Hessian, condition number and critical learning rates at a point",
           add_arguments, run)
