r"""Adagrad (Duchi, Hazan & Singer 2011), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

from gdlab.core.elementwise import sqrt
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import EPS_INSIDE_SQRT, MAXIMIZE, WEIGHT_DECAY, descent_gradient, eps, is_off, lr


class Adagrad(Rule):
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
    buffers = (Buffer("sum", "G: the sum of squared gradients", init="initial_accumulator_value"),)

    def options(self) -> dict[str, bool]:
        return {"inside": self.eps_inside_sqrt, "coupled": not is_off(self.weight_decay), "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"eps": h.eps, "weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"clr": lr / (1.0 + (t - 1) * h.lr_decay)}

    @staticmethod
    def element(param, grad, sum, eps, weight_decay, clr, inside, coupled, maximize):
        """``g = ±grad + λθ``; ``G = G + g²``; ``θ − η̃ g/(√G + ε)`` (or ``/√(G + ε)``)."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        total = sum + g * g
        std = sqrt(total + eps) if inside else sqrt(total) + eps
        return param - clr * g / std, total
