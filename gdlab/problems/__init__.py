"""Learning problems on real data bundled with scikit-learn, and a training loop to run optimizers on them.

``make_problem("logistic_regression")`` builds a :class:`Problem`; ``problem.objective(rows)`` is an
:class:`~gdlab.core.objective.Objective` any optimizer can step on; :func:`train` runs epochs of
full-batch, stochastic or mini-batch descent (see :mod:`gdlab.problems.batches`).
"""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import lookup
from gdlab.problems.base import Problem, ProblemObjective, load_dataset, split_indices
from gdlab.problems.batches import epoch_batches, group_batches, minibatches, steps_per_epoch
from gdlab.problems.models import MLP, LinearRegression, LogisticRegression, SoftmaxRegression
from gdlab.problems.train import MeanObjective, TrainResult, train

PROBLEMS: dict[str, type[Problem]] = {
    cls.name: cls for cls in (LinearRegression, LogisticRegression, SoftmaxRegression, MLP)
}


def problem_class(name: str) -> type[Problem]:
    """The problem class called ``name``; unknown names list the valid ones."""
    return lookup(PROBLEMS, name, "problem")


def make_problem(name: str, **params: Any) -> Problem:
    """Build problem ``name`` with validated parameters (e.g. ``alpha``, ``hidden``, ``val_fraction``)."""
    return problem_class(name)(**params)


def list_problems() -> list[dict[str, Any]]:
    """JSON-ready description of every problem with its default parameters."""
    return [cls().info() for cls in PROBLEMS.values()]


__all__ = [
    "MLP",
    "PROBLEMS",
    "LinearRegression",
    "LogisticRegression",
    "MeanObjective",
    "Problem",
    "ProblemObjective",
    "SoftmaxRegression",
    "TrainResult",
    "epoch_batches",
    "group_batches",
    "list_problems",
    "load_dataset",
    "make_problem",
    "minibatches",
    "problem_class",
    "split_indices",
    "steps_per_epoch",
    "train",
]
