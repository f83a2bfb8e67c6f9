"""The reference trajectory executor: a Python loop over the steps, whole-batch NumPy in each.

Every step is a handful of whole-batch array operations, so the cost per step hardly depends on
how many runs there are. It runs any :class:`~gdlab.core.optimizer.Optimizer` on any objective
through the common ``step`` interface (with the gradient the loop already has), any schedule
(including the loss-driven ``plateau``), and decides every run's end with the stopping rules of
:mod:`gdlab.core.stopping`, the functions the fused trajectories compile.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from gdlab.core.batching import run_absmax, run_squared_norm
from gdlab.core.cycling import momentum_field, with_momentum
from gdlab.core.noise import Noise, NoisyGradient
from gdlab.core.objective import Objective
from gdlab.core.optimizer import Optimizer, state_is_finite
from gdlab.core.stopping import (
    GOING,
    R_NONFINITE_LR,
    StoppingRules,
    conditions,
    is_recorded,
    outcome,
    start_outcome,
    status_of,
    stops,
)
from gdlab.core.trajectories import Records, Trajectories, initial_outcomes


class Cancelled(Exception):  # noqa: N818 (what happened, not an error of the caller's)
    """A run stopped before its end because its ``cancel`` callback asked for it."""


def run_reference(objective: Objective, optimizer: Optimizer, x0: np.ndarray, *, steps: int, schedule: Any,
                  base_lr: Any, rules: StoppingRules, record: bool,
                  cancel: Callable[[], bool] | None = None, noise: Noise | None = None) -> Trajectories:
    """Run every start of ``x0`` (shape ``batch + (d,)``) for at most ``steps`` steps.

    ``schedule`` (an object with ``init``, ``lr(step, base_lr, state)``, ``observe(state, loss)``
    and ``needs_loss``) sets the learning rate of update ``k + 1`` to ``schedule.lr(k, base_lr,
    state)``; without one the optimizer's own rate ``base_lr`` applies (and is recorded).
    ``cancel``, when given, is asked before every step; when it answers True the run raises
    :class:`Cancelled`.

    ``noise`` (:class:`~gdlab.core.noise.Noise`, σ > 0): at step ``t`` the optimizer sees every gradient
    plus the step's draw ``(σ/√B)·ξ_t`` (zero for finished runs); the recorded gradient norms and the
    stopping rules keep the true gradient.
    """
    batch = x0.shape[:-1]
    params = x0.copy()
    state = optimizer.init(params)
    f, g = objective.value_and_grad(params)
    f = np.array(np.broadcast_to(f, batch), dtype=np.float64)
    g = np.asarray(g, dtype=np.float64)
    gq = run_squared_norm(g)
    gn = np.sqrt(gq)

    sched_state = schedule.init() if schedule is not None else None
    # a schedule that cycles the momentum (OneCycleLR's, CyclicLR's cycle_momentum) sets it each step
    momenta = getattr(schedule, "cycled_momentum", None) if schedule is not None else None
    if momenta is not None and momenta(0) is None:
        momenta = None
    if momenta is not None:
        momentum_field(optimizer)  # refuses an optimizer without momentum or betas before any step
    needs_loss = bool(getattr(schedule, "needs_loss", False)) if schedule is not None else False

    use_bound, use_limit = rules.uses_bound, rules.blowup is not None
    use_tol, use_target = rules.tol is not None, rules.target is not None
    tol2 = rules.tol_squared
    target = rules.target if use_target else 0.0
    bound = rules.bound
    limit = rules.limit(f)

    status, reason, reason_value, stopped_at, n_points = initial_outcomes(batch, steps)

    absmax = run_absmax(params)
    code, value = start_outcome(f, gq, gn, absmax, use_bound & (absmax > bound), tol2, target, use_tol, use_target)
    finished = code != GOING
    active = ~finished
    if finished.any():
        status[finished] = status_of(code)[finished]
        reason[finished] = code[finished]
        reason_value[finished] = value[finished]
        stopped_at[finished] = 0
        n_points[finished] = 1
        g = np.where(active[..., None], g, 0.0)

    if record:
        positions = np.empty((steps + 1,) + params.shape)
        loss_rec = np.empty((steps + 1,) + batch)
        gn_rec = np.empty((steps + 1,) + batch)
        lr_rec = np.empty((steps,) + batch)
        positions[0], loss_rec[0], gn_rec[0] = params, f, gn
        if schedule is None:
            lr_rec[:] = np.broadcast_to(np.asarray(base_lr, dtype=np.float64), batch)

    stream = None if noise is None or noise.is_off else noise.stream(params.shape)
    last = 0
    all_active = bool(active.all())
    for t in range(steps):
        if not all_active and not active.any():
            break
        if cancel is not None and cancel():
            raise Cancelled(f"cancelled at step {t}")
        lr_t = None if schedule is None else schedule.lr(t, base_lr, sched_state)
        lr_bad, lr_step = None, lr_t
        if lr_t is not None and not np.isfinite(lr_t).all():  # the runs whose rate overflowed take no step
            lr_bad = np.broadcast_to(~np.isfinite(lr_t), batch)
            lr_step = np.where(np.isfinite(lr_t), lr_t, 0.0)  # the others' rates as they are
        stepper = optimizer if momenta is None else with_momentum(optimizer, momenta(t))
        if stream is None:
            new_params, state, refused = stepper.step(objective, params, state, lr=lr_step, grad=g)
        else:
            e = stream.next_step()
            if not all_active:
                e = np.where(active[..., None], e, 0.0)
            new_params, state, refused = stepper.step(NoisyGradient(objective, e), params, state, lr=lr_step,
                                                      grad=g + e)
        state_bad = ~state_is_finite(state, batch)
        f_new, g_new = objective.value_and_grad(new_params)
        f_new = np.broadcast_to(f_new, batch)
        gq_new = run_squared_norm(g_new)
        gn_new = np.sqrt(gq_new)
        xmax = run_absmax(new_params) if use_bound else gn_new  # only reported when the box rule fires
        k = t + 1

        found = conditions(refused, state_bad, f_new, gq_new, use_bound & (xmax > bound), limit, tol2, target,
                           use_limit, use_tol, use_target)
        stop = stops(*found)
        if lr_bad is not None:
            stop = stop | lr_bad
        if not all_active:
            stop &= active
        if stop.any():
            code, value = outcome(*found, f, f_new, gn_new, xmax)
            if lr_bad is not None:
                code = np.where(lr_bad, R_NONFINITE_LR, code)
                value = np.where(lr_bad, np.broadcast_to(lr_t, batch), value)
            kept = is_recorded(code)
            reason[stop] = code[stop]
            reason_value[stop] = value[stop]
            status[stop] = status_of(code)[stop]
            stopped_at[stop] = k
            n_points[stop] = np.where(kept, k + 1, k)[stop]
            moved = active & (kept | ~stop)  # the new point is kept unless it is not recordable
            active = active & ~stop
            all_active = False
        elif not all_active:
            moved = active
        if not all_active:
            # finished runs are frozen at their last recorded point and never see a gradient
            new_params = np.where(moved[..., None], new_params, params)
            f_new = np.where(moved, f_new, f)
            gn_new = np.where(moved, gn_new, gn)
            g_new = np.where(active[..., None], g_new, 0.0)
        params, f, gn, g = new_params, f_new, gn_new, g_new
        if needs_loss:
            sched_state = schedule.observe(sched_state, f, base_lr)
        if record:
            positions[k] = params
            loss_rec[k] = f
            gn_rec[k] = gn
            if schedule is not None:
                lr_rec[t] = lr_t
        last = k

    records = None
    if record:
        records = Records(positions[: last + 1], loss_rec[: last + 1], gn_rec[: last + 1], lr_rec[:last])
    return Trajectories(
        status_code=status, reason_code=reason, reason_value=reason_value, stopped_at=stopped_at, n_points=n_points,
        final_params=params, final_loss=np.asarray(f, dtype=np.float64), final_grad_norm=gn, records=records,
    )
