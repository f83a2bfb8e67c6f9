r"""Stochastic gradient descent with momentum, dampening, Nesterov and weight decay (PyTorch's form)."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import select
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, WEIGHT_DECAY, descent_gradient, is_off, lr


class SGD(Rule):
    r"""Stochastic gradient descent, exactly as ``torch.optim.SGD``.

    With gradient :math:`g_t` at :math:`\theta_{t-1}`:

    .. math::
        g &\leftarrow \pm g_t + \lambda\theta_{t-1} \quad(\text{minus when maximize})\\
        b_t &\leftarrow g \;\text{if } t = 1,\ \text{else}\ \mu b_{t-1} + (1-\tau) g\\
        g &\leftarrow g + \mu b_t \;\text{(nesterov)}\quad\text{or}\quad g \leftarrow b_t\\
        \theta_t &\leftarrow \theta_{t-1} - \eta g

    (the momentum lines only when μ ≠ 0). With ``momentum=0`` this is plain gradient descent
    θ ← θ − η∇L. ``dampening`` τ scales the new gradient in the buffer; Nesterov needs μ > 0 and
    τ = 0. With a batch of momenta, a run whose μ is 0 steps exactly as plain gradient descent (PyTorch
    keeps no buffer for it). PyTorch's Nesterov evaluates the gradient at the current point; its
    iterates are the look-ahead points of the textbook form (see ``nesterov``).
    """

    name = "sgd"
    family = "sgd"
    hyperparams = (
        lr(1e-3),
        Hyper("momentum", 0.0, low=0.0, doc="momentum factor μ"),
        Hyper("dampening", 0.0, low=0.0, doc="dampening τ for momentum"),
        WEIGHT_DECAY,
        Hyper("nesterov", False, kind="bool", doc="use Nesterov momentum"),
        MAXIMIZE,
    )
    buffers = (Buffer("momentum_buffer", "b: the running sum of gradients", when="use_momentum"),)

    def _check_combination(self) -> None:
        if not self.nesterov:
            return
        momentum, dampening = np.asarray(self.momentum), np.asarray(self.dampening)
        if np.any(momentum <= 0.0):
            bad = float(momentum[momentum <= 0.0].flat[0]) if momentum.ndim else float(momentum)
            raise ValueError(f"sgd: nesterov=True requires momentum > 0 for every run, got momentum={bad!r}")
        if np.any(dampening != 0.0):
            bad = float(dampening[dampening != 0.0].flat[0]) if dampening.ndim else float(dampening)
            raise ValueError(f"sgd: nesterov=True requires dampening = 0, got dampening={bad!r}")

    def options(self) -> dict[str, bool]:
        return {
            "use_momentum": not is_off(self.momentum),
            "nesterov": self.nesterov,
            "coupled": not is_off(self.weight_decay),
            "maximize": self.maximize,
        }

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"momentum": h.momentum, "one_minus_dampening": 1.0 - np.asarray(h.dampening),
                "weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr, "first": np.asarray(t == 1, dtype=np.float64)}

    @staticmethod
    def element(param, grad, momentum_buffer, lr, momentum, one_minus_dampening, weight_decay, first,
                use_momentum, nesterov, coupled, maximize):
        """``g = ±grad + λθ``; ``b = g`` (first step) or ``μb + (1 − τ)g``; ``θ − η(g + μb)`` with
        Nesterov, ``θ − ηb`` without, ``θ − ηg`` without momentum (or where μ = 0)."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        buf = momentum_buffer
        step = g
        if use_momentum:
            buf = select(first > 0, g, momentum_buffer * momentum + one_minus_dampening * g)
            step = g + momentum * buf if nesterov else buf
            step = select(momentum == 0, g, step)
        return param - lr * step, buf
