r"""RAdam, Adam with a rectified adaptive learning rate (Liu et al. 2020), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import select, sqrt
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.adam import moment_constants, moments
from gdlab.core.rules.common import (
    DECOUPLED_WEIGHT_DECAY,
    EPS_INSIDE_SQRT,
    MAXIMIZE,
    WEIGHT_DECAY,
    betas,
    decay_options,
    descent_gradient,
    eps,
    lr,
)
from gdlab.core.scalarmath import power

#: RAdam uses the adaptive (rectified) step once the SMA length ρ_t exceeds this.
RHO_THRESHOLD = 5.0


class RAdam(Rule):
    r"""RAdam, exactly as ``torch.optim.RAdam``.

    With gradient :math:`g` at step t (1-based):

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow \theta_{t-1}(1-\eta\lambda) \text{ when decoupled)}\\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g,\qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g^2,\qquad \hat m_t = m_t/(1-\beta_1^t)\\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1,\qquad
        \rho_t = \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t}\\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}\\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,\hat m_t\,
            \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon}\, r_t \quad\text{if } \rho_t > 5,
            \qquad\text{else}\quad \theta_t \leftarrow \theta_{t-1} - \eta\,\hat m_t

    With ``eps_inside_sqrt`` the adaptive factor is 1/√(v̂ + ε), v̂ = v/(1−β₂ᵗ). The switch on ρ_t is
    taken per run when β₂ is batched.
    """

    name = "radam"
    family = "adaptive"
    hyperparams = (lr(1e-3), betas(), eps(1e-8), WEIGHT_DECAY, DECOUPLED_WEIGHT_DECAY, MAXIMIZE, EPS_INSIDE_SQRT)
    buffers = (
        Buffer("exp_avg", "m: the running average of g"),
        Buffer("exp_avg_sq", "v: the running average of g²"),
    )

    def options(self) -> dict[str, bool]:
        return {"inside": self.eps_inside_sqrt, **decay_options(self.weight_decay, self.decoupled_weight_decay),
                "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {**moment_constants(h), "one": np.ones_like(np.asarray(h.betas[1], dtype=np.float64))}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        beta2 = np.asarray(h.betas[1], dtype=np.float64)
        beta2_t = power(beta2, t)
        bias2 = 1.0 - beta2_t
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2 * t * beta2_t / bias2
        rectify = rho_t > RHO_THRESHOLD
        with np.errstate(divide="ignore", invalid="ignore"):  # steps not rectified never use r_t
            ratio = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
            rect = power(np.where(rectify, ratio, 1.0), 0.5)
        return {
            "bias1": 1.0 - power(h.betas[0], t),
            "bias2": bias2,
            "sqrt_bias2": power(bias2, 0.5),
            "rect": rect,
            "rectify": rectify.astype(np.float64),
            "lr": lr,
            "decay_factor": 1.0 - lr * h.weight_decay,
        }

    @staticmethod
    def element(param, grad, exp_avg, exp_avg_sq, w, one_minus_w, beta2, one_minus_beta2, eps, weight_decay, one,
                bias1, bias2, sqrt_bias2, rect, rectify, lr, decay_factor, inside, coupled, decoupled, maximize):
        """``g = ±grad (+ λθ)``; ``θ·(1 − ηλ)`` when decoupled; ``m``, ``v`` as Adam;
        ``s = m/(1 − β₁ᵗ)·η``; ``θ − s·√(1 − β₂ᵗ)/(√v + ε)·r_t`` when ρ_t > 5, else ``θ − s``."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        if decoupled:
            param = param * decay_factor
        m, v = moments(exp_avg, exp_avg_sq, g, w, one_minus_w, beta2, one_minus_beta2)
        step = m / bias1 * lr
        # √(1 − β₂ᵗ)/(√v + ε) as PyTorch computes a number over a tensor: the reciprocal, then the product.
        adaptive = one / sqrt(v / bias2 + eps) if inside else one / (sqrt(v) + eps) * sqrt_bias2
        return param - select(rectify > 0, step * adaptive * rect, step), m, v
