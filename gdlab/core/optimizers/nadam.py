"""NAdam, Adam with Nesterov momentum (Dozat 2016), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.batching import batch_shape, expand
from gdlab.core.hyper import Hyper
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.optimizers.adam import lerp
from gdlab.core.optimizers.common import (
    EPS_INSIDE_SQRT,
    MAXIMIZE,
    WEIGHT_DECAY,
    add_l2,
    betas,
    eps,
    is_off,
    lr,
    root,
    signed,
)

DECOUPLED_WEIGHT_DECAY = Hyper(
    "decoupled_weight_decay", False, kind="bool",
    doc="decay the parameters, θ(1 − ηλ), as AdamW does, instead of adding λθ to the gradient",
)


def decay(grad: np.ndarray, params: np.ndarray, weight_decay: Any, lr: Any, decoupled: bool) -> tuple[Any, Any]:
    """Coupled (``g + λθ``) or decoupled (``θ(1 − ηλ)``) weight decay: (gradient, params) to use."""
    if decoupled:
        if is_off(weight_decay):
            return grad, params
        return grad, params * (1.0 - lr * weight_decay)
    return add_l2(grad, params, weight_decay), params


class NAdam(Optimizer):
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

    With ``eps_inside_sqrt`` the denominator is √(v̂ + ε). The product Π (state ``mu_product``) depends
    only on β₁, ψ and t: a float, or an array of shape ``batch + (1,)`` when β₁ or ψ is batched.
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

    def _init_buffers(self, params: np.ndarray) -> State:
        batched = isinstance(self.betas[0], np.ndarray) or isinstance(self.momentum_decay, np.ndarray)
        mu_product: Any = np.ones(batch_shape(params) + (1,)) if batched else 1.0
        return {"exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params), "mu_product": mu_product}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        beta1, beta2 = (expand(b, params, f"betas[{i}]") for i, b in enumerate(self.betas))
        psi = self._hp("momentum_decay", params)
        t = state["step"] + 1
        bias2 = 1.0 - beta2**t
        g, params = decay(
            signed(grad, self.maximize), params, self._hp("weight_decay", params), lr, self.decoupled_weight_decay
        )
        mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
        mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
        mu_product = state["mu_product"] * mu
        exp_avg = lerp(state["exp_avg"], g, 1.0 - beta1)
        exp_avg_sq = state["exp_avg_sq"] * beta2 + (1.0 - beta2) * g * g
        denom = root(exp_avg_sq / bias2, self._hp("eps", params), self.eps_inside_sqrt)
        mu_product_next = mu_product * mu_next
        params = params - lr * (1.0 - mu) / (1.0 - mu_product) * g / denom
        params = params - lr * mu_next / (1.0 - mu_product_next) * exp_avg / denom
        new_state = {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq, "mu_product": mu_product}
        return params, new_state

