"""RAdam, Adam with a rectified adaptive learning rate (Liu et al. 2020), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.batching import expand
from gdlab.core.optimizer import Optimizer, State
from gdlab.core.optimizers.adam import lerp
from gdlab.core.optimizers.common import EPS_INSIDE_SQRT, MAXIMIZE, WEIGHT_DECAY, betas, eps, lr, signed
from gdlab.core.optimizers.nadam import DECOUPLED_WEIGHT_DECAY, decay

#: RAdam uses the adaptive (rectified) step once the SMA length ρ_t exceeds this.
RHO_THRESHOLD = 5.0


class RAdam(Optimizer):
    r"""RAdam, exactly as ``torch.optim.RAdam``.

    With gradient :math:`g` at step t (1-based):

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1}
            \quad\text{(or } \theta_{t-1} \leftarrow \theta_{t-1}(1-\eta\lambda) \text{ when decoupled)}\\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g,\qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g^2,\qquad \hat m_t = m_t/(1-\beta_1^t)\\
        \rho_\infty &= \frac{2}{1-\beta_2} - 1,\qquad
        \rho_t = \rho_\infty - \frac{2t\,\beta_2^t}{1-\beta_2^t}\\
        r_t &= \sqrt{\frac{(\rho_t-4)(\rho_t-2)\rho_\infty}{(\rho_\infty-4)(\rho_\infty-2)\rho_t}}\\
        \theta_t &\leftarrow \theta_{t-1} - \eta\,\hat m_t\,
            \frac{\sqrt{1-\beta_2^t}}{\sqrt{v_t}+\epsilon}\, r_t \quad\text{if } \rho_t > 5,
            \qquad\text{else}\quad \theta_t \leftarrow \theta_{t-1} - \eta\,\hat m_t

    With ``eps_inside_sqrt`` the adaptive factor is 1/√(v̂ + ε), v̂ = v/(1−β₂ᵗ). The switch on ρ_t is
    taken per run when β₂ is batched.
    """

    name = "radam"
    family = "adaptive"
    hyperparams = (lr(1e-3), betas(), eps(1e-8), WEIGHT_DECAY, DECOUPLED_WEIGHT_DECAY, MAXIMIZE, EPS_INSIDE_SQRT)

    def _init_buffers(self, params: np.ndarray) -> State:
        return {"exp_avg": np.zeros_like(params), "exp_avg_sq": np.zeros_like(params)}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        beta1, beta2 = (expand(b, params, f"betas[{i}]") for i, b in enumerate(self.betas))
        t = state["step"] + 1
        g, params = decay(
            signed(grad, self.maximize), params, self._hp("weight_decay", params), lr, self.decoupled_weight_decay
        )
        exp_avg = lerp(state["exp_avg"], g, 1.0 - beta1)
        exp_avg_sq = state["exp_avg_sq"] * beta2 + (1.0 - beta2) * g * g
        new_state = {"step": t, "exp_avg": exp_avg, "exp_avg_sq": exp_avg_sq}
        bias1 = 1.0 - beta1**t
        bias2 = 1.0 - beta2**t
        m_hat = exp_avg / bias1
        rho_inf = 2.0 / (1.0 - beta2) - 1.0
        rho_t = rho_inf - 2 * t * beta2**t / bias2
        rectify = rho_t > RHO_THRESHOLD
        if np.ndim(rectify) == 0 and not rectify:
            return params - m_hat * lr, new_state
        with np.errstate(divide="ignore", invalid="ignore"):  # runs not rectified are discarded below
            ratio = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
            rect = np.sqrt(np.where(rectify, ratio, 1.0))
            eps_ = self._hp("eps", params)
            if self.eps_inside_sqrt:
                adaptive = 1.0 / np.sqrt(exp_avg_sq / bias2 + eps_)
            else:
                adaptive = np.sqrt(bias2) / (np.sqrt(exp_avg_sq) + eps_)
            rectified = m_hat * lr * adaptive * rect
        if np.ndim(rectify) == 0:
            return params - rectified, new_state
        return params - np.where(rectify, rectified, m_hat * lr), new_state
