r"""Each optimizer's own stability limit, checked along a run at the learning rate of every step.

Linearised at a point with Hessian :math:`H` (eigenvalues :math:`\lambda_i`), an optimizer's update acts
on each eigendirection as a small linear iteration; the update is stable when that iteration's spectral
radius is below 1 for every :math:`\lambda_i > 0`. With :math:`a = \eta\lambda` (η the step's learning
rate), the limits are, for the largest eigenvalue :math:`s` of the matrix the rule names:

- **gradient descent** (``sgd`` without momentum): :math:`x' = (1 - a)x`, stable iff :math:`\eta s < 2`,
  :math:`s = \lambda_{max}(H)`.
- **heavy-ball momentum** (``sgd`` with momentum μ and dampening τ, PyTorch's form
  :math:`b' = \mu b + (1-\tau)g,\ x' = x - \eta b'`; ``momentum`` γ in the seeds' form): the
  characteristic polynomial :math:`z^2 - (1 + \mu - (1-\tau)a)z + \mu` is stable iff
  :math:`(1-\tau)a < 2(1+\mu)` (Jury's test at :math:`z = -1`), so :math:`\eta s < 2(1+\mu)/(1-\tau)`.
- **Nesterov** (``sgd`` with ``nesterov=True``: :math:`b' = \mu b + g,\ x' = x - \eta(g + \mu b')`;
  ``nesterov`` in the seeds' look-ahead form, whose look-ahead points are those iterates): the
  polynomial :math:`z^2 - (1+\mu)(1-a)z + \mu(1-a)` is stable iff :math:`0 < a < 2(1+\mu)/(1+2\mu)`,
  so :math:`\eta s < 2(1+\mu)/(1+2\mu)`.
- **Adam** (``adam``, ``adamw``): with the preconditioner :math:`P = \mathrm{diag}(1/(\sqrt{\hat v}+\epsilon))`
  held fixed, the first moment :math:`m' = \beta_1 m + (1-\beta_1)PHx,\ x' = x - \eta m'` is heavy ball with
  dampening β₁ on :math:`PH`, stable iff :math:`\eta\,\lambda_{max}(PH) < (2 + 2\beta_1)/(1-\beta_1)` (38 at
  β₁ = 0.9). :math:`\hat v` is the run's own second moment after the update from the point (PyTorch's,
  bias-corrected; the running maximum with ``amsgrad``; :math:`1/\sqrt{\hat v + \epsilon}` with
  ``eps_inside_sqrt``); the first moment's bias correction is left out, and AdamW's decoupled decay too.
- any other optimizer (or ``maximize=True``): no known limit.

Coupled (L2) weight decay λ adds λ to every eigenvalue of :math:`H`. :math:`\lambda_{max}(PH)` is computed
as :math:`\lambda_{max}(P^{1/2} H P^{1/2})`, a symmetric matrix with the same eigenvalues.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.signal import lfilter

from gdlab.core.objective import Objective

GD, HEAVY_BALL, NESTEROV, ADAM, NONE = "gd", "heavy_ball", "nesterov", "adam", "none"


@dataclass(frozen=True)
class StabilityRule:
    """The rule that applies to one run: stable at point k iff ``lr_k · sharpness_k < constant``."""

    name: str  # gd, heavy_ball, nesterov, adam or none
    text: str
    constant: float | None = None
    weight_decay: float = 0.0  # coupled: added to every eigenvalue of H
    beta2: float = 0.999  # Adam's preconditioner
    eps: float = 1e-8
    amsgrad: bool = False
    eps_inside_sqrt: bool = False


def _real(hp: Mapping[str, Any], name: str, default: float = 0.0) -> float:
    value = hp.get(name, default)
    return default if value is None else float(value)


def stability_rule(optimizer: str, hyperparams: Mapping[str, Any]) -> StabilityRule:
    """The rule of ``optimizer`` (a registry name) with these scalar hyperparameters."""
    hp = dict(hyperparams)
    if hp.get("maximize"):
        return StabilityRule(NONE, "no known limit (maximize=True)")
    if optimizer == "sgd":
        mu, tau, wd = _real(hp, "momentum"), _real(hp, "dampening"), _real(hp, "weight_decay")
        if hp.get("nesterov"):
            c = 2 * (1 + mu) / (1 + 2 * mu)
            return StabilityRule(NESTEROV, f"Nesterov: lr·λmax < 2(1+μ)/(1+2μ) = {c:.4g} (μ = {mu:g})", c, wd)
        if mu == 0.0:
            return StabilityRule(GD, "gradient descent: lr·λmax < 2", 2.0, wd)
        if tau >= 1.0:
            return StabilityRule(NONE, "no known limit (dampening 1: the gradient never enters the momentum)")
        c = 2 * (1 + mu) / (1 - tau)
        text = f"heavy-ball momentum: lr·λmax < 2(1+μ) = {c:.4g} (μ = {mu:g})" if tau == 0.0 else \
            f"heavy-ball momentum: (1−τ)·lr·λmax < 2(1+μ), lr·λmax < {c:.4g} (μ = {mu:g}, τ = {tau:g})"
        return StabilityRule(HEAVY_BALL, text, c, wd)
    if optimizer in ("momentum", "nesterov"):
        g = _real(hp, "momentum", 0.9)
        wd = _real(hp, "weight_decay")
        if optimizer == "nesterov":
            c = 2 * (1 + g) / (1 + 2 * g)
            return StabilityRule(NESTEROV, f"Nesterov: lr·λmax < 2(1+γ)/(1+2γ) = {c:.4g} (γ = {g:g})", c, wd)
        return StabilityRule(HEAVY_BALL, f"heavy-ball momentum: lr·λmax < 2(1+γ) = {2 * (1 + g):.4g} (γ = {g:g})",
                             2 * (1 + g), wd)
    if optimizer in ("adam", "adamw"):
        betas = hp.get("betas", (0.9, 0.999))
        b1, b2 = float(betas[0]), float(betas[1])
        if b1 >= 1.0:
            return StabilityRule(NONE, "no known limit (β₁ = 1)")
        c = (2 + 2 * b1) / (1 - b1)
        return StabilityRule(
            ADAM, f"Adam: lr·λmax(diag(1/(√v̂+ε))·H) < (2+2β₁)/(1−β₁) = {c:.4g} (β₁ = {b1:g})", c,
            _real(hp, "weight_decay") if optimizer == "adam" else 0.0, b2, _real(hp, "eps", 1e-8),
            bool(hp.get("amsgrad")), bool(hp.get("eps_inside_sqrt")))
    return StabilityRule(NONE, f"no known limit for {optimizer}")


def hessians(objective: Objective, points: np.ndarray, h: float = 1e-5) -> np.ndarray:
    """The Hessians at ``points`` (shape ``(n, d)``) as ``(n, d, d)``: the objective's own when it has
    one, else central differences of the gradient (step ``h·max(1, |x_j|)``), symmetrised."""
    points = np.asarray(points, dtype=np.float64)
    n, d = points.shape
    if getattr(objective, "has_hessian", False):
        try:
            H = np.array(np.broadcast_to(objective.hessian(points), (n, d, d)), dtype=np.float64)
            return 0.5 * (H + np.swapaxes(H, -1, -2))
        except NotImplementedError:
            pass
    steps = h * np.maximum(1.0, np.abs(points))  # (n, d)
    H = np.empty((n, d, d))
    for j in range(d):
        e = np.zeros_like(points)
        e[:, j] = steps[:, j]
        H[:, j, :] = (np.asarray(objective.grad(points + e)) - np.asarray(objective.grad(points - e))) / (
            2.0 * steps[:, j, None])
    return 0.5 * (H + np.swapaxes(H, -1, -2))


def adam_preconditioner(rule: StabilityRule, grads: np.ndarray) -> np.ndarray:
    """``1/(√v̂_k + ε)`` (shape ``(n, d)``) after the update from point k, whose gradient is ``grads[k]``:
    ``v_k = β₂v_{k−1} + (1−β₂)g_k²`` from ``v = 0``, ``v̂_k = v_k/(1−β₂^{k+1})`` (the running maximum of
    ``v`` first with amsgrad)."""
    g2 = np.asarray(grads, dtype=np.float64) ** 2
    v = lfilter([1.0 - rule.beta2], [1.0, -rule.beta2], g2, axis=0)
    if rule.amsgrad:
        v = np.maximum.accumulate(v, axis=0)
    t = np.arange(1, g2.shape[0] + 1, dtype=np.float64)[:, None]
    bias = -np.expm1(t * math.log(rule.beta2)) if rule.beta2 > 0 else np.ones_like(t)
    if rule.eps_inside_sqrt:
        return 1.0 / np.sqrt(v / bias + rule.eps)
    return 1.0 / (np.sqrt(v) / np.sqrt(bias) + rule.eps)


def sharpness(rule: StabilityRule, H: np.ndarray, grads: np.ndarray | None = None,
              points: np.ndarray | None = None) -> np.ndarray:
    """The rule's sharpness at every point (shape ``(n,)``): λmax(H + λI), or λmax(P^{1/2}(H + λI)P^{1/2})
    for Adam (``grads``: the gradients at the points, ``points`` for its coupled weight decay)."""
    H = np.asarray(H, dtype=np.float64)
    d = H.shape[-1]
    if rule.weight_decay:
        H = H + rule.weight_decay * np.eye(d)
    if rule.name == ADAM:
        if grads is None:
            raise ValueError("Adam's sharpness needs the gradients along the run")
        g = np.asarray(grads, dtype=np.float64)
        if rule.weight_decay and points is not None:
            g = g + rule.weight_decay * np.asarray(points, dtype=np.float64)
        r = np.sqrt(adam_preconditioner(rule, g))
        H = r[:, :, None] * H * r[:, None, :]
    return np.linalg.eigvalsh(H)[..., -1]


def check_run(objective: Objective, optimizer: str, hyperparams: Mapping[str, Any], trajectory: np.ndarray,
              lrs: np.ndarray) -> dict[str, Any]:
    """The stability of a recorded run: ``rule``, ``text``, ``constant``, and per point k ``sharpness``,
    ``ratio`` = lr_k·sharpness_k/constant (``lr_k`` the rate of the update from point k; the last point
    takes the last rate) and ``first_exceeded`` (first k with ratio > 1, else None). Entries where the
    Hessian is not finite are NaN."""
    rule = stability_rule(optimizer, hyperparams)
    out: dict[str, Any] = {"rule": rule.name, "text": rule.text, "constant": rule.constant, "sharpness": None,
                           "ratio": None, "first_exceeded": None}
    pts = np.asarray(trajectory, dtype=np.float64)
    if rule.constant is None or pts.ndim != 2 or pts.shape[0] == 0:
        return out
    n = pts.shape[0]
    lr = np.asarray(lrs, dtype=np.float64).ravel()
    if lr.size == 0:
        lr = np.full(n, _real(hyperparams, "lr", math.nan))
    lr = np.concatenate([lr[:n], np.repeat(lr[-1:], max(0, n - lr.size))])
    with np.errstate(all="ignore"):
        H = hessians(objective, pts)
        bad = ~np.all(np.isfinite(H), axis=(-1, -2))
        H[bad] = 0.0
        grads = np.asarray(objective.grad(pts), dtype=np.float64) if rule.name == ADAM else None
        s = sharpness(rule, H, grads, pts)
        s[bad] = math.nan
        ratio = lr * s / rule.constant
    over = np.nonzero(ratio > 1.0)[0]
    out.update(sharpness=s, ratio=ratio, first_exceeded=int(over[0]) if over.size else None)
    return out
