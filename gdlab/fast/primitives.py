"""The element primitives of :mod:`gdlab.core.elementwise`, as numba compiles them (scalars).

Each overload gives the compiled scalar code the semantics the NumPy definition documents, signed
zeros and NaN included, with constants of the argument's own type (a float32 body stays float32).
``sqrt`` and ``absolute`` need nothing: numba's ``np.sqrt`` is the correctly rounded square root
and ``np.abs`` clears the sign bit, as NumPy's do. Importing this module registers the overloads.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numba import types
from numba.extending import overload, register_jitable

from gdlab.core import elementwise


def _dtype(ty: Any) -> Any:
    return np.dtype(ty.name).type if isinstance(ty, types.Float) else np.float64


@overload(elementwise.select)
def _select(condition, if_true, if_false):  # no annotations: numba compares the two signatures
    def impl(condition, if_true, if_false):
        return if_true if condition else if_false

    return impl


@overload(elementwise.maximum)
def _maximum(a, b):
    def impl(a, b):
        return a if (a >= b) | (a != a) else b

    return impl


@overload(elementwise.sign)
def _sign(x):
    one = _dtype(x)(1.0)
    minus_one = _dtype(x)(-1.0)

    def impl(x):
        if x > 0:
            return one
        if x < 0:
            return minus_one
        return x

    return impl


@overload(elementwise.lerp)
def _lerp(start, end, weight, one_minus_weight):
    def impl(start, end, weight, one_minus_weight):
        low = weight < 0.5
        base = start if low else end
        k = weight if low else -one_minus_weight
        return base + k * (end - start)

    return impl


_registered: set[Any] = set()


def register_helpers() -> None:
    """Let compiled code call every function marked with :func:`gdlab.core.elementwise.helper` (each
    compiles from its own source); call before compiling code that may use one."""
    for fn in elementwise.HELPERS:
        if fn not in _registered:
            register_jitable(fn)
            _registered.add(fn)


register_helpers()
