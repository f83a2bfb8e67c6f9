"""The elementwise optimizers, one :class:`~gdlab.core.rule.Rule` per module, by name."""

from __future__ import annotations

from gdlab.core.hyper import lookup
from gdlab.core.rule import Rule
from gdlab.core.rules.adadelta import Adadelta
from gdlab.core.rules.adagrad import Adagrad
from gdlab.core.rules.adam import Adam
from gdlab.core.rules.adamax import Adamax
from gdlab.core.rules.adamw import AdamW
from gdlab.core.rules.asgd import ASGD
from gdlab.core.rules.lion import Lion
from gdlab.core.rules.momentum import Momentum
from gdlab.core.rules.nadam import NAdam
from gdlab.core.rules.nesterov import Nesterov
from gdlab.core.rules.radam import RAdam
from gdlab.core.rules.rmsprop import RMSprop
from gdlab.core.rules.rprop import Rprop
from gdlab.core.rules.sgd import SGD

RULES: dict[str, type[Rule]] = {
    cls.name: cls
    for cls in (SGD, Momentum, Nesterov, Adam, AdamW, Adagrad, RMSprop, Adadelta, Adamax, NAdam, RAdam, Lion,
                Rprop, ASGD)
}


def rule_class(name: str) -> type[Rule]:
    """The rule called ``name``; unknown names list the valid ones."""
    return lookup(RULES, name, "elementwise optimizer")


__all__ = [
    "ASGD",
    "RULES",
    "SGD",
    "Adadelta",
    "Adagrad",
    "Adam",
    "AdamW",
    "Adamax",
    "Lion",
    "Momentum",
    "NAdam",
    "Nesterov",
    "RAdam",
    "RMSprop",
    "Rprop",
    "rule_class",
]
