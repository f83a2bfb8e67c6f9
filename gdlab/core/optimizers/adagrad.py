"""Adagrad (Duchi, Hazan & Singer 2011), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.hyper import Hyper
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.optimizers.common import EPS_INSIDE_SQRT, MAXIMIZE, WEIGHT_DECAY, add_l2, eps, lr, root, signed


class Adagrad(Optimizer):
    r"""Adagrad, exactly as ``torch.optim.Adagrad``.

    With gradient :math:`g` at step t (1-based):

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1} \quad\text{(minus when maximize)}\\
        \tilde\eta_t &\leftarrow \frac{\eta}{1 + (t-1)\,\delta}\\
        G_t &\leftarrow G_{t-1} + g^2,\qquad G_0 = G_{\text{init}}\\
        \theta_t &\leftarrow \theta_{t-1} - \tilde\eta_t\,\frac{g}{\sqrt{G_t} + \epsilon}

    with δ = ``lr_decay`` and :math:`G_{\text{init}}` = ``initial_accumulator_value``. With
    ``eps_inside_sqrt`` the denominator is √(G + ε), the seed form θ ← θ − η g/√(G + ε).
    """

    name = "adagrad"
    family = "adaptive"
    hyperparams = (
        lr(1e-2),
        Hyper("lr_decay", 0.0, low=0.0, doc="learning-rate decay δ: step t uses η/(1 + (t−1)δ)"),
        WEIGHT_DECAY,
        Hyper("initial_accumulator_value", 0.0, low=0.0, doc="starting value G₀ of the sum of squared gradients"),
        eps(1e-10),
        MAXIMIZE,
        EPS_INSIDE_SQRT,
    )

    def _init_buffers(self, params: np.ndarray) -> State:
        return {"sum": np.zeros_like(params) + self._hp("initial_accumulator_value", params)}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        g = add_l2(signed(grad, self.maximize), params, self._hp("weight_decay", params))
        t = state["step"] + 1
        clr = lr / (1.0 + (t - 1) * self._hp("lr_decay", params))
        total = state["sum"] + g * g
        std = root(total, self._hp("eps", params), self.eps_inside_sqrt)
        return params - clr * g / std, {"step": t, "sum": total}
