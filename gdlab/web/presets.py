"""Lesson presets of the browser lab: one click reproduces a demonstration of the seeds.

Each preset is a complete page state (landscape, optimizers with hyperparameters and colours, start,
steps, schedule) plus a short lesson text. The page applies it as is, so a preset is also a valid
``/api/run`` request (``tests/test_web_api.py`` runs every one of them).
"""

from __future__ import annotations

from typing import Any

RED, BLUE, GREEN, ORANGE, PURPLE, CYAN = "#d62728", "#1f77b4", "#2ca02c", "#ff7f0e", "#9467bd", "#17becf"


def _opt(name: str, color: str, noise: dict[str, Any] | None = None, **hyperparams: Any) -> dict[str, Any]:
    out = {"name": name, "hyperparams": hyperparams, "color": color}
    if noise is not None:
        out["noise"] = noise
    return out


PRESETS: list[dict[str, Any]] = [
    {
        "id": "lr-too-small",
        "title": "Learning rate too small",
        "summary": "GD on x² + 10y² from (5, 5): tiny steps crawl",
        "text": (
            "Gradient descent θ ← θ − η∇f on the elliptic bowl x² + 10y² from (5, 5). With η = 0.001 the "
            "ball crawls: after 300 steps it is still far from the minimum. η = 0.01 gets there slowly "
            "along the flat x direction; η = 0.05 is fast. Too small a learning rate wastes steps."
        ),
        "state": {
            "landscape": "elliptic",
            "optimizers": [_opt("sgd", RED, lr=0.001), _opt("sgd", BLUE, lr=0.01), _opt("sgd", GREEN, lr=0.05)],
            "start": [5.0, 5.0],
            "steps": 300,
        },
    },
    {
        "id": "lr-too-large",
        "title": "Learning rate too large",
        "summary": "GD on x² + 10y² around the critical rate 2/λmax = 0.1",
        "text": (
            "The steep direction of x² + 10y² has curvature λmax = 20, so gradient descent is stable only "
            "for η < 2/λmax = 0.1. At η = 0.09 the ball zig-zags across the valley but converges; at "
            "exactly 0.1 it bounces between y = ±5 forever; at 0.11 every bounce is larger and it "
            "diverges. Compare the stability panel's 2/λmax with each learning rate."
        ),
        "state": {
            "landscape": "elliptic",
            "optimizers": [
                _opt("sgd", GREEN, lr=0.05),
                _opt("sgd", ORANGE, lr=0.09),
                _opt("sgd", PURPLE, lr=0.1),
                _opt("sgd", RED, lr=0.11),
            ],
            "start": [5.0, 5.0],
            "steps": 150,
        },
    },
    {
        "id": "sgd-vs-adam",
        "title": "SGD vs Adam on the elliptic bowl",
        "summary": "the seeds' comparison: x² + 10y² from (5, 5), SGD lr 0.01 vs Adam lr 0.1",
        "text": (
            "The seeds' comparison on f(x, y) = x² + 10y² from (5, 5): plain gradient descent with "
            "η = 0.01 follows the steepest slope, first down the steep y direction and then slowly along "
            "x. Adam (η = 0.1) divides each coordinate's step by its own gradient scale, so it heads "
            "for the minimum nearly diagonally, at about η per step, and then circles in."
        ),
        "state": {
            "landscape": "elliptic",
            "optimizers": [_opt("sgd", RED, lr=0.01), _opt("adam", BLUE, lr=0.1)],
            "start": [5.0, 5.0],
            "steps": 200,
        },
    },
    {
        "id": "momentum-rosenbrock",
        "title": "Momentum in the Rosenbrock valley",
        "summary": "plain GD vs heavy-ball momentum along the curved valley",
        "text": (
            "Rosenbrock's banana valley is steep across and nearly flat along its floor. Plain gradient "
            "descent must use a small η (the walls are steep) and then creeps along the floor. "
            "Momentum (v ← γv + η∇f, θ ← θ − v with γ = 0.9) accumulates speed along the consistent "
            "downhill direction of the floor and reaches the minimum at (1, 1) far sooner."
        ),
        "state": {
            "landscape": "rosenbrock",
            "optimizers": [_opt("sgd", RED, lr=0.001), _opt("momentum", BLUE, lr=0.001, momentum=0.9)],
            "start": [-1.2, 1.0],
            "steps": 2000,
        },
    },
    {
        "id": "saddle-escape",
        "title": "Escaping a saddle",
        "summary": "x² − y² started next to the saddle: GD vs momentum vs Adam",
        "text": (
            "On f = x² − y² the origin is a saddle: the gradient vanishes there, but it is a minimum "
            "along x and a maximum along y. Started a hair off the x axis (y = 0.001), gradient descent "
            "slides towards the saddle and escapes only slowly: its distance from the x axis grows by "
            "1 + 2η = 1.1 per step, so it needs about 80 steps. Adam rescales the tiny y gradient into "
            "a full-size step and is the first to leave; momentum's velocity builds up and soon "
            "overtakes it. The surface is unbounded below, so the runs that leave the plotting box far "
            "behind are reported as diverged."
        ),
        "state": {
            "landscape": "saddle",
            "optimizers": [
                _opt("sgd", RED, lr=0.05),
                _opt("momentum", BLUE, lr=0.05, momentum=0.9),
                _opt("adam", GREEN, lr=0.05),
            ],
            "start": [1.5, 0.001],
            "steps": 150,
        },
    },
    {
        "id": "double-well",
        "title": "The double well",
        "summary": "f = x⁴ − 3x² + 2 from x = 2 with lr 0.01, 0.05, 0.1",
        "text": (
            "The seeds' double well f(x) = x⁴ − 3x² + 2 has two minima at x = ±√1.5 and a local "
            "maximum at 0. From x = 2 (the seeds' experiment): η = 0.01 rolls gently into the right-hand "
            "minimum, η = 0.05 jumps past it in its first step and climbs back, and η = 0.1 lands in one "
            "step exactly on the hilltop x = 0, where the gradient is zero: gradient descent "
            "'converges' to a maximum."
        ),
        "state": {
            "landscape": "double_well",
            "optimizers": [_opt("sgd", GREEN, lr=0.01), _opt("sgd", ORANGE, lr=0.05), _opt("sgd", RED, lr=0.1)],
            "start": [2.0],
            "steps": 100,
        },
    },
    {
        "id": "cosine-schedule",
        "title": "Cosine decay",
        "summary": "a too-aggressive rate tamed by a warmup + cosine schedule",
        "text": (
            "The Transformer recipe of the seeds: a linear warmup followed by cosine decay. On "
            "x² + 10y² a learning rate just above the critical 0.1 would diverge if held constant, "
            "but under warmup + cosine the rate falls below 2/λmax early enough for every run to "
            "settle. The preview under the schedule chooser shows each optimizer's lr over the steps."
        ),
        "state": {
            "landscape": "elliptic",
            "optimizers": [_opt("sgd", RED, lr=0.105), _opt("momentum", BLUE, lr=0.05, momentum=0.5)],
            "start": [5.0, 5.0],
            "steps": 200,
            "schedule": {"name": "warmup_cosine", "params": {"warmup_steps": 20, "total_steps": 200}},
        },
    },
    {
        "id": "noise-escape",
        "title": "Noise escapes a shallow minimum",
        "summary": "two_wells from its shallow well: GD vs SGD with gradient noise σ = 2, batch 1 and 16",
        "text": (
            "Stochastic gradients: each step sees the gradient plus Gaussian noise of size σ/√B, the scatter "
            "of a minibatch of B samples. Started in the shallow well of two_wells, gradient descent stays "
            "there. With σ = 2 and B = 1 the ball zig-zags, is kicked over the ridge and settles, still "
            "jittering, in the deep well. A batch of 16 shrinks the noise four-fold: the ball jitters "
            "around the shallow minimum but cannot climb out. The noise is seeded, so the runs repeat."
        ),
        "state": {
            "landscape": "two_wells",
            "optimizers": [
                _opt("sgd", RED, lr=0.1),
                _opt("sgd", BLUE, noise={"sigma": 2.0, "batch_size": 1, "seed": 10}, lr=0.1),
                _opt("sgd", GREEN, noise={"sigma": 2.0, "batch_size": 16, "seed": 10}, lr=0.1),
            ],
            "start": [-1.44, -0.48],
            "steps": 400,
        },
    },
]

#: The preset shown when the page opens without a state in its URL.
DEFAULT_PRESET = "sgd-vs-adam"


def presets_for(available_landscapes: set[str], available_optimizers: set[str],
                available_schedules: set[str]) -> list[dict[str, Any]]:
    """The presets whose landscape, optimizers and schedule all exist in this installation."""
    out = []
    for p in PRESETS:
        st = p["state"]
        if st.get("landscape") and st["landscape"] not in available_landscapes:
            continue
        if any(o["name"] not in available_optimizers for o in st["optimizers"]):
            continue
        if st.get("schedule") and st["schedule"]["name"] not in available_schedules:
            continue
        out.append(p)
    return out
