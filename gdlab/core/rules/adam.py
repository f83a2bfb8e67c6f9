r"""Adam (Kingma & Ba 2015), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import helper, lerp, maximum, sqrt
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import EPS_INSIDE_SQRT, MAXIMIZE, WEIGHT_DECAY, betas, descent_gradient, eps, is_off, lr
from gdlab.core.scalarmath import power

AMSGRAD = Hyper("amsgrad", False, kind="bool", doc="use the running maximum of v (AMSGrad)")
BIAS_CORRECTION = Hyper(
    "bias_correction", True, kind="bool",
    doc="divide m by 1 − β₁ᵗ and v by 1 − β₂ᵗ (Kingma & Ba); false as apex's and DeepSpeed's "
        "bias_correction=False or transformers' correct_bias=False",
)


@helper
def moments(exp_avg, exp_avg_sq, g, w, one_minus_w, beta2, one_minus_beta2):
    """Adam's moments: ``m = lerp(m, g, 1 − β₁)`` and ``v = β₂v + (1 − β₂)g²`` (PyTorch's order)."""
    return lerp(exp_avg, g, w, one_minus_w), exp_avg_sq * beta2 + one_minus_beta2 * g * g


def moment_constants(h: Hypers) -> dict[str, Any]:
    """The per-run constants of :func:`moments` and of the denominator (``ε``, ``λ``)."""
    beta1, beta2 = (np.asarray(b) for b in h.betas)
    w = 1.0 - beta1
    return {"w": w, "one_minus_w": 1.0 - w, "beta2": beta2, "one_minus_beta2": 1.0 - beta2, "eps": h.eps,
            "weight_decay": h.weight_decay}


class Adam(Rule):
    r"""Adam, exactly as ``torch.optim.Adam``.

    With gradient :math:`g` at step t (1-based):

    .. math::
        g &\leftarrow \pm g + \lambda\theta \quad\text{(coupled L2 weight decay)}\\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g\\
        v_t &\leftarrow \beta_2 v_{t-1} + (1-\beta_2) g^2\\
        \hat v &\leftarrow \max(\hat v_{t-1}, v_t)\ \text{(amsgrad) else}\ v_t\\
        \theta_t &\leftarrow \theta_{t-1} - \frac{\eta}{1-\beta_1^t}\,
                   \frac{m_t}{\sqrt{\hat v}/\sqrt{1-\beta_2^t} + \epsilon}

    which is η m̂/(√v̂ + ε) with m̂ = m/(1−β₁ᵗ), v̂ = v/(1−β₂ᵗ). With ``eps_inside_sqrt`` the
    denominator is √(v̂ + ε) (Keras-style, as in seed 004); with ``bias_correction=False`` both
    corrections are 1: θ − η m/(√v + ε).
    """

    name = "adam"
    family = "adaptive"
    hyperparams = (lr(1e-3), betas(), eps(1e-8), WEIGHT_DECAY, AMSGRAD, MAXIMIZE, EPS_INSIDE_SQRT, BIAS_CORRECTION)
    buffers = (
        Buffer("exp_avg", "m: the running average of g"),
        Buffer("exp_avg_sq", "v: the running average of g²"),
        Buffer("max_exp_avg_sq", "the running maximum of v (AMSGrad)", when="amsgrad"),
    )

    def options(self) -> dict[str, bool]:
        return {
            "amsgrad": self.amsgrad,
            "inside": self.eps_inside_sqrt,
            "coupled": not is_off(self.weight_decay),
            "decoupled": False,
            "maximize": self.maximize,
        }

    def constants(self, h: Hypers) -> dict[str, Any]:
        return moment_constants(h)

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        if self.bias_correction:
            bias1, bias2 = (1.0 - power(beta, t) for beta in h.betas)
        else:
            bias1 = bias2 = np.ones(np.broadcast_shapes(*(np.shape(b) for b in h.betas), np.shape(t)))
        return {"step_size": lr / bias1, "bias2": bias2, "sqrt_bias2": power(bias2, 0.5),
                "decay_factor": self.decay_factor(lr, h)}

    def decay_factor(self, lr: Any, h: Hypers) -> Any:
        """The factor of decoupled weight decay (AdamW); 1 for Adam."""
        return np.ones_like(np.asarray(lr, dtype=np.float64))

    @staticmethod
    def element(param, grad, exp_avg, exp_avg_sq, max_exp_avg_sq, w, one_minus_w, beta2, one_minus_beta2, eps,
                weight_decay, step_size, bias2, sqrt_bias2, decay_factor, amsgrad, inside, coupled, decoupled,
                maximize):
        """``g = ±grad (+ λθ)``; ``θ·(1 − ηλ)`` when decoupled; ``m = lerp(m, g, 1 − β₁)``;
        ``v = β₂v + (1 − β₂)g²``; ``v̂ = max(v̂, v)`` (AMSGrad) or ``v``;
        ``θ − η/(1 − β₁ᵗ)·m/(√v̂/√(1 − β₂ᵗ) + ε)`` (or ``/√(v̂/(1 − β₂ᵗ) + ε)``)."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        if decoupled:
            param = param * decay_factor
        m, v = moments(exp_avg, exp_avg_sq, g, w, one_minus_w, beta2, one_minus_beta2)
        vhat = maximum(max_exp_avg_sq, v) if amsgrad else v
        denom = sqrt(vhat / bias2 + eps) if inside else sqrt(vhat) / sqrt_bias2 + eps
        return param - step_size * m / denom, m, v, vhat
