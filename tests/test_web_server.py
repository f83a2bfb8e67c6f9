"""The lab server under hostile input and load: identical runs, bounded caches, the admission queue,
body sizes, error shapes, the Host allow-list and Ctrl-C (issue 12, the server part)."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest
from fastapi.testclient import TestClient

from gdlab.core.limits import LIMITS
from gdlab.web import create_app
from gdlab.web import service as service_module
from gdlab.web.admission import Admission, ClientGoneError, ServerBusyError
from gdlab.web.cache import LRUCache, byte_length
from gdlab.web.cost import MAX_REQUEST_COST, run_cost
from gdlab.web.limits import CACHE_LIMITS, MAX_BODY_BYTES, MAX_LIST, MAX_OPTIMIZERS, MAX_STEPS
from gdlab.web.middleware import HostPolicy
from gdlab.web.models import RunRequest

LOCAL = "http://localhost"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(warm=False, warm_kernels=False), base_url=LOCAL) as c:
        yield c


def run_body(**kw) -> dict:
    body = {"landscape": "booth", "optimizers": [{"name": "sgd", "hyperparams": {"lr": 0.0123}}], "steps": 7}
    body.update(kw)
    return body


def heavy_body(i: int = 0) -> dict:
    """A request at the limits: 12 L-BFGS runs × the most steps (tol 0: they never stop early)."""
    return {"landscape": "rosenbrock", "steps": MAX_STEPS, "tol": 0, "start": [-1.2 + 1e-3 * i, 1.0],
            "optimizers": [{"name": "lbfgs", "hyperparams": {"lr": 1e-3 * (k + 1)}} for k in range(MAX_OPTIMIZERS)]}


class Live:
    """The app on a real uvicorn server in a thread (for disconnects, raw bodies and concurrency)."""

    def __init__(self, app) -> None:
        import uvicorn

        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.app = app
        self.url = f"http://127.0.0.1:{self.port}"
        self.server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning"))
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Live:
        self.thread.start()
        deadline = time.time() + 30
        while not self.server.started:
            assert time.time() < deadline and self.thread.is_alive(), "the server did not start"
            time.sleep(0.02)
        return self

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)

    def raw(self, data: bytes, timeout: float = 5.0) -> bytes:
        """Send ``data`` on a new connection and read the answer (until the server closes or the timeout)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=timeout) as s:
            s.sendall(data)
            return read_response(s)


def read_response(s: socket.socket) -> bytes:
    out = b""
    try:
        while b"\r\n\r\n" not in out or not _complete(out):
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
    except TimeoutError:
        pass
    return out


def _complete(data: bytes) -> bool:
    head, _, body = data.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return False


def wait_until(condition, timeout: float) -> bool:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


# -- 1. identical optimizers -------------------------------------------------------------------------------
@pytest.mark.parametrize("spec", [
    {"name": "sgd", "hyperparams": {"lr": 0.0123}},
    {"name": "adam", "hyperparams": {"lr": 0.0123}},
    {"name": "sam", "hyperparams": {"rho": 0.01}},
    {"name": "sgd"}, {"name": "adam"}, {"name": "sam"}, {"name": "newton"},
])
def test_two_identical_optimizers_in_one_request(client, spec):
    body = run_body(optimizers=[spec, spec], start=[3.25, -1.5])  # a start no other test uses: not cached
    resp = client.post("/api/run", json=body)
    assert resp.status_code == 200, resp.text
    out = resp.json()
    first, second = out["runs"]
    assert (first["index"], second["index"]) == (0, 1)
    assert first["trajectory"] == second["trajectory"] and first["status"] == second["status"]
    assert out["computed"] == 1  # the same run once


def test_equal_values_written_differently_share_one_run(client):
    """lr 1 and 1.0, momentum 0.0 and -0.0: equal numbers in one batched call of batch shape ()."""
    body = run_body(start=[2.75, 0.5], optimizers=[{"name": "sgd", "hyperparams": {"lr": 0.01, "momentum": 0.0}},
                                                   {"name": "sgd", "hyperparams": {"lr": 0.01, "momentum": -0.0}},
                                                   {"name": "sgd", "hyperparams": {"lr": 1}},
                                                   {"name": "sgd", "hyperparams": {"lr": 1.0}}])
    resp = client.post("/api/run", json=body)
    assert resp.status_code == 200, resp.text
    runs = resp.json()["runs"]
    assert runs[0]["trajectory"] == runs[1]["trajectory"] and runs[2]["trajectory"] == runs[3]["trajectory"]


# -- 2. bounded caches, no compiling on validation ---------------------------------------------------------------
def test_lru_cache_bounds_entries_and_bytes():
    cache = LRUCache("t", max_items=3, max_bytes=100, weigh=byte_length)
    for key in "abc":
        cache.put(key, b"x" * 10)
    assert cache.get("a") == b"x" * 10  # "a" is now the most recently used
    cache.put("d", b"y" * 10)
    assert cache.get("b") is None and len(cache) == 3 and cache.get("a") is not None  # b was the oldest
    cache.put("e", b"z" * 25)  # within a quarter of the bytes: kept, and the total stays ≤ 100
    cache.put("f", b"z" * 25)
    cache.put("g", b"z" * 25)
    assert cache.nbytes <= 100 and len(cache) <= 3
    cache.put("huge", b"h" * 26)  # over a quarter of the bytes: not kept at all
    assert cache.get("huge") is None
    made = []
    assert cache.get_or_make("m", lambda: made.append(1) or b"m") == b"m"
    assert cache.get_or_make("m", lambda: made.append(1) or b"n") == b"m" and made == [1]
    with pytest.raises(ValueError, match="max_items"):
        LRUCache("bad", max_items=0, max_bytes=1, weigh=byte_length)


def test_every_cache_of_the_lab_is_bounded(client):
    lab = client.app.state.lab
    caches = {"objectives": lab._objectives, "surfaces": lab._surfaces, "runs": lab._runs, "meta": lab._meta}
    assert set(caches) == set(CACHE_LIMITS)
    for name, cache in caches.items():
        assert isinstance(cache, LRUCache)
        assert (cache.max_items, cache.max_bytes) == CACHE_LIMITS[name], name
    limit = lab._objectives.max_items
    for i in range(limit + 5):  # distinct formulas: each parsed and kept, the oldest dropped
        assert client.post("/api/validate-expr", json={"expr": f"x^2 + {i}*y^2"}).json()["valid"]
    assert len(lab._objectives) <= limit and lab._objectives.nbytes <= lab._objectives.max_bytes
    for i in range(30):
        assert client.post("/api/run", json=run_body(start=[1.0 + i / 64, 0.0])).status_code == 200
    assert len(lab._runs) <= lab._runs.max_items and lab._runs.nbytes <= lab._runs.max_bytes


def test_validating_a_formula_does_not_compile_it(client, monkeypatch):
    import gdlab.fast
    import gdlab.fast.trajectory

    compiled = []
    monkeypatch.setattr(gdlab.fast, "prepare", lambda *a, **k: compiled.append(a))
    monkeypatch.setattr(gdlab.fast.trajectory, "prepare", lambda *a, **k: compiled.append(a))
    for i in range(5):
        assert client.post("/api/validate-expr", json={"expr": f"sin({i + 2}*x) + y^4"}).json()["valid"]
    assert client.post("/api/surface", json={"expr": "sin(7*x) + y^4", "grid": 11}).status_code == 200
    assert compiled == []  # parsed (and drawn) only
    assert client.post("/api/run", json=run_body(landscape=None, expr="sin(8*x) + y^4")).status_code == 200
    assert compiled  # running it is what compiles it


# -- 3. the admission queue ----------------------------------------------------------------------------------------
def never_disconnects():
    async def receive():
        await asyncio.Event().wait()

    return receive


def test_admission_refuses_past_its_bound_at_once():
    async def scenario():
        gate = Admission(capacity=10.0, workers=1)
        release = threading.Event()
        first = asyncio.ensure_future(gate.run(never_disconnects(), 8.0, lambda cancel: release.wait(5)))
        await asyncio.sleep(0.05)
        t0 = time.perf_counter()
        with pytest.raises(ServerBusyError) as busy:
            await gate.run(never_disconnects(), 5.0, lambda cancel: None)
        # at once: the admitted job holds its worker for 5 s, a refusal that waited for it would take that long
        assert time.perf_counter() - t0 < 2.5 and busy.value.retry_after >= 1
        release.set()
        await first
        assert gate.admitted == 0
        assert await gate.run(never_disconnects(), 9.0, lambda cancel: "ok") == "ok"  # room again
        gate.close()

    asyncio.run(scenario())


def test_admission_runs_cheap_requests_before_queued_heavy_ones():
    async def scenario():
        gate = Admission(capacity=100.0, workers=2)
        order: list[str] = []
        release = threading.Event()

        def work(name: str, block: bool = False):
            def job(cancel):
                order.append(name)
                if block:
                    release.wait(5)
                return name
            return job

        heavy1 = asyncio.ensure_future(gate.run(never_disconnects(), 20.0, work("heavy1", block=True)))
        await asyncio.sleep(0.05)
        heavy2 = asyncio.ensure_future(gate.run(never_disconnects(), 20.0, work("heavy2")))
        await asyncio.sleep(0.05)
        assert gate.waiting == 1  # a heavy request leaves the last worker to the others
        cheap = await asyncio.wait_for(gate.run(never_disconnects(), 0.01, work("cheap")), 2)
        assert cheap == "cheap" and order == ["heavy1", "cheap"]
        release.set()
        await asyncio.gather(heavy1, heavy2)
        assert order == ["heavy1", "cheap", "heavy2"]
        gate.close()

    asyncio.run(scenario())


def test_admission_drops_and_stops_the_requests_of_clients_that_left():
    async def scenario():
        gate = Admission(capacity=100.0, workers=1)
        started: list[str] = []
        stopped = threading.Event()

        def long_job(cancel):
            started.append("long")
            while not cancel():
                time.sleep(0.01)
            stopped.set()
            return "stopped"

        left = asyncio.Event()

        async def leaves():
            await left.wait()
            return {"type": "http.disconnect"}

        running = asyncio.ensure_future(gate.run(leaves, 5.0, long_job))
        await asyncio.sleep(0.05)
        waiting_left = asyncio.Event()

        async def leaves_while_waiting():
            await waiting_left.wait()
            return {"type": "http.disconnect"}

        queued = asyncio.ensure_future(gate.run(leaves_while_waiting, 1.0, lambda cancel: started.append("queued")))
        await asyncio.sleep(0.05)
        assert gate.waiting == 1
        waiting_left.set()
        with pytest.raises(ClientGoneError):
            await queued
        assert gate.waiting == 0 and started == ["long"]  # dropped before it started
        left.set()
        with pytest.raises(ClientGoneError):
            await asyncio.wait_for(running, 2)
        assert stopped.is_set() and gate.admitted == 0  # the running one was asked to stop, and did
        gate.close()

    asyncio.run(scenario())


def test_run_cost_weighs_optimizers_and_steps():
    light = RunRequest(landscape="booth", optimizers=[{"name": "sgd"}], steps=1000)
    heavy = RunRequest(landscape="booth", optimizers=[{"name": "lbfgs"}], steps=1000)
    more = RunRequest(landscape="booth", optimizers=[{"name": "lbfgs"}] * 2, steps=2000)
    assert run_cost(heavy) > 50 * run_cost(light)
    assert run_cost(more) == pytest.approx(4 * run_cost(heavy))
    assert run_cost(RunRequest(**heavy_body())) == pytest.approx(MAX_REQUEST_COST, rel=0.01)


def test_the_page_and_meta_never_wait_behind_runs(monkeypatch):
    """60 requests at the limits at once: past the bound they are answered 503 with Retry-After at
    once, and the page, its scripts and /api/meta answer at once while the admitted ones compute."""
    release = threading.Event()
    computing = []

    def blocked_run(self, req, cancel=None):
        computing.append(1)
        while not release.is_set() and not (cancel and cancel()):
            time.sleep(0.01)
        return service_module.dumps({"runs": []})

    monkeypatch.setattr(service_module.Lab, "run", blocked_run)
    with Live(create_app(warm=False, warm_kernels=False, workers=2)) as live, httpx.Client(base_url=live.url) as http:
        http.get("/api/meta")  # built once
        with ThreadPoolExecutor(60) as pool:
            posts = [pool.submit(httpx.post, live.url + "/api/run", json=heavy_body(i), timeout=30) for i in range(60)]
            # the admitted runs never finish before ``release``: every answer before it is a refusal,
            # and the page and meta can only answer if they do not wait for a worker
            # all but the admitted (at most max_lab_queued_requests) are answered before any run ends
            bound = 60 - LIMITS.max_lab_queued_requests
            assert wait_until(lambda: sum(f.done() for f in posts) >= bound, 30), "refusals waited for the runs"
            refused = [f.result() for f in posts if f.done()]
            assert all(r.status_code == 503 and int(r.headers["retry-after"]) >= 1 for r in refused)
            assert "busy" in refused[0].json()["detail"]
            for path in ("/", "/api/meta", "/static/app.js", "/static/vendor/plotly-cartesian.min.js"):
                assert http.get(path, timeout=30).status_code == 200, path
            assert len(computing) <= 2
            release.set()
            statuses = [f.result().status_code for f in posts]
        # every request was answered one way or the other (one that reached the server only after the
        # release may have been admitted then)
        assert set(statuses) <= {200, 503} and statuses.count(503) >= len(refused)
        assert statuses.count(200) >= 1


def test_a_run_whose_client_left_is_cancelled():
    with Live(create_app(warm=False, warm_kernels=False)) as live:
        gate = live.app.state.admission
        body = json.dumps(heavy_body(7)).encode()
        request = (f"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Type: application/json\r\n"
                   f"Content-Length: {len(body)}\r\n\r\n").encode() + body
        with socket.create_connection(("127.0.0.1", live.port)) as s:
            s.sendall(request)
            assert wait_until(lambda: gate.admitted > 0, 5)
            time.sleep(0.3)  # computing: a minute of L-BFGS steps
        assert wait_until(lambda: gate.admitted == 0, 3), "the run went on after its client left"


# -- 4. body size --------------------------------------------------------------------------------------------------
def test_a_declared_oversized_body_is_refused_before_it_is_read():
    with Live(create_app(warm=False, warm_kernels=False)) as live:
        head = (f"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {100 * 2**20}\r\n\r\n").encode()
        answer = live.raw(head + b'{"landscape": ', timeout=5)  # the rest of the 100 MB never comes
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]  # so it was answered before reading it
        assert str(MAX_BODY_BYTES).encode() in answer


def test_a_streamed_oversized_body_is_refused_while_it_streams():
    with Live(create_app(warm=False, warm_kernels=False)) as live:
        head = (f"POST /api/run HTTP/1.1\r\nHost: 127.0.0.1:{live.port}\r\nContent-Type: application/json\r\n"
                "Transfer-Encoding: chunked\r\n\r\n").encode()
        chunk = b" " * 16384
        with socket.create_connection(("127.0.0.1", live.port), timeout=5) as s:
            s.sendall(head)
            sent = 0
            try:
                while sent < 4 * MAX_BODY_BYTES:  # far past the limit (and never the end of the body)
                    s.sendall(f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n")
                    sent += len(chunk)
            except OSError:
                pass  # the server answered and closed the connection
            answer = read_response(s)
        assert answer.startswith(b"HTTP/1.1 413"), answer[:200]


def test_the_largest_request_the_limits_allow_fits_the_body_limit(client):
    star = "\U0001f600"  # escaped as 12 bytes of JSON
    optimizer = {"name": "sam", "label": star * 40, "color": "#123456",
                 "hyperparams": {"base": "adam", "rho": 0.05000000000000001, "adaptive": False,
                                 "eta": 0.010000000000000002, "lr": 0.0012345678901234567,
                                 "betas": [0.9000000000000001, 0.9990000000000001], "eps": 1.0000000000000001e-08,
                                 "weight_decay": 1.2345678901234567e-05, "amsgrad": False, "maximize": False,
                                 "eps_inside_sqrt": False},
                 "schedule": {"name": "multistep",
                              "params": {"milestones": list(range(2_000_000_000, 2_000_000_000 + MAX_LIST)),
                                         "gamma": 0.10000000000000002}}}
    body = {"expr": star * 200, "optimizers": [optimizer] * MAX_OPTIMIZERS, "start": [1.2345678901234567e-300] * 2,
            "steps": 1, "tol": 1.2345678901234567e-06}
    raw = json.dumps(body).encode()  # ASCII: every non-ASCII character escaped
    assert len(raw) * 2 <= MAX_BODY_BYTES, len(raw)  # room for indentation too
    resp = client.post("/api/run", content=json.dumps(body, indent=2).encode(),
                       headers={"content-type": "application/json"})
    assert resp.status_code == 422 and "column 1" in resp.json()["detail"]  # read whole: refused for its formula
    over = client.post("/api/run", content=b" " * (MAX_BODY_BYTES + 1), headers={"content-type": "application/json"})
    assert over.status_code == 413 and str(MAX_BODY_BYTES) in over.json()["detail"]


# -- 5. error shapes -----------------------------------------------------------------------------------------------
def refused_422(resp, *needles: str) -> str:
    assert resp.status_code == 422, resp.text
    body = resp.json()
    assert isinstance(body["detail"], str) and isinstance(body.get("errors", []), list), body
    for needle in needles:
        assert needle in body["detail"], (needle, body["detail"])
    return body["detail"]


@pytest.mark.parametrize("raw", [
    b'{"landscape": "booth", "optimizers": [{"name": "sgd"}], "steps": 5\xff\xfe}',
    b"\xff\xfe\x00\x00",
    b'{"landscape": "' + b"\xc3\x28" + b'"}',
    b"[" * 1000 + b"]" * 1000,
    b'{"landscape": ' + b"[" * 5000 + b"]" * 5000 + b"}",
    b'{"steps": 1' + b"0" * 5000 + b"}",
])
def test_malformed_bodies_answer_the_documented_422(client, raw):
    resp = client.post("/api/run", content=raw, headers={"content-type": "application/json"})
    refused_422(resp)
    assert "There was an error parsing the body" not in resp.text


def test_a_huge_integer_names_its_field(client):
    huge = "1" + "0" * 3999
    raw = b'{"landscape": "booth", "optimizers": [{"name": "sgd", "hyperparams": {"lr": ' + huge.encode() + b"}}]}"
    detail = refused_422(client.post("/api/run", content=raw, headers={"content-type": "application/json"}),
                         "optimizers[0].hyperparams.lr", "4000 digits")
    assert "internal" not in detail
    for field, body in [("start[0]", '{"landscape": "booth", "optimizers": [{"name": "sgd"}], "start": [%s, 1]}'),
                        ("lrs[0]", '{"lrs": [%s]}'),
                        ("params.condition", '{"landscape": "quadratic", "params": {"condition": %s}}')]:
        path = "/api/schedule" if field.startswith("lrs") else "/api/surface" if "params" in field else "/api/run"
        raw = body.replace("%s", huge).encode()
        refused_422(client.post(path, content=raw, headers={"content-type": "application/json"}), field)
    milestones = {"name": "multistep", "params": {"milestones": [10**12]}}
    refused_422(client.post("/api/schedule", json={"schedule": milestones, "lrs": [0.1]}), "milestones", "limit")


@pytest.mark.parametrize("number", ["1e309", "-2e308", "1" + "0" * 309, "-" + "9" * 400])
def test_a_number_beyond_the_largest_float_names_its_field(client, number):
    """Written as a float or as an integer, a number no float64 holds is refused with its field, never
    rounded to inf and run."""
    raw = ('{"landscape": "booth", "optimizers": [{"name": "sgd", "hyperparams": {"lr": 0.01}}], '
           f'"start": [{number}, 1]}}').encode()
    detail = refused_422(client.post("/api/run", content=raw, headers={"content-type": "application/json"}), "start[0]")
    assert "internal" not in detail
    raw = f'{{"landscape": "booth", "optimizers": [{{"name": "sgd", "hyperparams": {{"lr": {number}}}}}]}}'.encode()
    refused_422(client.post("/api/run", content=raw, headers={"content-type": "application/json"}),
                "optimizers[0].hyperparams.lr")


@pytest.mark.parametrize(("method", "path", "allowed"), [
    ("GET", "/api/run", {"POST"}), ("PUT", "/api/surface", {"POST"}), ("TRACE", "/api/analyze", {"POST"}),
    ("POST", "/api/meta", {"GET"}), ("DELETE", "/", {"GET"}),
    ("POST", "/static/app.js", {"GET", "HEAD"}),
])
def test_405_answers_say_what_is_allowed(client, method, path, allowed):
    resp = client.request(method, path)
    assert resp.status_code == 405
    assert {m.strip() for m in resp.headers["allow"].split(",")} == allowed
    assert resp.json()["detail"]


@pytest.mark.parametrize(("path", "body", "needle"), [
    ("/api/run", run_body(steps="100"), "steps"),
    ("/api/run", run_body(steps=True), "steps"),
    ("/api/run", run_body(tol="0.1"), "tol"),
    ("/api/run", run_body(start=[True, 1]), "start[0]"),
    ("/api/schedule", {"lrs": [False]}, "lrs[0]"),
    ("/api/schedule", {"lrs": [-0.5]}, "lrs[0]"),
    ("/api/surface", {"landscape": "booth", "grid": "20"}, "grid"),
    ("/api/surface", {"landscape": "booth", "expr": "x^2"}, "exactly one"),
    ("/api/surface", {"landscape": None, "expr": "  "}, "empty"),
    ("/api/run", run_body(schedule={"name": "none", "params": {"gamma": 0.5}}), "takes no parameters"),
])
def test_strict_types_and_what_the_schema_says(client, path, body, needle):
    refused_422(client.post(path, json=body), needle)


def test_the_schema_states_exactly_one_problem_and_the_names(client):
    spec = client.get("/openapi.json").json()["components"]["schemas"]
    run = spec["RunRequest"]
    branches = run["anyOf"]
    assert all(("landscape" in b["required"]) != ("expr" in b["required"]) for b in branches)
    assert {b["properties"]["landscape"]["const"] for b in branches if "landscape" in b["required"]} >= {"booth"}
    assert spec["SchedulePreviewRequest"]["properties"]["lrs"]["items"]["minimum"] == 0
    assert "lbfgs" in spec["OptimizerSpec"]["properties"]["name"]["enum"]
    for response in ("413", "421", "422", "503"):
        assert response in client.get("/openapi.json").json()["paths"]["/api/run"]["post"]["responses"]


# -- 7. the Host allow-list ----------------------------------------------------------------------------------------
def test_requests_for_other_hosts_are_refused_before_anything_runs(monkeypatch):
    ran = []
    monkeypatch.setattr(service_module.Lab, "run", lambda self, req, cancel=None: ran.append(req) or b"{}")
    app = create_app(warm=False, warm_kernels=False)
    with TestClient(app, base_url="http://evil.example") as evil:
        for method, path in [("GET", "/"), ("GET", "/api/meta"), ("GET", "/static/app.js"), ("POST", "/api/run")]:
            resp = evil.request(method, path, json=run_body() if method == "POST" else None)
            assert resp.status_code == 421 and "evil.example" in resp.json()["detail"], (path, resp.text)
    assert ran == []
    with TestClient(app, base_url="http://127.0.0.1:8000") as local:
        assert local.get("/").status_code == 200 and local.post("/api/run", json=run_body()).status_code == 200
    assert len(ran) == 1


def test_host_policy():
    policy = HostPolicy.for_server("127.0.0.1", 8000, ["lab.example"])
    for host in ("127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000", "[::1]:8000", "lab.example:8000"):
        assert policy.allows(host), host
    for host in ("evil.example:8000", "127.0.0.1:8001", "127.0.0.1", "", None, "localhost:8000:1", "[::1",
                 "localhost:99999999"):
        assert not policy.allows(host), host
    assert HostPolicy.for_server("0.0.0.0", 80).names == {"localhost", "127.0.0.1", "[::1]"}
    assert HostPolicy.for_server("0.0.0.0", 80).allows("localhost")  # a browser leaves out port 80
    assert HostPolicy.for_server("::1", 8000).allows("[::1]:8000")
    assert HostPolicy.for_server(extra=["*"]).allows("anything.example:1")


def test_serve_refuses_an_allow_host_with_a_port(capsys):
    from gdlab.cli.main import main

    assert main(["serve", "--port", "0", "--allow-host", "lab.example:8000"]) == 2
    assert "--allow-host takes a host name" in capsys.readouterr().err


def serve(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen, str]:
    """``gdlab serve --port 0 ARGS`` in a subprocess, and its URL once it prints it."""
    proc = subprocess.Popen([sys.executable, "-m", "gdlab.cli.main", "serve", "--port", "0", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})})
    line = proc.stdout.readline()
    assert line.startswith("gdlab lab at http://"), (line, proc.stderr.read() if proc.poll() is not None else "")
    return proc, line.split()[3]


def test_serve_answers_its_names_and_the_allowed_ones_only():
    proc, url = serve("--allow-host", "lab.example")
    try:
        port = url.rstrip("/").rsplit(":", 1)[1]
        assert wait_until(lambda: _status(url, f"127.0.0.1:{port}") == 200, 20)
        assert _status(url, f"localhost:{port}") == 200
        assert _status(url, f"lab.example:{port}") == 200
        assert _status(url, f"evil.example:{port}") == 421
        assert _status(url, "127.0.0.1:1") == 421  # another port: not this server's name
    finally:
        proc.send_signal(signal.SIGINT)
        proc.wait(10)


def _status(url: str, host: str) -> int | None:
    try:
        return httpx.get(url + "api/meta", headers={"Host": host}, timeout=10).status_code
    except httpx.HTTPError:
        return None


# -- 8. Ctrl-C -----------------------------------------------------------------------------------------------------
def test_ctrl_c_stops_serve_at_once_while_kernels_compile(tmp_path):
    env = {"NUMBA_CACHE_DIR": str(tmp_path / "numba"), "XDG_CACHE_HOME": str(tmp_path / "cache")}
    proc, _ = serve(env=env)
    try:
        # the first serve on an empty cache: the warmup compiles kernels once the first run is answered or
        # app.WARMUP_DELAY seconds have passed (bounded wait for its first files)
        deadline = time.monotonic() + 20
        while not any(p.is_file() for p in tmp_path.rglob("*")) and time.monotonic() < deadline:
            time.sleep(0.2)
        time.sleep(0.5)
        assert proc.poll() is None
        assert any(p.is_file() for p in tmp_path.rglob("*")), "nothing is being compiled"
        t0 = time.perf_counter()
        proc.send_signal(signal.SIGINT)
        proc.wait(10)
        elapsed = time.perf_counter() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
    assert elapsed < 5, f"Ctrl-C took {elapsed:.2f} s"  # waiting for the compiler took 8 s; now about 0.2
    assert proc.returncode == 130 and "Traceback" not in proc.stderr.read()


def test_runs_take_the_reference_loop_until_the_kernels_are_warm():
    from gdlab.web.service import Lab

    ready = threading.Event()
    lab = Lab(fused_ready=ready)
    assert lab.backend() == "reference"
    ready.set()
    assert lab.backend() == "auto"
    assert Lab().backend() == "auto"


def test_kernel_warmup_waits_for_the_first_run(monkeypatch):
    from gdlab.web import app as web_app

    calls = []
    monkeypatch.setattr(web_app, "warmup", lambda: calls.append(time.monotonic()) or "warm")
    monkeypatch.setattr(web_app, "WARMUP_DELAY", 30.0)
    done, first_run = threading.Event(), threading.Event()
    thread = threading.Thread(target=web_app._warm_kernels, args=(done, first_run), daemon=True)
    thread.start()
    time.sleep(0.3)
    assert not calls and not done.is_set()
    first_run.set()
    assert done.wait(10) and len(calls) == 1


def test_lbfgs_history_is_bounded_in_the_lab(client):
    """An L-BFGS history of millions of pairs took 10 s to allocate per request: refused, naming it."""
    body = {"landscape": "sphere", "optimizers": [{"name": "lbfgs", "hyperparams": {"history_size": 22989707}}],
            "steps": 5}
    refused_422(client.post("/api/run", json=body), "history_size", "1000")
    body["optimizers"][0]["hyperparams"]["history_size"] = 1000
    assert client.post("/api/run", json=body).status_code == 200
