"""Transcendental functions for per-step scalars, computed by the C library one element at a time.

A rule's bias corrections (β₁ᵗ, β₂ᵗ), NAdam's momentum schedule (0.96^{tψ}) and a schedule's
learning rate (γᵗ, cos πt/T) are per-step scalars: one number per step and hyperparameter value, not
per parameter. Every path must get the same bits for them: the step-by-step reference computes the
scalars of one step, the fused trajectories a whole table at once. NumPy's vectorised ``power``,
``exp`` and ``cos`` differ from the C library (and from each other across CPUs: AVX-512 builds use
their own SIMD code) by an ulp now and then, so they are not used here. Instead each function below
evaluates Python's :mod:`math` function (the C library's, as PyTorch's Python-side bias corrections
do) on every *distinct* element of its broadcast arguments: a value is computed by the same code
whether it is asked for alone or inside a table, on any CPU.

The arguments broadcast like NumPy's; a result has the broadcast shape (a 0-d array for scalars).
Overflow gives ``inf`` and a domain error NaN, as the C functions do, instead of raising.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable
from typing import Any

import numpy as np


def _call(fn: Callable[..., float], args: tuple[float, ...]) -> float:
    try:
        return fn(*args)
    except OverflowError:
        return math.inf
    except ValueError:
        return math.nan


def each(fn: Callable[..., float], *args: Any) -> np.ndarray:
    """``fn`` (a function of Python floats) on every element of the broadcast ``args``.

    Each distinct combination of values (bit for bit) is evaluated once, so a table whose values
    repeat costs little: when the distinct values of the arguments, taken separately, make few
    combinations (a table of steps × hyperparameter values), ``fn`` runs on those combinations and
    the table is indexed from them; otherwise on the distinct rows of the broadcast arguments.
    """
    if all(isinstance(a, float | int | np.floating | np.integer) for a in args):  # one value: no arrays needed
        return np.asarray(_call(fn, tuple(float(a) for a in args)))
    given = [np.asarray(a, dtype=np.float64) for a in args]
    shape = np.broadcast_shapes(*(a.shape for a in given))
    if not shape:
        return np.asarray(_call(fn, tuple(float(a) for a in given)))
    if math.prod(shape) == 0:
        return np.empty(shape)
    distinct, where = [], []
    for a in given:
        bits, inverse = np.unique(a.reshape(-1).view(np.int64), return_inverse=True)
        distinct.append(bits.view(np.float64).tolist())
        where.append(inverse.reshape(a.shape))
    if math.prod(len(d) for d in distinct) <= math.prod(shape):
        grid = np.array([_call(fn, combo) for combo in itertools.product(*distinct)], dtype=np.float64)
        return grid.reshape([len(d) for d in distinct])[tuple(np.broadcast_to(w, shape) for w in where)]
    arrays = np.broadcast_arrays(*given)
    stacked = np.stack([a.reshape(-1) for a in arrays], axis=1)
    bits, inverse = np.unique(stacked.view(np.int64), axis=0, return_inverse=True)
    rows = bits.view(np.float64).tolist()
    values = np.array([_call(fn, tuple(row)) for row in rows], dtype=np.float64)
    return values[inverse.reshape(-1)].reshape(shape)


def power(base: Any, exponent: Any) -> np.ndarray:
    """``base ** exponent`` by C's ``pow`` (``math.pow``), element by element."""
    return each(math.pow, base, exponent)


def cos(x: Any) -> np.ndarray:
    """``cos(x)`` by the C library, element by element."""
    return each(math.cos, x)


def exp(x: Any) -> np.ndarray:
    """``exp(x)`` by the C library, element by element."""
    return each(math.exp, x)


def log(x: Any) -> np.ndarray:
    """Natural logarithm by the C library, element by element (NaN below 0, −inf at 0)."""
    return each(_log, x)


def _log(x: float) -> float:
    return -math.inf if x == 0.0 else math.log(x)
