r"""Lion, evolved sign momentum (Chen et al. 2023, "Symbolic Discovery of Optimization Algorithms")."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import sign
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, betas, is_off, lr


class Lion(Rule):
    r"""Lion: the sign of an interpolated momentum, with decoupled weight decay (Chen et al. 2023).

    With gradient :math:`g` at step t:

    .. math::
        g &\leftarrow \pm g \quad\text{(minus when maximize)}\\
        c_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1)\, g\\
        \theta_t &\leftarrow \theta_{t-1}(1 - \eta\lambda) - \eta\,\operatorname{sign}(c_t)\\
        m_t &\leftarrow \beta_2 m_{t-1} + (1-\beta_2)\, g

    with m₀ = 0 (Algorithm 2 of the paper; the decay θ(1 − ηλ) is the paper's −ηλθ applied first,
    as in its reference implementation). Every coordinate moves by exactly η (or 0 where c = 0), so
    the update has the same size as signSGD's; the paper advises an η 3–10 times smaller than
    AdamW's and a λ as many times larger. sign(0) is 0.
    """

    name = "lion"
    family = "sign"
    hyperparams = (
        lr(1e-4),
        betas((0.9, 0.99)),
        Hyper("weight_decay", 0.0, low=0.0, doc="decoupled weight decay λ: θ ← θ(1 − ηλ)"),
        MAXIMIZE,
    )
    buffers = (Buffer("exp_avg", "m: the momentum, a running average of g with β₂"),)

    def options(self) -> dict[str, bool]:
        return {"decoupled": not is_off(self.weight_decay), "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        beta1, beta2 = (np.asarray(b) for b in h.betas)
        return {"beta1": beta1, "one_minus_beta1": 1.0 - beta1, "beta2": beta2, "one_minus_beta2": 1.0 - beta2}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr, "decay_factor": 1.0 - lr * h.weight_decay}

    @staticmethod
    def element(param, grad, exp_avg, beta1, one_minus_beta1, beta2, one_minus_beta2, lr, decay_factor, decoupled,
                maximize):
        """``g = ±grad``; ``c = β₁m + (1 − β₁)g``; ``θ(1 − ηλ) − η·sign(c)``; ``m = β₂m + (1 − β₂)g``."""
        g = -grad if maximize else grad
        c = exp_avg * beta1 + one_minus_beta1 * g
        if decoupled:
            param = param * decay_factor
        return param - lr * sign(c), exp_avg * beta2 + one_minus_beta2 * g
