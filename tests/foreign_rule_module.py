"""A user's rule, written against gdlab's rule interface (loaded as ``tests.foreign_rule_module:HeavyBall``)."""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import lr


class HeavyBall(Rule):
    """Heavy-ball momentum: b ← βb + g; θ ← θ − ηb."""

    name = "heavyball_test"
    family = "sgd"
    hyperparams = (lr(1e-2), Hyper("beta", 0.9, low=0.0, high=1.0, high_open=True, doc="momentum β"))
    buffers = (Buffer("velocity", "b"),)

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"beta": h.beta}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr}

    @staticmethod
    def element(param, grad, velocity, lr, beta):
        """``b = βb + g``; ``θ − ηb``."""
        b = velocity * beta + grad
        return param - lr * b, b


class NotARule:
    pass
