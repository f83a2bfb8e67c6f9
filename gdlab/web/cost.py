"""What a lab request will cost the server, in estimated seconds of one CPU, before it runs.

The estimates are upper bounds measured on a 2-core machine (runs may stop early when they converge
or diverge): they let :mod:`gdlab.web.admission` bound the work in flight and order the queue, so
that one client asking for many runs at the limits cannot starve the others. A run costs its steps
times a per-step price by optimizer: the elementwise rules run as compiled code (about 2 µs a step,
but up to 60 µs while a newly typed formula is not compiled yet), SAM and Newton take the reference
loop (about 0.1 ms a step: two gradients, or a Hessian solve), L-BFGS with its line search about
0.5 ms. A surface costs its grid points (evaluated, then written as JSON).
"""

from __future__ import annotations

from gdlab.web import models as m
from gdlab.web.limits import MAX_GRID, MAX_OPTIMIZERS, MAX_RATEMAP_N, MAX_RATEMAP_STEPS, MAX_STEPS

#: Seconds of one step of one run, for the optimizers that do not run as compiled code.
STEP_SECONDS = {"lbfgs": 5e-4, "sam": 1.2e-4, "newton": 1e-4}
#: Seconds of one step of an elementwise rule on a built-in landscape (compiled code).
COMPILED_STEP_SECONDS = 2e-6
#: Seconds of one step of an elementwise rule on a custom formula (reference loop until compiled).
FORMULA_STEP_SECONDS = 6e-5
#: Seconds of one point of a surface (evaluated and written as JSON).
SURFACE_POINT_SECONDS = 1e-6
#: Seconds of parsing a formula (SymPy derives its gradient) and of one analysis (Hessian, eigenvalues).
PARSE_SECONDS = 0.05
ANALYSIS_SECONDS = 0.01
#: Seconds of one value of a learning-rate preview.
PREVIEW_POINT_SECONDS = 1e-6
#: Seconds of the stability check of one point of a run (its Hessian and eigenvalues, batched).
STABILITY_POINT_SECONDS = 1e-6
#: Seconds of one step of one run of a rate map (heavy ball on the quadratic, n² runs in one batched call).
RATEMAP_STEP_SECONDS = 1e-7
#: Seconds of a rates query (two eigenvalues, closed forms).
RATES_SECONDS = 1e-4


def _parse(req: m.Problem) -> float:
    return PARSE_SECONDS if req.expr is not None else 0.0


def _step_seconds(o: m.OptimizerSpec, rule: float) -> float:
    """A noisy run takes the reference loop, at the formula's price (or its optimizer's, when dearer)."""
    if o.noise is not None and o.noise.sigma > 0:
        return max(STEP_SECONDS.get(o.name, 0.0), FORMULA_STEP_SECONDS)
    return STEP_SECONDS.get(o.name, rule)


def run_cost(req: m.RunRequest) -> float:
    """Steps × optimizers, each at its optimizer's price plus the stability check of every point."""
    rule = FORMULA_STEP_SECONDS if req.expr is not None else COMPILED_STEP_SECONDS
    return _parse(req) + req.steps * sum(_step_seconds(o, rule) + STABILITY_POINT_SECONDS for o in req.optimizers)


def rates_cost(req: m.RatesRequest) -> float:
    """Closed forms."""
    return RATES_SECONDS


def ratemap_cost(req: m.RateMapRequest) -> float:
    """n² runs of 1.75 × steps (the runs go to the last quarter, then again to the end)."""
    return RATEMAP_STEP_SECONDS * req.n**2 * 1.75 * req.steps


def surface_cost(req: m.SurfaceRequest) -> float:
    """Grid points (grid² in 2-D)."""
    return _parse(req) + SURFACE_POINT_SECONDS * req.grid**2


def analyze_cost(req: m.AnalyzeRequest) -> float:
    """The point, the nearest minimum and every candidate."""
    return _parse(req) + ANALYSIS_SECONDS * (2 + len(req.candidates))


def expr_cost(req: m.ExprRequest) -> float:
    """Parsing one formula."""
    return PARSE_SECONDS


def schedule_cost(req: m.SchedulePreviewRequest) -> float:
    """Steps × base rates."""
    return PREVIEW_POINT_SECONDS * req.steps * len(req.lrs)


#: The dearest request the limits allow (every optimizer L-BFGS at the most steps); the unit of
#: :data:`~gdlab.core.limits.Limits.max_lab_queued_requests`.
MAX_REQUEST_COST = max(MAX_OPTIMIZERS * MAX_STEPS * (max(STEP_SECONDS.values()) + STABILITY_POINT_SECONDS)
                       + PARSE_SECONDS,
                       SURFACE_POINT_SECONDS * MAX_GRID**2 + PARSE_SECONDS,
                       RATEMAP_STEP_SECONDS * MAX_RATEMAP_N**2 * 1.75 * MAX_RATEMAP_STEPS)
