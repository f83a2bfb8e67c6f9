"""Adamax, the infinity-norm variant of Adam (Kingma & Ba 2015), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.batching import expand
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.optimizers.adam import lerp
from gdlab.core.optimizers.common import MAXIMIZE, WEIGHT_DECAY, add_l2, betas, eps, lr, signed


class Adamax(Optimizer):
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

    def _init_buffers(self, params: np.ndarray) -> State:
        return {"exp_avg": np.zeros_like(params), "exp_inf": np.zeros_like(params)}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        g = add_l2(signed(grad, self.maximize), params, self._hp("weight_decay", params))
        beta1, beta2 = (expand(b, params, f"betas[{i}]") for i, b in enumerate(self.betas))
        t = state["step"] + 1
        exp_avg = lerp(state["exp_avg"], g, 1.0 - beta1)
        exp_inf = np.maximum(state["exp_inf"] * beta2, np.abs(g) + self._hp("eps", params))
        clr = lr / (1.0 - beta1**t)
        return params - clr * exp_avg / exp_inf, {"step": t, "exp_avg": exp_avg, "exp_inf": exp_inf}
