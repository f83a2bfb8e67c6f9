"""Adam and AdamW (Kingma & Ba 2015; Loshchilov & Hutter 2019), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.batching import expand
from gdlab.core.hyper import Hyper
from gdlab.core.optimizer import Optimizer, State
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

AMSGRAD = Hyper("amsgrad", False, kind="bool", doc="use the running maximum of v (AMSGrad)")


def lerp(start: np.ndarray, end: np.ndarray, weight: Any) -> np.ndarray:
    """``start + weight (end − start)``, evaluated as ``torch.lerp`` does for bit-equal moments."""
    if np.ndim(weight) == 0:
        if weight < 0.5:
            return start + weight * (end - start)
        return end - (end - start) * (1.0 - weight)
    return np.where(weight < 0.5, start + weight * (end - start), end - (end - start) * (1.0 - weight))


class Adam(Optimizer):
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
    denominator is √(v̂ + ε) (Keras-style, as in seed 004).
    """

    name = "adam"
    family = "adaptive"
    hyperparams = (lr(1e-3), betas(), eps(1e-8), WEIGHT_DECAY, AMSGRAD, MAXIMIZE, EPS_INSIDE_SQRT)

    def _init_buffers(self, params: np.ndarray) -> State:
        buffers = {"exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params)}
        if self.amsgrad:
            buffers["max_exp_avg_sq"] = np.zeros_like(params)
        return buffers

    def _decay(self, grad: np.ndarray, params: np.ndarray, lr: Any) -> tuple[np.ndarray, np.ndarray]:
        """Apply weight decay; returns (gradient to use, params to update)."""
        return add_l2(grad, params, self._hp("weight_decay", params)), params

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        g, params = self._decay(signed(grad, self.maximize), params, lr)
        beta1, beta2 = (self._expand_pair(b, params, i) for i, b in enumerate(self.betas))
        t = state["step"] + 1
        m = lerp(state["exp_avg"], g, 1.0 - beta1)
        v = state["exp_avg_sq"] * beta2 + (1.0 - beta2) * g * g
        new_state: State = {"step": t, "exp_avg": m, "exp_avg_sq": v}
        if self.amsgrad:
            v = np.maximum(state["max_exp_avg_sq"], v)
            new_state["max_exp_avg_sq"] = v
        bias1 = 1.0 - beta1**t
        bias2 = 1.0 - beta2**t
        step_size = lr / bias1
        eps_ = self._hp("eps", params)
        if self.eps_inside_sqrt:
            denom = root(v / bias2, eps_, inside=True)
        else:
            denom = np.sqrt(v) / np.sqrt(bias2) + eps_
        return params - step_size * (m / denom), new_state

    def _expand_pair(self, value: Any, params: np.ndarray, index: int) -> Any:
        return expand(value, params, f"betas[{index}]")


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Before the Adam step (without L2 in the gradient) the parameters decay:

    - ``weight_decay_form="torch"`` (PyTorch): :math:`\theta \leftarrow \theta(1 - \eta_t\lambda)`;
    - ``weight_decay_form="paper"`` (Loshchilov & Hutter): :math:`\theta \leftarrow
      \theta(1 - s_t\lambda)` with the schedule multiplier :math:`s_t = \eta_t/\eta`, so λ does not
      scale with the base learning rate.

    With a constant learning rate η = 1 both forms coincide; with ``weight_decay=0`` AdamW is Adam.
    """

    name = "adamw"
    hyperparams = (
        lr(1e-3),
        betas(),
        eps(1e-8),
        Hyper("weight_decay", 1e-2, low=0.0, doc="decoupled weight decay λ"),
        AMSGRAD,
        MAXIMIZE,
        EPS_INSIDE_SQRT,
        Hyper("weight_decay_form", "torch", kind="choice", choices=("torch", "paper"),
              doc="'torch': θ(1 − ηλ); 'paper': θ(1 − (η_t/η)λ), decay follows the schedule only"),
    )

    def _decay(self, grad: np.ndarray, params: np.ndarray, lr: Any) -> tuple[np.ndarray, np.ndarray]:
        wd = self._hp("weight_decay", params)
        if is_off(wd):
            return grad, params
        if self.weight_decay_form == "torch":
            rate = lr * wd
        else:
            base = self._hp("lr", params)
            rate = np.divide(lr, base, out=np.ones(np.broadcast(lr, base).shape), where=np.asarray(base) != 0) * wd
        return grad, params * (1.0 - rate)
