"""From an optimizer, its state and its arguments to one call of the fused kernel.

A *plan* gathers what one step needs: the optimizer kind, its scalar constants (computed here in
double precision exactly as the reference ``_update`` computes them, then rounded to the params'
dtype by the kernel call), its flags, which state buffers it reads and writes, and the scalar state
entries (``step``, NAdam's ``mu_product``) to set afterwards. :func:`plan_for` returns a reason
string instead when the kernel does not apply (batched hyperparameters, an unsupported dtype, a
subclass, mismatched buffers), and the caller then takes the reference path.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdlab.core.batching import batch_shape, check_like
from gdlab.core.optimizer import Optimizer, State, StepResult
from gdlab.core.optimizers.adadelta import Adadelta
from gdlab.core.optimizers.adagrad import Adagrad
from gdlab.core.optimizers.adam import Adam, AdamW
from gdlab.core.optimizers.adamax import Adamax
from gdlab.core.optimizers.nadam import NAdam
from gdlab.core.optimizers.radam import RHO_THRESHOLD, RAdam
from gdlab.core.optimizers.rmsprop import RMSprop
from gdlab.core.optimizers.sgd import SGD, Momentum, Nesterov
from gdlab.fast import config

# Kinds, as numbered in gdlab.fast.kernels (kept here so that planning needs no numba import).
SGD_K, MOMENTUM_K, ADAM_K, RMSPROP_K, ADAGRAD_K, ADADELTA_K, ADAMAX_K, NADAM_K, RADAM_K = range(9)
DTYPES = (np.dtype(np.float32), np.dtype(np.float64))


class NotFusableError(Exception):
    """Raised while planning when the kernel does not apply; the message says why."""


@dataclass
class Plan:
    kind: int
    consts: list[float]
    flags: list[int]
    #: State keys of the buffers in kernel slots b0, b1, b2 (None: slot unused).
    slots: tuple[str | None, str | None, str | None]
    #: Bit k set when slot k is written by the step.
    wmask: int
    #: Scalar state entries after the step (always ``step``; NAdam also ``mu_product``).
    scalars: dict[str, Any] = field(default_factory=dict)


def _scalar(opt: Optimizer, name: str, params: np.ndarray) -> float:
    value = opt._hp(name, params)
    if isinstance(value, np.ndarray):
        raise NotFusableError(f"{name} is batched (an array): the fused kernels take scalar hyperparameters")
    return float(value)


def _betas(opt: Optimizer) -> tuple[float, float]:
    b1, b2 = opt.betas  # type: ignore[attr-defined]
    for i, b in enumerate((b1, b2)):
        if isinstance(b, np.ndarray) and b.ndim > 0:
            raise NotFusableError(f"betas[{i}] is batched (an array): the fused kernels take scalar hyperparameters")
    return float(b1), float(b2)


def _sign_wd(opt: Optimizer, params: np.ndarray) -> tuple[float, float, int]:
    """Sign of the gradient (maximize), weight decay λ and whether it applies (λ ≠ 0).

    The kernels add ``wd·θ`` to the gradient unconditionally: the constant passed must be 0 when
    the decay is off or decoupled (then g + 0·θ = g, up to the sign of a zero).
    """
    wd = _scalar(opt, "weight_decay", params)
    return (-1.0 if opt.maximize else 1.0), wd, int(wd != 0.0)  # type: ignore[attr-defined]


def _lerp_consts(weight: float) -> tuple[float, float, int]:
    return weight, 1.0 - weight, int(weight < 0.5)


def _eps_pair(opt: Optimizer, p: np.ndarray) -> tuple[float, float]:
    """(e₁, e₂) of the denominator √(x + e₁) + e₂: ε inside the root or after it (exact either way)."""
    eps = _scalar(opt, "eps", p)
    return (eps, 0.0) if opt.eps_inside_sqrt else (0.0, eps)  # type: ignore[attr-defined]


def _plan_sgd(opt: SGD, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    mu = _scalar(opt, "momentum", p)
    momentum = mu != 0.0  # the reference skips the momentum buffer for the scalar 0
    damp = _scalar(opt, "dampening", p)
    flags = [has_wd, int(momentum), int(state["step"] == 0), int(opt.nesterov)]
    slots = ("momentum_buffer" if momentum else None, None, None)
    return Plan(SGD_K, [sgn, wd, lr, mu, 1.0 - damp], flags, slots, int(momentum))


def _plan_momentum(opt: Momentum, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    return Plan(MOMENTUM_K, [sgn, wd, lr, _scalar(opt, "momentum", p)], [has_wd], ("velocity", None, None), 1)


def _adamw_rate(opt: AdamW, p: np.ndarray, lr: float) -> float:
    wd = _scalar(opt, "weight_decay", p)
    if opt.weight_decay_form == "torch":
        return lr * wd
    base = _scalar(opt, "lr", p)
    return (lr / base if base != 0 else 1.0) * wd


def _plan_adam(opt: Adam, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    decoupled, factor = 0, 1.0
    if isinstance(opt, AdamW):
        has_wd = 0
        if wd != 0.0:
            decoupled, factor = 1, 1.0 - _adamw_rate(opt, p, lr)
    beta1, beta2 = _betas(opt)
    t = state["step"] + 1
    bias1 = 1.0 - beta1**t
    bias2 = 1.0 - beta2**t
    w, omw, low = _lerp_consts(1.0 - beta1)
    coupled = wd if has_wd else 0.0
    eps_ = _scalar(opt, "eps", p)
    # AMSGrad's loop takes both ε placements as √(v/d₁ + e₁)/d₂ + e₂ (exact: x/1 = x, x + 0 = x).
    d1, e1, d2, e2 = (bias2, eps_, 1.0, 0.0) if opt.eps_inside_sqrt else (1.0, 0.0, math.sqrt(bias2), eps_)
    consts = [
        sgn, coupled, factor, w, omw, beta2, 1.0 - beta2, lr / bias1, bias2, math.sqrt(bias2), eps_, d1, e1, d2, e2,
    ]
    flags = [has_wd, decoupled, low, int(opt.amsgrad), int(opt.eps_inside_sqrt)]
    slots = ("exp_avg", "exp_avg_sq", "max_exp_avg_sq" if opt.amsgrad else None)
    return Plan(ADAM_K, consts, flags, slots, 7 if opt.amsgrad else 3)


def _plan_rmsprop(opt: RMSprop, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    alpha = _scalar(opt, "alpha", p)
    momentum = _scalar(opt, "momentum", p) != 0.0
    w, omw, low = _lerp_consts(1.0 - alpha)
    e1, e2 = _eps_pair(opt, p)
    consts = [sgn, wd, alpha, 1.0 - alpha, w, omw, e1, e2, _scalar(opt, "momentum", p), lr]
    flags = [has_wd, int(opt.centered), low, int(momentum), int(opt.eps_inside_sqrt)]
    slots = ("square_avg", "grad_avg" if opt.centered else None, "momentum_buffer" if momentum else None)
    return Plan(RMSPROP_K, consts, flags, slots, 1 | (2 if opt.centered else 0) | (4 if momentum else 0))


def _plan_adagrad(opt: Adagrad, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    t = state["step"] + 1
    clr = lr / (1.0 + (t - 1) * _scalar(opt, "lr_decay", p))
    consts = [sgn, wd, clr, *_eps_pair(opt, p)]
    return Plan(ADAGRAD_K, consts, [has_wd, int(opt.eps_inside_sqrt)], ("sum", None, None), 1)


def _plan_adadelta(opt: Adadelta, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    rho = _scalar(opt, "rho", p)
    consts = [sgn, wd, rho, 1.0 - rho, _scalar(opt, "eps", p), lr]
    return Plan(ADADELTA_K, consts, [has_wd], ("square_avg", "acc_delta", None), 3)


def _plan_adamax(opt: Adamax, state: State, p: np.ndarray, lr: float) -> Plan:
    sgn, wd, has_wd = _sign_wd(opt, p)
    beta1, beta2 = _betas(opt)
    t = state["step"] + 1
    w, omw, low = _lerp_consts(1.0 - beta1)
    consts = [sgn, wd, w, omw, beta2, _scalar(opt, "eps", p), lr / (1.0 - beta1**t)]
    return Plan(ADAMAX_K, consts, [has_wd, low], ("exp_avg", "exp_inf", None), 3)


def _decay_consts(opt: NAdam | RAdam, p: np.ndarray, lr: float) -> tuple[float, float, int, int, float]:
    """(sign, coupled λ, coupled?, decoupled?, decay factor), as ``nadam.decay`` applies them."""
    sgn, wd, has_wd = _sign_wd(opt, p)
    if opt.decoupled_weight_decay:
        if wd == 0.0:
            return sgn, 0.0, 0, 0, 1.0
        return sgn, 0.0, 0, 1, 1.0 - lr * wd
    return sgn, wd, has_wd, 0, 1.0


def _plan_nadam(opt: NAdam, state: State, p: np.ndarray, lr: float) -> Plan:
    beta1, beta2 = _betas(opt)
    psi = _scalar(opt, "momentum_decay", p)
    product = state["mu_product"]
    if isinstance(product, np.ndarray):
        raise NotFusableError("mu_product is batched (an array): the fused kernels take scalar hyperparameters")
    t = state["step"] + 1
    bias2 = 1.0 - beta2**t
    sgn, wd, has_wd, decoupled, factor = _decay_consts(opt, p, lr)
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * psi))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * psi))
    mu_product = product * mu
    mu_product_next = mu_product * mu_next
    c1 = lr * (1.0 - mu) / (1.0 - mu_product)
    c2 = lr * mu_next / (1.0 - mu_product_next)
    w, omw, low = _lerp_consts(1.0 - beta1)
    consts = [sgn, wd, factor, w, omw, beta2, 1.0 - beta2, bias2, *_eps_pair(opt, p), c1, c2]
    flags = [has_wd, decoupled, low, int(opt.eps_inside_sqrt)]
    return Plan(NADAM_K, consts, flags, ("exp_avg", "exp_avg_sq", None), 3, {"mu_product": mu_product})


def _plan_radam(opt: RAdam, state: State, p: np.ndarray, lr: float) -> Plan:
    beta1, beta2 = _betas(opt)
    t = state["step"] + 1
    sgn, wd, has_wd, decoupled, factor = _decay_consts(opt, p, lr)
    bias1 = 1.0 - beta1**t
    bias2 = 1.0 - beta2**t
    rho_inf = 2.0 / (1.0 - beta2) - 1.0
    rho_t = rho_inf - 2 * t * beta2**t / bias2
    rectify = rho_t > RHO_THRESHOLD
    rect = 1.0
    if rectify:
        rect = math.sqrt((rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t))
    w, omw, low = _lerp_consts(1.0 - beta1)
    consts = [
        sgn, wd, factor, w, omw, beta2, 1.0 - beta2, bias1, lr, bias2, math.sqrt(bias2),
        _scalar(opt, "eps", p), rect,
    ]
    flags = [has_wd, decoupled, low, int(rectify), int(opt.eps_inside_sqrt)]
    return Plan(RADAM_K, consts, flags, ("exp_avg", "exp_avg_sq", None), 3)


#: Exact optimizer classes with a fused kernel (subclasses may change the math: reference path).
PLANNERS: dict[type[Optimizer], Callable[..., Plan]] = {
    SGD: _plan_sgd,
    Momentum: _plan_momentum,
    Nesterov: _plan_momentum,
    Adam: _plan_adam,
    AdamW: _plan_adam,
    RMSprop: _plan_rmsprop,
    Adagrad: _plan_adagrad,
    Adadelta: _plan_adadelta,
    Adamax: _plan_adamax,
    NAdam: _plan_nadam,
    RAdam: _plan_radam,
}


def has_kernel(opt: Optimizer) -> bool:
    """Whether a fused kernel exists for this optimizer's class (options may still rule it out)."""
    return type(opt) in PLANNERS


def plan_for(opt: Optimizer, state: State, params: np.ndarray, lr: Any = None) -> Plan | str:
    """The plan of one fused step, or a string saying why the kernel does not apply."""
    planner = PLANNERS.get(type(opt))
    if planner is None:
        return f"no fused kernel for {type(opt).__name__}"
    if not isinstance(params, np.ndarray) or params.dtype not in DTYPES:
        return f"params dtype {getattr(params, 'dtype', type(params))} (kernels: float32, float64)"
    if params.ndim == 0 or params.shape[-1] == 0:
        return "params need a non-empty parameter axis"
    if not params.flags.c_contiguous:
        return "params are not C-contiguous"
    try:
        lr_now = opt._current_lr(lr, params)
        if isinstance(lr_now, np.ndarray):
            raise NotFusableError("lr is batched (an array): the fused kernels take scalar hyperparameters")
        plan = planner(opt, state, params, float(lr_now))
    except NotFusableError as exc:
        return str(exc)
    for key in plan.slots:
        if key is None:
            continue
        buf = state.get(key)
        if not isinstance(buf, np.ndarray) or buf.shape != params.shape or buf.dtype != params.dtype:
            return f"state buffer {key!r} does not match params (shape {params.shape}, dtype {params.dtype})"
        if not buf.flags.c_contiguous:
            return f"state buffer {key!r} is not C-contiguous"
    plan.scalars["step"] = state["step"] + 1
    return plan


_kernels_module: Any = None


def _kernels() -> Any:
    """gdlab.fast.kernels, imported on first use (it imports numba)."""
    global _kernels_module
    if _kernels_module is None:
        from gdlab.fast import kernels

        _kernels_module = kernels
    return _kernels_module


#: For each launch shape (kernel, dtype, layout, threads, atomic): the ``meta`` array of
#: :func:`gdlab.fast.kernels.drive`, whether runs are long (several units) and the unit count, so
#: that a step does not rebuild them.
_launches: dict[tuple[Any, ...], tuple[np.ndarray, bool, int]] = {}


def _launch(kind: int, dtype: np.dtype, wmask: int, size: int, d: int, nthreads: int,
            atomic: bool) -> tuple[np.ndarray, bool, int]:
    """(a fresh copy of the ``meta`` array, phase field 0; whether runs are long; the unit count).
    Long runs take the kernel in select mode, and with ``atomic`` the gradient scan first."""
    key = (kind, dtype, wmask, size, d, nthreads, atomic, config.SEGMENT, config.ROW_MAX)
    entry = _launches.get(key)
    if entry is None:
        kernels = _kernels()
        long_rows, per_row, rows_per_unit, width, units = kernels.layout(size, d, config.SEGMENT, config.ROW_MAX)
        scan = long_rows and atomic
        meta = np.array(
            [
                0, kernels.kernel_address(kind, dtype, select=long_rows),
                kernels.kernel_address(kernels.SCAN, dtype) if scan else 0,
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
    written = [params, *(state[key] for key in plan.slots if key is not None)]
    if any(np.may_share_memory(grad, array) for array in written):
        grad = grad.copy()  # the kernels write in place: a gradient that overlaps them must not change under them
    g = grad.reshape(-1).view(np.uint8)
    empty = np.empty(0, np.uint8)
    bufs = [empty if key is None else state[key].reshape(-1).view(np.uint8) for key in plan.slots]
    d = params.shape[-1]
    rowbad = np.zeros(params.size // d, dtype=np.uint8)
    nthreads = max(1, min(kernels.num_threads(), params.size // config.MIN_PER_THREAD))
    consts = np.array([*plan.consts, *[0.0] * (kernels.N_CONSTS - 1 - len(plan.consts)), 1.0], dtype=dtype)
    flags = np.array([*plan.flags, *[0] * (kernels.N_FLAGS - len(plan.flags))], dtype=np.int64)
    atomic = config.get_settings().atomic
    meta, long_rows, units = _launch(plan.kind, dtype, plan.wmask, params.size, d, nthreads, atomic)
    scan = long_rows and atomic
    unitbad = np.zeros(units if long_rows else 1, dtype=np.uint8)
    for phase in (0, 1) if scan else (1,):
        meta[0] = phase
        kernels.run_drive(
            nthreads, meta, flat, g, bufs[0], bufs[1], bufs[2], consts.view(np.uint8), flags, unitbad, rowbad
        )
    state.update(plan.scalars)
    config.stats["fused"] += 1
    config.stats["threads"] = nthreads
    return rowbad.view(np.bool_).reshape(batch_shape(params))


def fused_update_(opt: Optimizer, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> np.ndarray | None:
    """In-place fused step; ``None`` when the kernel does not apply (nothing was touched)."""
    plan = plan_for(opt, state, params, lr)
    if isinstance(plan, str):
        return None
    if not params.flags.writeable:
        return None
    for key in plan.slots:
        if key is not None and not state[key].flags.writeable:
            return None
    return run_plan(plan, check_like(grad, params), state, params)


def fused_update(opt: Optimizer, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult | None:
    """Pure fused step: the kernel runs on fresh copies; ``None`` when it does not apply."""
    plan = plan_for(opt, state, params, lr)
    if isinstance(plan, str):
        return None
    g = check_like(grad, params)
    new_params = params.copy()
    new_state: State = {key: state[key].copy() for key in plan.slots if key is not None}
    bad = run_plan(plan, g, new_state, new_params)
    return StepResult(new_params, new_state, bad)
