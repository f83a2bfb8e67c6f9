"""The browser lab's limits: what one request may ask of the server (also served by ``/api/meta``)."""

from __future__ import annotations

#: Steps of one run (every optimizer of a request runs this many at most).
MAX_STEPS = 10_000
#: Optimizers compared in one request.
MAX_OPTIMIZERS = 12
#: Grid points per axis of a surface (so at most 400 × 400 values).
MAX_GRID = 400
#: Smallest grid per axis.
MIN_GRID = 2
#: Characters of a custom expression.
MAX_EXPR_CHARS = 200
#: Characters of a run label.
MAX_LABEL_CHARS = 40
#: Points of a learning-rate preview.
MAX_PREVIEW_STEPS = MAX_STEPS

LIMITS = {
    "max_steps": MAX_STEPS,
    "max_optimizers": MAX_OPTIMIZERS,
    "max_grid": MAX_GRID,
    "min_grid": MIN_GRID,
    "max_expr_chars": MAX_EXPR_CHARS,
    "max_label_chars": MAX_LABEL_CHARS,
}
