"""The browser lab's limits: what one request may ask of the server (also served by ``/api/meta``),
and how much the server takes on at once.

They are entries of the one table of limits, :data:`gdlab.core.limits.LIMITS`, under the names the page
and the server read.
"""

from __future__ import annotations

from gdlab.core.limits import LIMITS as _ALL
from gdlab.landscapes.quadratics import ConditionedQuadratic

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
#: Integer hyperparameters with a tighter bound than MAX_INT: what their value costs up front.
INT_LIMITS = {"history_size": _ALL.max_lab_history}
#: Values of a list-valued hyperparameter (a schedule's milestones).
MAX_LIST = _ALL.max_lab_list
#: Bytes of a request body (413 past it).
MAX_BODY_BYTES = _ALL.max_lab_body_bytes
#: Work admitted at once, in requests at the limits (503 past it).
MAX_QUEUED_REQUESTS = _ALL.max_lab_queued_requests
#: Threads computing requests (at most the number of CPUs).
MAX_WORKERS = _ALL.max_lab_workers
#: Stochastic gradients of a run (gdlab.core.noise).
MAX_NOISE_SIGMA = _ALL.max_noise_sigma
MAX_NOISE_BATCH = _ALL.max_noise_batch
MAX_NOISE_SEED = _ALL.max_noise_seed
#: Rates and the rate map (on the quadratic landscape: its parameters' ranges are the landscape's own).
MAX_RATE_LR = _ALL.max_rate_lr
MAX_RATE_MOMENTUM = _ALL.max_rate_momentum
MAX_RATEMAP_N = _ALL.max_ratemap_n
MAX_RATEMAP_STEPS = _ALL.max_ratemap_steps
MIN_RATEMAP_STEPS = _ALL.min_ratemap_steps
_QUADRATIC = {h.name: h for h in ConditionedQuadratic.hyperparams}
MAX_CONDITION = float(_QUADRATIC["condition"].high)
MAX_ANGLE = float(_QUADRATIC["angle"].high)
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
    "max_ratemap_n": MAX_RATEMAP_N,
    "max_ratemap_steps": MAX_RATEMAP_STEPS,
    "max_noise_batch": MAX_NOISE_BATCH,
    "max_noise_seed": MAX_NOISE_SEED,
}
