"""Fused batched trajectories: landscape gradient and any rule's update in one compiled loop.

The reference trajectory loop (:mod:`gdlab.engine.reference`) advances a batch of runs with a
Python loop over the steps and a handful of NumPy calls per step (~70 µs a step whatever the batch
size). For a landscape with a compiled form (:mod:`gdlab.fast.landscape_codegen`: every built-in
landscape of up to :data:`~gdlab.fast.landscape_codegen.MAX_DIM` dimensions and every typed
expression) and an elementwise rule (:class:`~gdlab.core.rule.Rule`), this module runs the whole
trajectory in compiled code instead:

- the runs are cut into blocks of :data:`BLOCK` runs held as structure of arrays (one row of
  ``BLOCK`` values per coordinate, per buffer, per value); threads take blocks in turn (the
  compiled loop releases the GIL, so a small pool of Python threads runs it in parallel);
- for each block, the step loop is outside and the loops over the block's runs inside, so that
  they vectorise: per step, one call of the landscape's block function (value and gradient), one
  call of the rule's block update (generated from its element body, :func:`update_source`), and the
  stopping rules (:func:`gdlab.core.stopping.step_outcome`, compiled) for every run;
- the rule's constants and per-step scalars come from tables computed before the loop by the rule's
  own functions (:meth:`gdlab.core.rule.Rule.tables`, the very functions the reference calls step by
  step, so every number is the reference's); every numeric hyperparameter may differ from run to
  run;
- positions, losses and gradient norms are written to the time-major record arrays when recording,
  otherwise only the final values are kept.

**Same results.** The block driver is generic: it names no optimizer, and the update it calls runs
the rule's element body. With the same landscape evaluation, a fused run is the reference run to
the last bit: same updates, same stopping step, status, reason and final point. Landscapes whose
formula uses only + − × ÷ √ are evaluated to the same bits by both paths; those with exp, cos, ...
differ by a few ulp per evaluation between NumPy and the C library (see
:mod:`gdlab.fast.landscape_codegen`), and so may their trajectories.

**Choosing.** ``run_batch(..., backend="auto")`` (the default) uses this path when :func:`plan`
accepts the call and the reference otherwise; ``backend="fused"`` raises ``ValueError`` with the
reason instead; :func:`explain` tells which. Not fused: optimizers that are not rules (Newton,
L-BFGS, SAM, transform chains), the loss-driven ``plateau`` schedule (and schedule objects that are
not gdlab's closed forms), objectives without a compiled form.

**Compilation** never lands on a request when avoidable: the code is cached on disk by numba;
:func:`warmup` compiles (or loads) the driver, every built-in rule and the built-in landscapes, and
servers call it at start. In ``"auto"`` mode code that would have to be compiled first is compiled
synchronously only when the reference would take longer than that (big sweeps and basin maps);
otherwise the call takes the reference path and the compilation happens in a background thread.
"""

from __future__ import annotations

import contextlib
import math
import sys
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import njit, types
from numba import typeof as numba_typeof

from gdlab.core import elementwise, stopping
from gdlab.core.rule import Hypers, Rule, value_names
from gdlab.core.schedules import Schedule
from gdlab.core.stopping import GOING, StoppingRules
from gdlab.core.trajectories import Records, Trajectories, initial_outcomes
from gdlab.fast import generated, primitives
from gdlab.fast import landscape_codegen as lc
from gdlab.fast.calls import call_void

JIT: dict[str, Any] = {"cache": True, "error_model": "numpy", "fastmath": False}

#: Runs per block (the inner, vectorised dimension of the loops).
BLOCK = 256
#: Largest per-step tables (steps × distinct hyperparameter values × scalars), in float64 entries.
MAX_TABLE_ENTRIES = 2**25
#: In "auto" mode, compile synchronously when the reference is estimated to take longer than this.
SYNC_COMPILE_SECONDS = 1.0

_ptr = types.CPointer(types.float64)
#: ``update(x, g, xn, s, c, v, d, n, B, uniform)``: the rule's step for the n runs of a block: new
#: params into ``xn``, buffers ``s`` in place; ``c``/``v`` hold the constants/scalars of the runs
#: (row k at ``k·B``; with ``uniform`` only the first entry of each row is read).
UPDATE_SIGNATURE = types.void(_ptr, _ptr, _ptr, _ptr, _ptr, _ptr, types.int64, types.int64, types.int64, types.int64)
#: ``lookahead(x, s, c, xn, d, n, B, uniform)``: the points where the rule takes its gradient.
LOOKAHEAD_SIGNATURE = types.void(_ptr, _ptr, _ptr, _ptr, types.int64, types.int64, types.int64, types.int64)

# Fields of the int64 parameter array ``ip`` and the float64 array ``fp`` of the driver.
(I_D, I_R, I_STEPS, I_B, I_RECORD, I_BOUND, I_LIMIT, I_TOL, I_TARGET, I_FG, I_G, I_UPDATE, I_LOOK, I_NB, I_NC,
 I_NS, I_U) = range(17)
N_IP = 17
F_TOL, F_TARGET, F_BLOWUP, F_FLOOR = range(4)


# ================================================================================================
# the driver: generic, compiled once
# ================================================================================================
primitives.register_helpers()  # the stopping rules' helpers, imported above
_start_outcome = njit(inline="always", **JIT)(stopping.start_outcome)
_step_outcome = njit(inline="always", **JIT)(stopping.step_outcome)
_status_of = njit(inline="always", **JIT)(stopping.status_of)
_is_recorded = njit(inline="always", **JIT)(stopping.is_recorded)
_blowup_limit = njit(inline="always", **JIT)(stopping.blowup_limit)


@njit(inline="always", **JIT)
def _maximum(a, b):
    return elementwise.maximum(a, b)


@njit(nogil=True, **JIT)
def _record(k, r0, n, d, B, x, f, gn, pos, loss, gnr):
    for i in range(n):
        r = r0 + i
        for j in range(d):
            pos[k, r, j] = x[j * B + i]
        loss[k, r] = f[i]
        gnr[k, r] = gn[i]


@njit(inline="always", **JIT)
def _norms(n, d, B, g, gq, gn):
    """Squared norm and norm of each run's gradient, summed coordinate by coordinate (the order of
    :func:`gdlab.core.batching.run_norm`)."""
    gj = g[0:n]
    for i in range(n):
        gq[i] = gj[i] * gj[i]
    for j in range(1, d):
        gj = g[j * B:j * B + n]
        for i in range(n):
            gq[i] = gq[i] + gj[i] * gj[i]
    for i in range(n):
        gn[i] = math.sqrt(gq[i])


@njit(inline="always", **JIT)
def _absmax(n, d, B, x, xm):
    """``max_i |x_i|`` of each run (the order of :func:`gdlab.core.stopping.absmax_of`)."""
    xj = x[0:n]
    for i in range(n):
        xm[i] = abs(xj[i])
    for j in range(1, d):
        xj = x[j * B:j * B + n]
        for i in range(n):
            xm[i] = _maximum(xm[i], abs(xj[i]))


@njit(nogil=True, **JIT)
def _block(b, ip, fp, x0, consts, tabs, init, uidx, bounds, out_x, out_f, out_gn, status, reason, rvalue, stopped,
           npoints, pos, loss, gnr):
    """All the steps of block ``b`` (runs ``b*B .. b*B + n``); see :func:`run_plan` for the arrays."""
    d, R, steps, B = ip[I_D], ip[I_R], ip[I_STEPS], ip[I_B]
    record, use_bound, use_limit = ip[I_RECORD] != 0, ip[I_BOUND] != 0, ip[I_LIMIT] != 0
    use_tol, use_target = ip[I_TOL] != 0, ip[I_TARGET] != 0
    fg, ga, upd, look = ip[I_FG], ip[I_G], ip[I_UPDATE], ip[I_LOOK]
    NB, NC, NS, U = ip[I_NB], ip[I_NC], ip[I_NS], ip[I_U]
    tol, target, blowup, floor = fp[F_TOL], fp[F_TARGET], fp[F_BLOWUP], fp[F_FLOOR]
    uniform = 1 if U == 1 else 0
    r0 = b * B
    n = min(B, R - r0)

    x = np.empty(d * B)
    xn = np.empty(d * B)
    g = np.empty(d * B)
    gw = np.empty(d * B)
    s = np.zeros(NB * d * B + 1)
    C = np.zeros(NC * B + 1)
    V = np.zeros(NS * B + 1)
    f = np.empty(B)
    fw = np.empty(B)
    gq = np.empty(B)
    gqw = np.empty(B)
    gn = np.empty(B)
    gnw = np.empty(B)
    lim = np.full(B, np.inf)
    bnd = np.empty(B)
    xm = np.zeros(B)
    zf = np.zeros(B)
    zs = np.zeros(B)
    code = np.zeros(B, np.int64)
    val = np.zeros(B)
    act = np.zeros(B, np.bool_)
    mv = np.zeros(B, np.bool_)

    for i in range(n):
        r = r0 + i
        u = uidx[r]
        bnd[i] = bounds[r]
        for k in range(NC):
            C[k * B + i] = consts[k, u]
        for q in range(NB):
            for j in range(d):
                s[q * d * B + j * B + i] = init[q, u]
        for j in range(d):
            x[j * B + i] = x0[r, j]
    call_void(fg, x, f, g, n, B)

    # -- the start -------------------------------------------------------------------------
    _norms(n, d, B, g, gq, gn)
    _absmax(n, d, B, x, xm)
    nact = 0
    for i in range(n):
        r = r0 + i
        if use_limit:
            lim[i] = _blowup_limit(f[i], blowup, floor)
        c0, v0 = _start_outcome(f[i], gn[i], xm[i], bnd[i], tol, target, use_bound, use_tol, use_target)
        if c0 != GOING:
            status[r] = _status_of(c0)
            reason[r] = c0
            rvalue[r] = v0
            stopped[r] = 0
            npoints[r] = 1
            act[i] = False
        else:
            act[i] = True
            nact += 1
    if record:
        _record(0, r0, n, d, B, x, f, gn, pos, loss, gnr)

    # -- the steps -------------------------------------------------------------------------
    t = 0
    while t < steps and nact > 0:
        for q in range(NS):
            if uniform:
                V[q * B] = tabs[q, t, 0]
            else:
                for i in range(n):
                    V[q * B + i] = tabs[q, t, uidx[r0 + i]]
        for i in range(n):
            zf[i] = 0.0
        gsrc = g
        if look != 0:
            call_void(look, x, s, C, xn, d, n, B, uniform)
            call_void(ga, xn, fw, gw, n, B)
            for j in range(d):
                gj = gw[j * B:j * B + n]
                for i in range(n):
                    v = gj[i]
                    zf[i] = zf[i] + (v - v)
            gsrc = gw
        call_void(upd, x, gsrc, xn, s, C, V, d, n, B, uniform)
        for i in range(n):
            zs[i] = 0.0
        for q in range(NB * d):
            sq = s[q * B:q * B + n]
            for i in range(n):
                v = sq[i]
                zs[i] = zs[i] + (v - v)
        call_void(fg, xn, fw, gw, n, B)
        for j in range(d):
            xj = xn[j * B:j * B + n]
            for i in range(n):
                v = xj[i]
                zf[i] = zf[i] + (v - v)
        _norms(n, d, B, gw, gqw, gnw)
        if use_bound:
            _absmax(n, d, B, xn, xm)
        nstop = 0
        for i in range(n):
            c1, v1 = _step_outcome(zf[i] != zf[i], zs[i] != zs[i], f[i], fw[i], gnw[i], xm[i], lim[i], bnd[i], tol,
                                   target, use_bound, use_limit, use_tol, use_target)
            code[i] = c1
            val[i] = v1
            nstop += (c1 != GOING) & act[i]
        k = t + 1
        if nact == n and nstop == 0:  # the common step: every run moves on, the new arrays become current
            x, xn = xn, x
            f, fw = fw, f
            gq, gqw = gqw, gq
            gn, gnw = gnw, gn
        else:
            for i in range(n):
                stop = act[i] & (code[i] != GOING)
                kept = _is_recorded(code[i])
                mv[i] = act[i] and (kept or not stop)
                if stop:
                    r = r0 + i
                    status[r] = _status_of(code[i])
                    reason[r] = code[i]
                    rvalue[r] = val[i]
                    stopped[r] = k
                    npoints[r] = k + 1 if kept else k
                    act[i] = False
                    nact -= 1
            for j in range(d):
                xj = x[j * B:j * B + n]
                xnj = xn[j * B:j * B + n]
                for i in range(n):
                    xj[i] = xnj[i] if mv[i] else xj[i]
            for i in range(n):
                f[i] = fw[i] if mv[i] else f[i]
                gq[i] = gqw[i] if mv[i] else gq[i]
                gn[i] = gnw[i] if mv[i] else gn[i]
        g, gw = gw, g  # the new gradient (what frozen runs hold does not matter: they never move)
        if record:
            _record(k, r0, n, d, B, x, f, gn, pos, loss, gnr)
        t = k

    if record:
        for k in range(t + 1, steps + 1):
            _record(k, r0, n, d, B, x, f, gn, pos, loss, gnr)
    for i in range(n):
        r = r0 + i
        for j in range(d):
            out_x[r, j] = x[j * B + i]
        out_f[r] = f[i]
        out_gn[r] = gn[i]


@njit(nogil=True, **JIT)
def _run_blocks(first, every, ip, fp, x0, consts, tabs, init, uidx, bounds, out_x, out_f, out_gn, status, reason,
                rvalue, stopped, npoints, pos, loss, gnr):
    """Blocks ``first, first + every, ...`` (one thread's share: threads take blocks in turn, so runs
    that finish early in one region of a grid are spread over the threads). Releases the GIL."""
    B = ip[I_B]
    nblocks = (ip[I_R] + B - 1) // B
    for b in range(first, nblocks, every):
        _block(b, ip, fp, x0, consts, tabs, init, uidx, bounds, out_x, out_f, out_gn, status, reason, rvalue,
               stopped, npoints, pos, loss, gnr)


# ================================================================================================
# a rule's block update, generated from its element body
# ================================================================================================
_MODULE_HEAD = '''"""Trajectory updates of {qualname} with options {options}; generated by gdlab.fast.trajectory."""
# sources: {stamp}
from numba import carray, cfunc, njit

import gdlab.fast.primitives  # noqa: F401 (the element primitives, compiled)
from gdlab.fast.trajectory import JIT, LOOKAHEAD_SIGNATURE, UPDATE_SIGNATURE
from gdlab.fast.generated import OBJECTS

_Rule = OBJECTS[{key!r}]

_body = njit(inline="always", **JIT)(_Rule.element)
'''

_UPDATE = """

@cfunc(UPDATE_SIGNATURE, **JIT)
def update(xp, gp, xnp, sp, cp, vp, d, n, B, uniform):
    x = carray(xp, (d * B,))
    g = carray(gp, (d * B,))
    xn = carray(xnp, (d * B,))
    s = carray(sp, ({nb} * d * B + 1,))
    c = carray(cp, ({nc} * B + 1,))
    v = carray(vp, ({ns} * B + 1,))
    zero = 0.0
    for j in range(d):
        o = j * B
        xj = x[o:o + n]
        gj = g[o:o + n]
        xnj = xn[o:o + n]
{buffers}        if uniform:
{uniform_values}            for i in range(n):
                new = _body({uniform_args})
{stores}                xnj[i] = new[0]
        else:
{run_values}            for i in range(n):
                new = _body({run_args})
{stores}                xnj[i] = new[0]
"""

_LOOKAHEAD = """

_look = njit(inline="always", **JIT)(_Rule.lookahead)


@cfunc(LOOKAHEAD_SIGNATURE, **JIT)
def lookahead(xp, sp, cp, xnp, d, n, B, uniform):
    x = carray(xp, (d * B,))
    xn = carray(xnp, (d * B,))
    s = carray(sp, ({nb} * d * B + 1,))
    c = carray(cp, ({nc} * B + 1,))
    zero = 0.0
    for j in range(d):
        o = j * B
        xj = x[o:o + n]
        xnj = xn[o:o + n]
{buffers}        if uniform:
{uniform_values}            for i in range(n):
                xnj[i] = _look({uniform_args})
        else:
{run_values}            for i in range(n):
                xnj[i] = _look({run_args})
"""


@dataclass(frozen=True)
class Layout:
    """Where a rule's values live in the driver's arrays: active buffers in state rows, the body's
    constants and scalars (in the order of its signature) in the constant and scalar rows."""

    buffers: tuple[str, ...]
    constants: tuple[str, ...]
    scalars: tuple[str, ...]


def layout_of(rule: Rule) -> Layout:
    """The :class:`Layout` of ``rule``'s class and options."""
    cls = type(rule)
    options = rule.options()
    own_constants = set(rule.constants(rule.hypers()))
    names = [n for n in value_names(cls.element, cls) if n not in options]
    look = [n for n in value_names(cls.lookahead, cls) if n not in options] if cls.lookahead else []
    constants = tuple(dict.fromkeys([n for n in names if n in own_constants] + look))
    scalars = tuple(n for n in names if n not in own_constants)
    return Layout(tuple(b.name for b in rule.active_buffers()), constants, scalars)


def _arguments(rule: Rule, fn: Any, lay: Layout, first: list[str], uniform: bool) -> str:
    cls = type(rule)
    options = rule.options()
    args = list(first)
    args += [f"s{lay.buffers.index(b.name)}j[i]" if b.name in lay.buffers else "zero" for b in cls.buffers]
    for name in value_names(fn, cls):
        if name in options:
            args.append(repr(bool(options[name])))
        elif name in lay.constants:
            k = lay.constants.index(name)
            args.append(f"c{k}" if uniform else f"c{k}[i]")
        else:
            k = lay.scalars.index(name)
            args.append(f"v{k}" if uniform else f"v{k}[i]")
    return ", ".join(args)


def update_source(rule: Rule) -> str:
    """The generated module of ``rule``'s class and options: ``update`` (and ``lookahead``)."""
    cls = type(rule)
    lay = layout_of(rule)
    sources = generated.stamp(cls, elementwise, primitives, Rule, sys.modules[__name__])
    sources += " " + generated.code_stamp(cls.element, cls.lookahead)
    text = _MODULE_HEAD.format(qualname=cls.__qualname__, options=sorted(rule.options().items()),
                               key=generated.provide(cls, cls.element, cls.lookahead), stamp=sources)
    buffers = "".join(f"        s{q}j = s[{q} * d * B + o:{q} * d * B + o + n]\n" for q in range(len(lay.buffers)))
    consts_uniform = "".join(f"            c{k} = c[{k} * B]\n" for k in range(len(lay.constants)))
    consts_runs = "".join(f"            c{k} = c[{k} * B:{k} * B + n]\n" for k in range(len(lay.constants)))
    scal_uniform = "".join(f"            v{k} = v[{k} * B]\n" for k in range(len(lay.scalars)))
    scal_runs = "".join(f"            v{k} = v[{k} * B:{k} * B + n]\n" for k in range(len(lay.scalars)))
    stores = "".join(f"                s{lay.buffers.index(b.name)}j[i] = new[{m + 1}]\n"
                     for m, b in enumerate(cls.buffers) if b.name in lay.buffers)
    sizes = {"nb": len(lay.buffers), "nc": len(lay.constants), "ns": len(lay.scalars)}
    text += _UPDATE.format(
        **sizes, buffers=buffers, stores=stores,
        uniform_values=consts_uniform + scal_uniform, run_values=consts_runs + scal_runs,
        uniform_args=_arguments(rule, cls.element, lay, ["xj[i]", "gj[i]"], True),
        run_args=_arguments(rule, cls.element, lay, ["xj[i]", "gj[i]"], False),
    )
    if cls.lookahead is not None:
        text += _LOOKAHEAD.format(
            **sizes, buffers=buffers, uniform_values=consts_uniform, run_values=consts_runs,
            uniform_args=_arguments(rule, cls.lookahead, lay, ["xj[i]"], True),
            run_args=_arguments(rule, cls.lookahead, lay, ["xj[i]"], False),
        )
    return text


#: Addresses of the generated update and look-ahead by (rule class, options).
_updates: dict[tuple[type, tuple[tuple[str, bool], ...]], tuple[int, int]] = {}


def _rule_key(rule: Rule) -> tuple[type, tuple[tuple[str, bool], ...]]:
    return type(rule), tuple(sorted(rule.options().items()))


def update_addresses(rule: Rule) -> tuple[int, int]:
    """(update, look-ahead or 0) addresses of ``rule``'s generated block functions (compiled or loaded)."""
    key = _rule_key(rule)
    found = _updates.get(key)
    if found is None:
        primitives.register_helpers()
        module = generated.load(update_source(rule), "trajectory")
        look = int(module.lookahead.address) if hasattr(module, "lookahead") else 0
        found = _updates[key] = (int(module.update.address), look)
    return found


def _update_ready(rule: Rule) -> bool:
    return _rule_key(rule) in _updates or generated.is_built(update_source(rule), "trajectory")


# ================================================================================================
# planning: from run_batch's arguments to the driver's arrays
# ================================================================================================
@dataclass
class Plan:
    """Everything one fused call needs (built by :func:`plan`)."""

    rule: Rule
    layout: Layout
    consts: np.ndarray  # (NC, U)
    tabs: np.ndarray  # (NS, T, U)
    init: np.ndarray  # (NB, U): the initial value of each buffer
    lr_tab: np.ndarray  # (T, U): the learning rate of every step (what the record shows)
    uidx: np.ndarray  # (R,) int64: the hyperparameter column of each run
    batch: tuple[int, ...]
    landscape: Any  # lc.CompiledLandscape


def _array_shapes(*objs: Any) -> list[tuple[int, ...]]:
    shapes = []
    for obj in objs:
        if obj is None or not hasattr(obj, "get_params"):
            continue
        for value in obj.get_params().values():
            for part in value if isinstance(value, tuple) else (value,):
                if isinstance(part, np.ndarray) and part.ndim > 0:
                    shapes.append(part.shape)
    return shapes


def _columns(value: Any, hshape: tuple[int, ...]) -> Any:
    """A hyperparameter as one value per distinct combination, shape (U,) (pairs element by element;
    options and names as they are)."""
    if isinstance(value, tuple):
        return tuple(_columns(v, hshape) for v in value)
    if isinstance(value, bool | str) or value is None:
        return value
    return np.broadcast_to(np.asarray(value, dtype=np.float64), hshape).reshape(-1).copy()


def _schedule_reason(schedule: Any) -> str | None:
    if schedule is None:
        return None
    if not isinstance(schedule, Schedule):
        return f"the schedule {type(schedule).__name__} is not one of gdlab's schedules"
    if getattr(schedule, "needs_loss", False):
        return f"the {schedule.name!r} schedule reacts to the loss (it is not a closed form)"
    cls = type(schedule)
    if cls.lr is not Schedule.lr or cls.__call__ is not Schedule.__call__ or cls.init is not Schedule.init:
        return f"the schedule {cls.__name__} overrides the closed-form interface"
    return None


def _lr_table(rule: Rule, schedule: Any, hshape: tuple[int, ...], steps: int) -> np.ndarray | str:
    """The learning rate of every step, shape (T, U); a reason string when it cannot be fused."""
    if schedule is None:
        return np.broadcast_to(np.asarray(rule.lr, dtype=np.float64), hshape).reshape(1, -1).repeat(steps, 0)
    t = np.arange(steps, dtype=np.int64).reshape((steps,) + (1,) * len(hshape))
    with np.errstate(all="ignore"):
        table = np.asarray(schedule(t, rule.lr), dtype=np.float64)
    table = np.broadcast_to(table, (steps,) + hshape).reshape(steps, -1)
    if not (np.isfinite(table).all() and (table >= 0).all()):
        return "the schedule gives a learning rate that is negative or not finite (the reference refuses it)"
    return table


def _landscape(objective: Any, compile_now: bool) -> Any:
    """The compiled landscape of ``objective``, a reason string, or ``None`` (not compiled yet)."""
    code = lc.code_for(objective)
    if isinstance(code, str):
        return f"the objective has no compiled form: {code}"
    if not compile_now and not lc.is_ready(code):
        return None
    try:
        return lc.compile_landscape(objective)
    except lc.CodegenError as exc:
        return f"the objective could not be compiled: {exc}"


def plan(objective: Any, optimizer: Any, batch: tuple[int, ...], steps: int, schedule: Any, d: int | None = None,
         compile_now: bool = True) -> Plan | str | None:
    """A :class:`Plan` for these arguments, a reason string when they cannot be fused, or ``None``
    when they could be but the code is not compiled yet (only with ``compile_now=False``).

    ``d`` is the number of coordinates of the starts (checked against the landscape's)."""
    if not isinstance(optimizer, Rule):
        name = getattr(optimizer, "name", type(optimizer).__name__)
        return f"optimizer {name!r} is not an elementwise rule (it needs more than the gradient of each run)"
    reason = _schedule_reason(schedule)
    if reason is not None:
        return reason
    dim = int(getattr(objective, "dim", 0) or 0)
    if dim > lc.MAX_DIM:
        return f"the landscape has {dim} dimensions (the fused path takes at most {lc.MAX_DIM})"
    if d is not None and dim and d != dim:  # no ``dim``: not a landscape, the landscape check says so
        return f"the starts have {d} coordinates, the objective {dim}"
    try:
        hshape = np.broadcast_shapes(*_array_shapes(optimizer, schedule))
    except ValueError:
        return "the array hyperparameters do not broadcast together"
    lay = layout_of(optimizer)
    width = math.prod(hshape)
    if steps * width * max(len(lay.scalars) + 1, 1) > MAX_TABLE_ENTRIES:
        return (f"{width} distinct hyperparameter values x {steps} steps need per-step tables larger than "
                f"{MAX_TABLE_ENTRIES} entries")
    compiled = _landscape(objective, compile_now)
    if compiled is None or isinstance(compiled, str):
        return compiled
    if compile_now:
        ensure_driver()
        update_addresses(optimizer)
    elif not (driver_ready() and _update_ready(optimizer)):
        return None
    lr_tab = _lr_table(optimizer, schedule, hshape, steps)
    if isinstance(lr_tab, str):
        return lr_tab
    h = Hypers({k: _columns(v, hshape) for k, v in optimizer.get_params().items()})
    tables = optimizer.tables(steps, lr_tab, h)
    consts = np.array([tables.constants[n] for n in lay.constants], dtype=np.float64).reshape(len(lay.constants),
                                                                                            width)
    tabs = np.empty((len(lay.scalars), steps, width))
    for q, name in enumerate(lay.scalars):
        tabs[q] = tables.scalars[name]
    params = optimizer.get_params()
    init = np.zeros((len(lay.buffers), width))
    for q, name in enumerate(lay.buffers):
        spec = next(bf for bf in type(optimizer).buffers if bf.name == name)
        if spec.init is not None:
            init[q] = 0.0 + _columns(params[spec.init], hshape)  # np.zeros_like(params) + value
    uidx = np.array(np.broadcast_to(np.arange(width, dtype=np.int64).reshape(hshape), batch).reshape(-1))
    return Plan(optimizer, lay, np.ascontiguousarray(consts), tabs, init, np.asarray(lr_tab), uidx, batch, compiled)


# ================================================================================================
# running a plan
# ================================================================================================
def run_plan(p: Plan, x0: np.ndarray, *, steps: int, rules: StoppingRules, record: bool) -> Trajectories:
    """Run a plan from the starts ``x0`` (shape ``batch + (d,)``) under the stopping ``rules``."""
    batch = p.batch
    d = x0.shape[-1]
    R = math.prod(batch)
    xs = np.ascontiguousarray(x0.reshape(R, d), dtype=np.float64)
    bounds = np.array(np.broadcast_to(np.asarray(rules.bound, dtype=np.float64), batch).reshape(R))
    nthreads = _thread_count(R, steps)
    update, look = update_addresses(p.rule)
    ip = np.zeros(N_IP, dtype=np.int64)
    ip[I_D], ip[I_R], ip[I_STEPS], ip[I_B] = d, R, steps, BLOCK
    ip[I_RECORD], ip[I_BOUND], ip[I_LIMIT] = int(record), int(rules.uses_bound), int(rules.blowup is not None)
    ip[I_TOL], ip[I_TARGET] = int(rules.tol is not None), int(rules.target is not None)
    ip[I_FG], ip[I_G], ip[I_UPDATE], ip[I_LOOK] = p.landscape.value_grad_address, p.landscape.grad_address, update, look
    width = p.lr_tab.shape[1]
    ip[I_NB], ip[I_NC], ip[I_NS], ip[I_U] = len(p.layout.buffers), len(p.layout.constants), len(p.layout.scalars), width
    fp = np.array([0.0 if rules.tol is None else rules.tol, 0.0 if rules.target is None else rules.target,
                   0.0 if rules.blowup is None else rules.blowup, rules.blowup_floor])
    out_x = np.empty((R, d))
    out_f = np.empty(R)
    out_gn = np.empty(R)
    status, reason, rvalue, stopped, npoints = initial_outcomes((R,), steps)
    if record:
        pos = np.empty((steps + 1, R, d))
        loss = np.empty((steps + 1, R))
        gnr = np.empty((steps + 1, R))
    else:
        pos, loss, gnr = np.empty((1, 1, 1)), np.empty((1, 1)), np.empty((1, 1))
    tabs = p.tabs if p.tabs.size else np.zeros((1, max(steps, 1), width))
    consts = p.consts if p.consts.size else np.zeros((1, width))
    init = p.init if p.init.size else np.zeros((1, width))
    args = (ip, fp, xs, consts, tabs, init, p.uidx, bounds, out_x, out_f, out_gn, status, reason, rvalue, stopped,
            npoints, pos, loss, gnr)
    if nthreads > 1:
        _run_threads(nthreads, args)
    else:
        _run_blocks(0, 1, *args)

    records = None
    if record:
        last = int(stopped.max()) if R else 0
        lr_rec = np.empty((steps,) + batch)
        if steps:
            lr_rec.reshape(steps, R)[:] = p.lr_tab[:, p.uidx] if p.lr_tab.shape[1] > 1 else p.lr_tab[:, :1]
        records = Records(pos[: last + 1].reshape((last + 1,) + batch + (d,)),
                          loss[: last + 1].reshape((last + 1,) + batch),
                          gnr[: last + 1].reshape((last + 1,) + batch), lr_rec[:last])
    return Trajectories(
        status_code=status.reshape(batch), reason_code=reason.reshape(batch), reason_value=rvalue.reshape(batch),
        stopped_at=stopped.reshape(batch), n_points=npoints.reshape(batch), final_params=out_x.reshape(batch + (d,)),
        final_loss=out_f.reshape(batch), final_grad_norm=out_gn.reshape(batch), records=records,
    )


def _thread_count(R: int, steps: int) -> int:
    """Threads for a call: one for small work (starting a thread costs more), else up to the CPUs."""
    blocks = -(-R // BLOCK)
    if blocks < 2 or R * max(steps, 1) < 50_000:
        return 1
    return max(1, min(threads(), blocks))


def threads() -> int:
    """How many threads the fused trajectories use: ``numba.get_num_threads()``."""
    import numba

    return int(numba.get_num_threads())


_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _run_threads(nthreads: int, args: tuple[Any, ...]) -> None:
    """Run the blocks on ``nthreads`` threads (the kernel releases the GIL)."""
    global _workers
    with _workers_lock:
        if _workers is None or _workers._max_workers < nthreads:  # type: ignore[attr-defined]
            _workers = ThreadPoolExecutor(max_workers=nthreads, thread_name_prefix="gdlab-fast-traj")
        pool = _workers
    futures = [pool.submit(_run_blocks, tid, nthreads, *args) for tid in range(1, nthreads)]
    _run_blocks(0, nthreads, *args)
    for fut in futures:
        fut.result()


# ================================================================================================
# readiness, compilation in the background, warm-up
# ================================================================================================
_driver_state = {"ready": False}
_driver_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: dict[Any, Future[Any]] = {}
_pending_lock = threading.Lock()


def driver_ready() -> bool:
    """Whether the driver is compiled (or loaded) in this process."""
    return _driver_state["ready"]


def ensure_driver() -> float:
    """Compile (or load from numba's disk cache) the driver; returns seconds spent."""
    if _driver_state["ready"]:
        return 0.0
    with _driver_lock:
        if _driver_state["ready"]:
            return 0.0
        start = time.perf_counter()
        _run_blocks.compile((types.int64, types.int64, *(numba_typeof(a) for a in _driver_arguments())))
        _driver_state["ready"] = True
        return time.perf_counter() - start


def _driver_arguments() -> tuple[np.ndarray, ...]:
    """Arrays of the kinds :func:`run_plan` passes to the driver (to compile it ahead of a call)."""
    f1, f2, f3 = np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1, 1))
    i1, b1 = np.zeros(1, np.int64), np.zeros(1, np.int8)
    return (np.zeros(N_IP, np.int64), np.zeros(4), f2, f2, f3, f2, i1, f1, f2, f1, f1, b1, b1, f1, i1, i1, f3, f2, f2)


def _background(key: Any, fn: Any) -> None:
    """Run ``fn`` once in the background compile thread (later calls with ``key`` join it)."""
    global _executor
    with _pending_lock:
        if key in _pending:
            return
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gdlab-fast-compile")
        _pending[key] = _executor.submit(_quiet, fn)


def _quiet(fn: Any) -> None:
    with contextlib.suppress(Exception):  # compilation is an optimisation: a failure means the reference path
        fn()


def prepare(objective: Any, optimizer: Any = None, wait: bool = False) -> bool:
    """Compile the driver, ``objective``'s landscape and ``optimizer``'s update (in the background
    unless ``wait``). Returns True when all are ready now. Servers call it when a custom expression
    is run so that later runs find it compiled."""
    code = lc.code_for(objective)
    if isinstance(code, str):
        return False

    def work() -> None:
        ensure_driver()
        lc.compile_landscape(objective)
        if isinstance(optimizer, Rule):
            update_addresses(optimizer)

    if wait:
        work()
        return True
    ready = driver_ready() and lc.is_ready(code) and (not isinstance(optimizer, Rule) or _rule_key(optimizer)
                                                       in _updates)
    if ready:
        return True
    _background(("prepare", id(code), _rule_key(optimizer) if isinstance(optimizer, Rule) else None), work)
    return False


def _estimated_reference_seconds(R: int, d: int, steps: int) -> float:
    """A rough cost of the reference engine: ~60 µs a step plus ~15 ns per coordinate and step."""
    return steps * (60e-6 + 15e-9 * R * d)


def _cheap_to_load(objective: Any, optimizer: Any) -> bool:
    code = lc.code_for(objective)
    if isinstance(code, str) or not isinstance(optimizer, Rule):
        return False
    return lc.is_cached(code) and _update_ready(optimizer)


def try_run(objective: Any, optimizer: Any, x0: np.ndarray, batch: tuple[int, ...], *, backend: str, steps: int,
            schedule: Any, rules: StoppingRules, record: bool) -> Trajectories | None:
    """The fused trajectories, or ``None`` when the reference should run (``backend="auto"``).

    With ``backend="fused"`` an unsupported call raises ``ValueError`` with the reason.
    """
    fused = backend == "fused"
    compile_now = fused or _cheap_to_load(objective, optimizer) or (
        _estimated_reference_seconds(math.prod(batch), x0.shape[-1], steps) >= SYNC_COMPILE_SECONDS)
    p = plan(objective, optimizer, batch, steps, schedule, d=x0.shape[-1], compile_now=compile_now)
    if p is None:  # supported, but not compiled yet: compile for next time, run the reference now
        prepare(objective, optimizer)
        return None
    if isinstance(p, str):
        if fused:
            raise ValueError(f"backend='fused' cannot run this: {p}")
        return None
    return run_plan(p, x0, steps=steps, rules=rules, record=record)


def explain(objective: Any, optimizer: Any, starts: Any, steps: int = 1, schedule: Any = None) -> str:
    """``"fused"`` when ``run_batch`` would take the fused path for these arguments, else why not
    (compiling the code if needed)."""
    x0 = np.asarray(starts, dtype=np.float64)
    try:
        batch = np.broadcast_shapes(x0.shape[:-1], *_array_shapes(optimizer, schedule))
    except ValueError:
        return "the starts do not broadcast against the hyperparameters"
    p = plan(objective, optimizer, batch, steps, schedule, d=x0.shape[-1])
    return p if isinstance(p, str) else "fused"


#: Landscapes compiled by :func:`warmup`: every registered one with its default parameters (what the
#: lab draws), plus the N-dimensional ones in a few common dimensions.
WARM_EXTRA = (("rosenbrock", {"dim": 3}), ("rosenbrock", {"dim": 10}), ("rastrigin", {"dim": 10}),
              ("sphere", {"dim": 1}))


def warmup(extra: bool = True) -> float:
    """Compile (or load from the disk cache) the driver, every built-in rule's update and the
    built-in landscapes; returns seconds."""
    from gdlab.core.rules import RULES
    from gdlab.landscapes import LANDSCAPES, make_landscape

    start = time.perf_counter()
    ensure_driver()
    for cls in RULES.values():
        update_addresses(cls())
    specs: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in LANDSCAPES]
    if extra:
        specs += list(WARM_EXTRA)
    for name, params in specs:
        try:
            land = make_landscape(name, **params)
        except (ValueError, TypeError):
            continue
        with contextlib.suppress(lc.CodegenError):
            if not isinstance(lc.code_for(land), str):
                lc.compile_landscape(land)
    return time.perf_counter() - start


__all__ = [
    "BLOCK",
    "Plan",
    "driver_ready",
    "ensure_driver",
    "explain",
    "plan",
    "prepare",
    "run_plan",
    "try_run",
    "warmup",
]
