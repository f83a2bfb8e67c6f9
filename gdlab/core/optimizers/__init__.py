"""Every optimizer of gdlab, by name: the elementwise rules and those that need the objective."""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import lookup
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers.adafactor import Adafactor
from gdlab.core.optimizers.lbfgs import LBFGS
from gdlab.core.optimizers.muon import Muon
from gdlab.core.optimizers.newton import Newton
from gdlab.core.optimizers.sam import SAM
from gdlab.core.rules import (
    ASGD,
    RULES,
    SGD,
    Adadelta,
    Adagrad,
    Adam,
    Adamax,
    AdamW,
    Lion,
    Momentum,
    NAdam,
    Nesterov,
    RAdam,
    RMSprop,
    Rprop,
)

OPTIMIZERS: dict[str, type[Optimizer]] = {**RULES, **{cls.name: cls for cls in (Newton, LBFGS, SAM, Adafactor, Muon)}}


def optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer class called ``name``; unknown names list the valid ones."""
    return lookup(OPTIMIZERS, name, "optimizer")


def make_optimizer(name: str, **hyperparams: Any) -> Optimizer:
    """Build optimizer ``name`` with validated hyperparameters."""
    return optimizer_class(name)(**hyperparams)


__all__ = [
    "ASGD",
    "LBFGS",
    "OPTIMIZERS",
    "SAM",
    "SGD",
    "Adadelta",
    "Adafactor",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Momentum",
    "Muon",
    "NAdam",
    "Nesterov",
    "Newton",
    "RAdam",
    "RMSprop",
    "Rprop",
    "make_optimizer",
    "optimizer_class",
]
