"""Sweeps: many runs of one optimizer in one batched engine call.

- :func:`lr_sweep`: final loss (and status) against the learning rate. With L learning rates and S
  starts the optimizer gets ``lr`` of shape ``(L,)`` and the starts shape ``(S, 1, d)``: one
  :func:`~gdlab.engine.run.run_batch` call advances all ``S × L`` runs.
- :func:`basin_map`: a grid of starts over a 2-D box, each labelled with the minimum it reached
  (basins of attraction), divergence, or neither, and the number of steps it took; one call.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from gdlab.core.objective import Objective
from gdlab.core.optimizer import Optimizer
from gdlab.engine.analysis import known_minima
from gdlab.engine.result import STATUSES, jsonable
from gdlab.engine.run import DIVERGED, BatchRecord, run_batch

#: Basin codes besides the index of a minimum.
NO_MINIMUM = -1  # ended (converged or not) away from every known minimum
DIVERGED_CODE = -2


@dataclass
class LrSweep:
    """Final loss against learning rate: arrays of shape ``(L,)``, or ``(S, L)`` for S starts."""

    optimizer: str
    hyperparams: dict[str, Any]
    lrs: np.ndarray
    starts: np.ndarray
    final_loss: np.ndarray
    final_point: np.ndarray
    status: np.ndarray  # strings
    stopped_at: np.ndarray
    reasons: np.ndarray
    steps: int
    schedule: str | None = None
    looped: bool = False

    def best(self) -> dict[str, Any]:
        """The learning rate with the lowest final loss among the non-diverged runs (first start)."""
        loss = self.final_loss if self.final_loss.ndim == 1 else self.final_loss[0]
        status = self.status if self.status.ndim == 1 else self.status[0]
        ok = status != "diverged"
        if not ok.any():
            return {"lr": None, "final_loss": None}
        i = int(np.argmin(np.where(ok, loss, np.inf)))
        return {"lr": float(self.lrs[i]), "final_loss": float(loss[i])}

    def to_json(self) -> dict[str, Any]:
        return jsonable({
            "optimizer": self.optimizer,
            "hyperparams": {k: v for k, v in self.hyperparams.items() if k != "lr"},
            "schedule": self.schedule,
            "steps": self.steps,
            "lrs": self.lrs,
            "starts": self.starts,
            "final_loss": self.final_loss,
            "final_point": self.final_point,
            "status": self.status.tolist(),
            "stopped_at": self.stopped_at,
            "reason": self.reasons.tolist(),
            "best": self.best(),
        })


def lr_sweep(
    objective: Objective,
    optimizer: str,
    lrs: Any,
    start: Any,
    *,
    steps: int,
    hyperparams: Mapping[str, Any] | None = None,
    schedule: Any = None,
    tol: float | None = None,
    target: float | None = None,
    bound: float | None = None,
    blowup: float | None = 1e8,
) -> LrSweep:
    """Run ``optimizer`` (a registry name) with every learning rate in ``lrs`` from ``start``.

    ``start`` is one point ``(d,)`` or several ``(S, d)``. All runs are one engine call with an
    ``lr`` array; an optimizer whose ``lr`` cannot be an array (L-BFGS) is run once per rate.
    """
    make_optimizer = _maker(optimizer)
    rates = np.asarray(lrs, dtype=np.float64)
    if rates.ndim != 1 or rates.size == 0:
        raise ValueError(f"lrs must be a non-empty 1-D list of learning rates, got shape {rates.shape}")
    x = np.asarray(start, dtype=np.float64)
    if x.ndim not in (1, 2):
        raise ValueError(f"start must have shape (d,) or (S, d), got {x.shape}")
    hp = dict(hyperparams or {})
    if "lr" in hp:
        raise TypeError("lr_sweep sets lr itself; do not pass it in hyperparams")
    starts = x if x.ndim == 1 else x[:, None, :]
    kw = dict(steps=steps, schedule=schedule, tol=tol, target=target, bound=bound, blowup=blowup, record=False)
    try:
        opt = make_optimizer(optimizer, lr=rates, **hp)
    except TypeError as err:
        if "single number" not in str(err):
            raise
        opt = None
    if opt is not None:
        rec = run_batch(objective, opt, starts, **kw)
        looped = rec.looped
        base = opt.get_params()
    else:  # lr cannot be batched: one call per rate, stacked on the last batch axis
        recs = [run_batch(objective, make_optimizer(optimizer, lr=float(r), **hp), x, **kw) for r in rates]
        rec = _stack_last(recs)
        looped = True
        base = make_optimizer(optimizer, lr=float(rates[0]), **hp).get_params()
    return LrSweep(
        optimizer=optimizer,
        hyperparams=base,
        lrs=rates,
        starts=x,
        final_loss=rec.final_loss,
        final_point=rec.final_params,
        status=rec.status,
        stopped_at=rec.stopped_at,
        reasons=rec.reasons(),
        steps=int(steps),
        schedule=rec.schedule,
        looped=looped,
    )


def _stack_last(recs: list[BatchRecord]) -> BatchRecord:
    """Stack records of equal batch shape along a new last batch axis (final values only)."""
    first = recs[0]

    def st(name: str) -> np.ndarray:
        parts = [np.asarray(getattr(r, name)) for r in recs]
        nb = len(first.batch_shape)
        return np.stack(parts, axis=nb)

    return BatchRecord(
        optimizer=first.optimizer, hyperparams=first.hyperparams, batch_shape=first.batch_shape + (len(recs),),
        starts=st("starts"), positions=None, loss=None, grad_norm=None, lr=None,
        status_code=st("status_code"), stopped_at=st("stopped_at"), n_points=st("n_points"),
        reason_code=st("reason_code"), reason_value=st("reason_value"), final_params=st("final_params"),
        final_loss=st("final_loss"), final_grad_norm=st("final_grad_norm"), steps=first.steps, tol=first.tol,
        target=first.target, bound=np.stack([np.broadcast_to(np.asarray(r.bound, dtype=float), first.batch_shape)
                                             for r in recs], axis=-1),
        blowup=first.blowup, label=first.label, schedule=first.schedule, schedule_params=first.schedule_params,
        looped=True,
    )


@dataclass
class BasinMap:
    """Which minimum each start of a grid reaches: ``basin[j, i]`` for the start ``(xs[i], ys[j])``.

    ``basin`` ≥ 0 indexes :attr:`minima`; ``-1`` (:data:`NO_MINIMUM`) means the run ended farther
    than ``radius`` from every minimum (still on its way, or stuck elsewhere); ``-2``
    (:data:`DIVERGED_CODE`) means it diverged. ``steps_taken`` is each run's ``stopped_at``.
    """

    optimizer: str
    hyperparams: dict[str, Any]
    xs: np.ndarray
    ys: np.ndarray
    basin: np.ndarray  # (ny, nx) int
    steps_taken: np.ndarray  # (ny, nx) int
    status: np.ndarray  # (ny, nx) strings
    final_points: np.ndarray  # (ny, nx, 2)
    minima: list[dict[str, Any]]
    minima_source: str  # "known" (the landscape's) or "clustered" (found from the end points)
    radius: float
    steps: int
    tol: float | None
    extra: dict[str, Any] = field(default_factory=dict)

    def counts(self) -> dict[str, int]:
        """Number of starts per outcome: ``minimum 0``, ..., ``no minimum``, ``diverged``."""
        out = {f"minimum {i}": int(np.sum(self.basin == i)) for i in range(len(self.minima))}
        out["no minimum"] = int(np.sum(self.basin == NO_MINIMUM))
        out["diverged"] = int(np.sum(self.basin == DIVERGED_CODE))
        return out

    def render(self) -> str:
        """The map as text, top row = largest y: digits/letters = minima, ``.`` none, ``x`` diverged."""
        symbols = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
        rows = []
        for j in range(len(self.ys) - 1, -1, -1):
            row = []
            for code in self.basin[j]:
                c = int(code)
                row.append("x" if c == DIVERGED_CODE else "." if c < 0 else symbols[c] if c < len(symbols) else "+")
            rows.append("".join(row))
        return "\n".join(rows)

    def to_json(self) -> dict[str, Any]:
        return jsonable({
            "optimizer": self.optimizer,
            "hyperparams": self.hyperparams,
            "xs": self.xs,
            "ys": self.ys,
            "basin": self.basin,
            "steps_taken": self.steps_taken,
            "status": self.status.tolist(),
            "minima": self.minima,
            "minima_source": self.minima_source,
            "radius": self.radius,
            "steps": self.steps,
            "tol": self.tol,
            "counts": self.counts(),
            "codes": {"-1": "no known minimum reached", "-2": "diverged"},
            **self.extra,
        })


def basin_map(
    objective: Objective,
    optimizer: Optimizer | str,
    *,
    hyperparams: Mapping[str, Any] | None = None,
    xlim: tuple[float, float] | None = None,
    ylim: tuple[float, float] | None = None,
    resolution: int | tuple[int, int] = 41,
    steps: int = 500,
    tol: float | None = 1e-6,
    radius: float | None = None,
    schedule: Any = None,
    bound: float | None = None,
) -> BasinMap:
    """Basins of attraction of ``optimizer`` on a 2-D ``objective`` over ``xlim × ylim``.

    The box defaults to the objective's ``domain``. ``resolution`` is ``n`` or ``(nx, ny)`` grid
    points. A run's end point belongs to the minimum within ``radius`` (default 2% of the larger
    side of the box) of it; minima are the landscape's known ones, or, when it knows none, found by
    grouping the end points of converged runs that lie within ``radius`` of each other.
    """
    opt = _maker(optimizer)(optimizer, **dict(hyperparams or {})) if isinstance(optimizer, str) else optimizer
    if hyperparams and not isinstance(optimizer, str):
        raise TypeError("pass hyperparams only with an optimizer name")
    domain = getattr(objective, "domain", None)
    if xlim is None or ylim is None:
        if domain is None:
            raise ValueError("the objective has no domain; give xlim and ylim")
        dom = np.asarray(domain, dtype=np.float64)
        if dom.shape != (2, 2):
            raise ValueError(f"basin maps need a 2-D objective, got a domain of shape {dom.shape}")
        xlim = xlim if xlim is not None else (float(dom[0, 0]), float(dom[0, 1]))
        ylim = ylim if ylim is not None else (float(dom[1, 0]), float(dom[1, 1]))
    nx, ny = (resolution, resolution) if isinstance(resolution, int | np.integer) else resolution
    nx, ny = int(nx), int(ny)
    if not (2 <= nx <= 1000 and 2 <= ny <= 1000):
        raise ValueError(f"resolution must be between 2 and 1000 points per axis, got {nx} x {ny}")
    for name, lim in (("xlim", xlim), ("ylim", ylim)):
        if not (len(lim) == 2 and all(math.isfinite(float(v)) for v in lim) and float(lim[0]) < float(lim[1])):
            raise ValueError(f"{name} must be two finite numbers lo < hi, got {lim!r}")
    xs = np.linspace(float(xlim[0]), float(xlim[1]), nx)
    ys = np.linspace(float(ylim[0]), float(ylim[1]), ny)
    starts = np.stack(np.meshgrid(xs, ys), axis=-1)  # (ny, nx, 2)
    rec = run_batch(objective, opt, starts, steps=steps, schedule=schedule, tol=tol, bound=bound, record=False)
    if rec.batch_shape != (ny, nx):
        raise ValueError(
            f"basin maps need scalar hyperparameters (one map), but they make a batch of {rec.batch_shape}"
        )
    if radius is None:
        radius = 0.02 * max(xs[-1] - xs[0], ys[-1] - ys[0])
    if not radius > 0:
        raise ValueError(f"radius must be > 0, got {radius}")
    ends = rec.final_params
    diverged = rec.status_code == DIVERGED
    minima = known_minima(objective)
    source = "known"
    if not minima:
        source = "clustered"
        minima = _cluster(ends[(rec.status_code == 0) & ~diverged], float(radius), objective)
    basin = np.full((ny, nx), NO_MINIMUM, dtype=np.int64)
    if minima:
        locs = np.stack([m["location"] for m in minima])  # (M, 2)
        dist = np.linalg.norm(ends[:, :, None, :] - locs, axis=-1)  # (ny, nx, M)
        nearest = np.argmin(dist, axis=-1)
        close = np.take_along_axis(dist, nearest[..., None], axis=-1)[..., 0] <= radius
        basin = np.where(close, nearest, NO_MINIMUM)
    basin = np.where(diverged, DIVERGED_CODE, basin)
    return BasinMap(
        optimizer=rec.optimizer, hyperparams=rec.hyperparams, xs=xs, ys=ys, basin=basin,
        steps_taken=rec.stopped_at, status=rec.status, final_points=ends, minima=minima, minima_source=source,
        radius=float(radius), steps=int(steps), tol=tol,
    )


def _cluster(points: np.ndarray, radius: float, objective: Objective) -> list[dict[str, Any]]:
    """Greedy grouping of end points within ``radius``; each group's mean is a found minimum.

    Loops over the groups found (few), never over points; groups sorted by loss value.
    """
    remaining = points.reshape(-1, points.shape[-1])
    centres = []
    while len(remaining):
        seed = remaining[0]
        near = np.linalg.norm(remaining - seed, axis=-1) <= radius
        centres.append(remaining[near].mean(axis=0))
        remaining = remaining[~near]
        if len(centres) > 64:
            break
    out = []
    for c in centres:
        val = float(np.asarray(objective.value(c)))
        out.append({"location": c, "value": val, "kind": "found"})
    out.sort(key=lambda m: m["value"])
    return out


__all__ = ["DIVERGED_CODE", "NO_MINIMUM", "STATUSES", "BasinMap", "LrSweep", "basin_map", "lr_sweep"]


def _maker(name: Any) -> Any:
    """``make_optimizer``, or :func:`gdlab.foreign.make_foreign` for a foreign name (``torch:...``)."""
    if isinstance(name, str) and ":" in name:
        from gdlab.foreign import make_foreign

        return make_foreign
    from gdlab.core.optimizers import make_optimizer

    return make_optimizer
