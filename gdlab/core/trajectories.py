"""What a trajectory executor returns: where each run of a batch ended, how, and its record.

Both executors of :func:`gdlab.engine.run_batch`, the reference loop and the fused trajectories,
return a :class:`Trajectories`; the engine turns it into a :class:`~gdlab.engine.run.BatchRecord`.
Arrays are per run (shape ``batch``) unless said otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gdlab.core.stopping import MAX_STEPS, R_MAX_STEPS


@dataclass
class Records:
    """The time-major record of a batch, cut after the last step any run took."""

    positions: np.ndarray  # (k + 1,) + batch + (d,)
    loss: np.ndarray  # (k + 1,) + batch
    grad_norm: np.ndarray  # (k + 1,) + batch
    lr: np.ndarray  # (k,) + batch: the learning rate of each update


@dataclass
class Trajectories:
    """The outcome of every run of a batch (see :mod:`gdlab.core.stopping` for the codes)."""

    status_code: np.ndarray  # int8: CONVERGED / DIVERGED / MAX_STEPS
    reason_code: np.ndarray  # int8
    reason_value: np.ndarray  # float: the value that triggered the stop
    stopped_at: np.ndarray  # int64: updates applied when the status was decided
    n_points: np.ndarray  # int64: recorded points of each run
    final_params: np.ndarray  # batch + (d,): the last recorded point
    final_loss: np.ndarray
    final_grad_norm: np.ndarray
    records: Records | None = None


def initial_outcomes(shape: tuple[int, ...], steps: int) -> tuple[np.ndarray, ...]:
    """(status, reason, reason value, stopped at, points) of runs that have not stopped yet: what
    every run ends with unless a stopping rule fires (``max_steps`` after ``steps`` updates)."""
    return (np.full(shape, MAX_STEPS, dtype=np.int8), np.full(shape, R_MAX_STEPS, dtype=np.int8),
            np.full(shape, np.nan), np.full(shape, steps, dtype=np.int64), np.full(shape, steps + 1, dtype=np.int64))
