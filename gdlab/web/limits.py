"""The browser lab's limits: what one request may ask of the server (also served by ``/api/meta``).

They are entries of the one table of limits, :data:`gdlab.core.limits.LIMITS`, under the names the page
reads.
"""

from __future__ import annotations

from gdlab.core.limits import LIMITS as _ALL

#: Steps of one run (every optimizer of a request runs this many at most).
MAX_STEPS = _ALL.max_lab_steps
#: Optimizers compared in one request.
MAX_OPTIMIZERS = _ALL.max_lab_optimizers
#: Grid points per axis of a surface (so at most 400 × 400 values).
MAX_GRID = _ALL.max_grid
#: Smallest grid per axis.
MIN_GRID = _ALL.min_grid
#: Characters of a custom expression.
MAX_EXPR_CHARS = _ALL.max_expr_chars
#: Characters of a run label.
MAX_LABEL_CHARS = _ALL.max_label_chars
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
