r"""NAdam, Adam with Nesterov momentum (Dozat 2016), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import sqrt
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Carry, Hypers, Rule
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


def momentum_coefficient(t: Any, h: Hypers) -> Any:
    """NAdam's μ_t = β₁(1 − ½·0.96^{tψ})."""
    return h.betas[0] * (1.0 - 0.5 * power(0.96, t * np.asarray(h.momentum_decay)))


class NAdam(Rule):
    r"""NAdam, exactly as ``torch.optim.NAdam``.

    With gradient :math:`g` at step t (1-based) and ψ = ``momentum_decay``:

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow \theta_{t-1}(1-\eta\lambda) \text{ when decoupled)}\\
        \mu_t &\leftarrow \beta_1\bigl(1 - \tfrac12\, 0.96^{t\psi}\bigr),\qquad
        \Pi_t \leftarrow \Pi_{t-1}\,\mu_t,\quad \Pi_0 = 1\\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g,\qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g^2\\
        d &\leftarrow \sqrt{v_t/(1-\beta_2^t)} + \epsilon\\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,\frac{1-\mu_t}{1-\Pi_t}\,\frac{g}{d}
                   - \eta\,\frac{\mu_{t+1}}{1-\Pi_t\mu_{t+1}}\,\frac{m_t}{d}

    With ``eps_inside_sqrt`` the denominator is √(v̂ + ε). The product Π (state ``mu_product``)
    depends only on β₁, ψ and t: a float, or an array of runs when β₁ or ψ is batched.
    """

    name = "nadam"
    family = "adaptive"
    hyperparams = (
        lr(2e-3),
        betas(),
        eps(1e-8),
        WEIGHT_DECAY,
        Hyper("momentum_decay", 4e-3, low=0.0, doc="momentum decay ψ of the schedule μ_t = β₁(1 − ½·0.96^{tψ})"),
        DECOUPLED_WEIGHT_DECAY,
        MAXIMIZE,
        EPS_INSIDE_SQRT,
    )
    buffers = (
        Buffer("exp_avg", "m: the running average of g"),
        Buffer("exp_avg_sq", "v: the running average of g²"),
    )
    carries = (Carry("mu_product", momentum_coefficient, 1.0),)

    def options(self) -> dict[str, bool]:
        return {"inside": self.eps_inside_sqrt, **decay_options(self.weight_decay, self.decoupled_weight_decay),
                "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return moment_constants(h)

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        mu = momentum_coefficient(t, h)
        mu_next = momentum_coefficient(t + 1, h)
        product = carries["mu_product"]
        return {
            "bias2": 1.0 - power(h.betas[1], t),
            "c1": lr * (1.0 - mu) / (1.0 - product),
            "c2": lr * mu_next / (1.0 - product * mu_next),
            "decay_factor": 1.0 - lr * h.weight_decay,
        }

    @staticmethod
    def element(param, grad, exp_avg, exp_avg_sq, w, one_minus_w, beta2, one_minus_beta2, eps, weight_decay, bias2,
                c1, c2, decay_factor, inside, coupled, decoupled, maximize):
        """``g = ±grad (+ λθ)``; ``θ·(1 − ηλ)`` when decoupled; ``m``, ``v`` as Adam;
        ``d = √(v/(1 − β₂ᵗ)) + ε``; ``θ − c₁g/d − c₂m/d`` with ``c₁ = η(1 − μ_t)/(1 − Π_t)``,
        ``c₂ = ημ_{t+1}/(1 − Π_tμ_{t+1})``."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        if decoupled:
            param = param * decay_factor
        m, v = moments(exp_avg, exp_avg_sq, g, w, one_minus_w, beta2, one_minus_beta2)
        denom = sqrt(v / bias2 + eps) if inside else sqrt(v / bias2) + eps
        new = param - c1 * g / denom
        return new - c2 * m / denom, m, v
