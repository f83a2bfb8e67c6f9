r"""ASGD, averaged stochastic gradient descent (Polyak & Juditsky 1992), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import select
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, WEIGHT_DECAY, descent_gradient, is_off, lr
from gdlab.core.scalarmath import power


def eta_mu(t: Any, lr: Any, h: Hypers) -> tuple[Any, Any]:
    """The step size η_t and averaging weight μ_t that step t (1-based) uses.

    PyTorch starts with η = lr, μ = 1 and, after step k, sets η = lr/(1 + λ·lr·k)^α and
    μ = 1/max(1, k − t₀); so step t uses those of k = t − 1 (the first step η = lr, μ = 1).
    """
    k = np.asarray(t, dtype=np.float64) - 1.0
    lr = np.asarray(lr, dtype=np.float64)
    eta = np.where(k == 0, lr, lr / power(1.0 + np.asarray(h.lambd) * lr * k, h.alpha))
    mu = np.where(k == 0, 1.0, 1.0 / np.maximum(1.0, k - np.asarray(h.t0)))
    return eta, mu


class ASGD(Rule):
    r"""Averaged SGD, exactly as ``torch.optim.ASGD``.

    With gradient :math:`g` at step t (1-based), step size :math:`\eta_t` and averaging weight
    :math:`\mu_t`:

    .. math::
        g &\leftarrow \pm g + \lambda_{wd}\theta_{t-1} \quad\text{(minus when maximize)}\\
        \theta_t &\leftarrow \theta_{t-1}(1 - \lambda\eta_t) - \eta_t g\\
        \bar\theta_t &\leftarrow \theta_t \text{ if } \mu_t = 1,\ \text{else}\
            \bar\theta_{t-1} + \mu_t(\theta_t - \bar\theta_{t-1})\\
        \eta_1 &= \eta,\quad \eta_t = \frac{\eta}{(1 + \lambda\eta(t-1))^{\alpha}},\qquad
        \mu_1 = 1,\quad \mu_t = \frac{1}{\max(1,\ t - 1 - t_0)}

    The average θ̄ (state ``ax``) is what ASGD offers as its answer; the iterates θ are what
    PyTorch (and gdlab) report. Under a schedule, gdlab computes η_t from step t's learning rate;
    PyTorch computes it at the end of step t − 1 from that step's rate (the same with a constant rate).
    """

    name = "asgd"
    family = "sgd"
    hyperparams = (
        lr(1e-2),
        Hyper("lambd", 1e-4, low=0.0, doc="decay term λ of the step size and of the parameters"),
        Hyper("alpha", 0.75, low=0.0, doc="power α of the step-size decay η/(1 + ληt)^α"),
        Hyper("t0", 1e6, doc="step t₀ from which the parameters are averaged"),
        WEIGHT_DECAY,
        MAXIMIZE,
    )
    buffers = (Buffer("ax", "θ̄: the running average of the iterates"),)

    def options(self) -> dict[str, bool]:
        return {"coupled": not is_off(self.weight_decay), "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        eta, mu = eta_mu(t, lr, h)
        return {"eta": eta, "decay_factor": 1.0 - np.asarray(h.lambd) * eta, "mu": mu}

    @staticmethod
    def element(param, grad, ax, weight_decay, eta, decay_factor, mu, coupled, maximize):
        """``g = ±grad + λ_wd·θ``; ``θ = θ(1 − λη_t) − η_t g``; ``θ̄ = θ`` where μ_t = 1, else
        ``θ̄ + μ_t(θ − θ̄)``."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        param = param * decay_factor
        param = param - eta * g
        return param, select(mu == 1, param, ax + (param - ax) * mu)
