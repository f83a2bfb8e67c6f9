r"""Adafactor (Shazeer & Stern 2018) in PyTorch's form: a factored second moment for matrices."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import lerp
from gdlab.core.hyper import Hyper
from gdlab.core.optimizers.blocks import BlockOptimizer, block_norm, run_value


class Adafactor(BlockOptimizer):
    r"""Adafactor, exactly as ``torch.optim.Adafactor``.

    Per block (a run's matrix or vector θ of n entries) with gradient g at step t (1-based):

    .. math::
        g &\leftarrow \pm g,\qquad \hat\beta_t \leftarrow t^{c}\ (c = \text{beta2\_decay}),\qquad
        \rho_t \leftarrow \min(\eta,\ 1/\sqrt t)\\
        \alpha_t &\leftarrow \max(\epsilon_2,\ \lVert\theta_{t-1}\rVert_2/\sqrt n)\,\rho_t,\qquad
        \theta \leftarrow \theta(1 - \eta\lambda)\\
        R_t &\leftarrow \operatorname{lerp}\bigl(R_{t-1},\ \operatorname{mean}_{\text{cols}} g^2,\ \hat\beta_t\bigr)\\
        C_t & \leftarrow \operatorname{lerp}\bigl(C_{t-1},\ \operatorname{mean}_{\text{rows}} g^2,\ \hat\beta_t\bigr)\\
        \hat v &\leftarrow \frac{R_t C_t}{\max(\operatorname{mean}(R_t),\ \epsilon_1)}
            \quad\text{(a matrix; a vector keeps } v_t \leftarrow \operatorname{lerp}(v_{t-1}, g^2, \hat\beta_t)
            = \hat v)\\
        u &\leftarrow g / \sqrt{\max(\hat v,\ \epsilon_1^2)},\qquad
        \theta_t \leftarrow \theta - \frac{\alpha_t}{\max(1,\ \lVert u\rVert_2/(\sqrt n\, d))}\,u

    For blocks of more than two axes the factors are the last two axes' (rows R, shape ``(…, m, 1)``;
    columns C, ``(…, 1, n)``). ε₁ = ``None`` is the params' machine epsilon. The mean of g² along an
    axis is computed as PyTorch does, ``‖g‖²/n`` along it. Note the learning rate enters only through
    ρ_t = min(η, 1/√t) and the decay factor.
    """

    name = "adafactor"
    family = "adaptive"
    hyperparams = (
        Hyper("lr", 1e-2, low=0.0, doc="learning rate η (caps the relative step ρ_t = min(η, 1/√t))"),
        Hyper("beta2_decay", -0.8, high=0.0, batchable=False,
              doc="c: the second moment's weight of the new g² is t^c (c ≤ 0)"),
        Hyper("eps", (None, 1e-3), kind="pair", low=0.0, batchable=False, none_first=True,
             doc="(ε₁, ε₂): floor of the second moment (None: machine epsilon) and of the params' RMS"),
        Hyper("d", 1.0, low=1.0, batchable=False, doc="clipping threshold d of the update's RMS"),
        Hyper("weight_decay", 0.0, low=0.0, doc="decoupled weight decay λ: θ ← θ(1 − ηλ)"),
        Hyper("maximize", False, kind="bool", doc="ascend the objective instead of descending it"),
    )

    def block_buffers(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        if len(shape) > 1:
            return {"row_var": shape[:-1] + (1,), "col_var": shape[:-2] + (1, shape[-1])}
        return {"variance": shape}

    def update_block(self, shape: tuple[int, ...], param: np.ndarray, grad: np.ndarray,
                     buffers: dict[str, np.ndarray], t: int, lr: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        k = len(shape)
        batch = param.shape[: param.ndim - k]
        g = -grad if self.maximize else grad
        eps1, eps2 = self.eps
        if eps1 is None:
            eps1 = float(np.finfo(param.dtype).eps)
        step = float(t)
        w = step ** self.beta2_decay
        lr_r = run_value(lr, batch, k)
        rho = np.minimum(lr_r, 1.0 / (step ** 0.5))
        n = int(np.prod(shape))
        alpha = np.maximum(eps2, block_norm(param, k) / (n ** 0.5)) * rho
        if not (isinstance(self.weight_decay, float) and self.weight_decay == 0.0):
            param = param * (1.0 - lr_r * run_value(self.weight_decay, batch, k))
        if k > 1:
            cols, rows = g.shape[-1], g.shape[-2]
            row_mean = np.sqrt(np.sum(g * g, axis=-1, keepdims=True)) ** 2 / cols
            col_mean = np.sqrt(np.sum(g * g, axis=-2, keepdims=True)) ** 2 / rows
            row_var = lerp(buffers["row_var"], row_mean, w, 1.0 - w)
            col_var = lerp(buffers["col_var"], col_mean, w, 1.0 - w)
            var = row_var * col_var
            var = var / np.maximum(np.mean(row_var, axis=-2, keepdims=True), eps1)
            new_buffers = {"row_var": row_var, "col_var": col_var}
        else:
            var = lerp(buffers["variance"], g * g, w, 1.0 - w)
            new_buffers = {"variance": var}
        update = (1.0 / np.sqrt(np.maximum(var, eps1 * eps1))) * g
        denom = np.maximum(1.0, block_norm(update, k) / ((n ** 0.5) * self.d))
        return param - (alpha / denom) * update, new_buffers
