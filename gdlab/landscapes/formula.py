"""A formula in the step ``t`` as a Python function: LambdaLR's and MultiplicativeLR's ``lr_lambda``
from the command line and the lab (``0.95**t``, ``1/(1 + 0.01*t)``, ``0.5*(1 + cos(pi*t/100))``).

The text is read by the landscapes' safe parser (:mod:`gdlab.landscapes.expr`: a whitelist
tokenizer and a precedence-climbing parser, the variable ``t`` instead of ``x`` and ``y``); nothing
the user typed reaches ``eval``. The parse tree is turned into nested Python closures over floats,
with the C library's functions (:mod:`math`), so a step's value is the same number however it is
asked for. A value that is not a finite real (``log(t)`` at t = 0) is NaN, which the schedule
reports as a rate that is not finite.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable
from typing import Any

from gdlab.landscapes.expr import CONSTANTS, FUNCTIONS, ExpressionError, Node, parse

Closure = Callable[[float], float]

_BINARY: dict[str, Callable[[float, float], float]] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv, "**": math.pow,
}


def _safe(fn: Callable[..., float], *args: float) -> float:
    try:
        out = float(fn(*args))
    except (ValueError, OverflowError, ZeroDivisionError):
        return math.nan
    return out if math.isfinite(out) else math.nan


def _closure(node: Node) -> Closure:
    kind = node.kind
    if kind == "number":
        value = node.value
        return lambda t: value
    if kind == "name":
        if node.text in CONSTANTS:
            const = CONSTANTS[node.text]
            return lambda t: const
        return lambda t: t
    if kind in ("neg", "pos"):
        inner = _closure(node.args[0])
        return (lambda t: -inner(t)) if kind == "neg" else inner
    if kind == "call":
        fn, arg = FUNCTIONS[node.text], _closure(node.args[0])
        return lambda t: _safe(fn, arg(t))
    op = _BINARY["**" if kind == "^" else kind]
    left, right = _closure(node.args[0]), _closure(node.args[1])
    return lambda t: _safe(op, left(t), right(t))


class Formula:
    """A formula in ``t``, callable on one step (an int) and shown as its text."""

    def __init__(self, text: str) -> None:
        if not isinstance(text, str):
            raise TypeError(f"a formula must be a string, got {type(text).__name__}")
        self.text = text.strip()
        self._fn = _closure(parse(self.text, ("t",)))

    def __call__(self, t: Any) -> float:
        return self._fn(float(t))

    def __repr__(self) -> str:
        return self.text

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Formula) and other.text == self.text

    def __hash__(self) -> int:
        return hash(self.text)


def parse_formula(text: str) -> Formula:
    """The function of ``t`` that ``text`` spells, or :class:`ExpressionError` saying what and where."""
    return Formula(text)


__all__ = ["ExpressionError", "Formula", "parse_formula"]
