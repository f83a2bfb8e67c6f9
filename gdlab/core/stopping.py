"""The stopping rules of a batch of runs: when a run ends, with which status and why.

Checked at every point a run reaches, per run; the first rule that fires decides:

====================================  ==========  ==============================================
rule                                  status      reason code
====================================  ==========  ==============================================
the schedule's rate is not finite     diverged    ``NONFINITE_LR`` (the step is not taken)
optimizer flags the step non-finite   diverged    ``NONFINITE_UPDATE`` (the update was refused)
optimizer's state not finite          diverged    ``NONFINITE_STATE`` (its buffers overflowed)
loss not finite                       diverged    ``NONFINITE_LOSS`` (the point is not recorded)
gradient not finite                   diverged    ``NONFINITE_GRAD`` (the point is not recorded)
``max_i |x_i| > bound``               diverged    ``BOUND`` (left the box)
``f(x_k) > blowup·(|f(x_0)| + floor)``  diverged    ``BLOWUP`` (the loss blew up)
``‖∇f(x_k)‖² < tol²``                 converged   ``GRAD_TOL``
``f(x_k) < target``                   converged   ``TARGET``
``k = steps``                         max_steps   ``MAX_STEPS`` (none of the above fired)
====================================  ==========  ==============================================

At the start a non-finite loss or gradient is ``BAD_START``; a start outside the box, or already
below ``tol`` or ``target``, stops at step 0 too.

:func:`conditions` (with :func:`stops`, whether any holds) and :func:`outcome` (which one decides,
and the value reported) are the decision, written once with the primitives of
:mod:`gdlab.core.elementwise`: the reference engine evaluates them with NumPy on whole batches, the
fused trajectories compile the same functions to per-run code (the conditions and :func:`stops` in
the vectorised loop, :func:`outcome` only for a run that stops), so both stop every run at the same
step, with the same status, reason and value.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from gdlab.core.elementwise import absolute, helper, select

Status = Literal["converged", "diverged", "max_steps"]
#: Status names, indexed by the status codes below.
STATUSES: tuple[Status, ...] = ("converged", "diverged", "max_steps")
CONVERGED, DIVERGED, MAX_STEPS = 0, 1, 2

#: Reason codes (why a run stopped); ``GOING`` is "has not stopped".
GOING = -1
R_MAX_STEPS = 0
R_GRAD_TOL = 1
R_TARGET = 2
R_NONFINITE_UPDATE = 3
R_NONFINITE_LOSS = 4
R_NONFINITE_GRAD = 5
R_BOUND = 6
R_BLOWUP = 7
R_BAD_START = 8
R_NONFINITE_STATE = 9
R_NONFINITE_LR = 10

#: Default ``blowup`` factor and the absolute floor in ``f > blowup·(|f(x₀)| + floor)``.
BLOWUP = 1e8
BLOWUP_FLOOR = 1e-3


@dataclass(frozen=True)
class StoppingRules:
    """The settings of the stopping rules, checked once when made.

    ``tol``/``target``: ``None`` disables the rule. ``bound``: the box ``max_i |x_i| ≤ bound`` (a
    number, or one per run; ``inf`` disables it). ``blowup``: ``None`` disables the blow-up rule.
    """

    tol: float | None = None
    target: float | None = None
    bound: Any = math.inf
    blowup: float | None = BLOWUP
    blowup_floor: float = BLOWUP_FLOOR

    def __post_init__(self) -> None:
        if self.tol is not None:
            object.__setattr__(self, "tol", _finite(self.tol, "tol", low=0.0))
        if self.target is not None:
            object.__setattr__(self, "target", _finite(self.target, "target"))
        if self.blowup is not None:
            blowup = _finite(self.blowup, "blowup")
            if not blowup > 1:
                raise ValueError(f"blowup must be greater than 1, got {self.blowup!r}")
            object.__setattr__(self, "blowup", blowup)
        object.__setattr__(self, "blowup_floor", _finite(self.blowup_floor, "blowup_floor", low=0.0))
        bound = np.asarray(self.bound, dtype=np.float64)
        if bound.size and not np.all(bound > 0):
            bad = float(bound[~(bound > 0)].flat[0]) if bound.ndim else float(bound)
            raise ValueError(f"bound must be > 0 (or inf to disable it), got {bad!r}")
        object.__setattr__(self, "bound", float(bound) if bound.ndim == 0 else bound)

    @property
    def tol_squared(self) -> float:
        """``tol²``, what the gradient rule compares the squared gradient norm with (0 when off)."""
        return 0.0 if self.tol is None else self.tol * self.tol

    @property
    def uses_bound(self) -> bool:
        return not (np.ndim(self.bound) == 0 and math.isinf(self.bound))

    def limit(self, loss0: Any) -> Any:
        """The blow-up threshold of each run from its start loss (``inf`` when the rule is off)."""
        if self.blowup is None:
            return np.full(np.shape(loss0), math.inf)
        return blowup_limit(loss0, self.blowup, self.blowup_floor)


def _finite(value: Any, name: str, low: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"{name} must be a number, got {value!r}")
    v = float(value)
    if not math.isfinite(v) or (low is not None and v < low):
        allowed = "a finite number" if low is None else f"a finite number >= {low:g}"
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    return v


def blowup_limit(loss0, blowup, floor):
    """The blow-up threshold ``blowup·(|f(x₀)| + floor)`` of a run."""
    return blowup * (absolute(loss0) + floor)


@helper
def conditions(refused, state_bad, loss, squared_grad_norm, outside, limit, tol_squared, target, use_limit, use_tol,
               use_target):
    """The stopping rules' conditions for a run at a point, in the order of the module docstring's
    table: refused update, non-finite state, non-finite loss, non-finite gradient, outside the box,
    blown up, gradient below ``tol``, loss below ``target``.

    ``outside`` is ``max_i |x_i| > bound`` (the caller compares its coordinates); the gradient rule
    compares the squared norm with ``tol²`` (``tol_squared``, rounded once), so that no square root
    is taken at a point where no rule fires.
    """
    loss_bad = (loss - loss) != 0
    grad_bad = (squared_grad_norm - squared_grad_norm) != 0
    blown = use_limit & (loss > limit)
    small = use_tol & (squared_grad_norm < tol_squared)
    low = use_target & (loss < target)
    return refused, state_bad, loss_bad, grad_bad, outside, blown, small, low


@helper
def may_stop(squared_norm, other_sum, loss, squared_grad_norm, bound_squared, limit, tol_squared, target):
    """A cheap test that is True whenever a stopping rule fires at this point (and, rarely, when none
    does): what the compiled trajectories check at every step, before working out exactly which rule
    fired, only for the runs it flags.

    ``squared_norm``: ``Σ x_i²``, compared with ``bound_squared`` (``bound²``, ``inf`` when the box
    is off): ``max_i |x_i| > bound`` implies ``Σ x_i² ≥ bound²`` in floating point too, since
    rounding is monotone, and a non-finite ``x_i`` fails the comparison. ``other_sum``: the sum of the
    optimizer's state and of any other value whose non-finiteness stops the run; added to the loss and
    the squared gradient norm, a non-finite term makes the total non-finite (an overflow of finite
    terms also does: a false alarm). ``limit`` (``inf`` when off), ``tol_squared`` (0 when off) and
    ``target`` (``-inf`` when off) are compared exactly as :func:`conditions` compares them.
    """
    total = other_sum + (squared_grad_norm + loss)
    outside_or_bad = select(squared_norm < bound_squared, False, True)
    return (((total - total) != 0) | outside_or_bad | (loss > limit) | (squared_grad_norm < tol_squared)
            | (loss < target))


@helper
def stops(refused, state_bad, loss_bad, grad_bad, outside, blown, small, low):
    """Whether any condition holds: the run ends at this point."""
    return refused | state_bad | loss_bad | grad_bad | outside | blown | small | low


@helper
def outcome(refused, state_bad, loss_bad, grad_bad, outside, blown, small, low, kept_loss, loss, grad_norm, absmax):
    """``(reason code, value)`` from the :func:`conditions` of a point: the first condition that holds
    decides (``GOING`` when none does). The value: the loss at the point kept for a refused update,
    the new loss for a non-finite state or loss and for the loss rules, the gradient norm for the
    gradient rules, ``max_i |x_i|`` for the box."""
    code = select(low, R_TARGET, GOING)
    value = loss
    code = select(small, R_GRAD_TOL, code)
    value = select(small, grad_norm, value)
    code = select(blown, R_BLOWUP, code)
    value = select(blown, loss, value)
    code = select(outside, R_BOUND, code)
    value = select(outside, absmax, value)
    code = select(grad_bad, R_NONFINITE_GRAD, code)
    value = select(grad_bad, grad_norm, value)
    code = select(loss_bad, R_NONFINITE_LOSS, code)
    value = select(loss_bad, loss, value)
    code = select(state_bad, R_NONFINITE_STATE, code)
    value = select(state_bad, loss, value)
    code = select(refused, R_NONFINITE_UPDATE, code)
    value = select(refused, kept_loss, value)
    return code, value


def start_outcome(loss, squared_grad_norm, grad_norm, absmax, outside, tol_squared, target, use_tol, use_target):
    """``(reason code, value)`` of a run at its start: ``GOING`` unless a rule fires already. A
    non-finite loss or gradient is ``BAD_START`` (value: the loss); the blow-up rule compares with the
    start itself, so it cannot fire there."""
    never = outside != outside  # False, shaped like the runs
    refused, state_bad, loss_bad, grad_bad, out, blown, small, low = conditions(
        never, never, loss, squared_grad_norm, outside, loss, tol_squared, target, False, use_tol, use_target)
    code, value = outcome(refused, state_bad, loss_bad, grad_bad, out, blown, small, low, loss, loss, grad_norm,
                          absmax)
    bad = loss_bad | grad_bad
    return select(bad, R_BAD_START, code), select(bad, loss, value)


def status_of(code):
    """The status of a run that stopped with ``code``: converged for ``GRAD_TOL`` and ``TARGET``."""
    return select((code == R_GRAD_TOL) | (code == R_TARGET), CONVERGED, DIVERGED)


def is_recorded(code):
    """Whether the point where a run stopped is recorded (not for a refused, untaken or non-finite step)."""
    return ((code != R_NONFINITE_UPDATE) & (code != R_NONFINITE_LOSS) & (code != R_NONFINITE_GRAD)
            & (code != R_NONFINITE_LR))


def reason_text(code: int, value: float, step: int, *, tol: float | None, target: float | None, blowup: float,
                steps: int, bound: Any) -> str:
    """The human-readable reason why a run stopped (``bound``: that run's box)."""
    if code == R_GRAD_TOL:
        return f"gradient norm {value:.3g} < tol {tol:g} at step {step}"
    if code == R_TARGET:
        return f"loss {value:.6g} < target {target:g} at step {step}"
    if code == R_NONFINITE_UPDATE:
        return f"non-finite gradient or update at step {step} (the optimizer refused the step)"
    if code == R_NONFINITE_LOSS:
        return f"the loss became non-finite at step {step}"
    if code == R_NONFINITE_GRAD:
        return f"the gradient became non-finite at step {step}"
    if code == R_NONFINITE_STATE:
        return f"the optimizer's state became non-finite (inf or NaN) at step {step}; the parameters would not move"
    if code == R_BOUND:
        return f"left the box |x_i| <= {float(bound):.3g} at step {step} (max |x_i| = {value:.3g})"
    if code == R_BLOWUP:
        return f"the loss blew up to {value:.3g} (> {blowup:g} x the start loss) at step {step}"
    if code == R_NONFINITE_LR:
        return f"the schedule's learning rate became {value:g} at step {step} (the step was not taken)"
    if code == R_BAD_START:
        return "the start has a non-finite loss or gradient"
    if tol is None and target is None:
        return f"ran all {steps} steps"
    return f"reached the step limit ({steps}) before the stopping rule"
