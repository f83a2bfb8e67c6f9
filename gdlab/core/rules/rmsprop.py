r"""RMSprop (Tieleman & Hinton 2012; centered form of Graves 2013), in PyTorch's exact arithmetic."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import lerp, select, sqrt
from gdlab.core.hyper import Hyper
from gdlab.core.rule import Buffer, Hypers, Rule
from gdlab.core.rules.common import EPS_INSIDE_SQRT, MAXIMIZE, WEIGHT_DECAY, descent_gradient, eps, is_off, lr


class RMSprop(Rule):
    r"""RMSprop, exactly as ``torch.optim.RMSprop``.

    With gradient :math:`g` at step t:

    .. math::
        g &\leftarrow \pm g + \lambda\theta_{t-1} \quad\text{(minus when maximize)}\\
        v_t &\leftarrow \alpha v_{t-1} + (1-\alpha) g^2\\
        \bar g_t &\leftarrow \alpha \bar g_{t-1} + (1-\alpha) g \quad\text{(centered only)}\\
        d &\leftarrow \sqrt{v_t - \bar g_t^2} + \epsilon \ \text{(centered)}\quad\text{or}\quad
              \sqrt{v_t} + \epsilon\\
        b_t &\leftarrow \mu b_{t-1} + g/d,\qquad \theta_t \leftarrow \theta_{t-1} - \eta b_t
              \quad\text{(momentum μ > 0)}\\
        \theta_t &\leftarrow \theta_{t-1} - \eta\, g/d \quad\text{(no momentum)}

    with all buffers starting at zero. With ``eps_inside_sqrt`` the denominator is √(v − ḡ² + ε) or
    √(v + ε), the seed form θ ← θ − η g/√(E[g²] + ε). With a batch of momenta, a run whose μ is 0
    steps exactly as without momentum.
    """

    name = "rmsprop"
    family = "adaptive"
    hyperparams = (
        lr(1e-2),
        Hyper("alpha", 0.99, low=0.0, high=1.0, doc="smoothing constant α of the squared-gradient average"),
        eps(1e-8),
        WEIGHT_DECAY,
        Hyper("momentum", 0.0, low=0.0, doc="momentum factor μ applied to the normalised step"),
        Hyper("centered", False, kind="bool", doc="normalise by the estimated variance v − ḡ² instead of v"),
        MAXIMIZE,
        EPS_INSIDE_SQRT,
    )
    buffers = (
        Buffer("square_avg", "v: the running average of g²"),
        Buffer("grad_avg", "ḡ: the running average of g", when="centered"),
        Buffer("momentum_buffer", "b: the momentum of the normalised step", when="use_momentum"),
    )

    def _check_combination(self) -> None:
        try:
            stuck = np.any((np.asarray(self.alpha) == 1.0) & (np.asarray(self.eps) == 0.0))
        except ValueError:  # shapes that do not broadcast together are refused later, at init
            stuck = False
        if stuck:
            raise ValueError(
                f"rmsprop: alpha=1 with eps=0 never updates the average and divides by zero "
                f"(got alpha={self.alpha}, eps={self.eps})"
            )

    def options(self) -> dict[str, bool]:
        return {
            "centered": self.centered,
            "use_momentum": not is_off(self.momentum),
            "inside": self.eps_inside_sqrt,
            "coupled": not is_off(self.weight_decay),
            "maximize": self.maximize,
        }

    def constants(self, h: Hypers) -> dict[str, Any]:
        one_minus_alpha = 1.0 - np.asarray(h.alpha)
        return {"alpha": h.alpha, "one_minus_alpha": one_minus_alpha, "w": one_minus_alpha,
                "one_minus_w": 1.0 - one_minus_alpha, "eps": h.eps, "momentum": h.momentum,
                "weight_decay": h.weight_decay}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr}

    @staticmethod
    def element(param, grad, square_avg, grad_avg, momentum_buffer, alpha, one_minus_alpha, w, one_minus_w, eps,
                momentum, weight_decay, lr, centered, use_momentum, inside, coupled, maximize):
        """``g = ±grad + λθ``; ``v = αv + (1 − α)g²``; centered: ``ḡ = lerp(ḡ, g, 1 − α)``,
        ``v − ḡ²``; ``d = √(·) + ε``; ``θ − η(μb + g/d)`` with momentum, ``θ − ηg/d`` without."""
        g = descent_gradient(grad, param, weight_decay, maximize, coupled)
        sq = square_avg * alpha + one_minus_alpha * g * g
        avg_g = grad_avg
        var = sq
        if centered:
            avg_g = lerp(grad_avg, g, w, one_minus_w)
            var = sq - avg_g * avg_g
        avg = sqrt(var + eps) if inside else sqrt(var) + eps
        buf = momentum_buffer
        new = param - lr * g / avg
        if use_momentum:
            buf = momentum_buffer * momentum + g / avg
            new = select(momentum == 0, new, param - lr * buf)
        return new, sq, avg_g, buf
