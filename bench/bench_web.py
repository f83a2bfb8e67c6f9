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

Prints a table and writes ``bench/out/web.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

OUT = Path(__file__).parent / "out" / "web.json"
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
    with TestClient(create_app()) as client:
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


def start_server() -> tuple[Any, str]:
    import uvicorn

    from gdlab.web import create_app

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
        switch = page.evaluate("""() => new Promise((done) => {
            const t0 = performance.now();
            document.getElementById("view3d").click();
            const wait = () => (window.gdlab.view === "surface" ? done(performance.now() - t0) : setTimeout(wait, 10));
            wait();
        })""")
        out["view3d_switch_ms"] = switch
        ctx.close()
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


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--repeat", type=int, default=30, help="requests per server case (default 30)")
    ap.add_argument("--loads", type=int, default=5, help="page loads per case (default 5)")
    ap.add_argument("--no-browser", action="store_true", help="skip the Chromium measurements")
    args = ap.parse_args(argv)

    results: dict[str, Any] = {"machine": {"python": platform.python_version(), "cpus": os.cpu_count(),
                                           "platform": platform.platform()}}
    results["server"] = bench_server(args.repeat)
    if not args.no_browser:
        if not os.path.exists(CHROMIUM):
            print(f"{CHROMIUM} missing: skipping the browser measurements", file=sys.stderr)
        else:
            srv, url = start_server()
            try:
                results["browser"] = bench_browser(url, args.loads)
            finally:
                srv.should_exit = True

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
        rows += [
            ("page load to interactive, first visit (cold)", "", f"median {b['load_cold_ms']['median']:.0f} ms",
             "target < 1500 ms"),
            ("page load to interactive, returning visit (code cache)", "",
             f"median {b['load_warm_ms']['median']:.0f} ms", "target < 1500 ms"),
            ("first switch to the 3-D view (full Plotly.js fetched and compiled)", "",
             f"{b['view3d_switch_ms']:.0f} ms", ""),
            (f"animation with {b['animation']['balls']} balls", "", f"{b['animation']['fps']:.0f} fps",
             "target ≥ 30 fps"),
        ]
    width = max(len(r[0]) for r in rows)
    for name, a, b_, target in rows:
        print(f"{name:<{width}}  {a:>12}  {b_:>16}  {target}")
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(results, indent=2))
    print(f"wrote {OUT}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
