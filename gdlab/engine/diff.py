"""Step-by-step comparison of two optimizers on the same gradients (``gdlab diff``).

Both optimizers start at the same point and receive the **same gradient sequence**, so that only
their update rules can part:

- ``stream``: gradients drawn from a seeded normal distribution;
- landscape: the gradient at gdlab's (the first optimizer's) current point, given to both — the
  second optimizer's own trajectory is not followed, which would amplify a difference in the last
  bit into a different path and hide where the rules part.

When they part beyond the tolerance, the first optimizer is re-run with each alternative
convention gdlab knows for it (ε inside the root, coupled vs decoupled decay, Nesterov form, bias
correction, ...); the alternatives that make the two agree are reported as the explanation.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdlab.core.objective import Objective
from gdlab.core.optimizer import GradientOptimizer


@dataclass
class DiffResult:
    """What :func:`diff_optimizers` found."""

    steps: int
    tol: float
    #: 1-based step and parameter index where they first part beyond ``tol`` (None: they agree).
    first_step: int | None
    first_index: int | None
    max_rel_diff: float
    max_rel_step: int
    #: Conventions (hyperparameter settings of the first optimizer) that make them agree.
    explanations: list[dict[str, Any]] = field(default_factory=list)

    @property
    def agree(self) -> bool:
        return self.first_step is None

    def as_dict(self) -> dict[str, Any]:
        return {"agree": self.agree, "steps": self.steps, "tol": self.tol, "first_step": self.first_step,
                "first_index": self.first_index, "max_rel_diff": self.max_rel_diff,
                "max_rel_step": self.max_rel_step, "explanations": self.explanations}


#: Adam's and AdamW's moments with and without the division by 1 − βᵗ.
BIAS_CORRECTION: list[tuple[str, dict[str, Any]]] = [
    ("no bias correction (bias_correction=false: m and v not divided by 1 − βᵗ)", {"bias_correction": False}),
    ("bias correction (bias_correction=true)", {"bias_correction": True}),
]

#: Alternative conventions by gdlab optimizer: (what it is called, the hyperparameters to change).
#: ``"optimizer"`` names another gdlab optimizer built with the same hyperparameters (Adam's L2
#: decay in the gradient against AdamW's decoupled decay); it is tried only with a weight decay.
CONVENTIONS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "adam": [("ε inside the root (eps_inside_sqrt)", {"eps_inside_sqrt": True}),
             ("ε outside the root (eps_inside_sqrt=false)", {"eps_inside_sqrt": False}),
             ("decoupled weight decay (AdamW's θ·(1 − ηλ)) where gdlab's adam adds λθ to the gradient",
              {"optimizer": "adamw"}),
             *BIAS_CORRECTION],
    "nadam": [("decoupled weight decay (decoupled_weight_decay=true)", {"decoupled_weight_decay": True}),
              ("weight decay coupled into the gradient (decoupled_weight_decay=false)",
               {"decoupled_weight_decay": False})],
    "radam": [("decoupled weight decay (decoupled_weight_decay=true)", {"decoupled_weight_decay": True}),
              ("weight decay coupled into the gradient (decoupled_weight_decay=false)",
               {"decoupled_weight_decay": False})],
    "adagrad": [("ε inside the root (eps_inside_sqrt)", {"eps_inside_sqrt": True}),
                ("ε outside the root (eps_inside_sqrt=false)", {"eps_inside_sqrt": False})],
    "adamw": [("decoupled decay in torch's form (weight_decay_form=torch: θ·(1 − ηλ))",
               {"weight_decay_form": "torch"}),
              ("decoupled decay in the paper's form (weight_decay_form=paper)", {"weight_decay_form": "paper"}),
              ("weight decay coupled into the gradient (Adam's L2: g + λθ) where gdlab's adamw decouples it",
               {"optimizer": "adam"}),
              *BIAS_CORRECTION],
    "sgd": [("Nesterov form (nesterov=true)", {"nesterov": True}),
            ("no Nesterov (nesterov=false)", {"nesterov": False})],
}


def gradient_sequence(kind: str, dim: int, steps: int, seed: int) -> np.ndarray:
    """The ``stream`` gradients: ``(steps, dim)`` standard normals from ``seed``."""
    if kind != "random":
        raise ValueError(f"--stream must be 'random', got {kind!r}")
    return np.random.default_rng(seed).standard_normal((steps, dim))


def _walk(a: GradientOptimizer, b: GradientOptimizer, x0: np.ndarray, steps: int,
          gradient: Callable[[int, np.ndarray], np.ndarray], lrs: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    pa, pb = x0.copy(), x0.copy()
    sa, sb = a.init(pa), b.init(pb)
    out_a, out_b = np.empty((steps, x0.size)), np.empty((steps, x0.size))
    for k in range(steps):
        g = gradient(k, pa)
        lr = None if lrs is None else float(lrs[k])
        with np.errstate(all="ignore"):
            pa, sa, _ = a.update(g, sa, pa, lr)
            pb, sb, _ = b.update(g, sb, pb, lr)
        out_a[k], out_b[k] = pa, pb
    return out_a, out_b


def _compare(xa: np.ndarray, xb: np.ndarray, tol: float) -> tuple[int | None, int | None, float, int]:
    with np.errstate(all="ignore"):
        scale = np.maximum(np.maximum(np.abs(xa), np.abs(xb)), 1e-300)
        rel = np.abs(xa - xb) / scale
    rel = np.where(np.isnan(rel), np.inf, rel)
    worst = np.unravel_index(int(np.argmax(rel)), rel.shape)
    over = np.argwhere(rel > tol)
    if len(over) == 0:
        return None, None, float(rel.max()), int(worst[0]) + 1
    return int(over[0][0]) + 1, int(over[0][1]), float(rel.max()), int(worst[0]) + 1


def diff_optimizers(
    a: GradientOptimizer, b: GradientOptimizer, x0: Any, *, steps: int, tol: float = 1e-10,
    objective: Objective | None = None, stream: str = "random", seed: int = 0, schedule: Any = None,
    rebuild: Callable[[dict[str, Any]], GradientOptimizer] | None = None,
) -> DiffResult:
    """Run ``a`` and ``b`` on the same gradients (see the module docstring) and compare their points.

    ``rebuild(changes)`` builds ``a`` with some hyperparameters changed, or (``changes["optimizer"]``)
    another gdlab optimizer with ``a``'s hyperparameters (for the explanations); without it no
    explanation is tried. ``schedule`` drives both learning rates alike.
    """
    for opt in (a, b):
        if not isinstance(opt, GradientOptimizer):
            raise TypeError(f"gdlab diff compares gradient-only optimizers; {opt.name!r} needs the objective")
    x = np.array(x0, dtype=np.float64).reshape(-1)
    if objective is not None:
        def gradient(k: int, p: np.ndarray) -> np.ndarray:
            return np.asarray(objective.grad(p), dtype=np.float64)
    else:
        grads = gradient_sequence(stream, x.size, steps, seed)

        def gradient(k: int, p: np.ndarray) -> np.ndarray:
            return grads[k]
    lrs = None
    if schedule is not None:
        lr = getattr(a, "lr", None)
        if lr is None:
            raise ValueError(f"{a.name!r} has no learning rate for a schedule to drive")
        lrs = np.asarray(schedule.curve(steps, float(lr)), dtype=np.float64)
    xa, xb = _walk(a, b, x, steps, gradient, lrs)
    first_step, first_index, worst, worst_step = _compare(xa, xb, tol)
    result = DiffResult(steps, tol, first_step, first_index, worst, worst_step)
    if first_step is not None and rebuild is not None:
        current = a.get_params()
        for label, changes in CONVENTIONS.get(a.name, []):
            own = {k: v for k, v in changes.items() if k != "optimizer"}
            if "optimizer" in changes:
                if not current.get("weight_decay"):
                    continue  # without a decay the two optimizers are the same
            elif all(current.get(k) == v for k, v in own.items()) or any(k not in current for k in own):
                continue
            try:
                alt = rebuild(changes)
            except (TypeError, ValueError):
                continue
            ya, yb = _walk(alt, _fresh(b), x, steps, gradient, lrs)
            if _compare(ya, yb, tol)[0] is None:
                result.explanations.append({"convention": label, "set": changes})
    return result


def _fresh(opt: GradientOptimizer) -> GradientOptimizer:
    return type(opt)(**getattr(opt, "_kwargs", opt.get_params()))
