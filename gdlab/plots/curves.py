"""Curves over steps: loss, distance to the nearest minimum, learning-rate schedules, lr sweeps."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from gdlab.plots.style import DIVERGED_MARK, finite_prefix, new_figure, run_colour, run_label


def loss_figure(
    runs: Sequence[Any],
    *,
    size: tuple[int, int] = (1000, 600),
    dpi: int = 100,
    log: bool = True,
    title: str = "loss vs step",
    x_label: str = "step",
) -> Figure:
    """Loss against step for several runs on one axis (log scale when every loss is positive)."""
    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    all_positive = True
    for i, run in enumerate(runs):
        loss = np.asarray(run.loss, dtype=np.float64)
        n = min(finite_prefix(run) or len(loss), len(loss))
        loss = loss[:n][np.isfinite(loss[:n])]
        all_positive &= bool(np.all(loss > 0))
        ax.plot(np.arange(len(loss)), loss, color=run_colour(i), lw=1.8, label=run_label(run))
        if run.status == "diverged" and len(loss):
            ax.plot(len(loss) - 1, loss[-1], DIVERGED_MARK, color=run_colour(i), ms=10, mec="black")
    if log and all_positive:
        ax.set_yscale("log")
    _finish(ax, x_label, "loss", title, bool(runs))
    return fig


def distance_figure(
    runs: Sequence[Any],
    minima: Sequence[Sequence[float]],
    *,
    size: tuple[int, int] = (1000, 600),
    dpi: int = 100,
    title: str = "distance to the nearest minimum",
) -> Figure:
    """Euclidean distance from each iterate to the nearest of ``minima``, log scale."""
    if len(minima) == 0:
        raise ValueError("no known minimum to measure the distance to")
    points = np.asarray(minima, dtype=np.float64)
    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    for i, run in enumerate(runs):
        path = np.asarray(run.trajectory)[: finite_prefix(run)]
        if len(path) == 0:
            continue
        dist = np.min(np.linalg.norm(path[:, None, :] - points[None, :, :], axis=-1), axis=1)
        ax.plot(np.arange(len(dist)), np.maximum(dist, 1e-300), color=run_colour(i), lw=1.8, label=run_label(run))
    ax.set_yscale("log")
    _finish(ax, "step", "distance", title, bool(runs))
    return fig


def series_figure(
    series: Mapping[str, Sequence[float] | tuple[Sequence[float], Sequence[float]]],
    *,
    x_label: str = "step",
    y_label: str = "value",
    title: str = "",
    log: bool = False,
    size: tuple[int, int] = (1000, 600),
    dpi: int = 100,
) -> Figure:
    """Labelled curves on one axis: each value is ``y`` (plotted against 0, 1, ...) or ``(x, y)``."""
    if not series:
        raise ValueError(f"nothing to draw for {title or y_label!r}")
    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    for i, (label, values) in enumerate(series.items()):
        if isinstance(values, tuple):
            x, y = (np.asarray(v, dtype=np.float64) for v in values)
        else:
            y = np.asarray(values, dtype=np.float64)
            x = np.arange(len(y))
        ax.plot(x, y, color=run_colour(i), lw=2.0, label=label)
    if log:
        ax.set_yscale("log")
    _finish(ax, x_label, y_label, title, True)
    return fig


def schedule_figure(
    curves: Mapping[str, Sequence[float]],
    *,
    size: tuple[int, int] = (1000, 600),
    dpi: int = 100,
    title: str = "learning-rate schedule",
) -> Figure:
    """One or several learning-rate curves (label → lr per step) on one axis."""
    if not curves:
        raise ValueError("no schedule to draw")
    return series_figure(curves, x_label="step", y_label="learning rate", title=title, size=size, dpi=dpi)


def sweep_figure(
    sweeps: Mapping[str, tuple[Sequence[float], Sequence[float], Sequence[bool]]],
    *,
    critical_lr: float | None = None,
    size: tuple[int, int] = (1000, 600),
    dpi: int = 100,
    title: str = "final loss vs learning rate",
) -> Figure:
    """Final loss against learning rate (log-log), one curve per optimizer.

    ``sweeps`` maps a label to ``(lrs, final_loss, diverged)``; diverged runs are marked with ✕ at
    the top of the axis. ``critical_lr`` (GD's 2/λmax) is drawn as a vertical dashed line.
    """
    if not sweeps:
        raise ValueError("no sweep to draw")
    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    finite_values = [
        v
        for _, loss, div in sweeps.values()
        for v, d in zip(loss, div, strict=True)
        if not d and np.isfinite(v) and v > 0
    ]
    top = max(finite_values) * 10 if finite_values else 1.0
    for i, (label, (lrs, loss, diverged)) in enumerate(sweeps.items()):
        lrs_a = np.asarray(lrs, dtype=np.float64)
        loss_a = np.asarray(loss, dtype=np.float64)
        div = np.asarray(diverged, dtype=bool)
        ok = ~div & np.isfinite(loss_a) & (loss_a > 0)
        colour = run_colour(i)
        ax.plot(lrs_a[ok], loss_a[ok], "o-", color=colour, lw=1.8, ms=4, label=label)
        if div.any():
            ax.plot(lrs_a[div], np.full(div.sum(), top), DIVERGED_MARK, color=colour, ms=9,
                    label=f"{label}: diverged")
    if critical_lr is not None and np.isfinite(critical_lr):
        ax.axvline(critical_lr, color="black", ls="--", lw=1.2, label=f"GD critical lr 2/λmax = {critical_lr:.3g}")
    ax.set_xscale("log")
    if finite_values:
        ax.set_yscale("log")
    _finish(ax, "learning rate", "final loss", title, True)
    return fig


def _finish(ax: Any, xlabel: str, ylabel: str, title: str, legend: bool) -> None:
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    if legend:
        ax.legend(fontsize="small")
