"""The browser lab's JSON API (FastAPI TestClient): every endpoint, every limit, malformed input, no NaN."""

from __future__ import annotations

import hashlib
import json
import math
import re
import socket
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient

from gdlab.landscapes import LANDSCAPES, make_landscape
from gdlab.web import create_app
from gdlab.web.app import COMPILE_HINT, plotly_cartesian_js_path, plotly_js_path
from gdlab.web.limits import MAX_EXPR_CHARS, MAX_GRID, MAX_OPTIMIZERS, MAX_STEPS
from gdlab.web.presets import PRESETS
from gdlab.web.registry import LAB_OPTIMIZERS as OPTIMIZERS
from gdlab.web.registry import LAB_SCHEDULES as SCHEDULES
from gdlab.web.registry import NOT_IN_LAB


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(warm_kernels=False), base_url="http://localhost") as c:
        yield c


def strict(resp) -> dict:
    """The response JSON, refusing NaN and ±Infinity literals (which json.loads would accept)."""

    def refuse(name: str) -> None:
        raise AssertionError(f"non-finite number {name} in the JSON answer")

    return json.loads(resp.text, parse_constant=refuse)


def post(client, path: str, body: dict, status: int = 200) -> dict:
    resp = client.post(path, json=body)
    assert resp.status_code == status, resp.text
    assert resp.headers["content-type"].startswith("application/json")
    return strict(resp)


def refused(client, path: str, body, *needles: str) -> str:
    """POST ``body`` (a dict, or raw bytes) and check a 422 whose detail mentions every needle."""
    if isinstance(body, bytes | str):
        resp = client.post(path, content=body, headers={"content-type": "application/json"})
    else:
        resp = client.post(path, json=body)
    assert resp.status_code == 422, resp.text
    detail = strict(resp)["detail"]
    assert isinstance(detail, str) and detail
    for needle in needles:
        assert needle.lower() in detail.lower(), (needle, detail)
    assert "Traceback" not in resp.text
    return detail


def run_body(**kw) -> dict:
    body = {"landscape": "elliptic", "optimizers": [{"name": "sgd", "hyperparams": {"lr": 0.05}}], "steps": 50}
    body.update(kw)
    return body


# -- the page and its assets -----------------------------------------------------------------------------------
def test_index_and_assets(client):
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    for asset in ("/static/app.js", "/static/style.css"):
        assert asset in page.text
        assert client.get(asset).status_code == 200
    assert "cdn" not in page.text.lower() and "https://" not in page.text


def test_plotly_js_is_served_from_the_installed_package(client):
    resp = client.get("/static/plotly.min.js")
    assert resp.status_code == 200
    assert "javascript" in resp.headers["content-type"]
    path = plotly_js_path()
    assert "plotly" in path.parts and path.name == "plotly.min.js"
    assert resp.content == path.read_bytes()


def test_cartesian_bundle_is_vendored_and_served(client):
    """The page's Plotly.js: the official cartesian bundle, same version as the plotly package's full one."""
    path = plotly_cartesian_js_path()
    vendor = path.parent
    assert (vendor / "LICENSE").read_text().startswith("MIT License")
    head = path.read_bytes()[:200].decode()
    version = re.search(r"plotly\.js \(cartesian - minified\) (v[\d.]+)", head)
    full = re.search(r"plotly\.js (v[\d.]+)", plotly_js_path().read_bytes()[:200].decode())
    assert version and full and version.group(1) == full.group(1), (head, full)
    readme = (vendor / "README.md").read_text()
    assert version.group(1) in readme and hashlib.sha256(path.read_bytes()).hexdigest() in readme  # as shipped
    resp = client.get("/static/vendor/plotly-cartesian.min.js")
    assert resp.status_code == 200 and "javascript" in resp.headers["content-type"]
    assert "max-age" in resp.headers["cache-control"]
    assert resp.content == COMPILE_HINT + path.read_bytes()  # a compile-hint comment, then the file as shipped
    app_js = client.get("/static/app.js").text
    assert "/static/vendor/plotly-cartesian.min.js" in app_js and "/static/plotly.min.js" in app_js


def test_page_loads_nothing_from_outside():
    static = Path(__file__).parents[1] / "gdlab" / "web" / "static"
    for f in [*static.iterdir(), static / "vendor" / "README.md"]:
        if f.is_dir():  # vendor/: third-party code, whose URL strings are links in comments and messages
            continue
        text = f.read_text()
        assert "http://" not in text and "https://" not in text, f.name


def test_openapi_describes_every_endpoint(client):
    spec = strict(client.get("/openapi.json"))
    paths = spec["paths"]
    assert "get" in paths["/api/meta"]
    for p in ("/api/surface", "/api/run", "/api/analyze", "/api/validate-expr", "/api/schedule", "/api/rates",
              "/api/ratemap"):
        assert "post" in paths[p], p
    assert client.get("/docs").status_code == 200  # the vendored Swagger UI (tests/test_web_lab2.py)
    assert client.get("/redoc").status_code == 404  # ReDoc is not vendored: not served (offline)


def test_unknown_path_is_a_json_404(client):
    resp = client.get("/api/nope")
    assert resp.status_code == 404
    assert strict(resp)["detail"]


# -- /api/meta -------------------------------------------------------------------------------------------------
def test_meta_lists_everything_the_page_needs(client):
    meta = strict(client.get("/api/meta"))
    drawable = [n for n in LANDSCAPES if make_landscape(n).dim in (1, 2)]
    assert [entry["name"] for entry in meta["landscapes"]] == drawable
    assert {entry["name"] for entry in meta["optimizers"]} == set(OPTIMIZERS)
    assert {entry["name"] for entry in meta["schedules"]} == set(SCHEDULES)
    sgd = next(o for o in meta["optimizers"] if o["name"] == "sgd")
    lr = next(h for h in sgd["hyperparams"] if h["name"] == "lr")
    assert lr["kind"] == "real" and lr["low"] == 0
    adam = next(o for o in meta["optimizers"] if o["name"] == "adam")
    assert next(h for h in adam["hyperparams"] if h["name"] == "betas")["kind"] == "pair"
    dw = next(entry for entry in meta["landscapes"] if entry["name"] == "double_well")
    assert dw["dim"] == 1 and len(dw["minima"]) == 2
    assert meta["limits"] == {"max_steps": 10_000, "max_optimizers": 12, "max_grid": 400, "min_grid": 2,
                              "max_expr_chars": 200, "max_label_chars": 40, "max_ratemap_n": 100,
                              "max_ratemap_steps": 1000, "max_noise_batch": 1_000_000, "max_noise_seed": 2**31 - 1}
    assert {p["id"] for p in meta["presets"]} == {p["id"] for p in PRESETS}
    assert meta["default_preset"] in {p["id"] for p in PRESETS}


# -- /api/surface ----------------------------------------------------------------------------------------------
def test_surface_grid_over_the_domain_with_minima(client):
    s = post(client, "/api/surface", {"landscape": "rosenbrock", "grid": 50})
    assert s["dim"] == 2 and len(s["x"]) == 50 and len(s["y"]) == 50
    assert len(s["z"]) == 50 and all(len(row) == 50 for row in s["z"])
    land = make_landscape("rosenbrock")
    assert s["domain"] == [list(map(float, d)) for d in land.domain]
    i, j = 17, 31  # z[j][i] is f at (x[i], y[j]), written with 7 significant digits
    assert s["z"][j][i] == pytest.approx(float(land.value(np.array([s["x"][i], s["y"][j]]))), rel=1e-6)
    assert s["minima"][0]["location"] == [1.0, 1.0] and s["zmin"] >= 0


def test_surface_of_a_1d_landscape_is_a_curve(client):
    s = post(client, "/api/surface", {"landscape": "double_well", "grid": 101})
    assert s["dim"] == 1 and s["y"] is None and len(s["z"]) == 101
    assert all(isinstance(v, float | int) for v in s["z"])
    assert sorted(m["location"][0] for m in s["minima"]) == pytest.approx([-math.sqrt(1.5), math.sqrt(1.5)])


def test_surface_grid_limits(client):
    assert len(post(client, "/api/surface", {"landscape": "sphere", "grid": MAX_GRID})["x"]) == MAX_GRID
    assert len(post(client, "/api/surface", {"landscape": "sphere", "grid": 2})["x"]) == 2
    refused(client, "/api/surface", {"landscape": "sphere", "grid": MAX_GRID + 1}, "grid", "400")
    refused(client, "/api/surface", {"landscape": "sphere", "grid": 1}, "grid")
    refused(client, "/api/surface", {"landscape": "sphere", "grid": "big"}, "grid")


def test_surface_of_an_expression_marks_undefined_values_null(client):
    s = post(client, "/api/surface", {"expr": "log(x) + y^2", "grid": 21})
    flat = [v for row in s["z"] for v in row]
    assert None in flat and any(isinstance(v, float) for v in flat)


def test_landscape_parameters(client):
    s = post(client, "/api/surface", {"landscape": "quadratic", "params": {"condition": 100, "angle": 0}, "grid": 5})
    assert s["dim"] == 2
    refused(client, "/api/surface", {"landscape": "quadratic", "params": {"condition": 0.5}, "grid": 5}, "condition")
    refused(client, "/api/surface", {"landscape": "quadratic", "params": {"colour": 1}, "grid": 5}, "colour")
    refused(client, "/api/surface", {"landscape": "sphere", "params": {"dim": 3}, "grid": 5}, "2-D")


# -- /api/run --------------------------------------------------------------------------------------------------
def test_run_returns_one_result_per_optimizer(client):
    body = run_body(optimizers=[
        {"name": "sgd", "hyperparams": {"lr": 0.05}, "color": "#112233", "label": "plain"},
        {"name": "adam", "hyperparams": {"lr": 0.1, "betas": [0.8, 0.99]}},
    ], start=[5, 5], steps=40)
    out = post(client, "/api/run", body)
    assert out["dim"] == 2 and out["start"] == [5.0, 5.0] and len(out["runs"]) == 2
    first, second = out["runs"]
    assert first["color"] == "#112233" and first["label"] == "plain" and second["color"] is None
    assert second["hyperparams"]["betas"] == [0.8, 0.99]
    for r in out["runs"]:
        n = len(r["trajectory"])
        assert r["trajectory"][0] == [5.0, 5.0]
        assert len(r["loss"]) == len(r["grad_norm"]) == n and len(r["lr"]) == n - 1
        assert r["status"] in ("converged", "diverged", "max_steps")
        assert r["loss"][0] == 275.0


def test_every_optimizer_runs(client):
    optimizers = [{"name": n} for n in OPTIMIZERS]
    for chunk in (optimizers[:MAX_OPTIMIZERS], optimizers[MAX_OPTIMIZERS:]):
        if chunk:
            out = post(client, "/api/run", run_body(landscape="rosenbrock", optimizers=chunk, steps=20))
            assert [r["optimizer"] for r in out["runs"]] == [o["name"] for o in chunk]


def test_runs_batched_together_equal_runs_alone(client):
    lrs = [0.01, 0.05, 0.09]
    together = post(client, "/api/run", run_body(
        optimizers=[{"name": "sgd", "hyperparams": {"lr": lr, "momentum": 0.5}} for lr in lrs], steps=60))
    assert together["computed"] == 3
    for lr, run in zip(lrs, together["runs"], strict=True):
        client.app.state.lab._runs.clear()  # compute each run alone, not from the cache
        alone = post(client, "/api/run", run_body(
            optimizers=[{"name": "sgd", "hyperparams": {"lr": lr, "momentum": 0.5}}], steps=60))["runs"][0]
        assert run["trajectory"] == alone["trajectory"] and run["status"] == alone["status"]
        assert run["hyperparams"]["lr"] == lr


def test_runs_are_cached_one_by_one(client):
    optimizers = [{"name": "sgd", "hyperparams": {"lr": 0.02}}, {"name": "adam", "hyperparams": {"lr": 0.3}}]
    body = run_body(optimizers=optimizers, start=[4, -3], steps=80)
    first = post(client, "/api/run", body)
    again = post(client, "/api/run", body)
    assert again["computed"] == 0 and again["runs"] == first["runs"]
    body["optimizers"][1]["hyperparams"]["lr"] = 0.2  # one slider moved: one run recomputed
    body["optimizers"][0]["color"] = "#00ff00"
    moved = post(client, "/api/run", body)
    assert moved["computed"] == 1
    assert moved["runs"][0]["trajectory"] == first["runs"][0]["trajectory"] and moved["runs"][0]["color"] == "#00ff00"
    assert moved["runs"][1]["hyperparams"]["lr"] == 0.2


def test_a_diverging_run_reports_the_step_and_finite_values(client):
    out = post(client, "/api/run", {"landscape": "rosenbrock", "start": [-1.2, 1.0], "steps": 500,
                                   "optimizers": [{"name": "sgd", "hyperparams": {"lr": 10}}]})
    run = out["runs"][0]
    assert run["status"] == "diverged" and run["stopped_at"] >= 1
    assert "step" in run["reason"]
    for key in ("trajectory", "loss", "grad_norm", "lr"):
        values = np.array(run[key], dtype=float).ravel()
        assert np.all(np.isfinite(values)), key  # no null either: only finite points are recorded
    assert "NaN" not in json.dumps(out) and "Infinity" not in json.dumps(out)


def test_run_with_a_schedule(client):
    sched = {"name": "cosine", "params": {"T_max": 20}}
    out = post(client, "/api/run", run_body(schedule=sched, steps=20, tol=0))
    r = out["runs"][0]
    assert r["schedule"] == "cosine"
    assert r["lr"][0] == pytest.approx(0.05) and r["lr"][10] == pytest.approx(0.025)
    own = run_body(optimizers=[{"name": "sgd", "hyperparams": {"lr": 0.05}, "schedule": {"name": "exponential",
                                                                                          "params": {"gamma": 0.5}}}])
    assert post(client, "/api/run", {**own, "schedule": sched})["runs"][0]["schedule"] == "exponential"
    refused(client, "/api/run", run_body(schedule={"name": "cosnie"}), "unknown schedule", "cosine")
    refused(client, "/api/run", run_body(schedule={"name": "cosine"}), "T_max")


def test_custom_expression_run(client):
    out = post(client, "/api/run", {"expr": "(x-1)^2 + 2*(y+0.5)^2", "start": [3, 3], "steps": 300,
                                   "optimizers": [{"name": "sgd", "hyperparams": {"lr": 0.1}}]})
    assert out["runs"][0]["status"] == "converged"
    assert out["runs"][0]["trajectory"][-1] == pytest.approx([1.0, -0.5], abs=1e-5)
    one_d = post(client, "/api/run", {"expr": "x^2", "start": [2], "steps": 5, "optimizers": [{"name": "sgd"}]})
    assert one_d["dim"] == 1


def test_run_limits(client):
    at = post(client, "/api/run", run_body(landscape="sphere", steps=MAX_STEPS, tol=0))
    assert at["runs"][0]["stopped_at"] == MAX_STEPS or at["runs"][0]["status"] != "max_steps"
    refused(client, "/api/run", run_body(steps=MAX_STEPS + 1), "steps", "10000")
    refused(client, "/api/run", run_body(steps=0), "steps")
    twelve = [{"name": "sgd", "hyperparams": {"lr": 0.001 * (i + 1)}} for i in range(MAX_OPTIMIZERS)]
    assert len(post(client, "/api/run", run_body(optimizers=twelve, steps=5))["runs"]) == MAX_OPTIMIZERS
    refused(client, "/api/run", run_body(optimizers=twelve + [{"name": "adam"}]), "optimizers", "12")
    refused(client, "/api/run", run_body(optimizers=[]), "optimizers")


def test_expression_length_limit(client):
    at_limit = "x^2 + y^2" + " " * (MAX_EXPR_CHARS - 9)
    assert len(at_limit) == MAX_EXPR_CHARS
    post(client, "/api/surface", {"expr": at_limit, "grid": 5})
    refused(client, "/api/surface", {"expr": at_limit + " ", "grid": 5}, "201 characters", "200")
    refused(client, "/api/run", run_body(landscape=None, expr=at_limit + "+1"), "limit is 200")


@pytest.mark.parametrize(
    ("body", "needles"),
    [
        (run_body(steps="many"), ["steps", "integer"]),
        (run_body(steps=1.5), ["steps"]),
        (run_body(optimizers={"name": "sgd"}), ["optimizers", "list"]),
        (run_body(optimizers=[{"name": 3}]), ["optimizers[0].name"]),
        (run_body(start="5,5"), ["start"]),
        (run_body(start=[1, 2, 3]), ["start"]),
        (run_body(start=[1]), ["start", "2 coordinate"]),
        (run_body(landscape="rosenbrok"), ["unknown landscape", "rosenbrock"]),
        (run_body(optimizers=[{"name": "adamm"}]), ["optimizers[0]", "unknown optimizer", "adam"]),
        (run_body(optimizers=[{"name": "sgd", "hyperparams": {"learning_rate": 0.1}}]),
         ["unknown hyperparameter", "learning_rate", "lr"]),
        (run_body(optimizers=[{"name": "sgd", "hyperparams": {"lr": -1}}]), ["lr", "out of range"]),
        (run_body(optimizers=[{"name": "sgd", "hyperparams": {"lr": "fast"}}]), ["lr", "number"]),
        (run_body(optimizers=[{"name": "sgd", "hyperparams": {"lr": [0.1, 0.2]}}]), ["lr", "single value"]),
        (run_body(optimizers=[{"name": "adam", "hyperparams": {"betas": [0.9]}}]), ["betas", "2 values"]),
        (run_body(optimizers=[{"name": "sgd", "hyperparams": {"nesterov": True}}]), ["nesterov", "momentum"]),
        (run_body(optimizers=[{"name": "sgd", "color": "red; }"}]), ["color"]),
        (run_body(optimizers=[{"name": "sgd", "label": "x" * 41}]), ["label"]),
        (run_body(tol=-1), ["tol"]),
        (run_body(surprise=1), ["surprise", "unknown field"]),
        (run_body(expr="x^2"), ["exactly one"]),
        (run_body(landscape=None), ["exactly one"]),
        (run_body(landscape=None, expr="x^2 + sin("), ["column 11"]),
        (run_body(landscape=None, expr="__import__('os')"), ["unknown name", "column 1"]),
    ],
)
def test_malformed_run_requests_are_422_with_a_clear_message(client, body, needles):
    refused(client, "/api/run", body, *needles)


def test_non_finite_numbers_are_refused(client):
    refused(client, "/api/run", b'{"landscape": "elliptic", "optimizers": [{"name": "sgd"}], "start": [NaN, 1]}',
            "start[0]", "finite")
    refused(client, "/api/run", b'{"landscape": "elliptic", "optimizers": [{"name": "sgd"}], "start": [1, Infinity]}',
            "start[1]", "finite")
    refused(client, "/api/run", b'{"landscape": "elliptic", "optimizers": [{"name": "sgd", "hyperparams": '
                                b'{"lr": NaN}}]}', "lr", "finite")
    refused(client, "/api/analyze", b'{"landscape": "elliptic", "point": [NaN, 0]}', "point[0]")


def test_malformed_json_and_bodies(client):
    refused(client, "/api/run", b'{"landscape": ', "malformed JSON")
    refused(client, "/api/run", b"[1, 2]", "request body")
    resp = client.post("/api/run", content=b"landscape=elliptic", headers={"content-type": "text/plain"})
    assert resp.status_code == 422


def test_the_server_never_answers_500(client, monkeypatch):
    def broken(req, cancel=None):
        raise RuntimeError("boom in the engine")

    monkeypatch.setattr(client.app.state.lab, "run", broken)
    resp = client.post("/api/run", json=run_body())
    assert 400 <= resp.status_code < 500
    body = strict(resp)
    assert body["error"] == "internal" and "RuntimeError" in body["detail"]
    assert "Traceback" not in resp.text and "boom" not in resp.text


# -- /api/analyze ----------------------------------------------------------------------------------------------
def test_analyze_at_the_start_and_the_nearest_minimum(client):
    a = post(client, "/api/analyze", {"landscape": "elliptic", "point": [5, 5]})
    assert a["start"]["eigenvalues"] == pytest.approx([2, 20])
    assert a["start"]["critical_lr"] == pytest.approx(0.1)
    assert a["start"]["classification"] == "not stationary"
    near = a["nearest_minimum"]
    assert near["point"] == [0.0, 0.0] and near["classification"] == "minimum"
    assert near["critical_lr"] == pytest.approx(0.1)


def test_analyze_a_saddle_and_a_1d_point(client):
    a = post(client, "/api/analyze", {"landscape": "saddle", "point": [0, 0]})
    assert a["start"]["classification"] == "saddle"
    assert a["start"]["eigenvalues"] == pytest.approx([-2, 2]) and a["start"]["critical_lr"] == pytest.approx(1.0)
    assert a["nearest_minimum"] is None
    w = post(client, "/api/analyze", {"landscape": "double_well", "point": [2.0]})
    assert w["nearest_minimum"]["point"] == pytest.approx([math.sqrt(1.5)])
    assert w["nearest_minimum"]["eigenvalues"] == pytest.approx([12.0])  # f'' = 12x² − 6 at x² = 1.5


def test_analyze_a_custom_expression_uses_converged_points(client):
    body = {"expr": "(x-1)^2 + 3*y^2", "point": [2, 2]}
    assert post(client, "/api/analyze", body)["nearest_minimum"] is None
    a = post(client, "/api/analyze", {**body, "candidates": [[0.0, 0.5], [1.0, 0.0]]})
    assert a["nearest_minimum"]["point"] == [1.0, 0.0]  # (0, 0.5) is not stationary
    assert a["nearest_minimum"]["eigenvalues"] == pytest.approx([2, 6])
    refused(client, "/api/analyze", {"landscape": "elliptic", "point": [1, 2, 3]}, "point")


# -- /api/validate-expr ----------------------------------------------------------------------------------------
def test_validate_expression(client):
    ok = post(client, "/api/validate-expr", {"expr": "x^2 + 10*y^2"})
    assert ok == {"valid": True, "message": "", "column": None, "dim": 2}
    assert post(client, "/api/validate-expr", {"expr": "sin(x)"})["dim"] == 1
    bad = post(client, "/api/validate-expr", {"expr": "x^2 + os(y)"})
    assert bad["valid"] is False and bad["column"] == 7 and "column 7" in bad["message"]
    long = post(client, "/api/validate-expr", {"expr": "x" + "+x" * 100})
    assert long["valid"] is False and "limit is 200" in long["message"]
    assert post(client, "/api/validate-expr", {"expr": "  "})["valid"] is False
    refused(client, "/api/validate-expr", {"expr": 5}, "expr")


# -- /api/schedule ---------------------------------------------------------------------------------------------
def test_schedule_preview(client):
    out = post(client, "/api/schedule", {"schedule": {"name": "cosine", "params": {"T_max": 10}},
                                         "lrs": [0.1, 0.01], "steps": 11})
    assert out["steps"] == list(range(11)) and len(out["curves"]) == 2
    assert out["curves"][0]["lr"][0] == pytest.approx(0.1) and out["curves"][0]["lr"][10] == pytest.approx(0.0)
    assert out["curves"][1]["lr"][5] == pytest.approx(0.005)
    const = post(client, "/api/schedule", {"lrs": [0.3], "steps": 4})
    assert const["curves"][0]["lr"] == [0.3] * 4
    assert len(post(client, "/api/schedule", {"lrs": [0.1], "steps": MAX_STEPS})["steps"]) == MAX_STEPS
    refused(client, "/api/schedule", {"lrs": [0.1], "steps": MAX_STEPS + 1}, "steps")
    refused(client, "/api/schedule", {"schedule": {"name": "step"}, "lrs": [0.1]}, "step_size")
    refused(client, "/api/schedule", {"schedule": {"name": "warmup"}, "lrs": [0.1]}, "unknown schedule")
    refused(client, "/api/schedule", {"lrs": [-0.1]}, "lrs")


# -- the lesson presets ----------------------------------------------------------------------------------------
def preset_run(client, pid: str) -> list[dict]:
    st = next(p for p in PRESETS if p["id"] == pid)["state"]
    body = {k: st[k] for k in ("landscape", "optimizers", "start", "steps", "schedule") if k in st}
    return post(client, "/api/run", body)["runs"]


def test_every_preset_is_a_valid_run(client):
    for p in PRESETS:
        runs = preset_run(client, p["id"])
        assert len(runs) == len(p["state"]["optimizers"])


def test_presets_show_what_their_lessons_say(client):
    small = preset_run(client, "lr-too-small")
    assert small[0]["status"] == "max_steps" and small[0]["trajectory"][-1][0] > 2.5  # lr 0.001: still far
    assert small[2]["status"] == "converged"
    large = {r["hyperparams"]["lr"]: r for r in preset_run(client, "lr-too-large")}
    assert large[0.09]["status"] == "converged"
    assert large[0.1]["status"] == "max_steps"  # |1 − 0.1·20| = 1: bounces forever
    assert large[0.11]["status"] == "diverged"
    sgd, adam = preset_run(client, "sgd-vs-adam")
    assert adam["loss"][-1] < sgd["loss"][-1]
    gd, mom = preset_run(client, "momentum-rosenbrock")
    assert mom["loss"][-1] < gd["loss"][-1] / 100
    wells = preset_run(client, "double-well")
    assert wells[2]["status"] == "converged" and wells[2]["trajectory"][-1] == [0.0]  # onto the hilltop
    assert wells[0]["trajectory"][-1][0] == pytest.approx(math.sqrt(1.5), abs=1e-2)
    gd, mom, adam = preset_run(client, "saddle-escape")
    y_at = lambda r, k: abs(r["trajectory"][min(k, len(r["trajectory"]) - 1)][1])  # noqa: E731
    assert y_at(adam, 20) > y_at(mom, 20) > y_at(gd, 20)  # Adam leaves first, GD last
    cos = preset_run(client, "cosine-schedule")
    assert all(r["status"] == "converged" for r in cos)


# -- gdlab serve -----------------------------------------------------------------------------------------------
def test_serve_is_a_registered_command(capsys):
    from gdlab.cli.main import COMMANDS, main

    assert "serve" in [c[0] for c in COMMANDS]
    assert main(["serve", "--port", "70000"]) == 2
    assert "--port must be between 0 and 65535" in capsys.readouterr().err
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        assert main(["serve", "--port", str(taken.getsockname()[1])]) == 2
    assert "cannot listen on 127.0.0.1" in capsys.readouterr().err


def test_analyze_near_a_minimum_without_a_hessian(client):
    a = post(client, "/api/analyze", {"landscape": "ackley", "point": [3, 2.5]})
    assert a["start"]["eigenvalues"] and a["start"]["critical_lr"] is not None
    assert a["nearest_minimum"]["point"] == [0.0, 0.0]
    assert "not defined" in a["nearest_minimum"]["classification"]


def test_left_out_of_the_lab_with_the_reason(client):
    for name, reason in NOT_IN_LAB.items():
        body = {"landscape": "himmelblau", "steps": 5, "optimizers": [{"name": name}]} if name in ("muon", "asgd") \
            else {"landscape": "himmelblau", "steps": 5, "optimizers": [{"name": "adam"}], "schedule": {"name": name}}
        r = client.post("/api/run", json=body)
        assert r.status_code == 422 and reason in r.json()["detail"], (name, r.text)


def test_lambda_schedule_takes_a_formula_in_t(client):
    body = {"landscape": "himmelblau", "steps": 30, "optimizers": [{"name": "sgd", "hyperparams": {"lr": 0.01}}],
            "schedule": {"name": "lambda", "params": {"lr_lambda": "0.9^t"}}}
    r = client.post("/api/run", json=body)
    assert r.status_code == 200, r.text
    bad = {**body, "schedule": {"name": "multiplicative", "params": {"lr_lambda": "__import__('os')"}}}
    r = client.post("/api/run", json=bad)
    assert r.status_code == 422 and "lr_lambda" in r.json()["detail"]
