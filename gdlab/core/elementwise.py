"""The operations an optimizer's element body may use (see :class:`gdlab.core.rule.Rule`).

An element body is written once and run by every executor: NumPy evaluates it on whole arrays (the
reference path), and :mod:`gdlab.fast` compiles the very same function to scalar machine code (the
fused kernels and trajectories). Both give the same bits on every CPU because a body uses only what
IEEE arithmetic defines exactly:

- ``+ - * /``, unary minus and comparisons: correctly rounded, and never contracted into fused
  multiply-adds (NumPy has no contraction; the compiled paths are built without fast-math);
- :func:`sqrt` (correctly rounded) and :func:`absolute` (clears the sign bit);
- :func:`select`, :func:`maximum`, :func:`sign` and :func:`lerp` below, whose results, signed zeros
  and NaN included, are defined here rather than left to NumPy's or LLVM's choice of instruction
  (``np.maximum(-0.0, 0.0)`` and ``np.sign(-0.0)`` differ between them).

Functions that several bodies share (the descent gradient, Adam's moments, the stopping rules'
decisions) are written the same way and marked with :func:`helper`, so that the compiled executors
compile them with their callers.

Numeric constants reach a body as arguments (its constants and per-step scalars), never as literals
in arithmetic: in float32 a literal is rounded to float32 by NumPy but kept in float64 by compiled
code. Literals in comparisons are fine. Transcendental functions (pow, exp, cos, ...) have no place
in a body; what a rule needs of them is computed once per step by :mod:`gdlab.core.scalarmath`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

#: Correctly rounded square root.
sqrt = np.sqrt
#: Absolute value (exact: clears the sign bit).
absolute = np.abs


def select(condition: Any, if_true: Any, if_false: Any) -> Any:
    """``if_true`` where ``condition`` holds, else ``if_false`` (elementwise; both are evaluated)."""
    return np.where(condition, if_true, if_false)


def maximum(a: Any, b: Any) -> Any:
    """``a`` where ``a >= b`` or ``a`` is NaN, else ``b``: NaN if either is NaN, ``a`` on a tie
    (so ``maximum(-0.0, 0.0)`` is ``-0.0``)."""
    return np.where((a >= b) | (a != a), a, b)


def sign(x: Any) -> Any:
    """1 where ``x > 0``, −1 where ``x < 0``, else ``x`` itself (±0 keep their sign, NaN stays NaN)."""
    one = np.ones_like(x)
    return np.where(x > 0, one, np.where(x < 0, -one, x))


def lerp(start: Any, end: Any, weight: Any, one_minus_weight: Any) -> Any:
    """``torch.lerp(start, end, weight)``: ``start + w·(end − start)`` for ``w < 0.5``, else
    ``end − (end − start)·(1 − w)``, written as one ``base + k·(end − start)`` with
    ``(base, k) = (start, w)`` or ``(end, −(1 − w))`` (exact: ``a − b`` is ``a + (−b)``).
    ``one_minus_weight`` is ``1 − w``, passed in so that the body holds no literal."""
    low = weight < 0.5
    return select(low, start, end) + select(low, weight, -one_minus_weight) * (end - start)


#: The names a body may call, besides arithmetic and helpers: the compiled executors provide a scalar
#: implementation of each with the semantics above.
PRIMITIVES = ("sqrt", "absolute", "select", "maximum", "sign", "lerp")

#: The functions marked with :func:`helper`.
HELPERS: list[Callable[..., Any]] = []


def helper(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Mark ``fn``, written like an element body (exact operations, primitives and other helpers
    only), as callable from element bodies; the compiled executors compile it with its callers."""
    HELPERS.append(fn)
    return fn
