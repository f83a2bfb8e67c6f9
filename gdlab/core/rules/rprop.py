r"""Rprop, resilient backpropagation (Riedmiller & Braun 1993), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import select, sign
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import MAXIMIZE, lr


class Rprop(Rule):
    r"""Rprop, exactly as ``torch.optim.Rprop``: a step of its own size per element, driven by signs.

    With gradient :math:`g` at step t, the previous (masked) gradient :math:`p` and the per-element
    step sizes :math:`s` (:math:`s_0 = \eta`, the learning rate of the first step):

    .. math::
        g &\leftarrow \pm g \quad\text{(minus when maximize)}\\
        f &\leftarrow \eta_+ \text{ if } g p > 0,\quad \eta_- \text{ if } g p < 0,\quad 1 \text{ otherwise}\\
        s_t &\leftarrow \operatorname{clamp}(s_{t-1} f,\ s_{\min},\ s_{\max})\\
        g &\leftarrow 0 \text{ where } g p < 0\\
        \theta_t &\leftarrow \theta_{t-1} - \operatorname{sign}(g)\, s_t,\qquad p \leftarrow g

    with p₀ = 0 (so the first step is ``θ − sign(g)·clamp(η)``). ``etas`` is (η₋, η₊) with
    0 < η₋ < 1 < η₊; ``step_sizes`` is (s_min, s_max). As in PyTorch, the learning rate is read
    only at the first step (it sets the initial step sizes): a schedule has no effect after it.
    """

    name = "rprop"
    family = "sign"
    hyperparams = (
        lr(1e-2),
        Hyper("etas", (0.5, 1.2), kind="pair", low=0.0, low_open=True,
              doc="(η₋, η₊): factors shrinking and growing a step size, 0 < η₋ < 1 < η₊"),
        Hyper("step_sizes", (1e-6, 50.0), kind="pair", low=0.0,
              doc="(s_min, s_max): the smallest and largest step size"),
        MAXIMIZE,
    )
    buffers = (
        Buffer("prev", "p: the previous gradient, 0 where its sign flipped"),
        Buffer("step_size", "s: the step size of each element"),
    )

    def _check_combination(self) -> None:
        minus, plus = (np.asarray(e) for e in self.etas)
        if np.any(minus >= 1.0) or np.any(plus <= 1.0):
            raise ValueError(f"rprop: etas must satisfy 0 < etaminus < 1 < etaplus, got etas={self.etas!r}")

    def options(self) -> dict[str, bool]:
        return {"maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        minus, plus = h.etas
        low, high = h.step_sizes
        one = np.ones_like(np.asarray(minus, dtype=np.float64))
        return {"etaminus": minus, "etaplus": plus, "step_size_min": low, "step_size_max": high, "one": one,
                "zero": 0.0 * one}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr, "first": np.asarray(t == 1, dtype=np.float64)}

    @staticmethod
    def element(param, grad, prev, step_size, etaminus, etaplus, step_size_min, step_size_max, one, zero, lr,
                first,
                maximize):
        """``g = ±grad``; ``s = η`` at the first step; ``f = η₊, η₋, 1`` as ``g·p`` is > 0, < 0, else;
        ``s = clamp(s·f, s_min, s_max)``; ``g = 0`` where ``g·p < 0``; ``θ − sign(g)·s``; ``p = g``."""
        g = -grad if maximize else grad
        s = select(first > 0, lr, step_size)
        product = g * prev
        factor = select(product > 0, etaplus, select(product < 0, etaminus, one))
        s = s * factor
        s = select(s < step_size_min, step_size_min, s)
        s = select(s > step_size_max, step_size_max, s)
        g = select(product < 0, zero, g)
        return param - sign(g) * s, g, s
