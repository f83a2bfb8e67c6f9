"""``gdlab list``: what the lab offers, with parameters and defaults.

``gdlab list [landscapes|optimizers|schedules|problems] [--json]``

Without a category, everything. ``--json`` prints one object keyed by category, each a list of
entries with ``name``, a summary and ``hyperparams`` (name, kind, default, range, doc); landscapes
also carry their dimension, domain and minima.
"""

from __future__ import annotations

import argparse
from typing import Any

from gdlab.cli import options as o
from gdlab.core.hyper import describe, suggest

CATEGORIES = ("landscapes", "optimizers", "schedules", "problems")


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("category", nargs="?", metavar="CATEGORY", help="one of " + ", ".join(CATEGORIES))
    p.add_argument("--json", action="store_true", help="print one JSON object")


def optimizers_info() -> list[dict[str, Any]]:
    from gdlab.core.optimizer import GradientOptimizer
    from gdlab.core.optimizers import OPTIMIZERS
    from gdlab.core.rule import Rule

    out = []
    for name, cls in OPTIMIZERS.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append({"name": name, "family": cls.family, "summary": doc[0] if doc else "",
                    "needs": cls.needs, "elementwise": issubclass(cls, Rule),
                    "gradient_only": issubclass(cls, GradientOptimizer),
                    "hyperparams": describe(o.optimizer_specs(name))})
    return out


def schedules_info() -> list[dict[str, Any]]:
    from gdlab.core.schedules import SCHEDULES

    out = []
    for name, cls in SCHEDULES.items():
        doc = (cls.__doc__ or "").strip().splitlines()
        out.append({"name": name, "summary": doc[0] if doc else "", "needs_loss": cls.needs_loss,
                    "hyperparams": describe(tuple(cls.hyperparams))})
    return out


def landscapes_info() -> list[dict[str, Any]]:
    from gdlab.landscapes import list_landscapes

    return list(list_landscapes())


def problems_info() -> list[dict[str, Any]]:
    from gdlab.problems import list_problems

    return list_problems()


INFO = {"landscapes": landscapes_info, "optimizers": optimizers_info, "schedules": schedules_info,
        "problems": problems_info}


def run(args: argparse.Namespace) -> int:
    cats = CATEGORIES
    if args.category is not None:
        if args.category not in CATEGORIES:
            raise o.usage(f"unknown category {args.category!r}{suggest(args.category, CATEGORIES)}; "
                          f"valid: {', '.join(CATEGORIES)}")
        cats = (args.category,)
    data = {c: INFO[c]() for c in cats}
    if args.json:
        o.emit_json(data)
        return 0
    blocks = []
    for c in cats:
        lines = [f"{c}:"]
        for item in data[c]:
            lines.extend(_entry(c, item))
        blocks.append("\n".join(lines))
    print("\n\n".join(blocks))
    return 0


def _params(hps: list[dict[str, Any]]) -> str:
    parts = []
    for h in hps:
        d = h.get("default")
        if isinstance(d, list):
            d = "/".join(f"{v:g}" if isinstance(v, float) else str(v) for v in d)
        elif isinstance(d, float):
            d = f"{d:g}"
        parts.append(f"{h['name']}={d}")
    return " ".join(parts)


def _entry(category: str, item: dict[str, Any]) -> list[str]:
    name = item.get("name", "?")
    summary = item.get("summary") or item.get("description") or ""
    lines = [f"  {name:<22} {summary}".rstrip()]
    hps = item.get("hyperparams") or item.get("parameters") or []
    if isinstance(hps, list) and hps and isinstance(hps[0], dict):
        lines.append(f"  {'':<22} params: {_params(hps)}")
    if category == "landscapes":
        dim, domain = item.get("dim"), item.get("domain")
        if dim is not None:
            lines.append(f"  {'':<22} dim {dim}, domain {domain}")
        minima = (item.get("global_minima") or []) + (item.get("local_minima") or [])
        for m in minima[:6]:
            if isinstance(m, dict) and "location" in m:
                lines.append(f"  {'':<22} minimum {o.fmt_point(m['location'])} f = {o.fmt_num(m.get('value'))}"
                             f" ({m.get('kind', '')})")
    return lines


COMMAND = ("list", "list landscapes, optimizers, schedules and problems with their parameters", add_arguments, run)
