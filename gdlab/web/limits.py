"""The browser lab's limits: what one request may ask of the server (also served by ``/api/meta``),
and how much the server takes on at once.

They are entries of the one table of limits, :data:`gdlab.core.limits.LIMITS`, under the names the page
and the server read.
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
#: Largest integer anywhere in a request.
MAX_INT = _ALL.max_lab_int
#: Values of a list-valued hyperparameter (a schedule's milestones).
MAX_LIST = _ALL.max_lab_list
#: Bytes of a request body (413 past it).
MAX_BODY_BYTES = _ALL.max_lab_body_bytes
#: Work admitted at once, in requests at the limits (503 past it).
MAX_QUEUED_REQUESTS = _ALL.max_lab_queued_requests
#: Threads computing requests (at most the number of CPUs).
MAX_WORKERS = _ALL.max_lab_workers
#: Every cache of the server: name → (entries, bytes).
CACHE_LIMITS = {
    "objectives": (_ALL.max_lab_cached_objectives, _ALL.max_lab_cached_objective_bytes),
    "surfaces": (_ALL.max_lab_cached_surfaces, _ALL.max_lab_cached_surface_bytes),
    "runs": (_ALL.max_lab_cached_runs, _ALL.max_lab_cached_run_bytes),
    "meta": (1, _ALL.max_lab_cached_meta_bytes),
}

#: What the page reads from ``/api/meta``.
LIMITS = {
    "max_steps": MAX_STEPS,
    "max_optimizers": MAX_OPTIMIZERS,
    "max_grid": MAX_GRID,
    "min_grid": MIN_GRID,
    "max_expr_chars": MAX_EXPR_CHARS,
    "max_label_chars": MAX_LABEL_CHARS,
}
