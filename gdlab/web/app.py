"""The browser lab's server: a FastAPI app serving the page, Plotly.js and a small JSON API.

``create_app()`` builds the app (``gdlab serve`` runs it on uvicorn). Endpoints (all JSON, validated by
pydantic, described at ``/openapi.json`` and, with the vendored Swagger UI, at ``/docs``):

``GET /api/meta``
    landscapes, optimizers and schedules with their hyperparameter specs, lesson presets, limits.
``POST /api/surface``
    a landscape (or custom expression) on a grid over its domain, with its known critical points.
``POST /api/run``
    several optimizers from one start: trajectories, losses, statuses (the run engine's RunResults), each
    with its noise, its optimizer's stability rule checked at every point, and its measured rate.
``POST /api/analyze``
    Hessian eigenvalues, 2/λmax and classification at a point and at the nearest minimum.
``POST /api/rates``
    convergence rates of gradient descent and heavy-ball momentum on the quadratic, and the optimal settings.
``POST /api/ratemap``
    measured and theoretical heavy-ball rates over an lr × momentum grid (one batched engine call).
``POST /api/validate-expr``
    whether a custom expression parses (200 either way; the parser's message and column if not).
``POST /api/schedule``
    learning-rate curves of a schedule for some base rates.

How a request is served: :mod:`~gdlab.web.middleware` refuses foreign ``Host`` names (421) and bodies
past the limit (413) before anything runs; :mod:`~gdlab.web.jsonbody` reads the body as JSON;
pydantic checks its shape (:mod:`~gdlab.web.models`); the endpoints that compute pass through the
admission queue (:mod:`~gdlab.web.admission`, costs from :mod:`~gdlab.web.cost`: 503 with
``Retry-After`` when it is full) and run :class:`~gdlab.web.service.Lab` in its own threads, while the
page, static files and ``/api/meta`` are served apart. The OpenAPI schema is refined from the
registries' specs by :mod:`~gdlab.web.schema`.

Errors: malformed or out-of-limit input → 422 ``{"detail": message, "errors": [...]}``; unknown
paths → 404; a method a path does not take → 405 with ``Allow``; anything unexpected → 400
``{"detail": ..., "error": "internal"}`` without a traceback. The server never answers 500, and its
JSON never contains NaN or infinity.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager, suppress
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from gdlab._version import __version__
from gdlab.web import cost
from gdlab.web import models as m
from gdlab.web.admission import Admission, ClientGoneError, ServerBusyError, default_workers
from gdlab.web.jsonbody import JSONRoute
from gdlab.web.limits import MAX_BODY_BYTES, MAX_QUEUED_REQUESTS, MAX_WORKERS
from gdlab.web.middleware import BodyLimit, HostGuard, HostPolicy, NeverFail
from gdlab.web.schema import refine_openapi
from gdlab.web.service import Lab, LabError, warmup

log = logging.getLogger("gdlab.web")
T = TypeVar("T")

STATIC_DIR = Path(__file__).with_name("static")
JSON = "application/json"
JS_CACHE = {"Cache-Control": "public, max-age=86400"}
#: Where the vendored Swagger UI is served (``static/vendor/swagger-ui``, see its README).
SWAGGER_UI = "/static/vendor/swagger-ui"
# V8's explicit compile hint (a comment; v8.dev/blog/explicit-compile-hints): Chromium compiles every
# function of the script while it streams in, off the main thread, instead of lazily on first call
# while the page draws its first plots. Prepended when serving; the vendored file stays as shipped.
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"
#: What the API's endpoints may answer besides 200 (documented in the OpenAPI schema).
REFUSALS: dict[int | str, dict[str, Any]] = {
    413: {"model": m.ErrorOut, "description": "the body is larger than any request the limits allow"},
    421: {"model": m.ErrorOut, "description": "the Host header names a host this server does not answer for"},
    422: {"model": m.ErrorOut, "description": "malformed input or beyond a limit"},
    503: {"model": m.ErrorOut, "description": "the server is at its bound of work in flight (or stopping)",
          "headers": {"Retry-After": {"description": "seconds after which the request is likely admitted",
                                      "required": True, "schema": {"type": "integer", "minimum": 1}}}},
}


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` bundled inside the installed ``plotly`` Python package."""
    root = Path(str(resources.files("plotly")))
    candidate = root / "package_data" / "plotly.min.js"
    if candidate.is_file():
        return candidate
    found = sorted(root.rglob("plotly.min.js"))
    if not found:
        raise FileNotFoundError(f"plotly.min.js not found inside the plotly package at {root}")
    return found[0]


def plotly_cartesian_js_path() -> Path:
    """Plotly's official cartesian partial bundle, vendored in ``static/vendor`` (see its README)."""
    return STATIC_DIR / "vendor" / "plotly-cartesian.min.js"


def _json(body: bytes, status: int = 200) -> Response:
    return Response(content=body, media_type=JSON, status_code=status)


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    parts = [str(p) for p in loc if p not in ("body", "query", "path")]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "request body"


def _message(err: dict[str, Any]) -> str:
    where = _where(err.get("loc", ()))
    msg = str(err.get("msg", "invalid value"))
    kind = err.get("type", "")
    if kind == "json_invalid":
        return f"malformed JSON: {err.get('ctx', {}).get('error', msg)}"
    if kind == "missing":
        return f"{where}: required field is missing"
    if kind == "extra_forbidden":
        return f"{where}: unknown field"
    if kind == "finite_number":
        return f"{where}: must be a finite number (NaN and infinity are not allowed)"
    msg = msg.removeprefix("Value error, ")
    return f"{where}: {msg}"


#: Seconds the kernels' warmup waits for the first page's run before it starts anyway.
WARMUP_DELAY = 3.0


def _lower_priority() -> None:
    """Lower the calling thread's CPU priority (Linux schedules threads apart; best effort elsewhere)."""
    with suppress(AttributeError, OSError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


def _warm_kernels(done: threading.Event, after: threading.Event | None = None) -> None:
    """Compile (or load) the fused kernels, in the background and after the first visit: it waits for
    ``after`` (the first answered run) at most :data:`WARMUP_DELAY` seconds, then runs at the lowest CPU
    priority, so that the first page load never competes with the compiler. Until ``done`` is set the lab
    runs the reference loop, which needs no compiled code."""
    if after is not None:
        after.wait(WARMUP_DELAY)
    _lower_priority()
    try:
        log.info(warmup())
    except Exception:  # the kernels are an optimisation: never fatal
        log.exception("gdlab.fast warmup failed")
    finally:
        done.set()


def _warm_lab(lab: Lab, done: threading.Event) -> None:
    try:
        lab.warm()
    except Exception:  # a failed warmup must not stop the server
        log.exception("warmup failed")
    finally:
        done.set()


def _background(name: str, target: Callable[..., None], *args: Any) -> None:
    """Start ``target(*args)`` in a daemon thread: the server answers meanwhile, and stopping it never
    waits for a warmup (Ctrl-C ends ``gdlab serve`` at once)."""
    threading.Thread(target=target, args=args, name=name, daemon=True).start()


def create_app(*, warm: bool = True, warm_kernels: bool | None = None, hosts: HostPolicy | None = None,
               workers: int | None = None, capacity: float | None = None,
               optimizers: Sequence[str] = ()) -> FastAPI:
    """The lab's FastAPI app.

    With ``warm`` the server prepares in the background what the first page load needs: every
    landscape (for ``/api/meta``) and the default lesson's surface and runs. ``warm_kernels``
    (default: ``warm``) also calls the fused kernels' warmup in a background thread at the lowest
    priority, once the first run has been answered (or :data:`WARMUP_DELAY` seconds have passed), so
    that compiling them never delays the first page load; until it has finished the lab's runs take the
    reference loop. ``app.state.lab_warm`` and ``app.state.kernels_warm`` are set when each is done.

    ``hosts``: the ``Host`` headers answered (default: the loopback names on any port; ``gdlab serve``
    gives the names and port it listens on). ``workers`` threads compute the requests (default: the
    CPUs, at most :data:`~gdlab.web.limits.MAX_WORKERS`), and at most ``capacity`` estimated seconds
    of work are admitted at once (default: :data:`~gdlab.web.limits.MAX_QUEUED_REQUESTS` requests at
    the limits).
    """
    kernels = warm if warm_kernels is None else warm_kernels
    kernels_warm = threading.Event()  # set once the fused kernels' warmup has finished
    foreign = {}
    if optimizers:  # foreign optimizers: only from the caller (the command line), never from a request
        from gdlab.foreign import resolve_class

        foreign = {name: resolve_class(name) for name in optimizers}  # ForeignError: the server does not start
    lab = Lab(foreign, fused_ready=kernels_warm if kernels else None)
    gate = Admission(capacity or MAX_QUEUED_REQUESTS * cost.MAX_REQUEST_COST, workers or default_workers(MAX_WORKERS))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if kernels:
            _background("gdlab-fast-warmup", _warm_kernels, app.state.kernels_warm, app.state.first_run)
        else:
            app.state.kernels_warm.set()
        if warm:
            _background("gdlab-lab-warmup", _warm_lab, lab, app.state.lab_warm)
        else:
            app.state.lab_warm.set()
        try:
            yield
        finally:
            gate.close()

    app = FastAPI(
        title="gdlab lab",
        version=__version__,
        summary="The gradient-descent laboratory in the browser: landscapes, optimizers, runs, analysis.",
        lifespan=lifespan,
        docs_url=None,  # FastAPI's own /docs loads Swagger UI from a CDN: the lab serves its vendored copy below
        redoc_url=None,  # ReDoc is not vendored
    )
    app.router.route_class = JSONRoute
    app.state.lab = lab
    app.state.admission = gate
    app.state.kernels_warm = kernels_warm
    app.state.first_run = threading.Event()  # set once a run has been answered (the page has loaded)
    app.state.lab_warm = threading.Event()  # set once the landscapes and the default lesson are ready
    app.add_middleware(BodyLimit, limit=MAX_BODY_BYTES)
    app.add_middleware(HostGuard, policy=hosts or HostPolicy.for_server())
    app.add_middleware(NeverFail)  # outermost: whatever escapes, never a 500

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Any, exc: RequestValidationError) -> JSONResponse:
        errors = [{"loc": [str(p) for p in e.get("loc", ())], "msg": _message(e), "type": e.get("type", "")}
                  for e in exc.errors()]
        detail = "; ".join(e["msg"] for e in errors[:4]) or "invalid request"
        if len(errors) > 4:
            detail += f" (and {len(errors) - 4} more)"
        return JSONResponse({"detail": detail, "errors": errors}, status_code=422)

    @app.exception_handler(LabError)
    async def _refused(request: Any, exc: LabError) -> JSONResponse:
        body: dict[str, Any] = {"detail": str(exc)}
        if exc.column is not None:
            body["column"] = exc.column
        if exc.field is not None:
            body["field"] = exc.field
        return JSONResponse(body, status_code=422)

    @app.exception_handler(ServerBusyError)
    async def _busy(request: Any, exc: ServerBusyError) -> JSONResponse:
        return JSONResponse({"detail": str(exc)}, status_code=503, headers={"Retry-After": str(exc.retry_after)})

    @app.exception_handler(ClientGoneError)
    async def _gone(request: Any, exc: ClientGoneError) -> Response:
        return JSONResponse({"detail": str(exc)}, status_code=499)  # nobody reads it: the client has gone

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Any, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code if exc.status_code < 500 else 400
        return JSONResponse({"detail": jsonable_encoder(exc.detail)}, status_code=status, headers=exc.headers)

    async def compute(request: Request, estimate: float, work: Callable[[Callable[[], bool]], T]) -> T:
        return await gate.run(request.receive, estimate, work)

    # -- the page ---------------------------------------------------------------------------------
    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html", headers={"Cache-Control": "no-cache"})

    # Plotly.js: the page draws with the cartesian bundle and fetches the full one for its 3-D view
    plotly_path = plotly_js_path()
    cartesian_js = COMPILE_HINT + plotly_cartesian_js_path().read_bytes()

    @app.get("/static/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(plotly_path, media_type="text/javascript", headers=JS_CACHE)

    @app.get("/static/vendor/plotly-cartesian.min.js", include_in_schema=False)
    def plotly_cartesian_js() -> Response:
        return Response(cartesian_js, media_type="text/javascript", headers=JS_CACHE)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.get("/docs", include_in_schema=False)
    def docs() -> Response:
        """The API's documentation page: Swagger UI from the package (static/vendor/swagger-ui), offline."""
        return get_swagger_ui_html(openapi_url="/openapi.json", title="gdlab lab API",
                                   swagger_js_url=f"{SWAGGER_UI}/swagger-ui-bundle.js",
                                   swagger_css_url=f"{SWAGGER_UI}/swagger-ui.css",
                                   swagger_favicon_url=f"{SWAGGER_UI}/favicon-32x32.png",
                                   swagger_ui_parameters={"validatorUrl": None})  # no online validator badge

    # -- the API: /api/meta is served from memory; everything that computes goes through the gate ----
    @app.get("/api/meta", response_model=m.MetaOut, responses={421: REFUSALS[421]}, tags=["lab"])
    def meta() -> Response:
        """Landscapes, optimizers and schedules (with hyperparameter specs), lesson presets and limits."""
        return _json(lab.meta())

    @app.post("/api/surface", response_model=m.SurfaceOut, responses=REFUSALS, tags=["lab"])
    async def surface(req: m.SurfaceRequest, request: Request) -> Response:
        """The function on a ``grid × grid`` grid over its domain (cached), with its critical points."""
        return _json(await compute(request, cost.surface_cost(req), lambda cancel: lab.surface(req)))

    @app.post("/api/run", response_model=m.RunsOut, responses=REFUSALS, tags=["lab"])
    async def run(req: m.RunRequest, request: Request) -> Response:
        """Run every optimizer from one start; diverging runs stop with status ``diverged`` at step k."""
        body = await compute(request, cost.run_cost(req), lambda cancel: lab.run(req, cancel=cancel))
        app.state.first_run.set()
        return _json(body)

    @app.post("/api/analyze", response_model=m.AnalyzeOut, responses=REFUSALS, tags=["lab"])
    async def analyze(req: m.AnalyzeRequest, request: Request) -> Response:
        """Hessian eigenvalues, GD's critical learning rate 2/λmax and the kind of point, here and at
        the nearest minimum."""
        return _json(await compute(request, cost.analyze_cost(req), lambda cancel: lab.analyze(req)))

    @app.post("/api/rates", response_model=m.RatesOut, responses=REFUSALS, tags=["lab"])
    async def rates(req: m.RatesRequest, request: Request) -> Response:
        """Per-step convergence rates on the 2-D quadratic (eigenvalues 1 and κ) at (lr, momentum): gradient
        descent's max|1 − ηλᵢ|, heavy-ball momentum's spectral radius, and the optimal lr and momentum."""
        return _json(await compute(request, cost.rates_cost(req), lambda cancel: lab.rates(req)))

    @app.post("/api/ratemap", response_model=m.RateMapOut, responses=REFUSALS, tags=["lab"])
    async def ratemap(req: m.RateMapRequest, request: Request) -> Response:
        """The measured convergence rate of n × n heavy-ball runs on the 2-D quadratic over a grid of lr
        (geometric) × momentum (linear), one batched engine call, beside the theoretical rate."""
        return _json(await compute(request, cost.ratemap_cost(req), lambda cancel: lab.ratemap(req, cancel=cancel)))

    @app.post("/api/validate-expr", response_model=m.ExprOut, responses=REFUSALS, tags=["lab"])
    async def validate_expr(req: m.ExprRequest, request: Request) -> dict[str, Any]:
        """Parse a custom expression: ``valid`` or the parser's message with its column (always 200).
        The formula is not compiled: that happens when it is first run."""
        return await compute(request, cost.expr_cost(req), lambda cancel: lab.validate_expr(req))

    @app.post("/api/schedule", response_model=m.SchedulePreviewOut, responses=REFUSALS, tags=["lab"])
    async def schedule(req: m.SchedulePreviewRequest, request: Request) -> Response:
        """The learning rate of every step under a schedule, for each base learning rate."""
        return _json(await compute(request, cost.schedule_cost(req), lambda cancel: lab.schedule_preview(req)))

    app.openapi = lambda: refine_openapi(app)  # type: ignore[method-assign]
    return app

