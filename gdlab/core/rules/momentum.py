r"""Classic (heavy-ball) momentum in the textbook form of the seeds: v ← γv + η∇L, θ ← θ − v."""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, WEIGHT_DECAY, descent_gradient, is_off, lr


class Momentum(Rule):
    r"""Classic (heavy-ball) momentum in the textbook form of the seeds.

    .. math::
        v_t \leftarrow \gamma v_{t-1} + \eta_t \nabla L(\theta_{t-1}),\qquad
        \theta_t \leftarrow \theta_{t-1} - v_t,\qquad v_0 = 0

    With a constant learning rate this is exactly ``SGD(momentum=γ)``: the velocity is η times
    PyTorch's buffer. Under a schedule they differ: here a past gradient keeps the learning rate of
    its own step, in PyTorch every stored gradient is rescaled by the current η.
    ``weight_decay`` adds λθ to the gradient.
    """

    name = "momentum"
    family = "sgd"
    hyperparams = (
        lr(1e-2),
        Hyper("momentum", 0.9, low=0.0, doc="momentum coefficient γ"),
        WEIGHT_DECAY,
        MAXIMIZE,
    )
    buffers = (Buffer("velocity", "v: the step taken, a decaying sum of past steps"),)

    def options(self) -> dict[str, bool]:
        return {"coupled": not is_off(self.weight_decay), "maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"momentum": h.momentum, "weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr}

    @staticmethod
    def element(param, grad, velocity, lr, momentum, weight_decay, coupled, maximize):
        """``g = ±grad + λθ``; ``v = γv + ηg``; ``θ − v``."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        v = momentum * velocity + lr * g
        return param - v, v
