"""Benchmark of the browser lab: server time, page load to interactive, animation frame rate.

    python bench/bench_web.py [--repeat 30] [--no-browser]

1. Server time (in-process TestClient, so it includes validation and JSON): a 200×200 surface and a
   run of 6 optimizers × 1,000 steps on Rosenbrock, p50/p95 over ``--repeat`` requests. Cases: six
   different optimizers, all computed (six engine calls; the start moves so nothing is cached); six
   SGD variants (batched into one engine call); and one control moved (five runs from the server's
   per-run cache, one computed: what the page sends while a slider moves).
2. Page load to interactive (real uvicorn + headless Chromium): from navigation to the page's
   ``window.gdlabReadyAt`` (meta, surface, runs and analysis shown). "cold" is a fresh browser context
   (empty cache: Plotly.js's cartesian bundle compiled from scratch); "warm" a returning visitor (third
   visit with a persistent profile, so V8's code cache holds it). Also the first switch to the 3-D
   view (which fetches and compiles the full Plotly.js bundle), from the click to the surface drawn.
3. Animation: frames per second measured by the page (requestAnimationFrame) while 6 balls roll.
4. Hardening (``gdlab serve`` in a subprocess with empty caches, so that it compiles what it is asked
   to): the server's memory (RSS, once its CPU has settled) at start, after ``--formulas`` distinct
   formulas validated (what the page sends while one types) and after as many run (7 steps each); then
   ``GET /`` latency while the run queue is full: 60 concurrent requests at the limits (12 L-BFGS ×
   10,000 steps, tol 0), how many were answered 503 at once, and how fast. ``--baseline PATH`` measures
   an earlier source tree beside this one (e.g. ``git archive 22bd229 | tar -x -C /tmp/before``).

Prints a table and writes ``bench/out/web.json``.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import platform
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out" / "web.json"
ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
        "--disable-sync", "--no-first-run"]

MIXED = [
    {"name": "sgd", "hyperparams": {"lr": 0.001}},
    {"name": "momentum", "hyperparams": {"lr": 0.001, "momentum": 0.9}},
    {"name": "nesterov", "hyperparams": {"lr": 0.001, "momentum": 0.9}},
    {"name": "adam", "hyperparams": {"lr": 0.01}},
    {"name": "rmsprop", "hyperparams": {"lr": 0.001}},
    {"name": "adagrad", "hyperparams": {"lr": 0.1}},
]
SAME = [{"name": "sgd", "hyperparams": {"lr": 0.0002 * (i + 1), "momentum": 0.5}} for i in range(6)]
COLOURS = ["#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf"]


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, round(q * (len(s) - 1)))]


def bench_server(repeat: int) -> dict[str, Any]:
    from fastapi.testclient import TestClient

    from gdlab.web import create_app

    out: dict[str, Any] = {}
    with TestClient(create_app(), base_url="http://localhost") as client:
        client.app.state.kernels_warm.wait(300)  # measure the steady state, not the kernels compiling
        def post(path: str, body: dict) -> float:
            t0 = time.perf_counter()
            resp = client.post(path, json=body)
            dt = (time.perf_counter() - t0) * 1000
            assert resp.status_code == 200, resp.text
            return dt

        out["surface_uncached_ms"] = post("/api/surface", {"landscape": "himmelblau", "grid": 200})
        # the first run request after start, on a landscape no request has used yet
        out["first_run_ms"] = post("/api/run", {"landscape": "beale", "steps": 1000, "tol": 0, "optimizers": MIXED,
                                                "start": [1.0, 1.0]})
        cases = {
            # every request new (the start moves): all six runs computed
            "mixed": lambda i: {"optimizers": MIXED, "start": [-1.2 + 1e-6 * i, 1.0]},
            "same": lambda i: {"optimizers": SAME, "start": [-1.2 + 1e-6 * i, 1.0]},
            # one control moved (what the page sends while a slider moves): one run computed, five cached
            "one_moved": lambda i: {
                "optimizers": [*MIXED[:5], {"name": "adagrad", "hyperparams": {"lr": 0.1 + 1e-4 * i}}],
                "start": [-1.2, 1.0],
            },
        }
        for case, make in cases.items():
            base = {"landscape": "rosenbrock", "steps": 1000, "tol": 0}
            post("/api/run", {**base, **make(-1)})  # warm the code paths (and, for one_moved, the cache)
            totals, runs, surfaces = [], [], []
            for i in range(repeat):
                s = post("/api/surface", {"landscape": "rosenbrock", "grid": 200})
                r = post("/api/run", {**base, **make(i)})
                surfaces.append(s)
                runs.append(r)
                totals.append(s + r)
            out[case] = {
                "p50_ms": statistics.median(totals), "p95_ms": pct(totals, 0.95),
                "run_p95_ms": pct(runs, 0.95), "surface_p95_ms": pct(surfaces, 0.95),
            }
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(static: Path | None = None) -> tuple[Any, str]:
    import uvicorn

    import gdlab.web.app as web_app
    from gdlab.web import create_app

    if static is not None:  # the page of another tree (e.g. the previous commit's) against this server
        web_app.STATIC_DIR = static

    port = free_port()
    app = create_app()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    app.state.kernels_warm.wait(300)  # page loads measured without the kernels compiling beside them
    return srv, f"http://127.0.0.1:{port}/"


def six_ball_url(base: str) -> str:
    from urllib.parse import urlencode

    opts = [{"n": o["name"], "c": c, "h": o["hyperparams"]} for o, c in zip(MIXED, COLOURS, strict=True)]
    return base + "#" + urlencode({"l": "rosenbrock", "o": json.dumps(opts), "s": "-1.2,1", "n": "1000"})


def bench_browser(url: str, loads: int) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=ARGS)
        cold = []
        for _ in range(loads):
            ctx = browser.new_context(viewport={"width": 1280, "height": 900})
            page = ctx.new_page()
            page.goto(url)
            page.wait_for_function("window.gdlab && window.gdlab.ready", timeout=60_000)
            cold.append(page.evaluate("window.gdlabReadyAt"))
            out["bundles_at_load"] = page.evaluate("window.gdlab.bundles")
            ctx.close()
        out["load_cold_ms"] = {"median": statistics.median(cold), "all": cold}

        ctx = browser.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(url)
        page.wait_for_function("window.gdlab && window.gdlab.ready", timeout=60_000)
        out["view3d_switch_ms"] = switch_to_3d_ms(page)
        ctx.close()
        out.update(bench_lab_1400(browser, url))
        browser.close()

        warm = []
        with tempfile.TemporaryDirectory() as profile:
            ctx = p.chromium.launch_persistent_context(profile, executable_path=CHROMIUM, headless=True, args=ARGS,
                                                       viewport={"width": 1280, "height": 900})
            for i in range(loads + 2):
                page = ctx.new_page()
                page.goto(url)
                page.wait_for_function("window.gdlab && window.gdlab.ready", timeout=60_000)
                if i >= 2:  # the first two visits produce V8's code cache
                    warm.append(page.evaluate("window.gdlabReadyAt"))
                page.close()

            page = ctx.new_page()
            page.goto(six_ball_url(url))
            page.wait_for_function("window.gdlab && window.gdlab.ready", timeout=60_000)
            page.evaluate("window.gdlab.setSpeed(150); window.gdlab.play()")
            page.wait_for_timeout(4000)
            fps = page.evaluate("window.gdlabFps")
            balls = len(page.evaluate("window.gdlab.balls"))
            page.close()
            ctx.close()
        out["load_warm_ms"] = {"median": statistics.median(warm), "all": warm}
        out["animation"] = {"fps": fps, "balls": balls}
    return out


def switch_to_3d_ms(page: Any) -> float:
    """Milliseconds from a click on the 3-D box until the page shows the surface."""
    return page.evaluate("""() => new Promise((done) => {
        const t0 = performance.now();
        document.getElementById("view3d").click();
        const wait = () => (window.gdlab.view === "surface" ? done(performance.now() - t0) : setTimeout(wait, 10));
        wait();
    })""")


def bench_lab_1400(browser, url: str) -> dict[str, Any]:
    """At 1400×900: an lr slider dragged (input event → new runs in), and the 3-D view on a warm page
    (after 3 s idle: the first switch, then the frame rate while the balls roll)."""
    ctx = browser.new_context(viewport={"width": 1400, "height": 900})
    page = ctx.new_page()
    page.goto(url)
    page.wait_for_function("window.gdlab && window.gdlab.ready", timeout=60_000)
    page.wait_for_timeout(500)
    drags = []
    for i in range(8):
        ms = page.evaluate("""(v) => new Promise((done) => {
            const s = document.querySelector('#opt-list [data-hp="lr"] input[type=range]');
            const before = window.gdlab.runs, t0 = performance.now();
            s.value = String(v); s.dispatchEvent(new Event('input', {bubbles: true}));
            const wait = () => (window.gdlab.runs !== before ? requestAnimationFrame(() => done(performance.now() - t0))
                                : setTimeout(wait, 2));
            wait();
        })""", -2.5 + 0.05 * i)
        drags.append(ms)
        page.wait_for_timeout(150)
    page.wait_for_timeout(3000)  # idle: the page may fetch the 3-D bundle now
    switch = switch_to_3d_ms(page)
    page.wait_for_timeout(500)
    page.evaluate("window.gdlab.resetAnim(); window.gdlab.setSpeed(40); window.gdlab.play()")
    page.wait_for_timeout(4000)
    fps3d = page.evaluate("window.gdlabFps")
    ctx.close()
    return {"slider_drag_ms": {"median": statistics.median(drags), "all": drags},
            "view3d_warm_switch_ms": switch, "fps3d": fps3d}


def browser_rows(b: dict[str, Any], base: dict[str, Any] | None) -> list[tuple[str, ...]]:
    def both(key, fmt, sub=None):
        def get(d):
            v = d.get(key) if d else None
            return v.get(sub) if isinstance(v, dict) and sub else v
        now, old = get(b), get(base)
        return (fmt(old) if old is not None else ""), (fmt(now) if now is not None else "—")
    ms = lambda v: f"{v:.0f} ms"  # noqa: E731
    return [
        ("page load to interactive, first visit (cold)", *both("load_cold_ms", ms, "median"), "target < 1500 ms"),
        ("page load to interactive, returning visit (code cache)", *both("load_warm_ms", ms, "median"),
         "target < 1000 ms"),
        ("first switch to 3-D, fresh page (full Plotly.js fetched and compiled)", *both("view3d_switch_ms", ms), ""),
        ("first switch to 3-D, warm page after 3 s idle (1400×900)", *both("view3d_warm_switch_ms", ms),
         "target < 1000 ms"),
        ("lr slider moved → new runs in and drawn (median of 8)", *both("slider_drag_ms", ms, "median"),
         "target < 50 ms"),
        ("2-D animation fps (6 balls)", *both("animation", lambda v: f"{v['fps']:.0f} fps"), "target ≥ 30 fps"),
        ("3-D animation fps (1400×900, software WebGL)", *both("fps3d", lambda v: f"{v:.1f} fps"), "target ≥ 15 fps"),
    ]


# ------------------------------------------------------------------------------------------------
# hardening: memory after many formulas, the page while the run queue is full
# ------------------------------------------------------------------------------------------------
HEAVY = {"landscape": "rosenbrock", "steps": 10_000, "tol": 0,
         "optimizers": [{"name": "lbfgs", "hyperparams": {"lr": 1e-3 * (k + 1)}} for k in range(12)]}


class Served:
    """``gdlab serve --port 0`` of the source tree ``tree`` in a subprocess, with empty caches."""

    def __init__(self, tree: Path) -> None:
        self.cache = tempfile.TemporaryDirectory(prefix="gdlab-bench-")
        env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONUNBUFFERED": "1",
               "XDG_CACHE_HOME": f"{self.cache.name}/xdg", "NUMBA_CACHE_DIR": f"{self.cache.name}/numba"}
        self.proc = subprocess.Popen([sys.executable, "-m", "gdlab.cli.main", "serve", "--port", "0"], cwd=tree,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        line = self.proc.stdout.readline() if self.proc.stdout else ""
        if not line.startswith("gdlab lab at http://"):
            self.stop()
            raise RuntimeError(f"gdlab serve did not start in {tree}: {line!r}")
        self.port = int(line.split()[3].rstrip("/").rsplit(":", 1)[1])
        deadline = time.time() + 600  # the URL is printed before the server listens
        while True:
            try:
                self.request("GET", "/api/meta")
                break
            except OSError:
                if time.time() > deadline or self.proc.poll() is not None:
                    self.stop()
                    raise RuntimeError(f"gdlab serve in {tree} does not answer") from None
                time.sleep(0.2)

    def request(self, method: str, path: str, body: Any = None, timeout: float = 600) -> tuple[int, dict[str, str]]:
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            data = None if body is None else json.dumps(body).encode()
            conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            resp.read()
            return resp.status, {k.lower(): v for k, v in resp.getheaders()}
        finally:
            conn.close()

    def rss_mb(self) -> float:
        with open(f"/proc/{self.proc.pid}/status") as f:
            kb = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
        return kb / 1024

    def cpu_seconds(self) -> float:
        with open(f"/proc/{self.proc.pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")

    def settle(self, timeout: float) -> float:
        """Wait until the server's CPU is idle (background compilation done); returns seconds waited."""
        t0 = time.perf_counter()
        while time.perf_counter() - t0 < timeout:
            before = self.cpu_seconds()
            time.sleep(2.0)
            if self.cpu_seconds() - before < 0.1:
                break
        return time.perf_counter() - t0

    def cache_mb(self) -> float:
        return sum(f.stat().st_size for f in Path(self.cache.name).rglob("*") if f.is_file()) / 2**20

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.cache.cleanup()


def formula(i: int) -> str:
    return f"{1 + i / 1000:g}*x^2 + y^2 + sin(x*y)"


def bench_memory(tree: Path, n: int) -> dict[str, Any]:
    """RSS at start, after ``n`` distinct formulas validated, and after ``n`` more run (7 steps each)."""
    srv = Served(tree)
    try:
        out: dict[str, Any] = {"formulas": n}
        srv.settle(600)
        out["start_mb"] = srv.rss_mb()
        t0 = time.perf_counter()
        for i in range(n):
            srv.request("POST", "/api/validate-expr", {"expr": formula(i)})
        out["validate_s"] = time.perf_counter() - t0
        out["validated_settle_s"] = srv.settle(1800)
        out["validated_mb"] = srv.rss_mb()
        out["validated_cache_mb"] = srv.cache_mb()
        t0 = time.perf_counter()
        for i in range(n, 2 * n):
            body = {"expr": formula(i), "steps": 7, "optimizers": [{"name": "sgd", "hyperparams": {"lr": 0.01}}]}
            srv.request("POST", "/api/run", body)
        out["run_s"] = time.perf_counter() - t0
        out["run_settle_s"] = srv.settle(1800)
        out["run_mb"] = srv.rss_mb()
        out["run_cache_mb"] = srv.cache_mb()
        return out
    finally:
        srv.stop()


def bench_full_queue(tree: Path, clients: int = 60, wait: float = 30.0) -> dict[str, Any]:
    """``GET /`` latency while ``clients`` requests at the limits are in flight."""
    srv = Served(tree)
    try:
        srv.settle(600)
        answers: list[tuple[int, float, str]] = []

        def heavy(i: int) -> None:
            t0 = time.perf_counter()
            try:
                status, headers = srv.request("POST", "/api/run", {**HEAVY, "start": [-1.2 + 1e-3 * i, 1.0]},
                                              timeout=wait + 10)
            except OSError:
                status, headers = 0, {}
            answers.append((status, time.perf_counter() - t0, headers.get("retry-after", "")))

        pool = ThreadPoolExecutor(clients)
        for i in range(clients):
            pool.submit(heavy, i)
        time.sleep(2.0)
        latencies = []
        for _ in range(5):
            t0 = time.perf_counter()
            try:
                srv.request("GET", "/", timeout=wait)
                latencies.append(time.perf_counter() - t0)
            except OSError:
                latencies.append(float("inf"))
                break
            time.sleep(0.5)
        refused = [a for a in answers if a[0] == 503]
        out = {"clients": clients, "get_root_ms": [x * 1000 for x in latencies],
               "refused_503": len(refused), "refused_max_ms": max((a[1] * 1000 for a in refused), default=None),
               "retry_after": sorted({a[2] for a in refused})}
        return out
    finally:
        srv.stop()  # the clients still waiting see their connection close
        pool.shutdown(wait=False, cancel_futures=True)


def bench_hardening(trees: dict[str, Path], n: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, tree in trees.items():
        print(f"hardening: {name} ({tree})", file=sys.stderr)
        out[name] = {"memory": bench_memory(tree, n), "full_queue": bench_full_queue(tree)}
    return out


def hardening_rows(h: dict[str, Any]) -> list[tuple[str, ...]]:
    names = list(h)

    def cells(get: Any) -> list[str]:
        return [get(h[name]) for name in names]

    def ms(values: list[float]) -> str:
        finite = [v for v in values if v != float("inf")]
        if len(finite) < len(values):
            return "> 30 s (timed out)"
        return f"max {max(values):.0f} ms"

    n = h[names[0]]["memory"]["formulas"]
    rows = [("hardening", *names),
            ("server RSS at start", *cells(lambda r: f"{r['memory']['start_mb']:.0f} MB")),
            (f"server RSS after {n:,} distinct formulas validated",
             *cells(lambda r: f"{r['memory']['validated_mb']:.0f} MB")),
            ("  compiled-code cache on disk then", *cells(lambda r: f"{r['memory']['validated_cache_mb']:.0f} MB")),
            ("  CPU busy after the last validation", *cells(lambda r: f"{r['memory']['validated_settle_s']:.0f} s")),
            (f"server RSS after {n:,} more formulas run (7 steps each)",
             *cells(lambda r: f"{r['memory']['run_mb']:.0f} MB")),
            ("  compiled-code cache on disk then", *cells(lambda r: f"{r['memory']['run_cache_mb']:.0f} MB")),
            ("GET / while 60 requests at the limits are in flight",
             *cells(lambda r: ms(r["full_queue"]["get_root_ms"]))),
            ("  requests answered 503 at once (slowest)",
             *cells(lambda r: f"{r['full_queue']['refused_503']} ({r['full_queue']['refused_max_ms'] or 0:.0f} ms)"))]
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="requests per server case (default 30)")
    ap.add_argument("--loads", type=int, default=5, help="page loads per case (default 5)")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium measurements")
    ap.add_argument("--formulas", type=int, default=1000, help="distinct formulas of the memory measurement "
                    "(default 1000; 0 skips the hardening measurements)")
    ap.add_argument("--baseline", type=Path, help="an earlier source tree to measure the hardening beside")
    ap.add_argument("--baseline-static", type=Path, help="an earlier tree's gdlab/web/static, whose page is "
                    "measured beside this one's against the same server (e.g. `git archive 2aacd3f gdlab/web/static "
                    "| tar -x -C /tmp/before`, then /tmp/before/gdlab/web/static)")
    args = ap.parse_args(argv)

    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "platform": platform.platform()}}
    results["server"] = bench_server(args.repeat)
    if not args.no_browser:
        if not os.path.exists(CHROMIUM):
            print(f"{CHROMIUM} missing: skipping the browser measurements", file=sys.stderr)
        else:
            if args.baseline_static:
                srv, url = start_server(args.baseline_static.resolve())
                try:
                    results["browser_baseline"] = bench_browser(url, args.loads)
                finally:
                    srv.should_exit = True
                time.sleep(1)
            srv, url = start_server(ROOT / "gdlab" / "web" / "static")
            try:
                results["browser"] = bench_browser(url, args.loads)
            finally:
                srv.should_exit = True

    if args.formulas > 0:
        trees = {"this tree": ROOT, **({"baseline": args.baseline.resolve()} if args.baseline else {})}
        results["hardening"] = bench_hardening(trees, args.formulas)

    s = results["server"]
    rows = [
        ("server: 200×200 surface + 6 different optimizers × 1000 steps, all computed",
         f"p50 {s['mixed']['p50_ms']:.0f} ms", f"p95 {s['mixed']['p95_ms']:.0f} ms", "target p95 < 50 ms"),
        ("server: same, 6 SGD variants (one batched engine call)", f"p50 {s['same']['p50_ms']:.0f} ms",
         f"p95 {s['same']['p95_ms']:.0f} ms", "target p95 < 50 ms"),
        ("server: same, one control moved (1 run computed, 5 cached)", f"p50 {s['one_moved']['p50_ms']:.0f} ms",
         f"p95 {s['one_moved']['p95_ms']:.0f} ms", "target p95 < 50 ms"),
        ("server: cached 200×200 surface alone", "", f"p95 {s['mixed']['surface_p95_ms']:.1f} ms", ""),
        ("server: first (uncached) 200×200 surface", "", f"{s['surface_uncached_ms']:.0f} ms", ""),
        ("server: first run request after start (6 optimizers × 1000 steps, new landscape)", "",
         f"{s['first_run_ms']:.0f} ms", "as fast as later ones"),
    ]
    if "browser" in results:
        b = results["browser"]
        rows.append(("browser (1280×900 unless said):", "previous page" if "browser_baseline" in results else "",
                     "this page", ""))
        rows += browser_rows(b, results.get("browser_baseline"))
    width = max(len(r[0]) for r in rows)
    for name, a, b_, target in rows:
        print(f"{name:<{width}}  {a:>12}  {b_:>16}  {target}")
    if "hardening" in results:
        print()
        table = hardening_rows(results["hardening"])
        width = max(len(r[0]) for r in table)
        for name, *cells in table:
            print(f"{name:<{width}}  " + "  ".join(f"{c:>20}" for c in cells))
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
