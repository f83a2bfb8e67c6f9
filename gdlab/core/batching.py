"""The batch convention shared by the whole numerical core.

Parameters are arrays whose **last axis** holds the parameters of one run; any leading axes are a
batch of independent runs. ``(d,)`` is one run, ``(B, d)`` is B runs, ``(S, L, d)`` could be S starts
times L learning rates. A numeric hyperparameter may be a scalar or an array that broadcasts against
the batch shape ``params.shape[:-1]``; :func:`expand` appends the parameter axis so that it then
broadcasts against ``params`` itself. Reductions that belong to one run (a gradient norm, a dot
product) reduce over the last axis only, so a batched run equals the individual runs.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def batch_shape(params: np.ndarray) -> tuple[int, ...]:
    """The shape of the batch of runs: every axis but the last."""
    return params.shape[:-1]


def expand(value: Any, params: np.ndarray, name: str = "hyperparameter") -> Any:
    """Make a scalar-or-batched hyperparameter broadcast against ``params``.

    Scalars are returned unchanged (cheapest arithmetic). An array of shape ``S`` must broadcast
    against the batch shape; it is returned with a trailing axis, shape ``S + (1,)``.
    """
    if not isinstance(value, np.ndarray):
        return value
    if value.ndim == 0:
        return float(value)
    batch = batch_shape(params)
    try:
        np.broadcast_shapes(value.shape, batch)
    except ValueError:
        raise ValueError(
            f"{name} has shape {value.shape}, which does not broadcast against the batch shape {batch} "
            f"of params with shape {params.shape}"
        ) from None
    if len(np.broadcast_shapes(value.shape, batch)) > len(batch):
        raise ValueError(
            f"{name} has shape {value.shape}, more batch axes than params of shape {params.shape} "
            "(put the runs on leading axes of params)"
        )
    return value[..., np.newaxis]


#: Up to this many parameters, per-run reductions loop over the (few) columns: NumPy reduces a
#: short last axis slowly (``np.abs(x).max(axis=-1)`` on (10⁴, 2) costs ~20× a column loop).
#: Every shape of a given ``d`` takes the same path, so a run's norm has the same bits alone or batched.
SMALL_DIM = 16


def run_squared_norm(x: np.ndarray) -> np.ndarray:
    """Squared Euclidean norm of each run's vector, shape ``batch_shape``: summed coordinate by
    coordinate up to :data:`SMALL_DIM` parameters (the order the compiled trajectories follow)."""
    d = x.shape[-1]
    if d > SMALL_DIM:
        return np.einsum("...i,...i->...", x, x)
    acc = x[..., 0] * x[..., 0]
    for i in range(1, d):
        acc = acc + x[..., i] * x[..., i]
    return acc


def run_norm(x: np.ndarray) -> np.ndarray:
    """Euclidean norm of each run's vector: shape ``batch_shape`` (keeps no parameter axis)."""
    return np.sqrt(run_squared_norm(x))


def run_absmax(x: np.ndarray) -> np.ndarray:
    """Largest absolute entry of each run's vector, shape ``batch_shape``."""
    d = x.shape[-1]
    if d > SMALL_DIM:
        return np.abs(x).max(axis=-1)
    acc = np.abs(x[..., 0])
    for i in range(1, d):
        acc = np.maximum(acc, np.abs(x[..., i]))
    return acc


def run_dot(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Dot product per run, shape ``batch_shape``."""
    return np.einsum("...i,...i->...", a, b)


def run_all_finite(x: np.ndarray) -> np.ndarray:
    """Boolean per run: every entry of that run's vector is finite."""
    if np.isfinite(x.sum()):  # the common case, decided by one fast pass over the whole array
        return np.ones(batch_shape(x), dtype=bool)
    return np.isfinite(x).all(axis=-1)


def per_run(mask: np.ndarray) -> np.ndarray:
    """Give a per-run array (shape ``batch_shape``) a trailing axis to broadcast against params."""
    return np.asarray(mask)[..., np.newaxis]


def as_params(params: Any, name: str = "params") -> np.ndarray:
    """Check and convert parameters: a real floating array with at least one axis."""
    arr = np.asarray(params)
    if arr.dtype.kind in "iub":
        arr = arr.astype(np.float64)
    if arr.dtype.kind != "f":
        raise TypeError(f"{name} must be a real floating-point array, got dtype {arr.dtype}")
    if arr.ndim == 0:
        raise ValueError(f"{name} must have at least one axis (the parameter axis), got a scalar")
    if arr.shape[-1] == 0:
        raise ValueError(f"{name} has an empty parameter axis (shape {arr.shape})")
    return arr


def check_like(grad: Any, params: np.ndarray, name: str = "grad") -> np.ndarray:
    """Check that a gradient has the shape of ``params`` and return it in params' dtype."""
    g = np.asarray(grad)
    if g.shape != params.shape:
        raise ValueError(f"{name} has shape {g.shape}, but params have shape {params.shape}")
    if g.dtype != params.dtype:
        g = g.astype(params.dtype)
    return g
