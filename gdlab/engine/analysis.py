r"""Local analysis of an objective at a point: gradient, curvature and what they imply for step sizes.

At a point :math:`x` with gradient :math:`g = \nabla f(x)` and Hessian :math:`H = \nabla^2 f(x)`
(eigenvalues :math:`\lambda_1 \le \dots \le \lambda_d`):

- **condition number** :math:`\kappa = \max_i|\lambda_i| / \min_i|\lambda_i|` (∞ when some
  :math:`\lambda_i = 0`); at a minimum this is :math:`\lambda_{max}/\lambda_{min}`, the ratio that
  slows gradient descent down.
- **critical learning rate of plain gradient descent** :math:`\eta_c = 2/\lambda_{max}`. On the
  quadratic model :math:`f(x+\delta) \approx f + g^\top\delta + \tfrac12\delta^\top H\delta` gradient
  descent multiplies the component along eigenvector i by :math:`1 - \eta\lambda_i`, which shrinks
  iff :math:`0 < \eta\lambda_i < 2`: above :math:`\eta_c` the iterates oscillate with growing
  amplitude (diverge).
- **critical learning rate of heavy-ball momentum** β (``θ ← θ − η b, b ← βb + g``, PyTorch's SGD
  momentum, or the textbook velocity form): the iteration along eigenvector i is stable iff
  :math:`0 < \eta\lambda_i < 2(1+\beta)`, so :math:`\eta_c = 2(1+\beta)/\lambda_{max}`.
  Both are ``None`` when :math:`\lambda_{max} \le 0` (no positive curvature: no finite limit from
  this test, and gradient descent moves away along negative curvature at any η).
- **classification** (second-order test) when :math:`\lVert g\rVert \le` ``grad_tol``:
  ``minimum`` (all :math:`\lambda_i > \epsilon`), ``maximum`` (all :math:`< -\epsilon`),
  ``saddle`` (eigenvalues of both signs), ``degenerate`` (otherwise: some
  :math:`|\lambda_i| \le \epsilon` and no two opposite signs, the test is inconclusive — e.g. the
  monkey saddle :math:`x^3 - 3xy^2` or :math:`x^4` at 0); ``not stationary`` when the gradient is
  not ~0. Here :math:`\epsilon` = ``eig_tol`` · max(1, max |λ|).

The Hessian comes from ``objective.hessian`` when the objective has one, else from central
differences of the gradient (column j: :math:`(g(x + h e_j) - g(x - h e_j))/2h`, symmetrised).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab.core.batching import as_params
from gdlab.core.objective import Objective
from gdlab.engine.result import jsonable

KINDS = ("minimum", "maximum", "saddle", "degenerate", "not stationary")


@dataclass
class PointAnalysis:
    """The local picture at one point (see the module docstring for every quantity)."""

    point: np.ndarray
    value: float
    grad: np.ndarray
    grad_norm: float
    hessian: np.ndarray
    eigenvalues: np.ndarray  # ascending
    eigenvectors: np.ndarray  # columns, matching eigenvalues
    condition_number: float
    critical_lr: float | None
    critical_lr_momentum: float | None
    momentum: float
    kind: str
    curvature: str  # what the Hessian alone says: "positive definite", "indefinite", ...
    hessian_source: str  # "exact" or "finite differences"

    def to_json(self) -> dict[str, Any]:
        return jsonable({
            "point": self.point,
            "value": self.value,
            "grad": self.grad,
            "grad_norm": self.grad_norm,
            "hessian": self.hessian,
            "eigenvalues": self.eigenvalues,
            "eigenvectors": self.eigenvectors,
            "condition_number": self.condition_number if math.isfinite(self.condition_number) else "inf",
            "critical_lr": self.critical_lr,
            "critical_lr_momentum": self.critical_lr_momentum,
            "momentum": self.momentum,
            "kind": self.kind,
            "curvature": self.curvature,
            "hessian_source": self.hessian_source,
        })


@dataclass
class Analysis:
    """:func:`analyze`'s answer: the point itself and, when minima are known, the nearest one."""

    at: PointAnalysis
    nearest_minimum: dict[str, Any] | None  # location, value, kind, distance (from the known minima)
    at_minimum: PointAnalysis | None

    def to_json(self) -> dict[str, Any]:
        return {
            "at": self.at.to_json(),
            "nearest_minimum": jsonable(self.nearest_minimum),
            "at_minimum": self.at_minimum.to_json() if self.at_minimum is not None else None,
        }


def analyze_point(
    objective: Objective,
    x: Any,
    *,
    momentum: float = 0.9,
    grad_tol: float = 1e-6,
    eig_tol: float = 1e-8,
) -> PointAnalysis:
    """Gradient, Hessian spectrum, condition number, critical learning rates and kind at ``x`` (shape (d,))."""
    p = _point(x)
    if not 0 <= momentum < 1:
        raise ValueError(f"momentum must be in [0, 1), got {momentum}")
    value = float(np.asarray(objective.value(p))) if objective.has_value else math.nan
    g = np.asarray(objective.grad(p), dtype=np.float64)
    gn = float(np.linalg.norm(g))
    H, source = hessian(objective, p)
    if not np.all(np.isfinite(H)):
        raise ValueError(f"the Hessian at {p.tolist()} is not finite")
    lam, vec = np.linalg.eigh(H)
    scale = max(1.0, float(np.max(np.abs(lam))))
    eps = eig_tol * scale
    curvature = curvature_kind(lam, eps)
    if not (gn <= grad_tol):
        kind = "not stationary"
    else:
        kind = {"positive definite": "minimum", "negative definite": "maximum", "indefinite": "saddle"}.get(
            curvature, "degenerate"
        )
    lam_max = float(lam[-1])
    abs_lam = np.abs(lam)
    cond = float(abs_lam.max() / abs_lam.min()) if abs_lam.min() > eps else math.inf
    crit = 2.0 / lam_max if lam_max > eps else None
    crit_m = 2.0 * (1.0 + momentum) / lam_max if lam_max > eps else None
    return PointAnalysis(
        point=p, value=value, grad=g, grad_norm=gn, hessian=H, eigenvalues=lam, eigenvectors=vec,
        condition_number=cond, critical_lr=crit, critical_lr_momentum=crit_m, momentum=float(momentum),
        kind=kind, curvature=curvature, hessian_source=source,
    )


def analyze(
    objective: Objective,
    x: Any,
    *,
    momentum: float = 0.9,
    grad_tol: float = 1e-6,
    eig_tol: float = 1e-8,
) -> Analysis:
    """:func:`analyze_point` at ``x``, plus the same at the nearest known minimum (landscapes)."""
    here = analyze_point(objective, x, momentum=momentum, grad_tol=grad_tol, eig_tol=eig_tol)
    near = nearest_known_minimum(objective, here.point)
    at_min = None
    if near is not None:
        at_min = analyze_point(objective, near["location"], momentum=momentum, grad_tol=max(grad_tol, 1e-4),
                               eig_tol=eig_tol)
    return Analysis(here, near, at_min)


def curvature_kind(eigenvalues: np.ndarray, eps: float) -> str:
    """``positive definite``, ``negative definite``, ``indefinite``, ``positive semidefinite``,
    ``negative semidefinite`` or ``zero``, with |λ| ≤ eps counted as zero."""
    pos = bool(np.any(eigenvalues > eps))
    neg = bool(np.any(eigenvalues < -eps))
    zero = bool(np.any(np.abs(eigenvalues) <= eps))
    if pos and neg:
        return "indefinite"
    if pos:
        return "positive semidefinite" if zero else "positive definite"
    if neg:
        return "negative semidefinite" if zero else "negative definite"
    return "zero"


def hessian(objective: Objective, x: np.ndarray, h: float = 1e-5) -> tuple[np.ndarray, str]:
    """The Hessian at ``x`` (shape (d,)) and where it came from ("exact" or "finite differences")."""
    if getattr(objective, "has_hessian", False):
        try:
            H = np.asarray(objective.hessian(x), dtype=np.float64)
            return 0.5 * (H + H.T), "exact"
        except NotImplementedError:
            pass
    d = x.shape[-1]
    steps = h * np.maximum(1.0, np.abs(x))
    E = np.eye(d) * steps
    pts = np.concatenate([x + E, x - E])  # (2d, d): one batched gradient call
    G = np.asarray(objective.grad(pts), dtype=np.float64)
    H = (G[:d] - G[d:]) / (2.0 * steps[:, None])  # row j = ∂g/∂x_j
    return 0.5 * (H + H.T), "finite differences"


def known_minima(objective: Objective) -> list[dict[str, Any]]:
    """The minima an objective knows (landscapes: global first, then local), as dicts."""
    out: list[dict[str, Any]] = []
    for attr in ("global_minima", "local_minima"):
        for pt in getattr(objective, attr, None) or []:
            loc = np.asarray(getattr(pt, "location", pt), dtype=np.float64)
            kind = getattr(pt, "kind", "global" if attr == "global_minima" else "local")
            val = getattr(pt, "value", None)
            out.append({"location": loc, "value": None if val is None else float(val), "kind": kind})
    return out


def nearest_known_minimum(objective: Objective, x: Any) -> dict[str, Any] | None:
    """The known minimum closest (Euclidean) to ``x``: location, value, kind, index, distance; else None."""
    minima = known_minima(objective)
    p = np.asarray(x, dtype=np.float64)
    if not minima or not np.all(np.isfinite(p)):
        return None
    locs = [m["location"] for m in minima]
    if any(loc.shape != p.shape for loc in locs):
        return None
    dist = np.linalg.norm(np.stack(locs) - p, axis=-1)
    i = int(np.argmin(dist))
    return {**minima[i], "index": i, "distance": float(dist[i])}


def _point(x: Any) -> np.ndarray:
    p = as_params(np.asarray(x, dtype=np.float64), "point")
    if p.ndim != 1:
        raise ValueError(f"analysis takes one point of shape (d,), got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError(f"the point {p.tolist()} is not finite")
    return p
