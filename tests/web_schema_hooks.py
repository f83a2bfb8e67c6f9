"""What schemathesis needs to know about the lab's OpenAPI schema beyond JSON Schema.

The schema says a custom formula is ``gdlab-formula-x`` (a formula in x only) or ``gdlab-formula-xy``
(one using y); JSON Schema cannot spell a grammar, so these strategies generate such formulas. The
rules that compare two values (L-BFGS's c1 < c2, ``warmup_steps < total_steps``, OneCycle's rising
phase, SAM's base's rules) are stated in the schema in words only: generated bodies that break one
are left out (:func:`filter_body`), since the server rightly answers them 422. Used by
``tests/test_web_schema.py``, and by the command line as a hooks module::

    SCHEMATHESIS_HOOKS=web_schema_hooks PYTHONPATH=tests st run http://127.0.0.1:8000/openapi.json --checks all
"""

from __future__ import annotations

import re
from typing import Any

import schemathesis
from hypothesis import strategies as st

from gdlab.core.optimizers import make_optimizer
from gdlab.core.schedules import make_schedule

#: The core's messages for the rules the schema states in words only.
UNSAID = re.compile(
    r"need c1 < c2|must be smaller than total_steps|rising phase of zero length"
    # SAM's base's own rules: written for the optimizers themselves, in words inside SAM (see schema.py)
    r"|nesterov=True requires|alpha=1 with eps=0"
    # Rprop's etas: 0 < etaminus < 1 < etaplus (one pair, two positions)
    r"|etas must satisfy"
    # a schedule cycling the momentum of an optimizer without one
    r"|cycle_momentum: "

)

NUMBERS = st.sampled_from(["1", "2", "3", "0.5", "10", "1e-3", "pi", "e"])
FUNCTIONS = st.sampled_from(["sin", "cos", "tanh", "exp", "abs", "sinh", "cosh"])


def formulas(variables: tuple[str, ...]) -> st.SearchStrategy[str]:
    """Formulas of the lab's grammar using ``variables``, the last of them for sure."""
    leaves = st.one_of(st.sampled_from(variables), NUMBERS)
    terms = st.recursive(
        leaves,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from([" + ", " - ", "*"]), inner).map("".join),
            st.tuples(FUNCTIONS, inner).map(lambda t: f"{t[0]}({t[1]})"),
            inner.map(lambda t: f"({t})^2"),
        ),
        max_leaves=4,
    )
    return st.tuples(terms, st.sampled_from([" + ", "*"]), st.just(variables[-1])).map("".join)


schemathesis.openapi.format("gdlab-formula-x", formulas(("x",)))
schemathesis.openapi.format("gdlab-formula-xy", formulas(("x", "y")))
schemathesis.openapi.format("gdlab-formula-t", formulas(("t",)))


def breaks_unsaid_rule(body: Any) -> bool:
    """Whether an optimizer or schedule of a request body is refused by the core for a rule of
    :data:`UNSAID` (anything else, valid or not, is the server's to judge)."""
    if not isinstance(body, dict):
        return False
    specs: list[tuple[Any, Any]] = [(make_schedule, body.get("schedule"))]
    for opt in body.get("optimizers") or []:
        if isinstance(opt, dict):
            specs += [(make_optimizer, {"name": opt.get("name"), "params": opt.get("hyperparams")}),
                      (make_schedule, opt.get("schedule"))]
    if breaks_momentum_rule(body):
        return True
    for make, spec in specs:
        if not isinstance(spec, dict) or not isinstance(spec.get("name"), str) or spec["name"] == "none":
            continue
        params = spec.get("params") if isinstance(spec.get("params"), dict) else {}
        try:
            make(spec["name"], **{k: tuple(v) if isinstance(v, list) and k == "betas" else v
                                  for k, v in params.items()})
        except Exception as exc:  # only the messages of UNSAID matter here
            if UNSAID.search(str(exc)):
                return True
    return False


def breaks_momentum_rule(body: dict[str, Any]) -> bool:
    """Whether a schedule with ``cycle_momentum`` drives an optimizer without momentum or betas."""
    from gdlab.core.cycling import momentum_field

    default = body.get("schedule")
    for opt in body.get("optimizers") or []:
        if not isinstance(opt, dict):
            continue
        sched = opt.get("schedule") if isinstance(opt.get("schedule"), dict) else default
        params = sched.get("params") if isinstance(sched, dict) else None
        if not (isinstance(params, dict) and params.get("cycle_momentum") is True):
            continue
        try:
            hyper = opt.get("hyperparams") if isinstance(opt.get("hyperparams"), dict) else {}
            optimizer = make_optimizer(opt.get("name"), **{k: tuple(v) if isinstance(v, list) else v
                                                          for k, v in hyper.items()})
        except Exception:
            continue
        try:
            momentum_field(optimizer)
        except ValueError:
            return True
    return False


@schemathesis.hook
def filter_body(ctx: Any, body: Any) -> bool:
    """Keep the bodies that break none of the rules the schema states in words only."""
    return not breaks_unsaid_rule(body)
