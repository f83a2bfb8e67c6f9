"""Basin-of-convergence map: which minimum each start of a grid reaches, and how fast."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from matplotlib.colors import to_rgb
from matplotlib.figure import Figure
from matplotlib.patches import Patch

from gdlab.engine.sweeps import DIVERGED_CODE as DIVERGED
from gdlab.engine.sweeps import NO_MINIMUM as NOT_CONVERGED
from gdlab.plots.style import new_figure, run_colour

__all__ = ["DIVERGED", "NOT_CONVERGED", "basin_figure", "basin_image"]


def basin_image(outcome: np.ndarray, steps: np.ndarray, max_steps: int) -> np.ndarray:
    """RGB image: colour per reached minimum (index ≥ 0), black for divergence, white for ending
    away from every known minimum;
    shaded darker the more steps a start took."""
    outcome = np.asarray(outcome)
    image = np.ones(outcome.shape + (3,))
    for index in np.unique(outcome[outcome >= 0]):
        image[outcome == index] = to_rgb(run_colour(int(index)))
    image[outcome == DIVERGED] = (0.0, 0.0, 0.0)
    fraction = np.clip(np.asarray(steps, dtype=np.float64) / max(max_steps, 1), 0.0, 1.0)
    shade = 1.0 - 0.6 * fraction[..., None]
    reached = (outcome >= 0)[..., None]
    return np.where(reached, image * shade, image)


def basin_figure(
    xs: np.ndarray,
    ys: np.ndarray,
    outcome: np.ndarray,
    steps: np.ndarray,
    minima: Sequence[Sequence[float]],
    *,
    max_steps: int,
    size: tuple[int, int] = (1000, 800),
    dpi: int = 100,
    title: str = "basins of convergence",
) -> Figure:
    """Each start of the ``len(ys) × len(xs)`` grid coloured by the minimum it reached.

    ``outcome[i, j]`` is the index into ``minima`` reached from ``(xs[j], ys[i])``, or
    :data:`DIVERGED` / :data:`NOT_CONVERGED`; ``steps`` the steps it took (darker = slower).
    """
    outcome = np.asarray(outcome)
    if outcome.shape != (len(ys), len(xs)):
        raise ValueError(f"outcome has shape {outcome.shape}, expected {(len(ys), len(xs))}")
    fig = new_figure(size, dpi)
    ax = fig.add_subplot()
    ax.imshow(basin_image(outcome, steps, max_steps), origin="lower", interpolation="nearest",
              extent=(xs[0], xs[-1], ys[0], ys[-1]), aspect="auto")
    handles = []
    for index, loc in enumerate(minima):
        colour = run_colour(index)
        ax.plot(loc[0], loc[1], "*", color="white", ms=16, mec="black")
        handles.append(Patch(color=colour, label=f"minimum {index}: ({loc[0]:.3g}, {loc[1]:.3g})"))
    handles.append(Patch(color="black", label="diverged"))
    handles.append(Patch(facecolor="white", edgecolor="grey", label="no minimum reached"))
    ax.legend(handles=handles, fontsize="small", loc="upper right")
    ax.set_xlabel("x start")
    ax.set_ylabel("y start")
    ax.set_title(title)
    return fig
