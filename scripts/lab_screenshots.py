"""Regenerate the screenshots of docs/lab.md: the lab in headless Chromium, one picture per feature.

    python scripts/lab_screenshots.py            # writes docs/lab/*.png

Needs Chromium at /usr/bin/chromium and the Python playwright package (both installed by the test
command). Each picture is a lab URL (the whole state lives in the hash), so what it shows can be
reopened in a browser.
"""

from __future__ import annotations

import json
import socket
import sys
import threading
import time
from pathlib import Path
from urllib.parse import quote

OUT = Path(__file__).resolve().parents[1] / "docs" / "lab"
CHROMIUM = "/usr/bin/chromium"


def _opts(*items: tuple[str, str, dict, dict | None]) -> str:
    out = []
    for name, colour, hp, noise in items:
        entry: dict = {"n": name, "c": colour, "h": hp}
        if noise:
            entry["z"] = noise
        out.append(entry)
    return quote(json.dumps(out))


#: file → (viewport, URL hash, what to do before the picture)
SHOTS = {
    "lab-desktop.png": ((1400, 900), "lesson=sgd-vs-adam", "lesson:sgd-vs-adam"),
    "lab-arrows.png": ((1400, 900), "l=rosenbrock&o=" + _opts(("sgd", "#d62728", {"lr": 0.001, "momentum": 0.9}, None),
                                                             ("adam", "#1f77b4", {"lr": 0.05}, None))
                      + "&s=-1.5,2&n=300&a=1&k=25", ""),
    "lab-noise.png": ((1400, 900), "", "lesson:noise-escape"),
    "lab-rates.png": ((1400, 900), "l=quadratic&p=" + quote(json.dumps({"condition": 30, "angle": 20})) + "&o="
                      + _opts(("sgd", "#1f77b4", {"lr": 0.05, "momentum": 0.6}, None)) + "&n=200", "rates"),
    "lab-3d.png": ((1400, 900), "l=himmelblau&o=" + _opts(("sgd", "#d62728", {"lr": 0.01}, None),
                                                         ("adam", "#1f77b4", {"lr": 0.1}, None))
                   + "&s=-4,4&n=200&v=3d&k=40", ""),
    "lab-phone.png": ((390, 844), "", "lesson:double-well"),
}


def _shrink(path: Path) -> None:
    """A 128-colour palette: the pictures stay sharp at a fraction of the bytes."""
    from PIL import Image

    image = Image.open(path).convert("RGB").quantize(colors=128, method=Image.Quantize.MEDIANCUT)
    image.save(path, optimize=True)


def main() -> int:
    import uvicorn
    from playwright.sync_api import sync_playwright

    from gdlab.web import create_app

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    srv = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    threading.Thread(target=srv.run, daemon=True).start()
    while not srv.started:
        time.sleep(0.05)
    OUT.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=["--no-sandbox"])
        for name, ((w, h), hash_, action) in SHOTS.items():
            page = browser.new_page(viewport={"width": w, "height": h})
            page.goto(f"http://127.0.0.1:{port}/#{hash_}")
            page.wait_for_function("window.gdlab && window.gdlab.ready", timeout=60_000)
            if action.startswith("lesson:"):
                page.click(f'#presets button[data-preset="{action.split(":", 1)[1]}"]')
            page.wait_for_timeout(1500)
            page.wait_for_function("!window.gdlab.busy", timeout=60_000)
            if action.startswith("lesson:") or action == "":
                page.evaluate("window.gdlab.stepBy(60)")
            if action == "rates":
                page.locator("#rates-panel").scroll_into_view_if_needed()
                page.wait_for_timeout(1500)
                page.locator("#rates-panel").screenshot(path=str(OUT / name))
            else:
                page.wait_for_timeout(500)
                page.screenshot(path=str(OUT / name))
            _shrink(OUT / name)
            print(f"wrote {OUT / name}")
            page.close()
        browser.close()
    srv.should_exit = True
    return 0


if __name__ == "__main__":
    sys.exit(main())
