"""The run engine: many optimizer runs advanced together, one vectorised call per step.

:func:`run_batch` runs ``B = starts.shape[:-1]`` (broadcast with every batched hyperparameter, see
below) independent runs of one optimizer on one objective. The only Python loop is over the steps;
every step is a handful of whole-batch array operations, so the cost per step hardly depends on how
many runs there are. At every point ``x_k`` (``k = 0`` is the start) the engine records the position,
the loss ``f(x_k)`` and the gradient norm ``‖∇f(x_k)‖``; for every update it records the learning
rate ``η_k`` that moved ``x_k`` to ``x_{k+1}``.

**Batching many starts × many hyperparameter values.** The batch shape is
``np.broadcast_shapes(starts.shape[:-1], *shapes of the array hyperparameters)``. Put the starts on
one axis and the values on another: starts of shape ``(S, 1, d)`` with ``lr`` of shape ``(L,)``
give ``S × L`` runs of shape ``(S, L, d)``, run ``[s, l]`` starting at ``starts[s, 0]`` with
``lr[l]``. A single start ``(d,)`` with ``lr`` of shape ``(L,)`` gives ``L`` runs.

**Stopping rules** (:mod:`gdlab.core.stopping`, checked at every recorded point, per run; the
first that fires decides): a refused (non-finite) update, a non-finite loss or gradient, leaving the
box ``max_i |x_i| ≤ bound`` (default: see :func:`default_bound`) and a blown-up loss end a run as
diverged; ``‖∇f‖ < tol`` and ``f < target`` as converged; otherwise it runs all ``steps``
(``max_steps``).

``stopped_at`` is the number of updates applied when the status was decided. A finished run is
frozen: its recorded values stop changing (the record arrays repeat its last recorded values), and
the engine never feeds NaN forward: the working params of a finished run are its last recorded
point and its gradient is replaced by zero. Only finite numbers are recorded for a run: when the
loss or gradient at a new point is not finite, or the optimizer refused the update, the run's
record ends at the previous point (``n_points = stopped_at``); otherwise ``n_points =
stopped_at + 1``. (The one exception is a start whose own loss is not finite: it is kept as the only
point, with status diverged at step 0.)

**Two executors.** The reference loop (:mod:`gdlab.engine.reference`) runs any optimizer on any
objective; the fused trajectories (:mod:`gdlab.fast.trajectory`) run elementwise rules on compiled
landscapes in one compiled loop with the same results. :func:`run_batch` picks one (``backend``).

An optimizer class may declare ``batched = False`` when its ``step`` can only take one run at a
time (L-BFGS does); only for those the engine loops over the runs (each run is still one
:func:`run_batch` call with a batch of one) and stacks the results.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from gdlab.core.batching import as_params, run_absmax
from gdlab.core.limits import LIMITS
from gdlab.core.noise import Noise
from gdlab.core.objective import Objective
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers import make_optimizer
from gdlab.core.schedules import make_schedule
from gdlab.core.stopping import (
    BLOWUP,
    BLOWUP_FLOOR,
    CONVERGED,
    DIVERGED,
    MAX_STEPS,
    STATUSES,
    StoppingRules,
    reason_text,
)
from gdlab.core.trajectories import Trajectories
from gdlab.engine.analysis import nearest_known_minimum
from gdlab.engine.reference import Cancelled, run_reference
from gdlab.engine.result import RunResult, format_hyperparam
from gdlab.fast import config as fast_config

#: Default bound = this factor × the larger of the landscape's domain extent and the start's size.
BOUND_FACTOR = 1000.0

__all__ = ["BLOWUP_FLOOR", "CONVERGED", "DIVERGED", "MAX_STEPS", "BatchRecord", "Cancelled", "RunSpec", "compare",
           "run_batch", "run_single"]


@dataclass
class BatchRecord:
    """Everything recorded by :func:`run_batch` for a batch of runs of shape ``batch_shape``.

    Record arrays are time-major: ``positions[k]`` (shape ``batch + (d,)``) is the point after
    ``k`` updates, ``loss[k]``/``grad_norm[k]`` are ``f`` and ``‖∇f‖`` there, ``lr[k]`` is the
    learning rate of update ``k + 1``. Past a run's end its entries repeat its last recorded values.
    With ``record=False`` only the per-run final values are kept (record arrays are ``None``).
    """

    optimizer: str
    hyperparams: dict[str, Any]
    batch_shape: tuple[int, ...]
    starts: np.ndarray  # batch + (d,)
    positions: np.ndarray | None  # (T + 1,) + batch + (d,)
    loss: np.ndarray | None  # (T + 1,) + batch
    grad_norm: np.ndarray | None  # (T + 1,) + batch
    lr: np.ndarray | None  # (T,) + batch
    status_code: np.ndarray  # batch, int8 (CONVERGED / DIVERGED / MAX_STEPS)
    stopped_at: np.ndarray  # batch, int64
    n_points: np.ndarray  # batch, int64: recorded points of each run
    reason_code: np.ndarray  # batch, int8
    reason_value: np.ndarray  # batch, float: the value that triggered the stop
    final_params: np.ndarray  # batch + (d,): the last recorded point
    final_loss: np.ndarray  # batch
    final_grad_norm: np.ndarray  # batch
    steps: int
    tol: float | None = None
    target: float | None = None
    bound: np.ndarray | float | None = None  # per run (batch) or scalar
    blowup: float = 1e8
    label: str = ""
    schedule: str | None = None
    schedule_params: dict[str, Any] = field(default_factory=dict)
    looped: bool = False  # True when the optimizer could only take one run at a time

    # -- per-run views -------------------------------------------------------------------------
    @property
    def size(self) -> int:
        """Number of runs."""
        return int(np.prod(self.batch_shape, dtype=np.int64))

    @property
    def dim(self) -> int:
        return int(self.starts.shape[-1])

    @property
    def status(self) -> np.ndarray:
        """Status string of every run (shape ``batch``)."""
        return np.asarray(STATUSES, dtype=object)[self.status_code]

    def counts(self) -> dict[str, int]:
        """How many runs ended with each status."""
        return {s: int(np.sum(self.status_code == i)) for i, s in enumerate(STATUSES)}

    def reason(self, index: Any = ()) -> str:
        """The human-readable reason why run ``index`` stopped."""
        idx = _index(index, self.batch_shape)
        bound = self.bound if self.bound is None or np.ndim(self.bound) == 0 else np.asarray(self.bound)[idx]
        return reason_text(int(self.reason_code[idx]), float(self.reason_value[idx]), int(self.stopped_at[idx]),
                           tol=self.tol, target=self.target, blowup=self.blowup, steps=self.steps, bound=bound)

    def reasons(self) -> np.ndarray:
        """Reason strings of every run (shape ``batch``; formatted on demand)."""
        out = np.empty(self.batch_shape, dtype=object)
        for idx in np.ndindex(self.batch_shape):
            out[idx] = self.reason(idx)
        return out

    def hyperparams_at(self, index: Any = ()) -> dict[str, Any]:
        """The scalar hyperparameters of run ``index`` (array values picked at that run)."""
        idx = _index(index, self.batch_shape)
        return {k: _pick(v, idx, self.batch_shape) for k, v in self.hyperparams.items()}

    def run(self, index: Any = ()) -> RunResult:
        """Run ``index`` of the batch as a :class:`RunResult` (its recorded points only)."""
        if self.positions is None or self.loss is None or self.grad_norm is None or self.lr is None:
            raise ValueError("this batch was run with record=False; only final values were kept")
        idx = _index(index, self.batch_shape)
        n = int(self.n_points[idx])
        sel = (slice(0, n),) + idx
        extra: dict[str, Any] = {}
        if self.batch_shape:
            extra["index"] = list(idx)
        if self.schedule_params:
            extra["schedule_params"] = {k: _pick(v, idx, self.batch_shape) for k, v in self.schedule_params.items()}
        return RunResult(
            optimizer=self.optimizer,
            hyperparams=self.hyperparams_at(idx),
            trajectory=np.array(self.positions[sel]),
            loss=np.array(self.loss[sel]),
            grad_norm=np.array(self.grad_norm[sel]),
            lr=np.array(self.lr[(slice(0, max(n - 1, 0)),) + idx]),
            status=STATUSES[int(self.status_code[idx])],
            stopped_at=int(self.stopped_at[idx]),
            reason=self.reason(idx),
            label=self.label,
            schedule=self.schedule,
            extra=extra,
        )

    def runs(self) -> list[RunResult]:
        """Every run as a :class:`RunResult`, in C order of the batch."""
        return [self.run(idx) for idx in np.ndindex(self.batch_shape)]


# ------------------------------------------------------------------------------------------------
# the engine
# ------------------------------------------------------------------------------------------------
def run_batch(
    objective: Objective,
    optimizer: Optimizer,
    starts: Any,
    *,
    steps: int,
    schedule: Any = None,
    tol: float | None = None,
    target: float | None = None,
    bound: float | None = None,
    blowup: float | None = BLOWUP,
    blowup_floor: float = BLOWUP_FLOOR,
    record: bool = True,
    label: str = "",
    backend: str = "auto",
    cancel: Callable[[], bool] | None = None,
    noise: Noise | None = None,
) -> BatchRecord:
    """Run ``optimizer`` on ``objective`` from every start at once; see the module docstring.

    ``starts`` has shape ``S + (d,)``; the batch shape is ``S`` broadcast with the shapes of the
    optimizer's (and schedule's) array hyperparameters. ``schedule`` (an object with ``init``,
    ``lr(step, base_lr, state)``, ``observe(state, loss)`` and ``needs_loss``) sets the learning
    rate of update ``k + 1`` to ``schedule.lr(k, η, state)``, η being the optimizer's ``lr``.
    ``bound=None`` picks :func:`default_bound`; pass ``math.inf`` to disable it; ``blowup=None``
    disables the blow-up rule. ``record=False`` keeps only final values (for big sweeps).

    ``backend``: ``"auto"`` (default) runs the whole trajectory in one compiled loop
    (:mod:`gdlab.fast.trajectory`) when the objective is a landscape with a compiled form and the
    optimizer an elementwise rule, and the reference loop otherwise (also when
    :func:`gdlab.fast.set_backend` chose ``"reference"``); ``"reference"`` always runs the
    reference loop; ``"fused"`` raises ``ValueError`` saying why when the compiled loop cannot run.

    ``cancel``: a callback asked before the call starts, before every step of the reference loop
    and between the runs of a looped optimizer; when it answers True the call raises
    :class:`Cancelled` (a server stops the work of a client that went away). A fused call, which
    takes milliseconds, is not interrupted once it has started.

    ``noise``: stochastic gradients (:class:`~gdlab.core.noise.Noise`): the optimizer sees
    ``∇f(x) + (σ/√B)·ξ_t`` with ξ_t drawn from the noise's seed, one ``batch + (d,)`` array per step.
    Noisy runs always take the reference loop (the fused loop has no noise; ``backend="fused"`` with
    σ > 0 raises ``ValueError``); σ = 0 is the noiseless run, bit for bit, on either path.
    """
    if noise is not None and not isinstance(noise, Noise):
        raise TypeError(f"noise must be a gdlab.core.noise.Noise, got {type(noise).__name__}")
    noisy = noise is not None and not noise.is_off
    if backend not in ("auto", "reference", "fused"):
        raise ValueError(f"backend must be 'auto', 'reference' or 'fused', got {backend!r}")
    steps = _check_steps(steps)
    if not isinstance(objective, Objective):
        raise TypeError(f"objective must be a gdlab Objective, got {type(objective).__name__}")
    if not objective.has_value:
        raise TypeError(f"the run engine records the loss, but {type(objective).__name__} provides none")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be a gdlab Optimizer, got {type(optimizer).__name__}")
    rules = StoppingRules(tol=tol, target=target, blowup=blowup, blowup_floor=blowup_floor)
    x0 = as_params(np.asarray(starts, dtype=np.float64), "starts")
    shapes = hyper_shapes(optimizer) + (hyper_shapes(schedule) if schedule is not None else [])
    try:
        batch = np.broadcast_shapes(x0.shape[:-1], *shapes)
    except ValueError:
        raise ValueError(
            f"starts of shape {x0.shape} (batch {x0.shape[:-1]}) do not broadcast against the array "
            f"hyperparameters of shapes {shapes}; put starts on leading axes, e.g. (S, 1, d) with lr (L,)"
        ) from None
    if cancel is not None and cancel():
        raise Cancelled("cancelled before the first step")
    if noisy and backend == "fused":
        raise ValueError("backend='fused' cannot run this: the fused loop has no gradient noise (sigma > 0)")
    if not takes_batches(optimizer) and batch:
        if backend == "fused":
            raise ValueError(f"backend='fused' cannot run this: optimizer {optimizer.name!r} takes one run at a time")
        return _run_looped(objective, optimizer, x0, batch, steps=steps, schedule=schedule, tol=tol,
                           target=target, bound=bound, blowup=blowup, blowup_floor=blowup_floor,
                           record=record, label=label, cancel=cancel, noise=noise)
    size = math.prod(batch)
    if record and (steps + 1) * size * (x0.shape[-1] + 3) * 8 > LIMITS.max_record_bytes:
        raise ValueError(
            f"recording {size} runs x {steps + 1} points of dimension {x0.shape[-1]} needs more than "
            f"{LIMITS.max_record_bytes / 1e9:g} GB; use fewer runs or steps, or record=False (final values only)"
        )
    base_lr = base_learning_rate(optimizer)
    if schedule is not None and not np.all(np.isfinite(np.asarray(base_lr, dtype=float))):
        raise ValueError(f"optimizer {optimizer.name!r} has no learning rate for a schedule to drive")
    x0 = np.broadcast_to(x0, batch + x0.shape[-1:]).copy()
    rules = StoppingRules(tol=rules.tol, target=rules.target, blowup=rules.blowup, blowup_floor=rules.blowup_floor,
                          bound=default_bound(objective, x0) if bound is None else bound)
    result = None
    if not noisy and (backend == "fused" or (backend == "auto" and fast_config.get_backend() != "reference")):
        from gdlab.fast.trajectory import try_run  # imports numba: only when a run may be fused

        result = try_run(objective, optimizer, x0, batch, backend=backend, steps=steps, schedule=schedule,
                         rules=rules, record=record)
    if result is None:
        with np.errstate(all="ignore"):
            result = run_reference(objective, optimizer, x0, steps=steps, schedule=schedule, base_lr=base_lr,
                                   rules=rules, record=record, cancel=cancel, noise=noise if noisy else None)
    return assemble_record(optimizer, schedule, x0, batch, result, rules, steps=steps, label=label)


def assemble_record(optimizer: Optimizer, schedule: Any, x0: np.ndarray, batch: tuple[int, ...],
                    result: Trajectories, rules: StoppingRules, *, steps: int, label: str) -> BatchRecord:
    """The :class:`BatchRecord` of a finished batch, from what an executor returned."""
    sname, sparams = _schedule_info(schedule)
    rec = result.records
    return BatchRecord(
        optimizer=getattr(optimizer, "name", type(optimizer).__name__),
        hyperparams=optimizer.get_params(),
        batch_shape=batch,
        starts=x0,
        positions=None if rec is None else rec.positions,
        loss=None if rec is None else rec.loss,
        grad_norm=None if rec is None else rec.grad_norm,
        lr=None if rec is None else rec.lr,
        status_code=result.status_code,
        stopped_at=result.stopped_at,
        n_points=result.n_points,
        reason_code=result.reason_code,
        reason_value=result.reason_value,
        final_params=result.final_params,
        final_loss=result.final_loss,
        final_grad_norm=result.final_grad_norm,
        steps=steps,
        tol=rules.tol,
        target=rules.target,
        bound=rules.bound,
        blowup=rules.blowup if rules.blowup is not None else math.inf,
        label=label,
        schedule=sname,
        schedule_params=sparams,
    )


# ------------------------------------------------------------------------------------------------
# optimizers that take one run at a time
# ------------------------------------------------------------------------------------------------
def _run_looped(
    objective: Objective, optimizer: Optimizer, x0: np.ndarray, batch: tuple[int, ...], **kw: Any
) -> BatchRecord:
    """Loop over runs (only for optimizer classes with ``batched = False``) and stack the records.

    With noise, run ``i`` (in C order) draws from seed ``seed + i`` (modulo the largest seed + 1)."""
    x0 = np.broadcast_to(x0, batch + x0.shape[-1:])
    noise = kw.pop("noise", None)
    params = optimizer.get_params()
    schedule = kw.pop("schedule")
    sparams = schedule.get_params() if schedule is not None and hasattr(schedule, "get_params") else {}
    records = []
    for i, idx in enumerate(np.ndindex(batch)):
        noise_i = None if noise is None else replace(noise, seed=(noise.seed + i) % (LIMITS.max_noise_seed + 1))
        opt_i = type(optimizer)(**{k: _pick(v, idx, batch) for k, v in params.items()})
        sched_i = schedule
        if schedule is not None and any(isinstance(v, np.ndarray) for v in sparams.values()):
            sched_i = type(schedule)(**{k: _pick(v, idx, batch) for k, v in sparams.items()})
        records.append(run_batch(objective, opt_i, x0[idx], schedule=sched_i, noise=noise_i, **kw))
    return _stack(records, optimizer, x0, batch, kw["record"])


def _stack(records: list[BatchRecord], optimizer: Optimizer, x0: np.ndarray, batch: tuple[int, ...],
           record: bool) -> BatchRecord:
    first = records[0]
    length = max((r.loss.shape[0] if r.loss is not None else 1) for r in records)

    def pad(arr: np.ndarray | None, n: int) -> np.ndarray | None:
        if arr is None:
            return None
        if arr.shape[0] == n:
            return arr
        if arr.shape[0] == 0:
            return np.full((n,) + arr.shape[1:], np.nan)
        return np.concatenate([arr, np.repeat(arr[-1:], n - arr.shape[0], axis=0)])

    def gather(name: str, n: int | None = None) -> np.ndarray | None:
        parts = [getattr(r, name) for r in records]
        if parts[0] is None:
            return None
        if n is not None:
            parts = [pad(p, n) for p in parts]
            out = np.stack(parts, axis=1)
            return out.reshape(out.shape[:1] + batch + out.shape[2:])
        out = np.stack([np.asarray(p) for p in parts])
        return out.reshape(batch + out.shape[1:])

    bounds = [np.asarray(r.bound, dtype=np.float64) for r in records]
    return BatchRecord(
        optimizer=first.optimizer,
        hyperparams=optimizer.get_params(),
        batch_shape=batch,
        starts=np.array(x0),
        positions=gather("positions", length) if record else None,
        loss=gather("loss", length) if record else None,
        grad_norm=gather("grad_norm", length) if record else None,
        lr=gather("lr", length - 1) if record else None,
        status_code=gather("status_code"),  # type: ignore[arg-type]
        stopped_at=gather("stopped_at"),  # type: ignore[arg-type]
        n_points=gather("n_points"),  # type: ignore[arg-type]
        reason_code=gather("reason_code"),  # type: ignore[arg-type]
        reason_value=gather("reason_value"),  # type: ignore[arg-type]
        final_params=gather("final_params"),  # type: ignore[arg-type]
        final_loss=gather("final_loss"),  # type: ignore[arg-type]
        final_grad_norm=gather("final_grad_norm"),  # type: ignore[arg-type]
        steps=first.steps,
        tol=first.tol,
        target=first.target,
        bound=np.stack(bounds).reshape(batch + bounds[0].shape),
        blowup=first.blowup,
        label=first.label,
        schedule=first.schedule,
        schedule_params=first.schedule_params,
        looped=True,
    )


# ------------------------------------------------------------------------------------------------
# conveniences
# ------------------------------------------------------------------------------------------------
@dataclass
class RunSpec:
    """One entry of a comparison: an optimizer with its hyperparameters and optional schedule."""

    optimizer: str
    hyperparams: dict[str, Any] = field(default_factory=dict)
    schedule: str | None = None
    schedule_params: dict[str, Any] = field(default_factory=dict)
    label: str = ""

    @classmethod
    def coerce(cls, spec: Any) -> RunSpec:
        """A :class:`RunSpec` from itself, a dict of its fields, a name, or ``(name, hyperparams)``."""
        if isinstance(spec, RunSpec):
            return spec
        if isinstance(spec, str):
            return cls(spec)
        if isinstance(spec, Mapping):
            unknown = set(spec) - {"optimizer", "hyperparams", "schedule", "schedule_params", "label"}
            if unknown:
                raise TypeError(f"unknown run spec fields {sorted(unknown)}")
            return cls(**spec)
        if isinstance(spec, Sequence) and len(spec) == 2:
            return cls(spec[0], dict(spec[1]))
        raise TypeError(f"cannot read a run spec from {spec!r}")

    def make_optimizer(self) -> Optimizer:
        if ":" in self.optimizer:  # a foreign optimizer (torch:..., module:RuleClass)
            from gdlab.foreign import make_foreign

            return make_foreign(self.optimizer, **self.hyperparams)
        return make_optimizer(self.optimizer, **self.hyperparams)

    def make_schedule(self) -> Any:
        if self.schedule is None:
            return None
        return make_schedule(self.schedule, **self.schedule_params)

    def display(self) -> str:
        """The label, or ``name k=v ...`` when there is none."""
        if self.label:
            return self.label
        text = self.optimizer + _format_params(self.hyperparams)
        if self.schedule:
            text += f" +{self.schedule}" + _format_params(self.schedule_params)
        return text


def run_single(
    objective: Objective,
    optimizer: Optimizer | str,
    start: Any,
    *,
    steps: int,
    hyperparams: Mapping[str, Any] | None = None,
    schedule: Any = None,
    tol: float | None = None,
    target: float | None = None,
    bound: float | None = None,
    blowup: float | None = 1e8,
    label: str = "",
    noise: Noise | None = None,
) -> RunResult:
    """One run from one start (``start`` of shape ``(d,)``) as a :class:`RunResult`.

    ``optimizer`` is an :class:`Optimizer` or a registry name built with ``hyperparams``;
    ``schedule`` is a schedule object or a name (built with defaults); ``noise``: stochastic gradients
    (see :func:`run_batch`).
    """
    if isinstance(optimizer, str):
        optimizer = RunSpec(optimizer, dict(hyperparams or {})).make_optimizer()
    elif hyperparams:
        raise TypeError("pass hyperparams only with an optimizer name")
    if isinstance(schedule, str):
        schedule = RunSpec("sgd", schedule=schedule).make_schedule()
    x = as_params(np.asarray(start, dtype=np.float64), "start")
    if x.ndim != 1:
        raise ValueError(f"run_single takes one start of shape (d,), got shape {x.shape}; use run_batch")
    rec = run_batch(objective, optimizer, x, steps=steps, schedule=schedule, tol=tol, target=target,
                    bound=bound, blowup=blowup, label=label, noise=noise)
    if rec.batch_shape:
        raise ValueError(
            f"run_single needs scalar hyperparameters, but they make a batch of shape {rec.batch_shape}; use run_batch"
        )
    res = rec.run(())
    if noise is not None:
        res.extra["noise"] = noise.to_dict()
    return res


def compare(
    objective: Objective,
    specs: Sequence[Any],
    start: Any,
    steps: int,
    *,
    tol: float | None = None,
    target: float | None = None,
    bound: float | None = None,
    blowup: float | None = 1e8,
    noise: Noise | None = None,
) -> list[RunResult]:
    """Run several optimizers (each a :class:`RunSpec`, dict or ``(name, hyperparams)``) from one start.

    Each spec is one engine call (different optimizers cannot share a call). Results carry the
    spec's label (or ``name k=v ...``); when ``objective`` knows its minima (a landscape),
    ``extra`` holds the nearest minimum and the distance to it. ``noise`` applies to every run, each
    drawing the same sequence from its seed (the optimizers see the same gradient noise).
    """
    out = []
    for raw in specs:
        spec = RunSpec.coerce(raw)
        res = run_single(objective, spec.make_optimizer(), start, steps=steps, schedule=spec.make_schedule(),
                         tol=tol, target=target, bound=bound, blowup=blowup, label=spec.display(), noise=noise)
        if spec.schedule_params:
            res.extra["schedule_params"] = dict(spec.schedule_params)
        near = nearest_known_minimum(objective, res.final_point)
        if near is not None:
            res.extra["nearest_minimum"] = near
        out.append(res)
    return out


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def takes_batches(optimizer: Optimizer) -> bool:
    """Whether ``optimizer.step`` accepts a batch of runs.

    An optimizer class that takes one run at a time says so with ``batched = False`` (L-BFGS: its
    history and line search belong to one problem).
    """
    return bool(getattr(type(optimizer), "batched", True))


def base_learning_rate(optimizer: Any) -> Any:
    """The configured learning rate of ``optimizer``, looking inside wrappers (SAM's ``base``,
    a transform chain's ``optimizer``/``inner``); NaN when there is none."""
    seen = 0
    while optimizer is not None and seen < 8:
        if hasattr(optimizer, "lr"):
            return optimizer.lr
        optimizer = next((getattr(optimizer, a) for a in ("base", "optimizer", "inner")
                          if isinstance(getattr(optimizer, a, None), Optimizer)), None)
        seen += 1
    return math.nan


def default_bound(objective: Objective, starts: np.ndarray) -> np.ndarray | float:
    """The divergence box of each run: ``BOUND_FACTOR × max(domain extent, max_i |start_i|)``.

    The domain extent is ``max |lo|, |hi|`` over the objective's ``domain`` (a landscape's plotting
    box). Objectives without a domain get no bound (``inf``): only the other rules apply.
    """
    domain = getattr(objective, "domain", None)
    if domain is None:
        return math.inf
    try:
        extent = float(np.max(np.abs(np.asarray(domain, dtype=np.float64))))
    except (TypeError, ValueError):
        return math.inf
    return BOUND_FACTOR * np.maximum(extent, run_absmax(starts))


def hyper_shapes(obj: Any) -> list[tuple[int, ...]]:
    """Shapes of the array-valued hyperparameters of ``obj`` (pairs and nested values included)."""
    if obj is None or not hasattr(obj, "get_params"):
        return []
    shapes: list[tuple[int, ...]] = []

    def visit(v: Any) -> None:
        if isinstance(v, np.ndarray) and v.ndim > 0:
            shapes.append(v.shape)
        elif isinstance(v, tuple | list):
            for item in v:
                visit(item)
        elif isinstance(v, dict):
            for item in v.values():
                visit(item)
        elif hasattr(v, "get_params") and v is not obj:
            shapes.extend(hyper_shapes(v))

    for value in obj.get_params().values():
        visit(value)
    return shapes


def _pick(value: Any, idx: tuple[int, ...], batch: tuple[int, ...]) -> Any:
    """The value of one run: arrays broadcast to ``batch`` and indexed, pairs element by element."""
    if isinstance(value, np.ndarray) and value.ndim > 0:
        return float(np.broadcast_to(value, batch)[idx])
    if isinstance(value, tuple):
        return tuple(_pick(v, idx, batch) for v in value)
    if isinstance(value, dict):
        return {k: _pick(v, idx, batch) for k, v in value.items()}
    return value


def _index(index: Any, batch: tuple[int, ...]) -> tuple[int, ...]:
    if isinstance(index, int | np.integer):
        index = np.unravel_index(int(index), batch) if batch else ()
    idx = tuple(int(i) for i in index)
    if len(idx) != len(batch):
        raise IndexError(f"run index {idx} does not match the batch shape {batch}")
    return idx


def _schedule_info(schedule: Any) -> tuple[str | None, dict[str, Any]]:
    if schedule is None:
        return None, {}
    name = getattr(schedule, "name", None) or type(schedule).__name__
    params = schedule.get_params() if hasattr(schedule, "get_params") else {}
    return name, dict(params)


def _check_steps(steps: Any) -> int:
    if isinstance(steps, bool) or not isinstance(steps, int | np.integer):
        raise TypeError(f"steps must be an integer, got {steps!r}")
    if not 0 <= int(steps) <= LIMITS.max_steps:
        raise ValueError(f"steps must be between 0 and {LIMITS.max_steps}, got {steps}")
    return int(steps)


def _format_params(params: Mapping[str, Any]) -> str:
    return "".join(f" {k}={format_hyperparam(v)}" for k, v in params.items())
