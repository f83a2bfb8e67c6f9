"""Landscape pictures with optimizer paths: contour map (2-D), curve (1-D) and 3-D surface."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from matplotlib.colors import BoundaryNorm
from matplotlib.figure import Figure

from gdlab.plots.levels import contour_levels, landscape_grid
from gdlab.plots.style import DIVERGED_MARK, LANDSCAPE_CMAP, finite_prefix, new_figure, run_colour, run_label


def contour_figure(
    landscape: Any,
    runs: Sequence[Any] = (),
    *,
    size: tuple[int, int] = (1200, 900),
    dpi: int = 100,
    grid: int = 300,
    levels: int = 30,
    title: str | None = None,
    domain: tuple[tuple[float, float], ...] | None = None,
) -> Figure:
    """Contour map of a 2-D landscape with each run's path in its own colour.

    Start points are circles, end points squares (an ✕ where a run diverged), global minima are
    stars. 1-D landscapes are drawn as the curve f(x) with each run's iterates on it.
    """
    fig = new_figure(size, dpi)
    draw_landscape(fig.add_subplot(), landscape, runs, grid=grid, levels=levels, title=title, domain=domain)
    return fig


def draw_landscape(
    ax: Any,
    landscape: Any,
    runs: Sequence[Any] = (),
    *,
    grid: int = 300,
    levels: int = 30,
    title: str | None = None,
    domain: tuple[tuple[float, float], ...] | None = None,
) -> None:
    """Draw :func:`contour_figure`'s picture into an existing axes (for multi-panel figures)."""
    if landscape.dim == 1:
        _draw_curve(ax, landscape, runs, domain)
    else:
        X, Y, Z = landscape_grid(landscape, grid, domain)
        lv, is_log = contour_levels(Z, levels)
        norm = BoundaryNorm(lv, 256, extend="both") if is_log else None
        ax.contourf(X, Y, Z, levels=lv, cmap=LANDSCAPE_CMAP, norm=norm, alpha=0.55, extend="both")
        ax.contour(X, Y, Z, levels=lv, colors="#555555", linewidths=0.4, alpha=0.6)
        for run_index, run in enumerate(runs):
            _draw_path(ax, run, run_colour(run_index))
        _mark_minima(ax, landscape)
        (x0, x1), (y0, y1) = (domain or landscape.domain)[:2]
        ax.set_xlim(x0, x1)
        ax.set_ylim(y0, y1)
        ax.set_xlabel("x")
        ax.set_ylabel("y")
    ax.set_title(title or getattr(landscape, "name", ""))
    if runs:
        ax.legend(loc="upper right", fontsize="small", framealpha=0.85)


def _draw_path(ax: Any, run: Any, colour: str) -> None:
    n = finite_prefix(run)
    if n == 0:
        return
    path = np.asarray(run.trajectory)[:n]
    ax.plot(path[:, 0], path[:, 1], "-", color=colour, lw=2.0, label=run_label(run), zorder=3)
    ax.plot(path[0, 0], path[0, 1], "o", color=colour, ms=8, mec="white", zorder=4)
    end_marker = DIVERGED_MARK if run.status == "diverged" else "s"
    ax.plot(path[-1, 0], path[-1, 1], end_marker, color=colour, ms=9, mec="black", zorder=4)


def _mark_minima(ax: Any, landscape: Any) -> None:
    minima = list(getattr(landscape, "global_minima", []))
    for i, point in enumerate(minima):
        loc = point.location
        ax.plot(loc[0], loc[1], "*", color="gold", ms=16, mec="black", zorder=5,
                label="global minimum" if i == 0 else None)


def _draw_curve(ax: Any, landscape: Any, runs: Sequence[Any], domain: Any) -> None:
    lo, hi = (domain or landscape.domain)[0]
    xs = np.linspace(lo, hi, 600)
    with np.errstate(all="ignore"):
        ys = np.asarray(landscape.value(xs[:, None]), dtype=np.float64)
    ax.plot(xs, ys, color="#444444", lw=1.5)
    for run_index, run in enumerate(runs):
        colour = run_colour(run_index)
        n = finite_prefix(run)
        if n == 0:
            continue
        path = np.asarray(run.trajectory)[:n, 0]
        with np.errstate(all="ignore"):
            fx = np.asarray(landscape.value(path[:, None]), dtype=np.float64)
        ax.plot(path, fx, "o-", color=colour, ms=3, lw=0.8, alpha=0.8, label=run_label(run))
        ax.plot(path[-1], fx[-1], "s", color=colour, ms=9, mec="black")
    for point in getattr(landscape, "global_minima", []):
        ax.plot(point.location[0], point.value, "*", color="gold", ms=16, mec="black")
    finite = ys[np.isfinite(ys)]
    if finite.size:
        span = finite.max() - finite.min()
        ax.set_ylim(finite.min() - 0.05 * span, finite.max() + 0.05 * span)
    ax.set_xlim(lo, hi)
    ax.set_xlabel("x")
    ax.set_ylabel("f(x)")


def surface_figure(
    landscape: Any,
    runs: Sequence[Any] = (),
    *,
    size: tuple[int, int] = (1200, 900),
    dpi: int = 100,
    grid: int = 120,
    elev: float = 35.0,
    azim: float = -60.0,
    title: str | None = None,
) -> Figure:
    """3-D surface of a 2-D landscape with the runs' paths lifted onto it (z = f(path))."""
    if landscape.dim != 2:
        raise ValueError(f"a 3-D surface needs a 2-D landscape; {landscape.name!r} has {landscape.dim} dimension(s)")
    fig = new_figure(size, dpi)
    ax = fig.add_subplot(projection="3d")
    X, Y, Z = landscape_grid(landscape, grid)
    ax.plot_surface(X, Y, Z.filled(np.nan), cmap="viridis", alpha=0.6, linewidth=0, antialiased=True)
    for run_index, run in enumerate(runs):
        n = finite_prefix(run)
        if n == 0:
            continue
        path = np.asarray(run.trajectory)[:n]
        with np.errstate(all="ignore"):
            z = np.asarray(landscape.value(path), dtype=np.float64)
        colour = run_colour(run_index)
        ax.plot(path[:, 0], path[:, 1], z, "-", color=colour, lw=2.5, label=run_label(run), zorder=10)
        ax.scatter(path[-1, 0], path[-1, 1], z[-1], color=colour, s=40, edgecolors="black")
    ax.view_init(elev=elev, azim=azim)
    ax.set_xlabel("x")
    ax.set_ylabel("y")
    ax.set_zlabel("f")
    ax.set_title(title or landscape.name)
    if runs:
        ax.legend(loc="upper right", fontsize="small")
    return fig
