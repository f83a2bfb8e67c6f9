"""What the browser lab's endpoints do, without HTTP: build objectives, grids, runs and analyses.

Every number comes from the layers below (landscapes, expression parser, optimizers, schedules, the
run engine and its analysis); this module only validates the request against them, calls them, and
turns the answers into JSON. User mistakes raise :class:`LabError` (HTTP 422); user text is only
ever handed to the expression parser, never evaluated as code.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import numpy as np
import orjson

from gdlab import fast
from gdlab._version import __version__
from gdlab.core.cycling import momentum_field
from gdlab.core.hyper import describe
from gdlab.core.noise import Noise
from gdlab.core.optimizers import make_optimizer
from gdlab.core.stopping import STATUSES
from gdlab.engine import analysis as _analysis
from gdlab.engine import rates as _rates
from gdlab.engine import stability as _stability
from gdlab.engine.result import format_hyperparam, jsonable
from gdlab.engine.run import run_batch
from gdlab.landscapes import LANDSCAPES, ExpressionError, make_landscape, parse_expression
from gdlab.landscapes.expr import FUNCTIONS as EXPRESSION_FUNCTIONS
from gdlab.landscapes.formula import parse_formula
from gdlab.web import models as m
from gdlab.web.cache import LRUCache, byte_length
from gdlab.web.limits import CACHE_LIMITS, INT_LIMITS, LIMITS, MAX_EXPR_CHARS, MAX_INT
from gdlab.web.presets import DEFAULT_PRESET, presets_for
from gdlab.web.registry import LAB_OPTIMIZERS as OPTIMIZERS
from gdlab.web.registry import LAB_SCHEDULES as SCHEDULES
from gdlab.web.registry import SAM_BASES_NOT_IN_LAB, lab_optimizer_class, lab_schedule_class

#: The status code of a diverged run.
DIVERGED_CODE = STATUSES.index("diverged")
#: Dimensions the lab can draw.
DRAWABLE_DIMS = (1, 2)


class LabError(ValueError):
    """A request the lab refuses (answered with HTTP 422 and this message)."""

    def __init__(self, message: str, *, column: int | None = None, field: str | None = None) -> None:
        super().__init__(message)
        self.column = column
        self.field = field


#: Estimated memory of a landscape or parsed formula (its SymPy tree and NumPy functions: ~0.3 MB measured).
OBJECTIVE_BYTES = 512 * 1024


def _cache(name: str, weigh: Callable[[Any], int]) -> LRUCache[Any]:
    """One of the server's caches, with its limits from :data:`gdlab.web.limits.CACHE_LIMITS`."""
    items, nbytes = CACHE_LIMITS[name]
    return LRUCache(name, max_items=items, max_bytes=nbytes, weigh=weigh)


def _canonical(params: dict[str, Any]) -> dict[str, Any]:
    """Hyperparameters as plain JSON values (for cache keys)."""
    return {k: jsonable(list(v) if isinstance(v, tuple) else v) for k, v in sorted(params.items())}


_ORJSON_OPTIONS = orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_NON_STR_KEYS


def _orjson_default(obj: Any) -> Any:
    if isinstance(obj, np.ndarray):  # orjson takes C-contiguous arrays only
        return np.ascontiguousarray(obj)
    if isinstance(obj, tuple | set | frozenset):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} as JSON")


def dumps(obj: Any) -> bytes:
    """Compact JSON (numpy arrays and scalars included); NaN and ±inf become null, never NaN."""
    return orjson.dumps(obj, default=_orjson_default, option=_ORJSON_OPTIONS)


def _point_json(p: Any) -> dict[str, Any]:
    value = getattr(p, "value", None)
    return {
        "location": [float(v) for v in np.ravel(getattr(p, "location", p))],
        "value": None if value is None or not math.isfinite(float(value)) else float(value),
        "kind": str(getattr(p, "kind", "")),
    }


def _first_line(text: str) -> str:
    lines = (text or "").strip().splitlines()
    return lines[0] if lines else ""


# ------------------------------------------------------------------------------------------------
# the lab
# ------------------------------------------------------------------------------------------------
class Lab:
    """The state behind the endpoints: bounded caches of objectives, surfaces, runs and the meta answer."""

    def backend(self) -> str:
        """The engine's backend for a run now: ``auto``, or ``reference`` until the kernels are warm."""
        return "auto" if self.fused_ready is None or self.fused_ready.is_set() else "reference"

    def __init__(self, foreign: dict[str, type] | None = None, fused_ready: threading.Event | None = None) -> None:
        #: Foreign optimizers loaded by the command line that started the server (never by a request).
        self.foreign: dict[str, type] = dict(foreign or {})
        #: While this event is not set, runs take the reference loop (no compiled code is loaded or
        #: compiled for them): a server sets it once its kernels' warmup has finished.
        self.fused_ready = fused_ready
        self._objectives: LRUCache[Any] = _cache("objectives", lambda obj: OBJECTIVE_BYTES)
        self._surfaces: LRUCache[bytes] = _cache("surfaces", byte_length)
        self._runs: LRUCache[bytes] = _cache("runs", byte_length)
        self._meta: LRUCache[bytes] = _cache("meta", byte_length)

    # -- objectives ------------------------------------------------------------------------------
    def objective(self, req: m.Problem) -> Any:
        """The landscape or parsed expression a request names (cached)."""
        if req.expr is not None and req.expr.strip():
            return self._objectives.get_or_make(("expr", req.expr), lambda: self.parse(req.expr or ""))
        name = req.landscape or ""
        params = dict(sorted(req.params.items()))
        return self._objectives.get_or_make(("land", name, json.dumps(params)), lambda: self._landscape(name, params))

    def _landscape(self, name: str, params: dict[str, Any]) -> Any:
        registry = LANDSCAPES
        if name not in registry:
            from gdlab.core.hyper import suggest

            valid = ", ".join(self.landscape_names())
            raise LabError(f"unknown landscape {name!r}{suggest(name, registry)}; valid: {valid}", field="landscape")
        cls = registry[name]
        specs = {h.name: h for h in getattr(cls, "hyperparams", ())}
        params = {k: (int(v) if specs.get(k) is not None and specs[k].kind == "int" and float(v).is_integer() else v)
                  for k, v in params.items()}
        if "dim" in specs and "dim" not in params:
            params["dim"] = 2 if (specs["dim"].low or 1) <= 2 else int(specs["dim"].low or 1)
        try:
            land = make_landscape(name, **params)
        except (ValueError, TypeError) as exc:
            raise LabError(str(exc), field="params") from None
        if int(land.dim) not in DRAWABLE_DIMS:
            raise LabError(
                f"the lab draws 1-D and 2-D landscapes only; {name} with these parameters has dim={land.dim}",
                field="params",
            )
        return land

    def parse(self, text: str) -> Any:
        """Parse a custom expression (the parser never evaluates code); errors carry a column."""
        if len(text) > MAX_EXPR_CHARS:
            raise LabError(f"the expression has {len(text)} characters; the limit is {MAX_EXPR_CHARS}", field="expr")
        try:
            obj = parse_expression(text)
        except (ExpressionError, ValueError, TypeError) as exc:
            raise LabError(str(exc), column=getattr(exc, "column", None), field="expr") from None
        if int(getattr(obj, "dim", 2)) not in DRAWABLE_DIMS:
            raise LabError(f"the lab draws functions of x or of x and y only (this one has {obj.dim} variables)",
                           field="expr")
        return obj  # compiled by the run engine when it is first run, never merely for being parsed

    @staticmethod
    def domain(obj: Any) -> list[list[float]]:
        dom = getattr(obj, "domain", None)
        d = int(getattr(obj, "dim", 2))
        if dom is None:
            return [[-3.0, 3.0]] * d
        return [[float(lo), float(hi)] for lo, hi in list(dom)[:d]]

    @staticmethod
    def default_start(obj: Any) -> list[float]:
        start = getattr(obj, "default_start", None)
        if start is None:
            dom = Lab.domain(obj)
            return [lo + 0.8 * (hi - lo) for lo, hi in dom]
        return [float(v) for v in np.ravel(start)]

    @staticmethod
    def points(obj: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
        """(minima: global then local, other critical points: saddles and maxima) as JSON."""
        minima = [_point_json(p) for p in [*getattr(obj, "global_minima", []), *getattr(obj, "local_minima", [])]]
        others = [_point_json(p) for p in [*getattr(obj, "saddles", []), *getattr(obj, "local_maxima", [])]]
        return minima, others

    def landscape_names(self) -> list[str]:
        return list(LANDSCAPES)

    def warm(self, grid: int = 200) -> None:
        """Build what the first page load needs: the meta answer (every landscape compiled) and the
        default lesson's surface and runs."""
        self.meta()
        meta = json.loads(self.meta())
        preset = next((p for p in meta["presets"] if p["id"] == meta.get("default_preset")), None)
        if preset is None:
            return
        st = preset["state"]
        self.surface(m.SurfaceRequest(landscape=st.get("landscape"), grid=grid))
        self.run(m.RunRequest(landscape=st.get("landscape"), optimizers=st["optimizers"], start=st.get("start"),
                              steps=st.get("steps", 200)))

    # -- /api/meta ------------------------------------------------------------------------------
    def meta(self) -> bytes:
        return self._meta.get_or_make("meta", lambda: dumps(self._build_meta()))

    def _build_meta(self) -> dict[str, Any]:
        landscapes = []
        for name, cls in LANDSCAPES.items():
            try:
                land = self._landscape(name, {})
            except LabError:
                continue  # not drawable (e.g. N-dimensional without a 2-D default)
            minima, others = self.points(land)
            params = [p for p in describe(getattr(cls, "hyperparams", ())) if p["name"] != "dim"]
            landscapes.append({
                "name": name,
                "title": getattr(cls, "title", "") or name.replace("_", " "),
                "description": getattr(cls, "description", "") or _first_line(cls.__doc__ or ""),
                "dim": int(land.dim),
                "domain": self.domain(land),
                "default_start": self.default_start(land),
                "params": params,
                "minima": minima,
                "critical_points": others,
            })
        optimizers = []
        for name, ocls in OPTIMIZERS.items():
            optimizers.append({
                "name": name,
                "family": getattr(ocls, "family", ""),
                "summary": _first_line(ocls.__doc__ or ""),
                "hyperparams": describe(ocls.hyperparams),
            })
        for name, ocls in self.foreign.items():
            optimizers.append({
                "name": name,
                "family": getattr(ocls, "family", "foreign"),
                "summary": _first_line(ocls.__doc__ or ""),
                "hyperparams": describe(ocls.hyperparams) if ocls.hyperparams else foreign_hyperparams(ocls),
                "foreign": True,
            })
        schedules = []
        for name, scls in SCHEDULES.items():
            schedules.append({
                "name": name,
                "summary": _first_line(scls.__doc__ or ""),
                "needs_loss": bool(getattr(scls, "needs_loss", False)),
                "hyperparams": describe(scls.hyperparams),
            })
        names = {entry["name"] for entry in landscapes}
        presets = presets_for(names, set(OPTIMIZERS), set(SCHEDULES))
        return jsonable({
            "version": __version__,
            "landscapes": landscapes,
            "optimizers": optimizers,
            "schedules": schedules,
            "presets": presets,
            "default_preset": DEFAULT_PRESET if any(p["id"] == DEFAULT_PRESET for p in presets) else None,
            "limits": LIMITS,
            "expression_help": "Use x and y, numbers, pi, e, + − * / ^ (or **), parentheses and the functions "
                               f"{', '.join(EXPRESSION_FUNCTIONS)}.",
        })

    # -- /api/surface ---------------------------------------------------------------------------
    def surface(self, req: m.SurfaceRequest) -> bytes:
        obj = self.objective(req)
        key = json.dumps([self._problem_key(req), req.grid])
        return self._surfaces.get_or_make(key, lambda: self._surface_json(obj, req.grid))

    def _surface_json(self, obj: Any, n: int) -> bytes:
        """The surface as JSON bytes; grid values are written with 7 significant digits (display only)."""
        body = self._surface(obj, n)
        z = body.pop("z")
        head = dumps({**body, "z": None})
        assert head.endswith(b',"z":null}')
        return head[: -len(b"null}")] + _grid_json(z) + b"}"

    def _surface(self, obj: Any, n: int) -> dict[str, Any]:
        dom = self.domain(obj)
        d = int(obj.dim)
        xs = np.linspace(dom[0][0], dom[0][1], n)
        if d == 1:
            with np.errstate(all="ignore"):
                z = np.asarray(obj.value(xs[:, None]), dtype=np.float64)
            ys = None
        else:
            ys = np.linspace(dom[1][0], dom[1][1], n)
            X, Y = np.meshgrid(xs, ys)
            with np.errstate(all="ignore"):
                z = np.asarray(obj.value(np.stack([X, Y], axis=-1)), dtype=np.float64)
        finite = z[np.isfinite(z)]
        minima, others = self.points(obj)
        return {
            "dim": d,
            "domain": dom,
            "x": jsonable(xs),
            "y": None if ys is None else jsonable(ys),
            "z": z,
            "zmin": float(finite.min()) if finite.size else None,
            "zmax": float(finite.max()) if finite.size else None,
            "minima": minima,
            "critical_points": others,
            "default_start": self.default_start(obj),
        }

    # -- /api/run --------------------------------------------------------------------------------
    def run(self, req: m.RunRequest, cancel: Callable[[], bool] | None = None) -> bytes:
        """Every optimizer's run as JSON. Runs are cached one by one (keyed by everything that
        determines them), so moving one optimizer's control recomputes that optimizer only, and equal
        runs in one request are computed once. ``cancel`` is asked between and during the engine's
        calls (:func:`gdlab.engine.run.run_batch`); when it answers True the request stops with
        :class:`gdlab.engine.run.Cancelled`."""
        t0 = time.perf_counter()
        obj = self.objective(req)
        d = int(obj.dim)
        start = self._start(req.start, obj, "start")
        built = [self._build_optimizer(i, spec, req.schedule) for i, spec in enumerate(req.optimizers)]
        problem = self._problem_key(req)
        keys = [json.dumps([problem, b["cls"].name, _canonical(b["opt"].get_params()),
                            None if b["schedule"] is None else [b["schedule"].name,
                                                                _canonical(b["schedule"].get_params())],
                            start.tolist(), req.steps, req.tol,
                            None if b["noise"] is None else b["noise"].to_dict()], sort_keys=True) for b in built]
        parts: dict[str, bytes] = {}
        for key in dict.fromkeys(keys):
            part = self._runs.get(key)
            if part is not None:
                parts[key] = part
        todo = [keys.index(key) for key in dict.fromkeys(keys) if key not in parts]  # one per distinct run
        for group in _groups([built[i] for i in todo]):
            members = [todo[j] for j in group]
            results = self._run_group([built[i] for i in members], obj, start, req, cancel)
            for idx, res in zip(members, results, strict=True):
                out = res.to_dict()
                for name in ("extra", "label"):
                    out.pop(name, None)
                out.update(self._run_extras(obj, res, built[idx]["noise"]))
                parts[keys[idx]] = dumps(out)
                self._runs.put(keys[idx], parts[keys[idx]])
        runs = []
        for idx, (spec, key) in enumerate(zip(req.optimizers, keys, strict=True)):
            head = dumps({"index": idx, "color": spec.color, "label": spec.label or built[idx]["label"]})
            runs.append(head[:-1] + b"," + parts[key][1:])
        elapsed = round((time.perf_counter() - t0) * 1000, 3)
        head = dumps({"dim": d, "steps": req.steps, "start": start.tolist(), "elapsed_ms": elapsed,
                      "computed": len(todo)})
        return head[:-1] + b',"runs":[' + b",".join(runs) + b"]}"

    @staticmethod
    def _problem_key(req: m.Problem) -> Any:
        if req.expr is not None and req.expr.strip():
            return ["expr", req.expr]
        return ["land", req.landscape, dict(sorted(req.params.items()))]

    def _start(self, start: list[float] | None, obj: Any, field: str) -> np.ndarray:
        d = int(obj.dim)
        if start is None:
            return np.asarray(self.default_start(obj), dtype=np.float64)
        if len(start) != d:
            raise LabError(f"{field} must have {d} coordinate(s) for this {d}-D function, got {len(start)}",
                           field=field)
        return np.asarray(start, dtype=np.float64)

    def _build_optimizer(
        self, i: int, spec: m.OptimizerSpec, default_schedule: m.ScheduleSpec | None
    ) -> dict[str, Any]:
        where = f"optimizers[{i}]"
        try:
            cls = self.foreign[spec.name] if spec.name in self.foreign else lab_optimizer_class(spec.name)
        except ValueError as exc:
            raise LabError(f"{where}: {exc}", field=f"{where}.name") from None
        kinds = {h.name: h.kind for h in cls.hyperparams}
        sizes = {h.name: h.size for h in cls.hyperparams}
        for key, value in spec.hyperparams.items():
            kind = kinds.get(key)
            if isinstance(value, list) and kind is not None and kind != "pair":
                raise LabError(f"{where}: {spec.name}: {key} must be a single value, got a list", field=where)
            if kind == "pair" and isinstance(value, list) and any(v is None for v in value):
                raise LabError(f"{where}: {spec.name}: {key} must hold numbers only in the lab, got {value} (leave "
                               f"{key} out for its default)", field=where)
            if kind == "pair" and isinstance(value, list) and len(value) != sizes[key]:
                raise LabError(f"{where}: {spec.name}: {key} must have exactly {sizes[key]} values, got {len(value)}",
                               field=where)
        base = spec.hyperparams.get("base")
        if spec.name == "sam" and isinstance(base, str) and base in SAM_BASES_NOT_IN_LAB:
            raise LabError(f"{where}: sam: base={base!r} is not offered by the lab: {SAM_BASES_NOT_IN_LAB[base]}",
                           field=f"{where}.hyperparams")
        _check_integers(kinds, spec.hyperparams, f"{where}: {spec.name}", f"{where}.hyperparams")
        try:
            opt = cls(**spec.hyperparams)
        except (ValueError, TypeError) as exc:
            raise LabError(f"{where}: {exc}", field=f"{where}.hyperparams") from None
        sched_spec = spec.schedule if spec.schedule is not None else default_schedule
        sched = None
        if sched_spec is not None:
            sched = self._schedule(sched_spec, where)
        if sched is not None and sched.cycled_momentum(0) is not None:
            try:
                momentum_field(opt)
            except ValueError as exc:
                raise LabError(f"{where}: {exc}", field=f"{where}.schedule") from None
        hp = spec.hyperparams
        label = spec.name + "".join(f" {k}={format_hyperparam(v)}" for k, v in hp.items())
        if sched_spec is not None:
            label += f" +{sched_spec.name}"
        noise = None
        if spec.noise is not None:
            try:
                noise = Noise(spec.noise.sigma, spec.noise.batch_size, spec.noise.seed)
            except (ValueError, TypeError) as exc:
                raise LabError(f"{where}.noise: {exc}", field=f"{where}.noise") from None
            label += f" σ={format_hyperparam(noise.sigma)} B={noise.batch_size}"
        return {"cls": cls, "opt": opt, "hyperparams": hp, "schedule": sched, "schedule_spec": sched_spec,
                "label": label, "where": where, "noise": noise}

    @staticmethod
    def _run_extras(obj: Any, res: Any, noise: Noise | None) -> dict[str, Any]:
        """What the page shows beside a run: its noise, the gradient at every point (``grad``: ∇f, not
        the noisy gradient the optimizer saw), its optimizer's stability rule checked at every
        point (:func:`gdlab.engine.stability.check_run`) and the rate measured towards the nearest known
        minimum (:func:`gdlab.engine.rates.measured_rate`)."""
        stability = _stability.check_run(obj, res.optimizer, res.hyperparams, res.trajectory, res.lr)
        rate = None
        near = _analysis.nearest_known_minimum(obj, res.final_point) if len(res.trajectory) else None
        if near is not None and res.status != "diverged":
            value = float(_rates.measured_rate(res.trajectory, near["location"]))
            rate = value if math.isfinite(value) else None
        grad = None
        if len(res.trajectory):  # the gradient at every point, for the page's arrows
            _, g = obj.value_and_grad(np.asarray(res.trajectory, dtype=np.float64))
            grad = np.asarray(g, dtype=np.float64).reshape(len(res.trajectory), -1)
        return {"noise": None if noise is None else noise.to_dict(), "stability": jsonable(stability),
                "measured_rate": rate, "grad": None if grad is None else jsonable(grad)}

    @staticmethod
    def _schedule(spec: m.ScheduleSpec, where: str) -> Any:
        """The schedule ``spec`` names (``None`` for "none"); ``where`` names the optimizer it belongs to
        (empty for the request's own schedule)."""
        what = f"{where}: schedule" if where else "schedule"
        field = f"{where}.schedule" if where else "schedule"
        if spec.name == "none":
            if spec.params:
                raise LabError(f"{what}: 'none' takes no parameters, got {', '.join(spec.params)}", field=field)
            return None
        try:
            cls = lab_schedule_class(spec.name)
        except ValueError as exc:
            raise LabError(f"{what}: {exc}", field=field) from None
        kinds = {h.name: h.kind for h in cls.hyperparams}
        for key, value in spec.params.items():
            if isinstance(value, list) and kinds.get(key) not in ("pair", "int_list"):
                raise LabError(f"{what} {spec.name}: {key} must be a single value, got a list", field=field)
        _check_integers(kinds, spec.params, f"{what} {spec.name}", f"{field}.params")
        params = dict(spec.params)
        for key, value in spec.params.items():
            if kinds.get(key) == "function" and isinstance(value, str):  # a formula in t, never eval'd
                try:
                    params[key] = parse_formula(value)
                except ExpressionError as exc:
                    raise LabError(f"{what} {spec.name}: {key}: {exc}", field=f"{field}.params.{key}") from None
        try:
            return cls(**params)
        except (ValueError, TypeError) as exc:
            raise LabError(f"{what}: {exc}", field=field) from None

    def _run_group(self, group: list[dict[str, Any]], obj: Any, start: np.ndarray, req: m.RunRequest,
                   cancel: Callable[[], bool] | None) -> list[Any]:
        """One engine call for a group of runs of the same optimizer (differing numbers are batched)."""
        first = group[0]
        if len(group) == 1:
            opt, label = first["opt"], first["label"]
        else:
            opt = first["cls"](**_batched_hyperparams(group))
            label = ""
        try:
            rec = run_batch(obj, opt, start, steps=req.steps, schedule=first["schedule"], tol=req.tol, label=label,
                            cancel=cancel, noise=first["noise"], backend=self.backend())
        except (ValueError, TypeError) as exc:
            raise LabError(f"{first['where']}: {exc}") from None
        if rec.batch_shape == ():  # one run: alone, or a group whose numbers are all equal (0.0 and -0.0)
            return [rec.run(())] * len(group)
        return [rec.run((j,)) for j in range(len(group))]

    # -- /api/rates and /api/ratemap ----------------------------------------------------------------
    def quadratic(self, req: m.QuadraticSpec) -> Any:
        """The 2-D ``quadratic`` landscape of a rates request (cached like every landscape)."""
        return self.objective(m.Problem(landscape="quadratic",
                                        params={"condition": req.condition, "angle": req.angle}))

    def rates(self, req: m.RatesRequest) -> bytes:
        """Theoretical per-step rates of gradient descent and heavy-ball momentum at (lr, momentum) on the
        quadratic, and the optimal settings (:mod:`gdlab.engine.rates`)."""
        lam = _rates.eigenvalues_of(self.quadratic(req).A)
        return dumps({
            "eigenvalues": lam,
            "condition": float(lam[-1] / lam[0]),
            "gd_rate": float(_rates.gd_rate(lam, req.lr)),
            "momentum_rate": float(_rates.momentum_rate(lam, req.lr, req.momentum)),
            "optimal": _rates.optimal(lam),
        })

    def ratemap(self, req: m.RateMapRequest, cancel: Callable[[], bool] | None = None) -> bytes:
        """The measured and theoretical heavy-ball rates on an n × n grid of (lr, momentum): lr spaced
        geometrically over ``req.lr``, momentum linearly over ``req.momentum``; the n² runs are one engine
        call with per-run hyperparameter arrays, made twice without records (to the start of the last
        quarter, then to the end: the runs are deterministic) so that only final points are kept. The
        reference loop runs them: on 10⁴ runs it is as fast as the compiled one (measured 0.4 s for 1000
        steps against 0.7 s), and it compiles nothing for each new κ and angle."""
        t0 = time.perf_counter()
        land = self.quadratic(req)
        start = self._start(req.start, land, "start")
        lam = _rates.eigenvalues_of(land.A)
        lrs = np.geomspace(req.lr[0], req.lr[1], req.n)
        moms = np.linspace(req.momentum[0], req.momentum[1], req.n)
        opt = make_optimizer("sgd", lr=lrs[None, :], momentum=moms[:, None])
        x_star = land.global_minima[0].location
        mid = _rates.tail_start(req.steps + 1)
        ends = []
        for steps in (mid, req.steps):
            rec = run_batch(land, opt, start, steps=steps, record=False, cancel=cancel, backend="reference")
            ends.append((rec.final_params, rec.status_code))
        measured = _rates.rate_between(ends[0][0], ends[1][0], x_star, req.steps - mid)
        measured = np.where(ends[1][1] == DIVERGED_CODE, np.nan, measured)
        theory = _rates.momentum_rate(lam, lrs[None, :], moms[:, None])
        return dumps({"lr": lrs, "momentum": moms, "measured": jsonable(measured), "theory": theory,
                      "steps": req.steps, "elapsed_ms": round((time.perf_counter() - t0) * 1000, 3)})

    # -- /api/analyze ----------------------------------------------------------------------------
    def analyze(self, req: m.AnalyzeRequest) -> bytes:
        """:func:`gdlab.engine.analysis.analyze`'s two analyses, kept apart so that a point where the
        Hessian is not defined (Ackley's cusp, or where the function overflows) still leaves the other
        analysis on show: such a point is reported with its value and no eigenvalues."""
        obj = self.objective(req)
        point = self._start(req.point, obj, "point")
        with np.errstate(all="ignore"):  # far out, values overflow: they are reported as null
            return self._analyze(obj, point, req.candidates)

    def _analyze(self, obj: Any, point: np.ndarray, candidates: list[list[float]]) -> bytes:
        try:
            here = _point_analysis(_analysis.analyze_point(obj, point))
        except (ValueError, TypeError, np.linalg.LinAlgError):
            here = _undefined_analysis(point, _value_at(obj, point), "the Hessian is not defined here")
        near = None
        known = _analysis.nearest_known_minimum(obj, point)
        if known is not None:
            try:
                near = _point_analysis(_analysis.analyze_point(obj, known["location"], grad_tol=1e-4))
            except (ValueError, TypeError, np.linalg.LinAlgError):
                near = _undefined_analysis(known["location"], known["value"],
                                           "minimum (the Hessian is not defined there)")
            near["known"] = {k: jsonable(v) for k, v in known.items()}
        elif candidates:
            near = self._nearest_candidate(obj, point, candidates)
        return dumps({"start": here, "nearest_minimum": near})

    def _nearest_candidate(self, obj: Any, point: np.ndarray, candidates: list[list[float]]) -> dict[str, Any] | None:
        """Among points where runs converged, the nearest one that the analysis classifies a minimum."""
        best: tuple[float, dict[str, Any]] | None = None
        for c in candidates:
            if len(c) != point.shape[0]:
                continue
            try:
                pa = _analysis.analyze_point(obj, np.asarray(c, dtype=np.float64), grad_tol=1e-4)
            except (ValueError, TypeError, np.linalg.LinAlgError):
                continue
            if pa.kind != "minimum":
                continue
            dist = float(np.linalg.norm(np.asarray(c) - point))
            if best is None or dist < best[0]:
                best = (dist, _point_analysis(pa))
        return None if best is None else best[1]

    # -- /api/validate-expr -----------------------------------------------------------------------
    def validate_expr(self, req: m.ExprRequest) -> dict[str, Any]:
        text = req.expr
        if not text.strip():
            return {"valid": False, "message": "enter an expression in x (and y), e.g. x^2 + 10*y^2", "column": 1}
        try:
            obj = self._objectives.get_or_make(("expr", text), lambda: self.parse(text))
        except LabError as exc:
            return {"valid": False, "message": str(exc), "column": exc.column, "dim": None}
        return {"valid": True, "message": "", "column": None, "dim": int(getattr(obj, "dim", 2))}

    # -- /api/schedule ---------------------------------------------------------------------------
    def schedule_preview(self, req: m.SchedulePreviewRequest) -> bytes:
        steps = np.arange(req.steps)
        lrs = np.asarray(req.lrs, dtype=np.float64)
        name = "constant"
        needs_loss = False
        if req.schedule is None:
            table = np.broadcast_to(lrs, (req.steps, lrs.size))
        else:
            sched = self._schedule(req.schedule, "")
            if sched is None:
                table = np.broadcast_to(lrs, (req.steps, lrs.size))
            else:
                name = sched.name
                needs_loss = bool(getattr(sched, "needs_loss", False))
                try:
                    with np.errstate(all="ignore"):  # a rate that overflows is reported as null
                        table = np.asarray(sched.curve(req.steps, lrs), dtype=np.float64).reshape(req.steps, lrs.size)
                except (ValueError, TypeError) as exc:
                    raise LabError(f"schedule: {exc}", field="schedule") from None
        curves = [{"base_lr": float(lr), "lr": jsonable(table[:, j])} for j, lr in enumerate(lrs)]
        return dumps({"schedule": name, "needs_loss": needs_loss, "steps": steps.tolist(), "curves": curves})


# ------------------------------------------------------------------------------------------------
# helpers
# ------------------------------------------------------------------------------------------------
def _number(v: float) -> str:
    return f"{v:.7g}" if math.isfinite(v) else "null"


def _grid_json(z: np.ndarray) -> bytes:
    """A float array (1-D or 2-D) as a JSON array of numbers with 7 significant digits, null where not finite."""
    if z.ndim == 1:
        return ("[" + ",".join(_number(v) for v in z.tolist()) + "]").encode()
    return ("[" + ",".join("[" + ",".join(_number(v) for v in row) + "]" for row in z.tolist()) + "]").encode()


def _check_integers(kinds: dict[str, str], values: dict[str, Any], owner: str, field: str) -> None:
    """Integer hyperparameters (and milestones) within ±:data:`~gdlab.web.limits.MAX_INT`, so that no
    layer below meets an integer it cannot hold, and those of :data:`~gdlab.web.limits.INT_LIMITS`
    within theirs."""
    for key, value in values.items():
        if kinds.get(key) not in ("int", "int_list"):
            continue
        largest = INT_LIMITS.get(key, MAX_INT)
        for v in value if isinstance(value, list) else [value]:
            if isinstance(v, int | float) and not isinstance(v, bool) and abs(v) > largest:
                what = "for an integer" if largest == MAX_INT else f"for {key}"
                raise LabError(f"{owner}: {key}={v:.6g} is beyond the lab's limit of {largest} {what}",
                               field=f"{field}.{key}")


def _group_key(b: dict[str, Any]) -> Any:
    """Runs can share one engine call when only their real-valued hyperparameters differ."""
    cls = b["cls"]
    if not getattr(cls, "batched", True) or b["noise"] is not None:  # a noisy run draws its own noise
        return None
    fixed = []
    for h in cls.hyperparams:
        value = getattr(b["opt"], h.name)
        if h.kind in ("real", "pair") and h.batchable and value is not None:
            fixed.append((h.name, "batch"))
        else:
            fixed.append((h.name, repr(value)))
    sched = b["schedule_spec"]
    return (cls.name, tuple(fixed), None if sched is None else sched.model_dump_json())


def _groups(built: list[dict[str, Any]]) -> list[list[int]]:
    groups: dict[Any, list[int]] = {}
    singles: list[list[int]] = []
    for i, b in enumerate(built):
        key = _group_key(b)
        if key is None:
            singles.append([i])
        else:
            groups.setdefault(key, []).append(i)
    return list(groups.values()) + singles


def _batched_hyperparams(group: list[dict[str, Any]]) -> dict[str, Any]:
    """Hyperparameters of one batched optimizer: equal values stay scalars, differing ones become arrays."""
    cls = group[0]["cls"]
    out: dict[str, Any] = {}
    for h in cls.hyperparams:
        values = [getattr(b["opt"], h.name) for b in group]
        if h.kind == "pair" and h.batchable and values[0] is not None and len(set(values)) > 1:
            out[h.name] = tuple(np.array([float(v[j]) for v in values]) for j in range(2))
        elif h.kind == "real" and h.batchable and values[0] is not None:
            out[h.name] = np.array([float(v) for v in values]) if len(set(values)) > 1 else values[0]
        else:
            out[h.name] = values[0]
    return out


def _value_at(obj: Any, point: np.ndarray) -> float | None:
    with np.errstate(all="ignore"):
        try:
            value = float(obj.value(point))
        except (ValueError, TypeError, ArithmeticError):
            return None
    return value if math.isfinite(value) else None


def _undefined_analysis(point: Any, value: Any, classification: str) -> dict[str, Any]:
    """The analysis of a point where the Hessian cannot be had: its place and value only."""
    return {"point": jsonable(point), "value": jsonable(value), "grad_norm": None, "eigenvalues": [],
            "lambda_max": None, "critical_lr": None, "critical_lr_momentum": None, "condition_number": None,
            "classification": classification, "curvature": "", "hessian_source": ""}


def _point_analysis(pa: Any) -> dict[str, Any]:
    lam = np.asarray(pa.eigenvalues, dtype=np.float64)
    cond = pa.condition_number
    return jsonable({
        "point": pa.point,
        "value": pa.value,
        "grad_norm": pa.grad_norm,
        "eigenvalues": lam,
        "lambda_max": float(lam[-1]) if lam.size else None,
        "critical_lr": pa.critical_lr,
        "critical_lr_momentum": pa.critical_lr_momentum,
        "condition_number": cond if math.isfinite(cond) else None,
        "classification": pa.kind,
        "curvature": pa.curvature,
        "hessian_source": pa.hessian_source,
    })


def warmup() -> str:
    """Compile (or load) the fused kernels and trajectory code once, at server start."""
    t0 = time.perf_counter()
    fast.warmup()
    return f"gdlab.fast warmed up in {time.perf_counter() - t0:.2f} s"


def foreign_hyperparams(cls: type) -> list[dict[str, Any]]:
    """The numeric and boolean keyword arguments of a foreign optimizer, from its signature's defaults."""
    out = []
    for key, value in getattr(cls, "defaults", {}).items():
        if isinstance(value, bool):
            out.append({"name": key, "default": value, "kind": "bool"})
        elif isinstance(value, int | float):
            out.append({"name": key, "default": value, "kind": "real"})
        elif isinstance(value, tuple) and len(value) == 2 and all(isinstance(v, int | float) for v in value):
            out.append({"name": key, "default": list(value), "kind": "pair"})
    return out
