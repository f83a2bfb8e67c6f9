r"""Adadelta (Zeiler 2012), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import sqrt
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, WEIGHT_DECAY, descent_gradient, is_off, lr


class Adadelta(Rule):
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
    buffers = (
        Buffer("square_avg", "v: the running average of g²"),
        Buffer("acc_delta", "u: the running average of the squared updates"),
    )

    def options(self) -> dict[str, bool]:
        return {"coupled": not is_off(self.weight_decay), "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"rho": h.rho, "one_minus_rho": 1.0 - np.asarray(h.rho), "eps": h.eps, "weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr}

    @staticmethod
    def element(param, grad, square_avg, acc_delta, rho, one_minus_rho, eps, weight_decay, lr, coupled, maximize):
        """``g = ±grad + λθ``; ``v = ρv + (1 − ρ)g²``; ``Δ = √(u + ε)/√(v + ε)·g``;
        ``u = ρu + (1 − ρ)Δ²``; ``θ − ηΔ``."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        sq = square_avg * rho + one_minus_rho * g * g
        delta = sqrt(acc_delta + eps) / sqrt(sq + eps) * g
        acc = acc_delta * rho + one_minus_rho * delta * delta
        return param - lr * delta, sq, acc
