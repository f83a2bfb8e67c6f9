"""Every optimizer of gdlab, by name."""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import lookup
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers.adadelta import Adadelta
from gdlab.core.optimizers.adagrad import Adagrad
from gdlab.core.optimizers.adam import Adam, AdamW
from gdlab.core.optimizers.adamax import Adamax
from gdlab.core.optimizers.lbfgs import LBFGS
from gdlab.core.optimizers.nadam import NAdam
from gdlab.core.optimizers.newton import Newton
from gdlab.core.optimizers.radam import RAdam
from gdlab.core.optimizers.rmsprop import RMSprop
from gdlab.core.optimizers.sam import SAM
from gdlab.core.optimizers.sgd import SGD, Momentum, Nesterov

OPTIMIZERS: dict[str, type[Optimizer]] = {
    cls.name: cls
    for cls in (
        SGD, Momentum, Nesterov, Adam, AdamW, Adagrad, RMSprop, Adadelta, Adamax, NAdam, RAdam,
        Newton, LBFGS, SAM,
    )
}


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer class called ``name``; unknown names list the valid ones."""
    return lookup(OPTIMIZERS, name, "optimizer")


def make_optimizer(name: str, **hyperparams: Any) -> Optimizer:
    """Build optimizer ``name`` with validated hyperparameters."""
    return optimizer_class(name)(**hyperparams)


__all__ = [
    "LBFGS",
    "OPTIMIZERS",
    "SAM",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Momentum",
    "NAdam",
    "Nesterov",
    "Newton",
    "RAdam",
    "RMSprop",
    "make_optimizer",
    "optimizer_class",
]
