"""Colours, labels and figure construction shared by every picture.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot), so drawing is
headless by construction, thread-safe for the web server, and notebooks still display the returned
Figure inline.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure

#: Saturated colours for runs; the landscape itself is drawn in greys so paths stand out.
PALETTE = ("#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf", "#e377c2", "#8c564b",
           "#bcbd22", "#7f7f7f", "#000080", "#808000")
LANDSCAPE_CMAP = "Greys"
DIVERGED_MARK = "X"


def run_colour(index: int) -> str:
    return PALETTE[index % len(PALETTE)]


def new_figure(size: tuple[int, int], dpi: int = 100) -> Figure:
    """A Figure of ``size`` pixels (width, height) at ``dpi``."""
    width, height = size
    if width < 50 or height < 50 or width > 8000 or height > 8000:
        raise ValueError(f"figure size must be between 50 and 8000 pixels per side, got {width}×{height}")
    return Figure(figsize=(width / dpi, height / dpi), dpi=dpi, layout="constrained")


def format_value(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, list | tuple):
        return "(" + ", ".join(format_value(v) for v in value) + ")"
    return str(value)


def run_label(run: Any) -> str:
    """Legend text: the run's label, else its optimizer with the hyperparameters set away from
    their defaults (the learning rate always)."""
    if getattr(run, "label", ""):
        return run.label
    defaults = _defaults(run.optimizer)
    shown = {
        k: v for k, v in run.hyperparams.items()
        if k == "lr" or k not in defaults or not _same(defaults[k], v)
    }
    text = ", ".join(f"{k}={format_value(v)}" for k, v in shown.items())
    return f"{run.optimizer} ({text})" if text else run.optimizer


def _defaults(name: str) -> dict[str, Any]:
    from gdlab.core.optimizers import OPTIMIZERS

    cls = OPTIMIZERS.get(name)
    return {} if cls is None else {spec.name: spec.default for spec in cls.hyperparams}


def _same(a: Any, b: Any) -> bool:
    try:
        return bool(np.all(np.asarray(a, dtype=object) == np.asarray(b, dtype=object)))
    except (TypeError, ValueError):
        return False


def finite_prefix(run: Any) -> int:
    """Number of leading trajectory points that are finite (what can be drawn)."""
    traj = np.asarray(run.trajectory)
    if traj.size == 0:
        return 0
    ok = np.isfinite(traj).all(axis=-1)
    return int(np.argmin(ok)) if not ok.all() else len(ok)
