"""Backend selection for the fused kernels: light (no numba import), consulted on every update.

``backend`` is one of

``"auto"`` (default)
    Use a fused kernel when ``params.size >= threshold`` (default ``2**16``) and one exists for the
    optimizer and its options; otherwise the pure numpy reference path.
``"reference"``
    Always the pure numpy path (the specification).
``"fused"``
    Use a fused kernel whenever one applies, whatever the size; otherwise the reference path.

The kernel applies when the optimizer is exactly one of the classes with a kernel (not a subclass),
params are float32 or float64 and C-contiguous, the state buffers match params (shape, dtype,
C-contiguous), and every numeric hyperparameter and the ``lr`` override are scalars (batched
hyperparameters use the reference path).

``atomic`` (default True) decides how a run longer than :data:`ROW_MAX` elements is protected (a
run of up to ``ROW_MAX`` elements is always all-or-nothing, at no cost): when True the kernel first
scans that run's gradient, so a non-finite gradient leaves the whole run untouched, at the price of
one extra read of the gradient (4 more bytes per parameter on Adam's 28 in float32; measured on 10M
float32 parameters, the step takes about 25% longer, since a read-only pass moves fewer bytes per
second than the step). When False that scan is skipped, and the step moves exactly the bytes of
torch's fused kernel: the run is still flagged and no non-finite value is ever written (each bad
element keeps its old params and buffers), but the run's other elements keep their (finite) update.

``trajectory_step`` (default ``"auto"``) chooses the step the fused trajectories run
(:mod:`gdlab.fast.trajectory`): ``"combined"``, the rule and the landscape compiled into one loop
(the fastest, compiled once per pair), ``"generic"``, the rule's and the landscape's own compiled
functions called in turn (nothing compiled per pair), or ``"auto"``: the combined step when it is
compiled already or the work is large enough to pay for compiling it. Both give the same bits.
"""

from __future__ import annotations

import contextlib
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import Any

BACKENDS = ("auto", "reference", "fused")
TRAJECTORY_STEPS = ("auto", "combined", "generic")

#: Runs up to this many elements are updated whole as one unit (checked, restored if it fails);
#: longer runs are not all-or-nothing (see ``atomic``) and their bad elements alone keep their values.
ROW_MAX = 2**15
#: Longer runs are processed in segments of this many elements (and short runs are grouped into
#: units of about this size). The backup of a unit (up to four arrays) then stays in L2; measured on
#: 10M float32 Adam and SGD-momentum against torch fused, 8192 was 3-6% faster than 1024, with 4096
#: close and 16384 and more slower again.
SEGMENT = 8192
#: Each thread gets at least this many elements (smaller steps use fewer threads: waking a thread
#: costs more than it saves below that).
MIN_PER_THREAD = 2**15


@dataclass(frozen=True)
class Settings:
    backend: str = "auto"
    threshold: int = 2**16
    atomic: bool = True
    trajectory_step: str = "auto"


_settings = Settings()
#: How many updates went through each path (``"fused"``, ``"reference"``) and the thread count of
#: the last fused call (``"threads"``); for tests and diagnostics.
stats: Counter[str] = Counter()


def get_settings() -> Settings:
    """The current global settings."""
    return _settings


def check_backend(name: Any) -> str:
    if name not in BACKENDS:
        raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, got {name!r}")
    return name


def configure(backend: str | None = None, threshold: int | None = None, atomic: bool | None = None,
              trajectory_step: str | None = None) -> Settings:
    """Change the global settings (``None`` leaves a setting as it is); returns the previous ones."""
    global _settings
    previous = _settings
    changes: dict[str, Any] = {}
    if backend is not None:
        changes["backend"] = check_backend(backend)
    if threshold is not None:
        if isinstance(threshold, bool) or not isinstance(threshold, int) or threshold < 0:
            raise ValueError(f"threshold must be a non-negative integer, got {threshold!r}")
        changes["threshold"] = threshold
    if atomic is not None:
        changes["atomic"] = bool(atomic)
    if trajectory_step is not None:
        if trajectory_step not in TRAJECTORY_STEPS:
            raise ValueError(f"trajectory_step must be one of {', '.join(map(repr, TRAJECTORY_STEPS))}, "
                             f"got {trajectory_step!r}")
        changes["trajectory_step"] = trajectory_step
    _settings = replace(_settings, **changes)
    return previous


def set_backend(backend: str) -> str:
    """Set the global backend (``"auto"``, ``"reference"`` or ``"fused"``); returns the previous one."""
    return configure(backend=backend).backend


def get_backend() -> str:
    """The global backend."""
    return _settings.backend


@contextlib.contextmanager
def options(backend: str | None = None, threshold: int | None = None, atomic: bool | None = None,
            trajectory_step: str | None = None) -> Iterator[Settings]:
    """Context manager: ``with gdlab.fast.options(backend="reference"): ...`` restores on exit."""
    global _settings
    previous = configure(backend, threshold, atomic, trajectory_step)
    try:
        yield _settings
    finally:
        _settings = previous


def wants_fused(size: int, backend: str | None = None) -> bool:
    """Whether the backend choice (``None``: the global one) asks for a kernel at this size."""
    choice = _settings.backend if backend is None else check_backend(backend)
    if choice == "reference":
        return False
    return choice == "fused" or size >= _settings.threshold
