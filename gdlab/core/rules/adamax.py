r"""Adamax, the infinity-norm variant of Adam (Kingma & Ba 2015), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import absolute, lerp, maximum
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, WEIGHT_DECAY, betas, descent_gradient, eps, is_off, lr
from gdlab.core.scalarmath import power


class Adamax(Rule):
    r"""Adamax, exactly as ``torch.optim.Adamax``.

    With gradient :math:`g` at step t (1-based):

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1} \quad\text{(minus when maximize)}\\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g\\
        u_t &\leftarrow \max(\beta_2 u_{t-1},\ |g| + \epsilon)\\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,\frac{m_t}{u_t}

    with m₀ = u₀ = 0. ε is added to |g| inside the maximum (PyTorch's placement), which keeps u > 0.
    """

    name = "adamax"
    family = "adaptive"
    hyperparams = (lr(2e-3), betas(), eps(1e-8), WEIGHT_DECAY, MAXIMIZE)
    buffers = (
        Buffer("exp_avg", "m: the running average of g"),
        Buffer("exp_inf", "u: the decaying maximum of |g|"),
    )

    def options(self) -> dict[str, bool]:
        return {"coupled": not is_off(self.weight_decay), "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        w = 1.0 - np.asarray(h.betas[0])
        return {"w": w, "one_minus_w": 1.0 - w, "beta2": h.betas[1], "eps": h.eps, "weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"clr": lr / (1.0 - power(h.betas[0], t))}

    @staticmethod
    def element(param, grad, exp_avg, exp_inf, w, one_minus_w, beta2, eps, weight_decay, clr, coupled, maximize):
        """``g = ±grad + λθ``; ``m = lerp(m, g, 1 − β₁)``; ``u = max(β₂u, |g| + ε)``;
        ``θ − η/(1 − β₁ᵗ)·m/u``."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        m = lerp(exp_avg, g, w, one_minus_w)
        u = maximum(exp_inf * beta2, absolute(g) + eps)
        return param - clr * m / u, m, u
