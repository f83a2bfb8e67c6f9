"""RMSprop (Tieleman & Hinton 2012; centered form of Graves 2013), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.hyper import Hyper
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.optimizers.adam import lerp
from gdlab.core.optimizers.common import EPS_INSIDE_SQRT, MAXIMIZE, WEIGHT_DECAY, add_l2, eps, is_off, lr, root, signed


class RMSprop(Optimizer):
    r"""RMSprop, exactly as ``torch.optim.RMSprop``.

    With gradient :math:`g` at step t:

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1} \quad\text{(minus when maximize)}\\
        v_t &\leftarrow \alpha v_{t-1} + (1-\alpha) g^2\\
        \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1-\alpha) g \quad\text{(centered only)}\\
        d &\leftarrow \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centered)}\quad\text{or}\quad
              \sqrt{v_t} + \epsilon\\
        b_t &\leftarrow \mu b_{t-1} + g/d,\qquad \theta_t \leftarrow \theta_{t-1} - \eta b_t
              \quad\text{(momentum μ > 0)}\\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, g/d \quad\text{(no momentum)}

    with all buffers starting at zero. With ``eps_inside_sqrt`` the denominator is √(v − ḡ² + ε) or
    √(v + ε), the seed form θ ← θ − η g/√(E[g²] + ε).
    """

    name = "rmsprop"
    family = "adaptive"
    hyperparams = (
        lr(1e-2),
        Hyper("alpha", 0.99, low=0.0, high=1.0, doc="smoothing constant α of the squared-gradient average"),
        eps(1e-8),
        WEIGHT_DECAY,
        Hyper("momentum", 0.0, low=0.0, doc="momentum factor μ applied to the normalised step"),
        Hyper("centered", False, kind="bool", doc="normalise by the estimated variance v − ḡ² instead of v"),
        MAXIMIZE,
        EPS_INSIDE_SQRT,
    )

    def _check_combination(self) -> None:
        try:
            stuck = np.any((np.asarray(self.alpha) == 1.0) & (np.asarray(self.eps) == 0.0))
        except ValueError:  # shapes that do not broadcast together are refused later, at init
            stuck = False
        if stuck:
            raise ValueError(
                f"rmsprop: alpha=1 with eps=0 never updates the average and divides by zero "
                f"(got alpha={self.alpha}, eps={self.eps})"
            )

    def _init_buffers(self, params: np.ndarray) -> State:
        buffers = {"square_avg": np.zeros_like(params)}
        if not is_off(self.momentum):
            buffers["momentum_buffer"] = np.zeros_like(params)
        if self.centered:
            buffers["grad_avg"] = np.zeros_like(params)
        return buffers

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        g = add_l2(signed(grad, self.maximize), params, self._hp("weight_decay", params))
        alpha = self._hp("alpha", params)
        square_avg = state["square_avg"] * alpha + (1.0 - alpha) * g * g
        new_state: State = {"step": state["step"] + 1, "square_avg": square_avg}
        if self.centered:
            grad_avg = lerp(state["grad_avg"], g, 1.0 - alpha)
            new_state["grad_avg"] = grad_avg
            var = square_avg - grad_avg * grad_avg
        else:
            var = square_avg
        avg = root(var, self._hp("eps", params), self.eps_inside_sqrt)
        if not is_off(self.momentum):
            buf = state["momentum_buffer"] * self._hp("momentum", params) + g / avg
            new_state["momentum_buffer"] = buf
            return params - lr * buf, new_state
        return params - lr * g / avg, new_state
