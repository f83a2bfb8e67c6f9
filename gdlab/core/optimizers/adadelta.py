"""Adadelta (Zeiler 2012), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.hyper import Hyper
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.optimizers.common import MAXIMIZE, WEIGHT_DECAY, add_l2, lr, signed


class Adadelta(Optimizer):
    r"""Adadelta, exactly as ``torch.optim.Adadelta``.

    With gradient :math:`g` at step t:

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1} \quad\text{(minus when maximize)}\\
        v_t &\leftarrow \rho v_{t-1} + (1-\rho) g^2\\
        \Delta_t &\leftarrow \frac{\sqrt{u_{t-1} + \epsilon}}{\sqrt{v_t + \epsilon}}\, g\\
        u_t &\leftarrow \rho u_{t-1} + (1-\rho) \Delta_t^2\\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,\Delta_t

    with v₀ = u₀ = 0. ε sits inside both roots (Zeiler's form); it must be positive, since with ε = 0
    the accumulated update u stays 0 and the parameters never move.
    """

    name = "adadelta"
    family = "adaptive"
    hyperparams = (
        lr(1.0),
        Hyper("rho", 0.9, low=0.0, high=1.0, doc="decay rate ρ of the squared-gradient and squared-update averages"),
        Hyper("eps", 1e-6, low=0.0, low_open=True,
              doc="ε inside both roots; it also sets the size of the first steps, so it must be > 0"),
        WEIGHT_DECAY,
        MAXIMIZE,
    )

    def _init_buffers(self, params: np.ndarray) -> State:
        return {"square_avg": np.zeros_like(params), "acc_delta": np.zeros_like(params)}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        g = add_l2(signed(grad, self.maximize), params, self._hp("weight_decay", params))
        rho = self._hp("rho", params)
        eps_ = self._hp("eps", params)
        square_avg = state["square_avg"] * rho + (1.0 - rho) * g * g
        std = np.sqrt(square_avg + eps_)
        delta = np.sqrt(state["acc_delta"] + eps_) / std * g
        acc_delta = state["acc_delta"] * rho + (1.0 - rho) * delta * delta
        new_state = {"step": state["step"] + 1, "square_avg": square_avg, "acc_delta": acc_delta}
        return params - lr * delta, new_state
