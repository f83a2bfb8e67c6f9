"""The browser lab's server: a FastAPI app serving the page, Plotly.js and a small JSON API.

``create_app()`` builds the app (``gdlab serve`` runs it on uvicorn). Endpoints (all JSON, validated by
pydantic, described at ``/openapi.json`` and ``/docs``):

``GET /api/meta``
    landscapes, optimizers and schedules with their hyperparameter specs, lesson presets, limits.
``POST /api/surface``
    a landscape (or custom expression) on a grid over its domain, with its known critical points.
``POST /api/run``
    several optimizers from one start: trajectories, losses, statuses (the run engine's RunResults).
``POST /api/analyze``
    Hessian eigenvalues, 2/λmax and classification at a point and at the nearest minimum.
``POST /api/validate-expr``
    whether a custom expression parses (200 either way; the parser's message and column if not).
``POST /api/schedule``
    learning-rate curves of a schedule for some base rates.

Errors: malformed or out-of-limit input → 422 ``{"detail": message, "errors": [...]}``; unknown
paths → 404; anything unexpected → 400 ``{"detail": ..., "error": "internal"}`` without a traceback.
The server never answers 500, and its JSON never contains NaN or infinity.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from importlib import resources
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Receive, Scope, Send

from gdlab._version import __version__
from gdlab.web import models as m
from gdlab.web.service import Lab, LabError, dumps, warmup

log = logging.getLogger("gdlab.web")

STATIC_DIR = Path(__file__).with_name("static")
JSON = "application/json"
JS_CACHE = {"Cache-Control": "public, max-age=86400"}
# V8's explicit compile hint (a comment; v8.dev/blog/explicit-compile-hints): Chromium compiles every
# function of the script while it streams in, off the main thread, instead of lazily on first call
# while the page draws its first plots. Prepended when serving; the vendored file stays as shipped.
COMPILE_HINT = b"//# allFunctionsCalledOnLoad\n"


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


class _NeverFail:
    """ASGI wrapper: an unexpected exception becomes a 400 ``internal`` JSON answer, never a 500."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as exc:  # the one place that must catch everything
            log.exception("unexpected error on %s", scope.get("path"))
            if started:
                return
            body = dumps({"detail": f"internal error while handling the request ({type(exc).__name__}); "
                                    "the input was not processed", "error": "internal"})
            await send({"type": "http.response.start", "status": 400,
                        "headers": [(b"content-type", JSON.encode()), (b"content-length", str(len(body)).encode())]})
            await send({"type": "http.response.body", "body": body})


def _warm_kernels(done: threading.Event) -> None:
    try:
        log.info(warmup())
    except Exception:  # the kernels are an optimisation: never fatal
        log.exception("gdlab.fast warmup failed")
    finally:
        done.set()


def create_app(*, warm: bool = True, warm_kernels: bool | None = None) -> FastAPI:
    """The lab's FastAPI app.

    With ``warm`` the server prepares at start what the first page load needs: every landscape (for
    ``/api/meta``) and the default lesson's surface and runs. ``warm_kernels`` (default: ``warm``)
    also calls the fused kernels' warmup (when :mod:`gdlab.fast` exists) in a background thread, so
    that compiling them never delays the lab.
    """
    lab = Lab()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if warm if warm_kernels is None else warm_kernels:
            threading.Thread(target=_warm_kernels, args=(app.state.kernels_warm,), name="gdlab-fast-warmup",
                             daemon=True).start()
        else:
            app.state.kernels_warm.set()
        if warm:
            try:
                await run_in_threadpool(lab.warm)
            except Exception:  # a failed warmup must not stop the server
                log.exception("warmup failed")
        yield

    app = FastAPI(
        title="gdlab lab",
        version=__version__,
        summary="The gradient-descent laboratory in the browser: landscapes, optimizers, runs, analysis.",
        lifespan=lifespan,
    )
    app.state.lab = lab
    app.state.kernels_warm = threading.Event()  # set once the fused kernels' warmup has finished
    app.add_middleware(_NeverFail)

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

    @app.exception_handler(StarletteHTTPException)
    async def _http(request: Any, exc: StarletteHTTPException) -> JSONResponse:
        status = exc.status_code if exc.status_code < 500 else 400
        return JSONResponse({"detail": jsonable_encoder(exc.detail)}, status_code=status)

    errors = {422: {"model": m.ErrorOut, "description": "malformed input or beyond a limit"}}

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

    # -- the API ----------------------------------------------------------------------------------
    @app.get("/api/meta", response_model=m.MetaOut, tags=["lab"])
    def meta() -> Response:
        """Landscapes, optimizers and schedules (with hyperparameter specs), lesson presets and limits."""
        return _json(lab.meta())

    @app.post("/api/surface", response_model=m.SurfaceOut, responses=errors, tags=["lab"])
    def surface(req: m.SurfaceRequest) -> Response:
        """The function on a ``grid × grid`` grid over its domain (cached), with its critical points."""
        return _json(lab.surface(req))

    @app.post("/api/run", response_model=m.RunsOut, responses=errors, tags=["lab"])
    def run(req: m.RunRequest) -> Response:
        """Run every optimizer from one start; diverging runs stop with status ``diverged`` at step k."""
        return _json(lab.run(req))

    @app.post("/api/analyze", response_model=m.AnalyzeOut, responses=errors, tags=["lab"])
    def analyze(req: m.AnalyzeRequest) -> Response:
        """Hessian eigenvalues, GD's critical learning rate 2/λmax and the kind of point, here and at
        the nearest minimum."""
        return _json(lab.analyze(req))

    @app.post("/api/validate-expr", response_model=m.ExprOut, responses=errors, tags=["lab"])
    def validate_expr(req: m.ExprRequest) -> dict[str, Any]:
        """Parse a custom expression: ``valid`` or the parser's message with its column (always 200)."""
        return lab.validate_expr(req)

    @app.post("/api/schedule", response_model=m.SchedulePreviewOut, responses=errors, tags=["lab"])
    def schedule(req: m.SchedulePreviewRequest) -> Response:
        """The learning rate of every step under a schedule, for each base learning rate."""
        return _json(lab.schedule_preview(req))

    return app
