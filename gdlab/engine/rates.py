r"""Convergence rates on quadratics (Goh, "Why Momentum Really Works", Distill 2017), in theory and measured.

On :math:`f(x) = \tfrac12 (x - x^*)^\top A (x - x^*)` with eigenvalues :math:`0 < \lambda_{min} \le \dots \le
\lambda_{max}` of A and condition number :math:`\kappa = \lambda_{max}/\lambda_{min}`, the error
:math:`e_k = x_k - x^*` splits into eigendirections that evolve independently:

- **gradient descent** with rate η: :math:`e_{k+1} = (1 - \eta\lambda_i) e_k` per direction, so the
  per-step rate is :math:`\rho_{GD}(\eta) = \max_i |1 - \eta\lambda_i|`, smallest at
  :math:`\eta^* = 2/(\lambda_{min}+\lambda_{max})` where it is :math:`(\kappa-1)/(\kappa+1)`.
- **heavy-ball momentum** β (:math:`b_{k+1} = \beta b_k + \nabla f(x_k),\ x_{k+1} = x_k - \eta b_{k+1}`):
  per direction :math:`(e_{k+1}, e_k) = M_i (e_k, e_{k-1})` with
  :math:`M_i = \begin{pmatrix}1 + \beta - \eta\lambda_i & -\beta\\ 1 & 0\end{pmatrix}`, so the rate is
  :math:`\rho_{HB}(\eta, \beta) = \max_i \rho(M_i)`, the largest root modulus of
  :math:`z^2 - (1+\beta-\eta\lambda_i)z + \beta`. Its optimum is
  :math:`\beta^* = ((\sqrt\kappa-1)/(\sqrt\kappa+1))^2` with :math:`\eta^* = (2/(\sqrt{\lambda_{min}}+
  \sqrt{\lambda_{max}}))^2`, where the rate is :math:`\sqrt{\beta^*} = (\sqrt\kappa-1)/(\sqrt\kappa+1)`.

The **measured rate** of a run is the geometric mean of the error ratios :math:`\lVert e_{k+1}\rVert /
\lVert e_k\rVert` over the tail of the run: :math:`(\lVert e_{end}\rVert/\lVert e_{start}\rVert)^{1/(end -
start)}` over the last quarter of its points (at least two steps).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def eigenvalues_of(A: Any) -> np.ndarray:
    """The eigenvalues of the symmetric matrix ``A``, ascending; ``ValueError`` unless all are positive."""
    lam = np.linalg.eigvalsh(np.asarray(A, dtype=np.float64))
    if not np.all(np.isfinite(lam)) or lam[0] <= 0.0:
        raise ValueError(f"convergence rates need a positive-definite quadratic; its eigenvalues are {lam.tolist()}")
    return lam


def gd_rate(lam: Any, lr: Any) -> np.ndarray:
    """:math:`\\max_i |1 - \\eta\\lambda_i|` for every η of ``lr`` (any shape)."""
    lam = np.asarray(lam, dtype=np.float64)
    eta = np.asarray(lr, dtype=np.float64)[..., None]
    return np.max(np.abs(1.0 - eta * lam), axis=-1)


def momentum_rate(lam: Any, lr: Any, momentum: Any) -> np.ndarray:
    """:math:`\\max_i \\rho(M_i)` for every (η, β) (``lr`` and ``momentum`` broadcast together).

    The roots of :math:`z^2 - tz + \\beta`, :math:`t = 1 + \\beta - \\eta\\lambda`: complex (modulus √β) when
    :math:`t^2 < 4\\beta`, else real, the larger in modulus :math:`(|t| + \\sqrt{t^2 - 4\\beta})/2`.
    """
    lam = np.asarray(lam, dtype=np.float64)
    eta = np.asarray(lr, dtype=np.float64)[..., None]
    beta = np.asarray(momentum, dtype=np.float64)[..., None]
    t = 1.0 + beta - eta * lam
    disc = t * t - 4.0 * beta
    with np.errstate(invalid="ignore"):
        real = 0.5 * (np.abs(t) + np.sqrt(np.maximum(disc, 0.0)))
    rho = np.where(disc < 0.0, np.sqrt(np.broadcast_to(beta, disc.shape)), real)
    return np.max(rho, axis=-1)


def optimal(lam: Any) -> dict[str, float]:
    """The optimal settings and their rates: ``gd_lr``, ``gd_rate``, ``momentum``, ``momentum_lr``,
    ``momentum_rate`` (see the module docstring)."""
    lam = np.asarray(lam, dtype=np.float64)
    lo, hi = float(lam.min()), float(lam.max())
    kappa = hi / lo
    sk = math.sqrt(kappa)
    return {
        "gd_lr": 2.0 / (lo + hi),
        "gd_rate": (kappa - 1.0) / (kappa + 1.0),
        "momentum": ((sk - 1.0) / (sk + 1.0)) ** 2,
        "momentum_lr": (2.0 / (math.sqrt(lo) + math.sqrt(hi))) ** 2,
        "momentum_rate": (sk - 1.0) / (sk + 1.0),
    }


def rate_between(x_from: Any, x_to: Any, minimum: Any, steps: int, *, floor: float = 1e-280) -> np.ndarray:
    """The per-step rate from ``x_from`` to ``x_to`` (``steps`` steps later; shapes ``batch + (d,)``):
    :math:`(\\lVert x_{to} - x^*\rVert / \\lVert x_{from} - x^*\rVert)^{1/steps}`. NaN where an error is not
    finite or is at most ``floor`` (x* itself, or an error underflowing: no rate to measure)."""
    x_star = np.asarray(minimum, dtype=np.float64)
    with np.errstate(all="ignore"):  # far-out points: errors that overflow are refused below
        e0 = np.linalg.norm(np.asarray(x_from, dtype=np.float64) - x_star, axis=-1)
        e1 = np.linalg.norm(np.asarray(x_to, dtype=np.float64) - x_star, axis=-1)
        rate = (e1 / e0) ** (1.0 / steps)
    ok = np.isfinite(e0) & np.isfinite(e1) & (e0 > floor) & (e1 > floor)
    return np.where(ok, rate, math.nan)


def tail_start(n_points: int, tail: float = 0.25) -> int:
    """The first point of the last ``tail`` of ``n_points`` points, leaving at least 2 steps after it."""
    return max(0, min(n_points - 3, math.floor((n_points - 1) * (1.0 - tail))))


def measured_rate(trajectory: Any, minimum: Any, *, tail: float = 0.25) -> np.ndarray:
    """The measured per-step rate of runs: ``trajectory`` of shape ``(T + 1,) + batch + (d,)`` (or
    ``(T + 1, d)``), ``minimum`` the point x*: :func:`rate_between` the first point of the last ``tail``
    of the points (at least 2 steps before the end) and the last. NaN with fewer than 3 points."""
    x = np.asarray(trajectory, dtype=np.float64)
    n = x.shape[0]
    if n < 3:
        return np.full(x.shape[1:-1], math.nan)
    start = tail_start(n, tail)
    return rate_between(x[start], x[n - 1], minimum, n - 1 - start)
