"""Newton's method with damping (Levenberg–Marquardt) and an optional Armijo backtracking search."""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np

from gdlab.core.batching import as_params, batch_shape, check_like, expand, per_run, run_all_finite, run_dot
from gdlab.core.hyper import Hyper
from gdlab.core.objective import Objective
from gdlab.core.optimizer import LR_OVERRIDE, Optimizer, State, StepResult, guard_nonfinite
from gdlab.core.rules.common import lr
from gdlab.core.statespec import RUNS, Array, Count, StateSpec

#: Adaptive damping never grows λ beyond this: there (H + λI)⁻¹g ≈ g/λ is already negligible.
MAX_DAMPING = 1e16


class Newton(Optimizer):
    r"""Damped Newton's method with the exact Hessian: θ ← θ − α (H + λI)⁻¹ ∇L.

    With gradient :math:`g = \nabla L(\theta)` and Hessian :math:`H = \nabla^2 L(\theta)` (from
    ``objective.hessian``), each step solves for the Newton direction and moves against it:

    .. math::
        p &= (H + \lambda I)^{-1} g\\
        \theta &\leftarrow \theta - \alpha\, p

    - ``lr`` is the step scale α (1 = the full Newton step). ``damping`` is λ ≥ 0.
    - **Fallback.** When :math:`H + \lambda I` is singular (the solve fails or gives a non-finite
      result) or :math:`p` is not a descent direction (:math:`g^\top p \le 0`, e.g. at a saddle
      or where H is indefinite), the step uses :math:`p = g`, i.e. θ ← θ − α g (gradient descent
      with step α). A zero gradient gives a zero step.
    - ``adaptive_damping`` (Levenberg–Marquardt): λ lives in the state (starting at ``damping``).
      A step is *accepted* when :math:`L(\theta - \alpha p) < L(\theta)`; then
      λ ← λ·``damping_decrease``. Otherwise the step is *rejected* (θ unchanged) and
      λ ← min(max(λ·``damping_increase``, ``min_damping``), 10¹⁶). A zero gradient (p = 0) leaves λ
      as it is.
    - ``line_search="backtracking"`` (Armijo): starting at α = ``lr``, α ← ``shrink``·α until
      :math:`L(\theta - \alpha p) \le L(\theta) - c_1 \alpha\, g^\top p`, at most
      ``max_backtracks`` times; if no trial satisfies the condition, the run does not move.

    Batched: params ``(..., d)`` with Hessians ``(..., d, d)`` are solved run by run in one
    ``np.linalg.solve`` call; every run has its own λ, step length and fallback.
    Newton needs the objective (the Hessian, and the loss for line search or adaptive damping):
    it is an :class:`~gdlab.core.optimizer.Optimizer`, with :meth:`step` and no ``update``.
    """

    name = "newton"
    family = "second-order"
    needs = "hessian"
    hyperparams = (
        lr(1.0),
        Hyper("damping", 0.0, low=0.0, doc="damping λ ≥ 0 added to the Hessian's diagonal: (H + λI)⁻¹g"),
        Hyper("adaptive_damping", False, kind="bool",
              doc="Levenberg–Marquardt: reject steps that do not lower the loss and raise λ; lower λ on success"),
        Hyper("damping_increase", 10.0, low=1.0, low_open=True, doc="factor raising λ after a rejected step"),
        Hyper("damping_decrease", 0.1, low=0.0, high=1.0, low_open=True,
              doc="factor lowering λ after an accepted step"),
        Hyper("min_damping", 1e-6, low=0.0, low_open=True,
              doc="smallest λ set after a rejected step (so that λ = 0 can grow)"),
        Hyper("line_search", "none", kind="choice", choices=("none", "backtracking"),
              doc="'backtracking': shrink α until the Armijo condition holds"),
        Hyper("c1", 1e-4, low=0.0, high=1.0, low_open=True, high_open=True,
              doc="Armijo constant c₁: require L(θ − αp) ≤ L(θ) − c₁ α gᵀp"),
        Hyper("shrink", 0.5, low=0.0, high=1.0, low_open=True, high_open=True,
              doc="backtracking factor: α ← shrink·α"),
        Hyper("max_backtracks", 30, kind="int", low=0, doc="most backtracking reductions per step"),
    )

    # -- the public API ----------------------------------------------------------------------
    def _init_buffers(self, params: np.ndarray) -> State:
        if not self.adaptive_damping:
            return {}
        return {"damping": self._per_run("damping", params).copy()}

    def state_spec(self) -> StateSpec:
        """What the state holds: ``step``, and with ``adaptive_damping`` each run's λ."""
        return StateSpec({"step": Count(), **({"damping": Array(RUNS)} if self.adaptive_damping else {})})

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """One damped Newton step on ``objective`` (see the class docstring for the math)."""
        p = as_params(params)
        self._check_objective(objective)
        g = objective.grad(p) if grad is None else grad
        g = check_like(g, p)
        H = self._hessian(objective, p)
        batch = batch_shape(p)
        rate = self.lr if lr is None else LR_OVERRIDE.validate(lr, self.name)
        alpha = self._per_run_value(expand(rate, p, "lr"), p)
        lam = np.asarray(state["damping"]) if self.adaptive_damping else self._per_run("damping", p)

        direction = newton_direction(H, g, lam)
        need_value = self.adaptive_damping or self.line_search == "backtracking"
        f0 = np.broadcast_to(objective.value(p), batch) if need_value else None

        if self.line_search == "backtracking":
            alpha, f_new = self._backtrack(objective, p, g, direction, alpha, f0)
        else:
            f_new = None
        new_params = p - per_run(alpha) * direction

        new_state: State = {"step": state["step"] + 1}
        if self.adaptive_damping:
            if f_new is None:
                f_new = np.broadcast_to(objective.value(new_params), batch)
            trivial = ~np.any(direction != 0, axis=-1)
            accepted = (f_new < f0) & np.isfinite(f_new)
            new_params = np.where(per_run(accepted | trivial), new_params, p)
            raised = np.minimum(np.maximum(lam * self._per_run("damping_increase", p),
                                           self._per_run("min_damping", p)), MAX_DAMPING)
            lowered = lam * self._per_run("damping_decrease", p)
            new_state["damping"] = np.where(trivial, lam, np.where(accepted, lowered, raised))
        return guard_nonfinite(p, state, new_params, new_state, g)

    # -- pieces -------------------------------------------------------------------------------
    def _check_objective(self, objective: Objective) -> None:
        if not getattr(objective, "has_hessian", False):
            raise TypeError(
                f"newton needs the Hessian, but the objective {type(objective).__name__} provides none "
                "(has_hessian is False); use a first-order optimizer or an objective with a Hessian"
            )
        if (self.adaptive_damping or self.line_search != "none") and not getattr(objective, "has_value", True):
            raise TypeError(
                f"newton with adaptive_damping or line search needs the loss value, but the objective "
                f"{type(objective).__name__} provides none (has_value is False)"
            )

    @staticmethod
    def _hessian(objective: Objective, p: np.ndarray) -> np.ndarray:
        H = np.asarray(objective.hessian(p), dtype=p.dtype)
        d = p.shape[-1]
        try:
            return np.broadcast_to(H, p.shape[:-1] + (d, d))
        except ValueError:
            raise ValueError(
                f"newton: the objective's Hessian has shape {H.shape}, expected {p.shape[:-1] + (d, d)} "
                f"for params of shape {p.shape}"
            ) from None

    def _per_run(self, name: str, params: np.ndarray) -> np.ndarray:
        """Hyperparameter ``name`` as an array of shape ``batch_shape(params)``."""
        return self._per_run_value(expand(getattr(self, name), params, name), params)

    @staticmethod
    def _per_run_value(value: Any, params: np.ndarray) -> np.ndarray:
        """A scalar or ``S + (1,)`` expanded value as an array of shape ``batch_shape(params)``."""
        arr = np.asarray(value, dtype=np.float64)
        if arr.ndim > 0:
            arr = arr[..., 0]
        return np.broadcast_to(arr, batch_shape(params))

    def _backtrack(
        self,
        objective: Objective,
        p: np.ndarray,
        g: np.ndarray,
        direction: np.ndarray,
        alpha: np.ndarray,
        f0: np.ndarray,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Armijo backtracking per run; returns (step length, loss there). Failed runs get α = 0."""
        batch = batch_shape(p)
        slope = run_dot(g, direction)
        c1 = self._per_run("c1", p)
        shrink = self._per_run("shrink", p)
        alpha = np.array(alpha, dtype=np.float64)
        done = np.zeros(batch, dtype=bool)
        f_at = np.array(f0, dtype=np.float64)
        for k in range(self.max_backtracks + 1):
            f = np.broadcast_to(objective.value(p - per_run(alpha) * direction), batch)
            ok = ~done & np.isfinite(f) & (f <= f0 - c1 * alpha * slope)
            f_at = np.where(ok, f, f_at)
            done = done | ok
            if done.all() or k == self.max_backtracks:
                break
            alpha = np.where(done, alpha, alpha * shrink)
        return np.where(done, alpha, 0.0), f_at


def newton_direction(H: np.ndarray, g: np.ndarray, damping: Any = 0.0) -> np.ndarray:
    """The direction p = (H + λI)⁻¹g per run, falling back to p = g where that fails.

    The fallback applies where H + λI is singular or gives a non-finite p, and where p is not a
    descent direction (gᵀp ≤ 0). Shapes: ``H`` is ``batch + (d, d)``, ``g`` is ``batch + (d,)``,
    ``damping`` broadcasts against ``batch``.
    """
    d = g.shape[-1]
    lam = np.asarray(damping, dtype=np.float64)
    A = H + lam[..., np.newaxis, np.newaxis] * np.eye(d) if np.any(lam != 0) else H
    A = np.broadcast_to(A, g.shape + (d,))
    with np.errstate(all="ignore"):
        try:
            p = np.linalg.solve(A, g[..., np.newaxis])[..., 0]
        except np.linalg.LinAlgError:
            p = _solve_each(A, g)
        ok = run_all_finite(p) & (run_dot(g, p) > 0)
    return np.where(per_run(ok), p, g)


def _solve_each(A: np.ndarray, g: np.ndarray) -> np.ndarray:
    """Run-by-run solve, NaN for the runs whose matrix is singular."""
    out = np.full(g.shape, np.nan)
    for index in np.ndindex(g.shape[:-1]):
        with contextlib.suppress(np.linalg.LinAlgError):
            out[index] = np.linalg.solve(A[index], g[index])
    return out
