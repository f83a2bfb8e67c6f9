"""A schedule's momentum (OneCycleLR's and CyclicLR's ``cycle_momentum``) reaching the optimizer.

PyTorch's schedulers write the cycled momentum into the param group before each step: ``momentum``
for SGD-like optimizers, the first of ``betas`` for Adam-like ones; the optimizer then uses it as if
configured so (Adam's bias correction is ``1 − β₁ᵗ`` with that step's β₁). :func:`with_momentum`
does the same: a copy of the optimizer with the step's value, given to that step. The executors that
take per-step momenta are the reference loop (:mod:`gdlab.engine.reference`) and the training loop;
the fused trajectories leave such runs to the reference (:func:`gdlab.fast.explain` says so).
"""

from __future__ import annotations

import copy
from typing import Any

from gdlab.core.optimizer import Optimizer
from gdlab.core.rules.common import is_off


def momentum_field(optimizer: Optimizer) -> str:
    """Which hyperparameter a cycled momentum sets: ``"momentum"`` or ``"betas"`` (β₁); ``ValueError``
    for an optimizer with neither (as PyTorch refuses), or whose momentum is off (μ = 0: no buffer)."""
    names = {h.name for h in type(optimizer).hyperparams}
    if "momentum" in names:
        if is_off(optimizer.momentum):  # type: ignore[attr-defined]
            raise ValueError(f"cycle_momentum: {optimizer.name} has momentum=0 (no momentum buffer); give it a "
                             "momentum > 0 for the schedule to cycle")
        return "momentum"
    if "betas" in names:
        return "betas"
    raise ValueError(f"cycle_momentum: {optimizer.name} has neither momentum nor betas to cycle "
                     "(PyTorch refuses it too); set cycle_momentum=false")


def with_momentum(optimizer: Optimizer, value: Any) -> Optimizer:
    """A copy of ``optimizer`` whose momentum (μ, or β₁ of ``betas``) is ``value`` for one step."""
    field = momentum_field(optimizer)
    out = copy.copy(optimizer)
    if field == "momentum":
        out.momentum = value  # type: ignore[attr-defined]
    else:
        out.betas = (value, optimizer.betas[1])  # type: ignore[attr-defined]
    return out
