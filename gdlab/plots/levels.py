"""Evaluating a landscape on a grid and choosing contour levels that show steep valleys."""

from __future__ import annotations

from typing import Any

import numpy as np


def landscape_grid(
    landscape: Any, n: int = 300, domain: tuple[tuple[float, float], ...] | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``X, Y, Z`` on an ``n × n`` grid over the landscape's domain (non-finite values masked)."""
    (x0, x1), (y0, y1) = (domain or landscape.domain)[:2]
    xs, ys = np.linspace(x0, x1, n), np.linspace(y0, y1, n)
    X, Y = np.meshgrid(xs, ys)
    with np.errstate(all="ignore"):
        Z = np.asarray(landscape.value(np.stack([X, Y], axis=-1)), dtype=np.float64)
    return X, Y, np.ma.masked_invalid(Z)


def contour_levels(Z: np.ndarray, count: int = 30) -> tuple[np.ndarray, bool]:
    """Levels for ``Z`` and whether they are log-spaced.

    When the lowest 5 % of the map sits more than 50 times closer to the minimum than the highest
    point (Rosenbrock, Goldstein-Price), linear levels would crowd the walls and leave the valley
    blank; then the levels are spaced geometrically in ``Z − min`` so the valley floor gets as many
    contours as the walls.
    """
    z = np.ma.compressed(Z)
    if z.size == 0:
        raise ValueError("the landscape has no finite value on this domain")
    lo, hi = float(z.min()), float(z.max())
    if hi <= lo:
        return np.array([lo, lo + 1.0]), False
    shifted = z - lo
    low_quantile = float(np.quantile(shifted, 0.05))
    if low_quantile > 0 and (hi - lo) / low_quantile > 50:
        floor = max(float(np.quantile(shifted[shifted > 0], 0.001)), 1e-12 * (hi - lo))
        return lo + np.geomspace(floor, hi - lo, count), True
    if low_quantile == 0 and np.any(shifted > 0):  # a flat floor: still resolve what rises from it
        floor = float(np.quantile(shifted[shifted > 0], 0.01))
        return lo + np.geomspace(floor, hi - lo, count), True
    return np.linspace(lo, hi, count), False
