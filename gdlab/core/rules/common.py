"""What several rules share: hyperparameter specs (PyTorch's names, defaults and ranges), option
switches and the element helpers every gradient-based rule starts with."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.elementwise import helper
from gdlab.core.hyper import Hyper


def lr(default: float) -> Hyper:
    return Hyper("lr", default, low=0.0, doc="learning rate η (step size)")


def eps(default: float) -> Hyper:
    return Hyper("eps", default, low=0.0, doc="ε added to the denominator for numerical stability")


def betas(default: tuple[float, float] = (0.9, 0.999)) -> Hyper:
    return Hyper(
        "betas", default, kind="pair", low=0.0, high=1.0, high_open=True,
        doc="(β₁, β₂): decay rates of the first- and second-moment averages",
    )


WEIGHT_DECAY = Hyper("weight_decay", 0.0, low=0.0, doc="weight decay λ (L2 penalty added to the gradient)")
MAXIMIZE = Hyper("maximize", False, kind="bool", doc="ascend the objective instead of descending it")
EPS_INSIDE_SQRT = Hyper(
    "eps_inside_sqrt", False, kind="bool",
    doc="put ε inside the square root, √(v + ε), as in Keras and the seeds, instead of √v + ε",
)
DECOUPLED_WEIGHT_DECAY = Hyper(
    "decoupled_weight_decay", False, kind="bool",
    doc="decay the parameters, θ(1 − ηλ), as AdamW does, instead of adding λθ to the gradient",
)


def is_off(value: Any) -> bool:
    """True when an optional term's coefficient is the scalar 0, so the term is skipped (as PyTorch
    does). A batched array, even of zeros, keeps the term, so every run of a batch shares one path."""
    return isinstance(value, float) and value == 0.0


def any_zero(value: Any) -> bool:
    """True when a (possibly batched) hyperparameter is zero for some run."""
    return bool(np.any(np.asarray(value) == 0))


def decay_options(weight_decay: Any, decoupled: bool) -> dict[str, bool]:
    """The weight-decay switches of a rule that offers both forms: ``coupled`` (λθ added to the
    gradient) or ``decoupled`` (θ(1 − ηλ)); neither when λ is the scalar 0."""
    on = not is_off(weight_decay)
    return {"coupled": on and not decoupled, "decoupled": on and decoupled}


@helper
def descent_gradient(grad, param, weight_decay, maximize, coupled):
    """``±grad + λθ``: the gradient to descend (negated when maximizing), with coupled L2 weight decay."""
    g = -grad if maximize else grad
    if coupled:
        g = g + weight_decay * param
    return g
