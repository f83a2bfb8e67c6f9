"""From a rule, its state and its arguments to one call of the fused step kernel.

A *plan* gathers what one step needs: the rule's kernel (generated for its class and options), the
values of its constants and per-step scalars for this step, computed by the rule's own functions
(:meth:`~gdlab.core.rule.Rule.step_values`, exactly what the reference computes) and handed over in
the params' dtype, which state buffers sit in the kernel's slots, and the scalar state entries
(``step``, the carries) to set afterwards. :func:`plan_for` returns a reason string instead when the
kernel does not apply (batched hyperparameters, an unsupported dtype, mismatched buffers), and the
caller then takes the reference path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdlab.core.batching import batch_shape, check_like
from gdlab.core.optimizer import State, StepResult
from gdlab.core.rule import Rule
from gdlab.fast import config

DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


@dataclass
class Plan:
    rule: Rule
    #: The body's constants and scalars in kernel order, then 1 (float64; rounded to the dtype at launch).
    values: list[float]
    #: State keys of the buffers in kernel slots b0, b1, b2.
    slots: list[str]
    #: Scalar state entries after the step (``step`` and the carries).
    scalars: dict[str, Any] = field(default_factory=dict)


_kernels_module: Any = None


def _kernels() -> Any:
    """gdlab.fast.kernels (imports numba), imported on first use."""
    global _kernels_module
    if _kernels_module is None:
        from gdlab.fast import kernels

        _kernels_module = kernels
    return _kernels_module


#: (value order, buffer slots) by rule class and options: what a step asks for every time.
_layouts: dict[Any, tuple[list[str], list[str]]] = {}


def _layout(opt: Rule) -> tuple[list[str], list[str]]:
    kernels = _kernels()
    key = kernels.rule_key(opt)
    found = _layouts.get(key)
    if found is None:
        found = _layouts[key] = (kernels.value_order(opt), kernels.active_slots(opt))
    return found


def plan_for(opt: Any, state: State, params: np.ndarray, lr: Any = None) -> Plan | str:
    """The plan of one fused step, or a string saying why the kernel does not apply."""
    if not isinstance(opt, Rule):
        return f"no fused kernel for {type(opt).__name__} (only elementwise rules have one)"
    if not isinstance(params, np.ndarray) or params.dtype not in DTYPES:
        return f"params dtype {getattr(params, 'dtype', type(params))} (kernels: float32, float64)"
    if params.ndim == 0 or params.shape[-1] == 0:
        return "params need a non-empty parameter axis"
    if not params.flags.c_contiguous:
        return "params are not C-contiguous"
    for key, value in opt.get_params().items():
        for part in value if isinstance(value, tuple) else (value,):
            if isinstance(part, np.ndarray):
                return f"{key} is batched (an array): the fused kernels take scalar hyperparameters"
    lr_now = opt.learning_rate(lr)
    if np.ndim(lr_now) != 0:
        return "lr is batched (an array): the fused kernels take scalar hyperparameters"
    t = state["step"] + 1
    values, carries = opt.step_values(t, lr_now, opt.hypers(), state)
    order, slots = _layout(opt)
    for key in slots:
        buf = state.get(key)
        if not isinstance(buf, np.ndarray) or buf.shape != params.shape or buf.dtype != params.dtype:
            return f"state buffer {key!r} does not match params (shape {params.shape}, dtype {params.dtype})"
        if not buf.flags.c_contiguous:
            return f"state buffer {key!r} is not C-contiguous"
    return Plan(opt, [float(values[name]) for name in order] + [1.0], slots, {"step": t, **carries})


#: For each launch shape (rule, dtype, layout, threads, atomic): the ``meta`` array of
#: :func:`gdlab.fast.kernels.drive`, whether runs are long (several units) and the unit count, so
#: that a step does not rebuild them.
_launches: dict[tuple[Any, ...], tuple[np.ndarray, bool, int]] = {}


def _launch(rule: Rule, dtype: np.dtype, wmask: int, size: int, d: int, nthreads: int,
            atomic: bool) -> tuple[np.ndarray, bool, int]:
    """(a fresh copy of the ``meta`` array, phase field 0; whether runs are long; the unit count).
    Long runs take the kernel in select mode, and with ``atomic`` the gradient scan first."""
    kernels = _kernels()
    key = (kernels.rule_key(rule), dtype, wmask, size, d, nthreads, atomic, config.SEGMENT, config.ROW_MAX)
    entry = _launches.get(key)
    if entry is None:
        long_rows, per_row, rows_per_unit, width, units = kernels.layout(size, d, config.SEGMENT, config.ROW_MAX)
        scan = long_rows and atomic
        meta = np.array(
            [
                0, kernels.kernel_address(rule, dtype, select=long_rows),
                kernels.scan_address(dtype) if scan else 0,
                dtype.itemsize, wmask, d, config.SEGMENT, long_rows, per_row, rows_per_unit, width, units, nthreads,
            ],
            dtype=np.int64,
        )
        if len(_launches) > 256:
            _launches.clear()
        entry = _launches[key] = (meta, long_rows, units)
    meta, long_rows, units = entry
    return meta.copy(), long_rows, units


def run_plan(plan: Plan, grad: np.ndarray, state: State, params: np.ndarray) -> np.ndarray:
    """Run the kernel in place on ``params`` and the plan's buffers in ``state``; per-run flags."""
    kernels = _kernels()
    dtype = params.dtype
    flat = params.reshape(-1).view(np.uint8)
    grad = np.ascontiguousarray(grad)
    written = [params, *(state[key] for key in plan.slots)]
    if any(np.may_share_memory(grad, array) for array in written):
        grad = grad.copy()  # the kernels write in place: a gradient that overlaps them must not change under them
    g = grad.reshape(-1).view(np.uint8)
    empty = np.empty(0, np.uint8)
    bufs = [state[key].reshape(-1).view(np.uint8) for key in plan.slots]
    bufs += [empty] * (3 - len(bufs))
    d = params.shape[-1]
    rowbad = np.zeros(params.size // d, dtype=np.uint8)
    nthreads = max(1, min(kernels.num_threads(), params.size // config.MIN_PER_THREAD))
    values = np.array(plan.values, dtype=dtype)
    atomic = config.get_settings().atomic
    wmask = (1 << len(plan.slots)) - 1
    meta, long_rows, units = _launch(plan.rule, dtype, wmask, params.size, d, nthreads, atomic)
    scan = long_rows and atomic
    unitbad = np.zeros(units if long_rows else 1, dtype=np.uint8)
    for phase in (0, 1) if scan else (1,):
        meta[0] = phase
        kernels.run_drive(nthreads, meta, flat, g, bufs[0], bufs[1], bufs[2], values.view(np.uint8), unitbad, rowbad)
    state.update(plan.scalars)
    config.stats["fused"] += 1
    config.stats["threads"] = nthreads
    return rowbad.view(np.bool_).reshape(batch_shape(params))


def fused_update_(opt: Any, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> np.ndarray | None:
    """In-place fused step; ``None`` when the kernel does not apply (nothing was touched)."""
    plan = plan_for(opt, state, params, lr)
    if isinstance(plan, str) or not params.flags.writeable:
        return None
    if any(not state[key].flags.writeable for key in plan.slots):
        return None
    return run_plan(plan, check_like(grad, params), state, params)


def fused_update(opt: Any, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult | None:
    """Pure fused step: the kernel runs on fresh copies; ``None`` when it does not apply."""
    plan = plan_for(opt, state, params, lr)
    if isinstance(plan, str):
        return None
    g = check_like(grad, params)
    new_params = params.copy()
    new_state: State = {**state, **{key: state[key].copy() for key in plan.slots}}
    bad = run_plan(plan, g, new_state, new_params)
    return StepResult(new_params, new_state, bad)


def accelerate(opt: Any, grad: Any, state: State, params: np.ndarray, lr: Any, backend: str | None,
               in_place: bool) -> Any:
    """The accelerator registered with :mod:`gdlab.core.optimizer`: a fused step when the backend
    asks for one at this size and the kernel applies, else ``None`` (the reference runs; counted in
    ``stats["reference"]``)."""
    result = None
    if isinstance(opt, Rule) and config.wants_fused(params.size, backend):
        result = fused_update_(opt, grad, state, params, lr) if in_place else fused_update(opt, grad, state, params, lr)
    if result is None:
        config.stats["reference"] += 1
    return result
