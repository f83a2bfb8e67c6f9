r"""AdamW (Loshchilov & Hutter 2019): Adam with decoupled weight decay, in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.hyper import Hyper
from gdlab.core.rule import Hypers
from gdlab.core.rules.adam import AMSGRAD, BIAS_CORRECTION, Adam
from gdlab.core.rules.common import EPS_INSIDE_SQRT, MAXIMIZE, betas, eps, is_off, lr


class AdamW(Adam):
    r"""AdamW: Adam with decoupled weight decay, as ``torch.optim.AdamW``.

    Before the Adam step (without L2 in the gradient) the parameters decay:

    - ``weight_decay_form="torch"`` (PyTorch): :math:`\theta \leftarrow \theta(1 - \eta_t\lambda)`;
    - ``weight_decay_form="paper"`` (Loshchilov & Hutter): :math:`\theta \leftarrow
      \theta(1 - s_t\lambda)` with the schedule multiplier :math:`s_t = \eta_t/\eta`, so λ does not
      scale with the base learning rate.

    With a constant learning rate η = 1 both forms coincide; with ``weight_decay=0`` AdamW is Adam.
    The rest of the step is :class:`~gdlab.core.rules.adam.Adam`'s (gradient g at step t):

    .. math::
        \theta &\leftarrow \theta_{t-1}(1 - \eta_t\lambda)\\
        m_t &\leftarrow \beta_1 m_{t-1} + (1-\beta_1) g,\qquad
        v_t \leftarrow \beta_2 v_{t-1} + (1-\beta_2) g^2\\
        \theta_t &\leftarrow \theta - \frac{\eta_t}{1-\beta_1^t}\,
                   \frac{m_t}{\sqrt{\hat v}/\sqrt{1-\beta_2^t} + \epsilon}
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
        BIAS_CORRECTION,
    )

    def options(self) -> dict[str, bool]:
        return {**super().options(), "coupled": False, "decoupled": not is_off(self.weight_decay)}

    def decay_factor(self, lr: Any, h: Hypers) -> Any:
        """``1 − ηλ`` (torch) or ``1 − (η_t/η)λ`` (paper; a zero base rate gives the ratio 1)."""
        if self.weight_decay_form == "torch":
            return 1.0 - lr * h.weight_decay
        base = np.asarray(h.lr, dtype=np.float64)
        rate = np.asarray(lr, dtype=np.float64)
        ratio = np.divide(rate, base, out=np.ones(np.broadcast(rate, base).shape), where=base != 0)
        return 1.0 - ratio * h.weight_decay
