"""What a run of the engine produces: plain data that the CLI, plots and web lab all consume.

A :class:`RunResult` is one optimizer run from one start; a batched engine call returns many of
them (built from a :class:`BatchRecord` without Python loops over steps). Entry ``i`` of ``loss``,
``grad_norm`` belongs to ``trajectory[i]`` (the start is entry 0); ``lr[i]`` is the learning rate of
the update that moved ``trajectory[i]`` to ``trajectory[i + 1]``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gdlab.core.hyper import Configurable

Status = Literal["converged", "diverged", "max_steps"]
STATUSES: tuple[Status, ...] = ("converged", "diverged", "max_steps")


@dataclass
class RunResult:
    """One run: where it went, how the loss fell, and how it ended."""

    optimizer: str
    hyperparams: dict[str, Any]
    trajectory: np.ndarray  # (n_points, d), start first; for learning problems may be empty (0, d)
    loss: np.ndarray  # (n_points,)
    grad_norm: np.ndarray  # (n_points,)
    lr: np.ndarray  # (n_points - 1,)
    status: Status
    stopped_at: int  # the step at which the status was decided (number of updates applied)
    reason: str
    label: str = ""
    schedule: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def final_loss(self) -> float:
        return float(self.loss[-1]) if len(self.loss) else float("nan")

    @property
    def final_point(self) -> np.ndarray:
        return self.trajectory[-1]

    def to_dict(self) -> dict[str, Any]:
        """The fields as a dict with the numpy arrays as they are (for encoders that take arrays)."""
        return {
            "optimizer": self.optimizer,
            "label": self.label or self.optimizer,
            "hyperparams": self.hyperparams,
            "schedule": self.schedule,
            "trajectory": self.trajectory,
            "loss": self.loss,
            "grad_norm": self.grad_norm,
            "lr": self.lr,
            "status": self.status,
            "stopped_at": int(self.stopped_at),
            "reason": self.reason,
            **({"extra": self.extra} if self.extra else {}),
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (lists of floats; non-finite numbers become None)."""
        return jsonable(self.to_dict())


def jsonable(value: Any) -> Any:
    """Convert numpy values (recursively) to JSON-safe Python; NaN and ±inf become None."""
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "f":
            obj = value.astype(object)
            obj[~np.isfinite(value)] = None
            return obj.tolist()
        return value.tolist()
    if isinstance(value, np.bool_ | bool):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        return float(value) if np.isfinite(value) else None
    if isinstance(value, Configurable):  # a schedule inside a schedule (sequential, chained)
        return {"name": value.name, "params": jsonable(value.get_params())}
    if callable(value):  # a function hyperparameter (lambda's lr_lambda): its formula, or its repr
        return getattr(value, "text", repr(value))
    return value


def format_hyperparam(value: Any) -> str:
    """A hyperparameter value for a one-line label: floats as ``%g``, pairs as ``0.9/0.999``."""
    if isinstance(value, Configurable):
        inner = ";".join(f"{k}={format_hyperparam(v)}" for k, v in value.get_params().items())
        return f"{value.name}({inner})"
    if isinstance(value, list | tuple) and value and isinstance(value[0], Configurable):
        return "|".join(format_hyperparam(v) for v in value)
    if isinstance(value, list | tuple):
        return "/".join(format_hyperparam(v) for v in value)
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)
