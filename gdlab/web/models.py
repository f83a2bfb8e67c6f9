"""Request and response models of the browser lab's JSON API (pydantic; they make ``/openapi.json``).

Requests are strict about their shape (unknown fields, wrong types, non-finite numbers and values
beyond the :mod:`gdlab.web.limits` are refused with 422 before any numerics run); what the numbers
mean (hyperparameter ranges, landscape parameters, expression syntax) is checked by the core.
"""

from __future__ import annotations

import sys
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from gdlab.web.limits import (
    MAX_ANGLE,
    MAX_CONDITION,
    MAX_EXPR_CHARS,
    MAX_GRID,
    MAX_LABEL_CHARS,
    MAX_LIST,
    MAX_NOISE_BATCH,
    MAX_NOISE_SEED,
    MAX_NOISE_SIGMA,
    MAX_OPTIMIZERS,
    MAX_PREVIEW_STEPS,
    MAX_RATE_LR,
    MAX_RATE_MOMENTUM,
    MAX_RATEMAP_N,
    MAX_RATEMAP_STEPS,
    MAX_STEPS,
    MIN_GRID,
    MIN_RATEMAP_STEPS,
)

HEX_COLOUR = r"^#[0-9a-fA-F]{6}$"
#: The largest finite double: JSON numbers beyond it are refused (they would become infinity).
FLOAT_MAX = sys.float_info.max


#: :data:`FLOAT_MAX` as the schema writes it, as an integer: the exact bound of a JSON integer.
INT_MAX = int(Decimal(repr(FLOAT_MAX)))


def _number(v: Any) -> Any:
    """A JSON integer as a float when the field is real-valued, refused (with its size) when it is
    beyond the schema's bound: ``float(10**4000)`` would raise OverflowError deep inside the numerics,
    and an integer just past the largest double would be rounded to it."""
    if isinstance(v, int) and not isinstance(v, bool):
        if abs(v) > INT_MAX:
            raise ValueError(f"must be a finite number; an integer of {len(str(abs(v)))} digits is beyond "
                             f"±{FLOAT_MAX:.4g}")
        return float(v)
    return v


def _integral(v: Any) -> Any:
    """A JSON number with no fractional part (``5.0``) as the integer it is (JSON Schema's "integer")."""
    if isinstance(v, float) and v.is_integer():
        return int(v)
    return v


#: A real number: JSON number (integers included), finite; never a string or a boolean.
Real = Annotated[float, BeforeValidator(_number)]
#: An integer: JSON integer (or a number without fraction); never a string or a boolean.
Int = Annotated[int, BeforeValidator(_integral)]


def _hyper_value(v: Any) -> Any:
    """A hyperparameter value as JSON gives it: a number, true/false, a name, null or a list of numbers.
    Numbers stay integers when they are (for integer hyperparameters); what they mean is checked by the
    optimizer's or schedule's own specs."""
    if v is None or isinstance(v, bool | str):
        return v
    if isinstance(v, int | float):
        return _finite(v)
    if isinstance(v, list) and len(v) <= MAX_LIST and all(isinstance(x, int | float) and not isinstance(x, bool)
                                                          for x in v):
        return [_finite(x) for x in v]
    if isinstance(v, list) and len(v) > MAX_LIST:
        raise ValueError(f"a list of at most {MAX_LIST} numbers is allowed, got {len(v)}")
    raise ValueError(f"must be a number, true or false, a name, null or a list of numbers, got {_kind(v)}")


def _finite(v: int | float) -> int | float:
    if isinstance(v, int):
        _number(v)  # raises when no double holds it
        return v
    if v != v or v in (float("inf"), float("-inf")):
        raise ValueError("must be a finite number (NaN and infinity are not allowed)")
    return v


def _kind(v: Any) -> str:
    if isinstance(v, list):
        return "a list holding something other than numbers"
    return {dict: "an object"}.get(type(v), type(v).__name__)


HyperValue = Annotated[
    Any,
    PlainValidator(_hyper_value),
    WithJsonSchema({"anyOf": [{"type": "number"}, {"type": "boolean"}, {"type": "string"}, {"type": "null"},
                              {"type": "array", "items": {"type": "number"}, "maxItems": MAX_LIST}]}),
]


class _Strict(BaseModel):
    """Requests: unknown fields, wrong JSON types (``"100"`` or ``true`` for a number) and non-finite
    numbers are refused."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, strict=True)


class Problem(_Strict):
    """Which function to work on: a built-in landscape (with its parameters) or a custom expression."""

    landscape: str | None = Field(None, max_length=64, description="name of a built-in landscape")
    expr: str | None = Field(None, description=f"custom expression in x, y (≤ {MAX_EXPR_CHARS} characters)")
    params: dict[str, Real] = Field(default_factory=dict, description="parameters of the built-in landscape")

    @field_validator("expr")
    @classmethod
    def _expr_length(cls, v: str | None) -> str | None:
        if v is not None and len(v) > MAX_EXPR_CHARS:
            raise ValueError(f"the expression has {len(v)} characters; the limit is {MAX_EXPR_CHARS}")
        return v

    @model_validator(mode="after")
    def _one_of(self) -> Problem:
        if (self.expr is None) == (self.landscape is None):
            raise ValueError("give exactly one of 'landscape' (a built-in name) or 'expr' (a custom expression)")
        if self.expr is not None and not self.expr.strip():
            raise ValueError("'expr' is empty: write a formula in x (and y), e.g. x^2 + 10*y^2")
        if self.expr is not None and self.params:
            raise ValueError("'params' apply to built-in landscapes only, not to a custom expression")
        return self


class ScheduleSpec(_Strict):
    """A learning-rate schedule by name with its hyperparameters (the optimizer's lr is the base)."""

    name: str = Field(..., max_length=64)
    params: dict[str, HyperValue] = Field(default_factory=dict)


class NoiseSpec(_Strict):
    """Stochastic gradients: the optimizer sees ∇f(x) + (σ/√B)·ξ, ξ ~ N(0, I) drawn afresh every step from
    ``seed`` (the same seed gives the same run). σ = 0 is the noiseless run."""

    sigma: Real = Field(..., ge=0.0, le=MAX_NOISE_SIGMA, description="σ: standard deviation of one sample's noise")
    batch_size: Int = Field(1, ge=1, le=MAX_NOISE_BATCH, description="B: the noise's deviation is σ/√B")
    seed: Int = Field(0, ge=0, le=MAX_NOISE_SEED, description="seed of the noise")


class OptimizerSpec(_Strict):
    """One optimizer of a comparison."""

    name: str = Field(..., max_length=64, description="optimizer name, e.g. 'sgd', 'adam'")
    hyperparams: dict[str, HyperValue] = Field(default_factory=dict)
    color: str | None = Field(None, pattern=HEX_COLOUR, description="#rrggbb colour of its ball and curves")
    label: str | None = Field(None, max_length=MAX_LABEL_CHARS)
    schedule: ScheduleSpec | None = Field(None, description="overrides the request's schedule for this optimizer")
    noise: NoiseSpec | None = Field(None, description="stochastic gradients (none: the exact gradient)")


class SurfaceRequest(Problem):
    grid: Int = Field(200, ge=MIN_GRID, le=MAX_GRID, description=f"points per axis ({MIN_GRID}..{MAX_GRID})")


class RunRequest(Problem):
    optimizers: list[OptimizerSpec] = Field(..., min_length=1, max_length=MAX_OPTIMIZERS)
    start: list[Real] | None = Field(None, min_length=1, max_length=2,
                                     description="start point (default: the landscape's)")
    steps: Int = Field(200, ge=1, le=MAX_STEPS)
    tol: Real = Field(1e-6, ge=0.0, le=1e3, description="converged when the gradient norm falls below tol")
    schedule: ScheduleSpec | None = Field(None, description="schedule for every optimizer without its own")


class QuadraticSpec(_Strict):
    """The lab's quadratic landscape ``quadratic`` in 2-D: eigenvalues 1 and κ, rotated by ``angle``."""

    condition: Real = Field(10.0, ge=1.0, le=MAX_CONDITION, description="condition number κ = λmax/λmin")
    angle: Real = Field(30.0, ge=-MAX_ANGLE, le=MAX_ANGLE, description="rotation of the axes, degrees")


class RatesRequest(QuadraticSpec):
    lr: Real = Field(..., gt=0.0, le=MAX_RATE_LR, description="learning rate η")
    momentum: Real = Field(0.0, ge=0.0, le=MAX_RATE_MOMENTUM, description="heavy-ball momentum β")


class RateMapRequest(QuadraticSpec):
    lr: list[Annotated[Real, Field(gt=0.0, le=MAX_RATE_LR)]] = Field(
        [1e-3, 1.0], min_length=2, max_length=2, description="[first, last] learning rate, spaced geometrically")
    momentum: list[Annotated[Real, Field(ge=0.0, le=MAX_RATE_MOMENTUM)]] = Field(
        [0.0, 0.99], min_length=2, max_length=2, description="[first, last] momentum, spaced linearly")
    n: Int = Field(50, ge=2, le=MAX_RATEMAP_N, description="values per axis (n × n runs)")
    steps: Int = Field(200, ge=MIN_RATEMAP_STEPS, le=MAX_RATEMAP_STEPS, description="steps of every run")
    start: list[Real] | None = Field(None, min_length=2, max_length=2,
                                     description="start of every run (default: the landscape's)")


class AnalyzeRequest(Problem):
    point: list[Real] = Field(..., min_length=1, max_length=2)
    candidates: list[Annotated[list[Real], Field(min_length=1, max_length=2)]] = Field(
        default_factory=list, max_length=MAX_OPTIMIZERS,
        description="points where runs converged: for functions without known minima, the nearest of them that "
        "the analysis classifies as a minimum is reported as the nearest minimum",
    )


class ExprRequest(_Strict):
    expr: str = Field(..., description=f"custom expression in x, y (≤ {MAX_EXPR_CHARS} characters)")


class SchedulePreviewRequest(_Strict):
    schedule: ScheduleSpec | None = Field(None, description="none means a constant learning rate")
    lrs: list[Annotated[Real, Field(ge=0)]] = Field([0.01], min_length=1, max_length=MAX_OPTIMIZERS,
                                                    description="base learning rates (≥ 0)")
    steps: Int = Field(200, ge=1, le=MAX_PREVIEW_STEPS)


# ---- responses (documentation of what the page receives) -------------------------------------


class PointOut(BaseModel):
    location: list[float]
    value: float | None
    kind: str


class LandscapeOut(BaseModel):
    name: str
    title: str = ""
    description: str = ""
    dim: int
    domain: list[list[float]]
    default_start: list[float]
    params: list[dict[str, Any]] = []
    minima: list[PointOut] = []
    critical_points: list[PointOut] = []


class OptimizerOut(BaseModel):
    name: str
    family: str
    summary: str
    hyperparams: list[dict[str, Any]]


class ScheduleOut(BaseModel):
    name: str
    summary: str = ""
    hyperparams: list[dict[str, Any]]


class MetaOut(BaseModel):
    version: str
    landscapes: list[LandscapeOut]
    optimizers: list[OptimizerOut]
    schedules: list[ScheduleOut]
    presets: list[dict[str, Any]]
    default_preset: str | None = None
    limits: dict[str, int]
    expression_help: str


class SurfaceOut(BaseModel):
    dim: int
    domain: list[list[float]]
    x: list[float]
    y: list[float] | None = Field(None, description="grid y (2-D); absent for 1-D landscapes")
    z: list[Any] = Field(
        ..., description="values: z[j][i] at (x[i], y[j]) in 2-D, z[i] at x[i] in 1-D; null where undefined")
    zmin: float | None
    zmax: float | None
    minima: list[PointOut]
    critical_points: list[PointOut] = Field([], description="saddles and maxima")
    default_start: list[float]


class StabilityOut(BaseModel):
    """The run's optimizer's own stability rule: the update from point k is stable (linearised there) iff
    lr_k · sharpness_k < constant."""

    rule: Literal["gd", "heavy_ball", "nesterov", "adam", "none"]
    text: str = Field(..., description="the rule in words, or why there is none")
    constant: float | None
    sharpness: list[float | None] | None = Field(
        None, description="per point: λmax(H + λI), or λmax(diag(1/(√v̂+ε))·H) for Adam (null: not defined)")
    ratio: list[float | None] | None = Field(None, description="per point: lr_k · sharpness_k / constant")
    first_exceeded: int | None = Field(None, description="first point whose ratio exceeds 1")


class RunOut(BaseModel):
    index: int = Field(..., description="position of the optimizer in the request")
    optimizer: str
    label: str
    color: str | None
    hyperparams: dict[str, Any]
    schedule: str | None
    trajectory: list[list[float]]
    loss: list[float | None]
    grad_norm: list[float | None]
    lr: list[float | None]
    status: Literal["converged", "diverged", "max_steps"]
    stopped_at: int
    reason: str
    noise: dict[str, Any] | None = Field(None, description="the run's noise {sigma, batch_size, seed}, or null")
    stability: StabilityOut
    measured_rate: float | None = Field(
        None, description="geometric mean of ‖x_{k+1} − x*‖/‖x_k − x*‖ over the last quarter of the points "
        "(x*: the nearest known minimum); null without one")


class RunsOut(BaseModel):
    dim: int
    steps: int
    start: list[float]
    runs: list[RunOut]
    elapsed_ms: float
    computed: int = Field(..., description="runs computed for this request (the others came from the cache)")


class OptimalOut(BaseModel):
    gd_lr: float = Field(..., description="2/(λmin + λmax)")
    gd_rate: float = Field(..., description="(κ − 1)/(κ + 1)")
    momentum: float = Field(..., description="((√κ − 1)/(√κ + 1))²")
    momentum_lr: float = Field(..., description="(2/(√λmin + √λmax))²")
    momentum_rate: float = Field(..., description="(√κ − 1)/(√κ + 1)")


class RatesOut(BaseModel):
    eigenvalues: list[float]
    condition: float
    gd_rate: float = Field(..., description="max |1 − ηλᵢ|")
    momentum_rate: float = Field(..., description="max spectral radius of [[1 + β − ηλᵢ, −β], [1, 0]]")
    optimal: OptimalOut


class RateMapOut(BaseModel):
    lr: list[float]
    momentum: list[float]
    measured: list[list[float | None]] = Field(
        ..., description="measured[j][i] at (lr[i], momentum[j]); null where the run diverged or reached x*")
    theory: list[list[float]] = Field(..., description="the heavy-ball rate at (lr[i], momentum[j])")
    steps: int
    elapsed_ms: float


class PointAnalysis(BaseModel):
    point: list[float]
    value: float | None
    grad_norm: float | None
    eigenvalues: list[float | None]
    lambda_max: float | None
    critical_lr: float | None = Field(None, description="GD's critical learning rate 2/λmax (none when λmax ≤ 0)")
    critical_lr_momentum: float | None = Field(None, description="heavy-ball momentum's 2(1+β)/λmax, β = 0.9")
    condition_number: float | None = None
    classification: str = Field(..., description="minimum, maximum, saddle, degenerate or not stationary")
    curvature: str = ""
    hessian_source: str = ""
    known: dict[str, Any] | None = Field(None, description="the landscape's listed minimum (nearest_minimum only)")


class AnalyzeOut(BaseModel):
    start: PointAnalysis
    nearest_minimum: PointAnalysis | None


class ExprOut(BaseModel):
    valid: bool
    message: str = ""
    column: int | None = None
    dim: int | None = None


class ScheduleCurve(BaseModel):
    base_lr: float
    lr: list[float | None]


class SchedulePreviewOut(BaseModel):
    schedule: str
    needs_loss: bool = False
    steps: list[int]
    curves: list[ScheduleCurve]


class ErrorOut(BaseModel):
    detail: str
    errors: list[dict[str, Any]] = []
