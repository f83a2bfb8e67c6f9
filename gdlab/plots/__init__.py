"""Pictures of every engine result, returned as matplotlib Figures (headless, notebook-friendly).

- :func:`contour_figure` / :func:`surface_figure`: landscapes with optimizer paths;
- :func:`loss_figure`, :func:`distance_figure`, :func:`schedule_figure`, :func:`sweep_figure`;
- :func:`basin_figure`: basins of convergence;
- :func:`animate`: the ball rolling, as GIF or MP4;
- :func:`save_figure`: PNG/SVG/PDF from the suffix, written atomically.
"""

from gdlab.plots.animate import animate, render_frames
from gdlab.plots.basin import DIVERGED, NOT_CONVERGED, basin_figure
from gdlab.plots.curves import distance_figure, loss_figure, schedule_figure, sweep_figure
from gdlab.plots.output import PlotError, save_figure
from gdlab.plots.paths import contour_figure, surface_figure

__all__ = [
    "DIVERGED",
    "NOT_CONVERGED",
    "PlotError",
    "animate",
    "basin_figure",
    "contour_figure",
    "distance_figure",
    "loss_figure",
    "render_frames",
    "save_figure",
    "schedule_figure",
    "surface_figure",
    "sweep_figure",
]
