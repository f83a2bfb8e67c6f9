"""Shared helpers for driving gdlab optimizers in tests."""

from __future__ import annotations

import numpy as np

from gdlab.core.objective import Objective
from gdlab.core.optimizer import Optimizer


def run_stream(opt: Optimizer, x0: np.ndarray, grads: np.ndarray, lrs: np.ndarray | None = None) -> np.ndarray:
    """Trajectory of ``opt`` fed a gradient stream (the gradient of step i is ``grads[i]``)."""
    p = np.array(x0, dtype=np.float64)
    state = opt.init(p)
    out = [p.copy()]
    for i, g in enumerate(grads):
        p, state, bad = opt.update(g, state, p, lr=None if lrs is None else lrs[i])
        assert not np.any(bad)
        out.append(p.copy())
    return np.array(out)


def run_objective(opt: Optimizer, objective: Objective, x0: np.ndarray, steps: int) -> np.ndarray:
    """Trajectory of ``opt`` on ``objective`` through the common ``step`` interface."""
    p = np.array(x0, dtype=np.float64)
    state = opt.init(p)
    out = [p.copy()]
    for _ in range(steps):
        p, state, _ = opt.step(objective, p, state)
        out.append(p.copy())
    return np.array(out)
