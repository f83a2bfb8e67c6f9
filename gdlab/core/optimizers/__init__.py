"""Every optimizer of gdlab, by name."""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import suggest
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers.adam import Adam, AdamW
from gdlab.core.optimizers.sgd import SGD, Momentum, Nesterov

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls
    for cls in (SGD, Momentum, Nesterov, Adam, AdamW)
}


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer class called ``name``; unknown names list the valid ones."""
    try:
        return OPTIMIZERS[name]
    except KeyError:
        raise ValueError(
            f"unknown optimizer {name!r}{suggest(name, OPTIMIZERS)}; valid: {', '.join(OPTIMIZERS)}"
        ) from None


def make_optimizer(name: str, **hyperparams: Any) -> Optimizer:
    """Build optimizer ``name`` with validated hyperparameters."""
    return optimizer_class(name)(**hyperparams)


__all__ = ["OPTIMIZERS", "SGD", "Adam", "AdamW", "Momentum", "Nesterov", "make_optimizer", "optimizer_class"]
