"""The OpenAPI schema of the lab's requests, saying what the server enforces as far as JSON Schema can.

pydantic describes the shapes of :mod:`gdlab.web.models`; what the names and numbers inside mean is
checked by the core against the registries' hyperparameter specs. :func:`refine_openapi` writes those
same specs into the schema, so that a request the schema calls valid is one the server accepts:

- a problem is exactly one of a built-in ``landscape`` (an enum, with its own ``params``, each in its
  range, and a start or point with as many coordinates as its dimension) or an ``expr`` whose format
  says its dimension (``gdlab-formula-x``: a formula in x only, 1-D; ``gdlab-formula-xy``: one using
  y, 2-D);
- an optimizer is one of the registry's, with its own hyperparameters, each of its kind and in its
  range (SAM: its own, ``base`` and the base's), and a schedule likewise;
- the rules that tie two hyperparameters together are written as JSON Schema where it can say them
  (:data:`COMBINATIONS`); the others are described in words (:data:`UNSAID`) and answered 422.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from fastapi import FastAPI

from gdlab.core.hyper import Hyper
from gdlab.core.optimizers.sam import can_wrap
from gdlab.core.rules import RULES
from gdlab.landscapes import LANDSCAPES, make_landscape
from gdlab.web.limits import INT_LIMITS, MAX_EXPR_CHARS, MAX_INT, MAX_LIST, MAX_RATE_LR, MAX_RATE_MOMENTUM
from gdlab.web.models import FLOAT_MAX
from gdlab.web.registry import LAB_OPTIMIZERS as OPTIMIZERS
from gdlab.web.registry import LAB_SCHEDULES as SCHEDULES
from gdlab.web.registry import SAM_BASES_NOT_IN_LAB

JSON = dict[str, Any]

#: Formats of a custom formula, by its dimension.
FORMULA_FORMATS = {1: "gdlab-formula-x", 2: "gdlab-formula-xy"}
#: Format of a schedule's formula in the step t (lambda's and multiplicative's ``lr_lambda``).
STEP_FORMULA_FORMAT = "gdlab-formula-t"

#: Rules between hyperparameters that the optimizers and schedules check (``_check_combination``),
#: as JSON Schema: by owner name, a schema its hyperparameters (or parameters) also satisfy.
COMBINATIONS: dict[str, JSON] = {
    "sgd": {"anyOf": [{"properties": {"nesterov": {"const": False}}},
                      {"properties": {"momentum": {"exclusiveMinimum": 0}, "dampening": {"const": 0}},
                       "required": ["momentum"]}],
            "description": "nesterov=true needs momentum > 0 and dampening = 0"},
    "rmsprop": {"anyOf": [{"properties": {"alpha": {"exclusiveMaximum": 1}}},
                          {"properties": {"eps": {"exclusiveMinimum": 0}}}],
                "description": "alpha = 1 with eps = 0 is refused (it never updates the average)"},
    "onecycle": {"properties": {"total_steps": {"type": "integer"}}, "required": ["total_steps"],
                 "description": "total_steps is required"},
}

#: Rules JSON Schema cannot state (they compare two values, or depend on the run): described, and
#: answered 422.
UNSAID: dict[str, str] = {
    "lbfgs": "c1 < c2 (the Wolfe constants)",
    "warmup_cosine": "warmup_steps < total_steps",
    "onecycle": "pct_start × total_steps ≠ 1 (a rising phase of zero length); cycle_momentum needs an optimizer "
                "with momentum > 0 or betas",
    "cyclic": "cycle_momentum needs an optimizer with momentum > 0 or betas",
    "rprop": "0 < etas[0] < 1 < etas[1]",
    "sequential": "one milestone fewer than schedulers",
}


# ------------------------------------------------------------------------------------------------
# values
# ------------------------------------------------------------------------------------------------
def _bounds(h: Hyper, largest: float) -> JSON:
    """JSON Schema bounds of a numeric spec; an open side is bounded by ``largest`` (finite numbers)."""
    out: JSON = {}
    if h.low is None:
        out["minimum"] = -largest
    else:
        out["exclusiveMinimum" if h.low_open else "minimum"] = h.low
    if h.high is None:
        out["maximum"] = largest
    else:
        out["exclusiveMaximum" if h.high_open else "maximum"] = h.high
    if h.kind in ("int", "int_list"):
        for key in ("minimum", "exclusiveMinimum"):
            if key in out:
                out[key] = max(out[key], -largest)
        for key in ("maximum", "exclusiveMaximum"):
            if key in out:
                out[key] = min(out[key], largest)
    return out


def value_schema(h: Hyper) -> JSON:
    """The JSON values a hyperparameter spec accepts in a lab request."""
    if h.kind == "bool":
        out: JSON = {"type": "boolean"}
    elif h.kind == "choice":
        out = {"enum": list(h.choices)}
    elif h.kind == "int":
        out = {"type": "integer", **_bounds(h, INT_LIMITS.get(h.name, MAX_INT))}
    elif h.kind == "int_list":
        out = {"type": "array", "items": {"type": "integer", "minimum": 0, "maximum": MAX_INT},
               "maxItems": MAX_LIST}
    elif h.kind == "pair":
        item: JSON = {"type": "number", **_bounds(h, FLOAT_MAX)}  # numbers only (the lab refuses null items)
        out = {"type": "array", "items": item, "minItems": h.size, "maxItems": h.size}
    elif h.kind == "function":
        out = {"type": "string", "format": STEP_FORMULA_FORMAT, "minLength": 1, "maxLength": MAX_EXPR_CHARS}
    else:
        out = {"type": "number", **_bounds(h, FLOAT_MAX)}
    if h.optional:
        out = {"anyOf": [out, {"type": "null"}]}
    if h.doc:
        out["description"] = h.doc
    return out


def object_schema(specs: Iterable[Hyper], owner: str, extra: JSON | None = None, required: Iterable[str] = (),
                  combinations: bool = True) -> JSON:
    """An object holding some of ``specs`` (those without a default are required), nothing else; with
    ``combinations``, also the owner's :data:`COMBINATIONS` rule (else it is described in words)."""
    specs = list(specs)
    props = {h.name: value_schema(h) for h in specs}
    props.update(extra or {})
    need = [h.name for h in specs if h.default is None and not h.optional] + list(required)
    out: JSON = {"type": "object", "properties": props, "additionalProperties": False}
    rule = COMBINATIONS.get(owner)
    if rule is not None and combinations:
        out.update({k: v for k, v in rule.items() if k not in ("description", "required", "properties")})
        for key, value in rule.get("properties", {}).items():
            out["properties"][key] = {**out["properties"][key], **value}
        need += [r for r in rule.get("required", []) if r not in need]
    if need:
        out["required"] = sorted(set(need))
    said = [rule["description"] + ("" if combinations else " (checked by the server)")] if rule else []
    if owner in UNSAID:
        said.append(UNSAID[owner] + " (checked by the server)")
    if said:
        out["description"] = f"{owner}: " + "; ".join(said)
    return out


def _variant(name_field: str, name: str, body_field: str, body: JSON) -> JSON:
    """One branch of an ``anyOf`` by name: ``{name_field: name, body_field: body}``."""
    out: JSON = {"properties": {name_field: {"const": name}, body_field: body}, "required": [name_field]}
    if body.get("required"):
        out["required"].append(body_field)
    return out


# ------------------------------------------------------------------------------------------------
# optimizers and schedules
# ------------------------------------------------------------------------------------------------
def optimizer_variants() -> list[JSON]:
    """A branch per optimizer with its hyperparameters (SAM: its own, ``base`` and the base's)."""
    out = []
    for name, cls in OPTIMIZERS.items():
        if name == "sam":
            out.append(_variant("name", name, "hyperparams", sam_hyperparams(cls.hyperparams)))
        else:
            out.append(_variant("name", name, "hyperparams", object_schema(cls.hyperparams, name)))
    return out


def sam_hyperparams(own: Iterable[Hyper]) -> JSON:
    """SAM's hyperparameters: its own, ``base`` (a gradient-only rule, default sgd) and the base's."""
    own = list(own)
    names = {h.name for h in own}
    branches = []
    for base, rule in RULES.items():
        if not can_wrap(rule) or base not in OPTIMIZERS or base in SAM_BASES_NOT_IN_LAB:
            continue
        specs = [*own, *(h for h in rule.hyperparams if h.name not in names)]
        extra = {"base": {"const": base, "description": "the optimizer SAM wraps (default sgd)"},
                 "base_kwargs": {"type": "null"}}
        # the base's own rules are left to the server here: JSON Schema tools give up on the whole
        # optimizer schema when they are nested this deep
        branches.append(object_schema(specs, base, extra, required=() if base == "sgd" else ("base",),
                                      combinations=False))
    return {"type": "object", "anyOf": branches}


def schedule_variants() -> list[JSON]:
    """A branch per schedule with its parameters, and ``none`` (no schedule, no parameters)."""
    out = [_variant("name", "none", "params", {"type": "object", "maxProperties": 0})]
    for name, cls in SCHEDULES.items():
        out.append(_variant("name", name, "params", object_schema(cls.hyperparams, name)))
    return out


# ------------------------------------------------------------------------------------------------
# problems
# ------------------------------------------------------------------------------------------------
def landscape_variants() -> list[tuple[str, int, JSON]]:
    """(name, dimension, params schema) of every drawable built-in landscape, per drawable dimension."""
    out = []
    for name, cls in LANDSCAPES.items():
        specs = {h.name: h for h in getattr(cls, "hyperparams", ())}
        others = [h for n, h in specs.items() if n != "dim"]
        dim = specs.get("dim")
        if dim is None:
            try:
                d = int(make_landscape(name).dim)
            except (ValueError, TypeError):
                continue
            if d in (1, 2):
                out.append((name, d, object_schema(others, name)))
            continue
        default = 2 if (dim.low or 1) <= 2 else int(dim.low or 1)
        for d in (1, 2):
            if not (dim.low or 1) <= d <= (dim.high or d):
                continue
            extra = {"dim": {"type": "integer", "const": d, "description": "number of variables"}}
            out.append((name, d, object_schema(others, name, extra, required=() if d == default else ("dim",))))
    return out


def problem_variants(point: str | None, point_required: bool) -> list[JSON]:
    """A branch per landscape and dimension, and per formula dimension; ``point`` (the start, or the
    point analysed) has as many coordinates as the function has variables."""
    out = []

    def coordinates(d: int) -> JSON:
        arr = {"type": "array", "items": {"type": "number"}, "minItems": d, "maxItems": d}
        return arr if point_required else {"anyOf": [arr, {"type": "null"}]}

    for name, d, params in landscape_variants():
        branch = _variant("landscape", name, "params", params)
        branch["properties"]["expr"] = {"type": "null"}
        if point:
            branch["properties"][point] = coordinates(d)
        out.append(branch)
    for d, fmt in FORMULA_FORMATS.items():
        branch: JSON = {"properties": {
            "expr": {"type": "string", "minLength": 1, "maxLength": MAX_EXPR_CHARS, "format": fmt},
            "landscape": {"type": "null"},
            "params": {"type": "object", "maxProperties": 0},
        }, "required": ["expr"]}
        if point:
            branch["properties"][point] = coordinates(d)
        out.append(branch)
    return out


#: Request bodies naming a problem: the field holding a point, and whether it is required.
PROBLEMS = {"SurfaceRequest": (None, False), "RunRequest": ("start", False), "AnalyzeRequest": ("point", True)}


def refine(components: dict[str, JSON]) -> None:
    """Write the registries' specs into the request schemas of ``components`` (in place)."""
    landscapes = sorted({name for name, _, _ in landscape_variants()})
    for model, (point, required) in PROBLEMS.items():
        schema = components[model]
        schema["properties"]["landscape"] = {"anyOf": [{"enum": landscapes}, {"type": "null"}],
                                             "description": "name of a built-in landscape"}
        schema["properties"]["expr"] = {
            "anyOf": [{"type": "string", "minLength": 1, "maxLength": MAX_EXPR_CHARS}, {"type": "null"}],
            "description": f"custom formula in x (1-D) or x and y (2-D), ≤ {MAX_EXPR_CHARS} characters"}
        schema["anyOf"] = problem_variants(point, required)
        schema["description"] = "exactly one of 'landscape' (with its 'params') or 'expr'"
    spec = components["OptimizerSpec"]
    spec["properties"]["name"] = {"enum": list(OPTIMIZERS), "description": "optimizer name"}
    spec["anyOf"] = optimizer_variants()
    spec = components["ScheduleSpec"]
    spec["description"] = (f"{spec.get('description', '')} A run whose scheduled rate overflows ends there, "
                           "diverged, with its reason.").strip()
    spec["properties"]["name"] = {"enum": ["none", *SCHEDULES], "description": "schedule name"}
    spec["anyOf"] = schedule_variants()
    lrs = components["SchedulePreviewRequest"]["properties"]["lrs"]
    lrs["items"] = {"type": "number", "minimum": 0}
    ratemap = components["RateMapRequest"]["properties"]  # pydantic leaves the items' bounds unsaid
    ratemap["lr"]["items"] = {"type": "number", "exclusiveMinimum": 0, "maximum": MAX_RATE_LR}
    ratemap["momentum"]["items"] = {"type": "number", "minimum": 0, "maximum": MAX_RATE_MOMENTUM}
    for model in REQUESTS:
        _finite_numbers(components[model])


#: Request bodies (and the parts they share).
REQUESTS = (*PROBLEMS, "OptimizerSpec", "ScheduleSpec", "SchedulePreviewRequest", "ExprRequest", "NoiseSpec",
            "RatesRequest", "RateMapRequest")


def _finite_numbers(schema: Any) -> None:
    """Bound every number of a request schema by the largest double (larger ones are not finite)."""
    if isinstance(schema, dict):
        if schema.get("type") == "number":
            schema.setdefault("minimum", -FLOAT_MAX)
            schema.setdefault("maximum", FLOAT_MAX)
        for value in schema.values():
            _finite_numbers(value)
    elif isinstance(schema, list):
        for value in schema:
            _finite_numbers(value)


def refine_openapi(app: FastAPI) -> dict[str, Any]:
    """``app``'s OpenAPI schema (made once), with the request schemas refined by :func:`refine`."""
    if app.openapi_schema is None:
        refine(FastAPI.openapi(app)["components"]["schemas"])
    return app.openapi_schema  # type: ignore[return-value]
