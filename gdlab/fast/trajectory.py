"""Fused batched trajectories: a rule, a landscape and the stopping rules in one compiled loop.

The reference trajectory loop (:mod:`gdlab.engine.reference`) advances a batch of runs with a
Python loop over the steps and a handful of NumPy calls per step (~70 µs a step whatever the batch
size). For a landscape with a compiled form (:mod:`gdlab.fast.landscape_codegen`: every built-in
landscape of up to :data:`~gdlab.fast.landscape_codegen.MAX_DIM` dimensions and every typed
expression) and an elementwise rule (:class:`~gdlab.core.rule.Rule`), this module runs the whole
trajectory in compiled code instead. It plans a call (the tables of the rule's constants and
per-step scalars, computed by the rule's own functions, so every number is the reference's; one
column per distinct hyperparameter value, so any numeric hyperparameter may differ between runs)
and runs the block driver of :mod:`gdlab.fast.driver` on a few threads (it releases the GIL). The
driver calls one of two steps (:mod:`gdlab.fast.stepcode`), chosen by ``trajectory_step`` of
:mod:`gdlab.fast.config`:

- the **combined step** of the rule and the landscape, one vectorised loop compiled per pair;
- the **generic step**, which calls the rule's block update and the landscape's block function
  (nothing compiled per pair); ``"auto"`` runs it while the combined step is not compiled and the
  work is too small to wait for the compiler, and compiles the combined step in the background when
  the work is large enough to gain from it next time.

**Same results.** Neither step names an optimizer: both run the rule's element body and the
landscape's point program, in the same order as the reference. With the same landscape evaluation a
fused run is the reference run to the last bit: same updates, same stopping step, status, reason
and final point. Landscapes whose formula uses only + − × ÷ √ are evaluated to the same bits by
both paths; those with exp, cos, ... differ by a few ulp per evaluation between NumPy and the C
library (see :mod:`gdlab.fast.landscape_codegen`), and so may their trajectories.

**Choosing.** ``run_batch(..., backend="auto")`` (the default) uses this path when :func:`plan`
accepts the call and the reference otherwise; ``backend="fused"`` raises ``ValueError`` with the
reason instead; :func:`explain` tells which. Not fused: optimizers that are not rules (Newton,
L-BFGS, SAM, transform chains), the loss-driven ``plateau`` schedule (and schedule objects that are
not gdlab's closed forms), objectives without a compiled form.

**Compilation** never lands on a request when avoidable: the code is cached on disk;
:func:`warmup` compiles (or loads) the driver, every built-in rule's update and the built-in
landscapes, and servers call it at start. In ``"auto"`` mode code that would have to be compiled
first is compiled synchronously only when the reference (or the generic step) would take longer
than that; otherwise the call runs without it and the compilation happens in a background thread.
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np
from numba import typeof as numba_typeof
from numba import types

from gdlab.core.rule import Hypers, Rule
from gdlab.core.schedules import Schedule
from gdlab.core.stopping import StoppingRules
from gdlab.core.trajectories import Records, Trajectories
from gdlab.fast import config, driver, generated, stepcode
from gdlab.fast import landscape_codegen as lc
from gdlab.fast.stepcode import Layout, layout_of

#: Runs per block (the inner, vectorised dimension of the loops).
BLOCK = driver.B
#: Largest per-step tables (steps × distinct hyperparameter values × scalars), in float64 entries.
MAX_TABLE_ENTRIES = 2**25
#: In "auto" mode, compile synchronously when the run is estimated to take longer than this without
#: the code being compiled.
SYNC_COMPILE_SECONDS = 1.0
#: In "auto" mode, compile the combined step before running when the generic step is estimated to
#: take longer than this (compiling takes one to three seconds; the combined step is 2-4x faster)...
COMBINE_NOW_SECONDS = 3.0
#: ... and in the background, for the next call, when it is estimated to take longer than this;
#: shorter work gains nothing from it.
BACKGROUND_COMPILE_SECONDS = 0.05
#: The generic path's cost per run, step and coordinate on one core (measured: about 5 ns).
GENERIC_SECONDS_PER_ELEMENT = 5e-9


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
    uidx: np.ndarray  # (R,) int64: the hyperparameter column of each run ((1,) when there is one column)
    batch: tuple[int, ...]
    landscape: Any  # lc.CompiledLandscape
    update: int  # the addresses of the rule's block update and look-ahead (0: none), for the generic advance
    lookahead: int
    advance: int  # the addresses of the advance (without and with recording) and close the driver calls
    advance_recording: int
    close: int
    combined: bool  # whether those are the combined ones (else the generic ones)
    varying: int  # the rule's values that differ between columns (gdlab.fast.stepcode.varying_mask)


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
    if schedule.cycled_momentum(0) is not None:
        return (f"the {schedule.name!r} schedule sets a hyperparameter of the optimizer at every step (its "
                "cycle of μ or β₁), which the fused trajectories do not take")
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
        return ("the schedule gives a learning rate that is negative or not finite "
                "(the reference path stops or refuses it)")
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
    elif not (driver_ready() and stepcode.update_ready(optimizer)):
        return None
    update, look = stepcode.update_addresses(optimizer)
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
    uidx = (np.zeros(1, dtype=np.int64) if width == 1 else
            np.array(np.broadcast_to(np.arange(width, dtype=np.int64).reshape(hshape), batch).reshape(-1)))
    work = GENERIC_SECONDS_PER_ELEMENT * math.prod(batch) * steps * max(dim, 1)
    varying = stepcode.varying_mask(consts, tabs)
    combined = _combined_for(optimizer, compiled.code, varying, work, compile_now)
    generic = driver.generic_advance.address
    advance, recording, close = combined or (generic, generic, driver.generic_close.address)
    return Plan(optimizer, lay, np.ascontiguousarray(consts), tabs, init, np.asarray(lr_tab), uidx, batch, compiled,
                update, look, advance, recording, close, combined is not None, varying)


def _combined_for(rule: Rule, code: lc.LandscapeCode, varying: int, work: float,
                  compile_now: bool) -> tuple[int, int, int] | None:
    """The addresses of the combined advance and close to run, or ``None`` for the generic ones (see
    the module docstring). ``work``: the generic path's estimated seconds."""
    mode = config.get_settings().trajectory_step
    if mode == "generic":
        return None
    if stepcode.combined_ready(rule, code, varying, on_disk=False):
        return stepcode.combined_addresses(rule, code, varying)
    now = mode == "combined" or (compile_now and (work >= COMBINE_NOW_SECONDS
                                                  or stepcode.combined_ready(rule, code, varying)))
    if now:
        try:
            return stepcode.combined_addresses(rule, code, varying)
        except generated.GenerationError:
            return None
    if work >= BACKGROUND_COMPILE_SECONDS:
        _background(("combined", stepcode.rule_key(rule), code.key, varying),
                    lambda: stepcode.combined_addresses(rule, code, varying))
    return None


# ================================================================================================
# running a plan
# ================================================================================================
def run_plan(p: Plan, x0: np.ndarray, *, steps: int, rules: StoppingRules, record: bool) -> Trajectories:
    """Run a plan from the starts ``x0`` (shape ``batch + (d,)``) under the stopping ``rules``."""
    batch = p.batch
    d = x0.shape[-1]
    R = math.prod(batch)
    xs = np.ascontiguousarray(x0.reshape(R, d), dtype=np.float64)
    bound = np.asarray(rules.bound, dtype=np.float64)
    bounds = bound.reshape(1) if bound.ndim == 0 else np.ascontiguousarray(np.broadcast_to(bound, batch).reshape(R))
    nthreads = _thread_count(R, steps)
    width = p.lr_tab.shape[1]
    nb, nc, ns = len(p.layout.buffers), len(p.layout.constants), len(p.layout.scalars)
    rows = driver.layout(d, nb, nc, ns)
    ip = np.zeros(driver.N_IP, dtype=np.int64)
    ip[[driver.I_D, driver.I_R, driver.I_STEPS, driver.I_RECORD, driver.I_CHUNK]] = d, R, steps, int(record), \
        driver.CHUNK
    ip[[driver.I_ADVANCE, driver.I_CLOSE, driver.I_UPDATE, driver.I_LOOK]] = (
        p.advance_recording if record else p.advance, p.close, p.update, p.lookahead)
    ip[[driver.I_FG, driver.I_G]] = p.landscape.value_grad_address, p.landscape.grad_address
    ip[[driver.I_NB, driver.I_NC, driver.I_NS, driver.I_U]] = nb, nc, ns, width
    ip[driver.I_VARYING] = p.varying
    ip[driver.I_X:driver.I_ROWS + 1] = (rows.X, rows.S, rows.F, rows.Q, rows.LIM, rows.BND, rows.BND2, rows.C,
                                        rows.V, rows.ZR, rows.G, rows.LA, rows.LG, rows.RX, rows.CX, rows.CS, rows.CF,
                                        rows.CQ, rows.lane_rows, rows.rows)
    fp = np.zeros(driver.N_FP)
    fp[driver.F_TOL2] = rules.tol_squared
    fp[driver.F_TARGET] = -math.inf if rules.target is None else rules.target
    fp[driver.F_USE_BOUND] = float(rules.uses_bound)
    fp[driver.F_USE_LIMIT] = float(rules.blowup is not None)
    fp[driver.F_USE_TOL] = float(rules.tol is not None)
    fp[driver.F_USE_TARGET] = float(rules.target is not None)
    fp[driver.F_BLOWUP] = 0.0 if rules.blowup is None else rules.blowup
    fp[driver.F_FLOOR] = rules.blowup_floor
    out_x = np.empty((R, d))
    out_f = np.empty(R)
    out_gn = np.empty(R)
    # every run's outcome is written by the driver (allocated, not filled: one write pass fewer)
    status, reason, rvalue = np.empty(R, dtype=np.int8), np.empty(R, dtype=np.int8), np.empty(R)
    stopped, npoints = np.empty(R, dtype=np.int64), np.empty(R, dtype=np.int64)
    if record:
        pos = np.empty((steps + 1, R, d))
        loss = np.empty((steps + 1, R))
        gnr = np.empty((steps + 1, R))
    else:
        pos, loss, gnr = np.empty((1, 1, 1)), np.empty((1, 1)), np.empty((1, 1))
    tabs = p.tabs.reshape(-1) if p.tabs.size else np.zeros(1)
    consts = p.consts if p.consts.size else np.zeros((1, width))
    init = p.init if p.init.size else np.zeros((1, width))
    args = (ip, fp, xs, consts, tabs, init, p.uidx, bounds, out_x, out_f, out_gn, status, reason, rvalue, stopped,
            npoints, pos, loss, gnr)
    if nthreads > 1:
        _run_threads(nthreads, args)
    else:
        driver.run_blocks(0, 1, *args)
    config.stats["trajectory combined" if p.combined else "trajectory generic"] += 1

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
    """Run the blocks on ``nthreads`` threads (the driver releases the GIL)."""
    global _workers
    with _workers_lock:
        if _workers is None or _workers._max_workers < nthreads:  # type: ignore[attr-defined]
            _workers = ThreadPoolExecutor(max_workers=nthreads, thread_name_prefix="gdlab-fast-traj")
        pool = _workers
    futures = [pool.submit(driver.run_blocks, tid, nthreads, *args) for tid in range(1, nthreads)]
    driver.run_blocks(0, nthreads, *args)
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
        driver.run_blocks.compile((types.int64, types.int64, *(numba_typeof(a) for a in driver.driver_arguments())))
        _driver_state["ready"] = True
        return time.perf_counter() - start


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
    with contextlib.suppress(Exception):  # compilation is an optimisation: a failure means a slower path
        fn()


def prepare(objective: Any, optimizer: Any = None, wait: bool = False) -> bool:
    """Compile the driver, ``objective``'s landscape and ``optimizer``'s update (in the background
    unless ``wait``). Returns True when all are ready now. Servers call it when a custom expression
    is run so that later runs find it compiled."""
    code = lc.code_for(objective)
    if isinstance(code, str):
        return False
    rule = optimizer if isinstance(optimizer, Rule) else None

    def work() -> None:
        ensure_driver()
        lc.compile_landscape(objective)
        if rule is not None:
            stepcode.update_addresses(rule)

    if wait:
        work()
        return True
    if driver_ready() and lc.is_ready(code) and (rule is None or stepcode.update_ready(rule, on_disk=False)):
        return True
    _background(("prepare", code.key, None if rule is None else stepcode.rule_key(rule)), work)
    return False


def _estimated_reference_seconds(R: int, d: int, steps: int) -> float:
    """A rough cost of the reference engine: ~60 µs a step plus ~15 ns per coordinate and step."""
    return steps * (60e-6 + 15e-9 * R * d)


def _cheap_to_load(objective: Any, optimizer: Any) -> bool:
    code = lc.code_for(objective)
    if isinstance(code, str) or not isinstance(optimizer, Rule):
        return False
    return lc.is_cached(code) and stepcode.update_ready(optimizer)


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
    built-in landscapes; returns seconds. (Combined steps are compiled per pair, when used.)"""
    from gdlab.core.rules import RULES
    from gdlab.landscapes import LANDSCAPES, make_landscape

    start = time.perf_counter()
    ensure_driver()
    for cls in RULES.values():
        stepcode.update_addresses(cls())
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
