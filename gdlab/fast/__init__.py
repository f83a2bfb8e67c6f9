"""Fused, in-place, multithreaded optimizer kernels (numba), behind the ordinary optimizer API.

Nothing to call for the speed: ``opt.update_(grad, state, params)`` (in place) and
``opt.update(grad, state, params)`` (pure) use a fused kernel automatically for large arrays
(``params.size >= 2**16``) when the optimizer is an elementwise rule (:class:`~gdlab.core.rule.Rule`:
every one of gdlab's, with every option, and any rule a user writes) and its hyperparameters are
scalars. The kernels are generated from the rule's own element body: the reference NumPy update
stays the specification, and the kernels compute it, in the params' dtype. Importing
:mod:`gdlab` registers this package with the core (:func:`gdlab.core.optimizer.register_accelerator`).

Choosing::

    import gdlab.fast
    gdlab.fast.set_backend("reference")        # "auto" (default) | "reference" | "fused"
    with gdlab.fast.options(backend="fused"):  # temporarily, restored on exit
        ...
    opt.update_(g, state, p, backend="fused")  # per call (in-place API)
    gdlab.fast.configure(threshold=2**20)      # size from which "auto" uses the kernels

One step makes a single pass over memory: each thread updates a unit of a few thousand elements
in place and checks that the gradient and the new params are finite. A run whose gradient or update
is not finite is flagged (the returned ``nonfinite``); a run of up to :data:`ROW_MAX` elements is then
left as it was (the unit keeps a cache-resident backup of the old values and restores them), and so
is a longer run with a non-finite gradient when ``atomic`` is on (the default; it costs one read of
the gradient, see :mod:`gdlab.fast.config`); otherwise only its bad elements keep their values.
NaN and inf are never written to params.

Threads: the kernels use ``numba.get_num_threads()`` threads of the calling thread at call time
(``numba.set_num_threads(n)`` or the ``NUMBA_NUM_THREADS`` environment variable).

Compilation: compiled code is cached on disk in the per-user cache directory
(``$XDG_CACHE_HOME/gdlab`` or ``~/.cache/gdlab``, see :mod:`gdlab.fast._cache`), never inside the
package. :func:`warmup` compiles or loads every kernel for float32 and float64; servers call it at
start so no request pays for compilation.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
from typing import Any

import numpy as np

from gdlab.core.optimizer import register_accelerator
from gdlab.fast.config import (
    BACKENDS,
    ROW_MAX,
    SEGMENT,
    Settings,
    configure,
    get_backend,
    get_settings,
    options,
    set_backend,
    stats,
)
from gdlab.fast.steps import accelerate


def _plain_numba_errors() -> None:
    """Stop numba from colouring its error messages (set before numba is imported).

    numba colours the typing errors it raises and catches internally while compiling with
    colorama, whose ``init``/``deinit`` replace ``sys.stdout`` and ``sys.stderr`` process-wide. From
    a background compile thread that races with the main thread: its output went to a stale stream
    (lost, or into another test's capture). Without colours numba never touches the streams.
    """
    os.environ.setdefault("NUMBA_DISABLE_ERROR_MESSAGE_HIGHLIGHTING", "1")
    errors = sys.modules.get("numba.core.errors")
    if errors is not None and hasattr(errors, "ColorShell"):  # numba was imported first, with colours
        errors.ColorShell = contextlib.nullcontext


_plain_numba_errors()


def cache_dir() -> str:
    """The directory holding the compiled kernels (imports numba)."""
    from gdlab.fast import kernels

    return kernels.CACHE_DIR


register_accelerator(accelerate)


def explain(opt: Any, state: dict[str, Any], params: np.ndarray, lr: Any = None) -> str:
    """``"fused"``, or why this step would take the reference path."""
    from gdlab.fast.steps import plan_for

    plan = plan_for(opt, state, params, lr)
    return plan if isinstance(plan, str) else "fused"


def warmup(trajectories: bool = True) -> float:
    """Compile (or load from the disk cache) every kernel; returns seconds.

    Generates and compiles the step kernels of every built-in rule with its default options (both
    dtypes, both modes) and the gradient scan, and with ``trajectories`` also the fused
    trajectory code and every built-in landscape (:func:`gdlab.fast.trajectory.warmup`), so that
    later calls find them ready.
    """
    from gdlab.core.rules import RULES
    from gdlab.fast import kernels

    start = time.perf_counter()
    for dtype in (np.float32, np.float64):
        kernels.scan_address(dtype)
    for cls in RULES.values():
        kernels.kernel_address(cls(), np.float64)
    if trajectories:
        from gdlab.fast import trajectory

        trajectory.warmup()
    return time.perf_counter() - start


def prepare(objective: Any) -> bool:
    """Start compiling ``objective``'s fused trajectory code in the background (a no-op when it is
    ready or has no compiled form); True when it is ready now. Servers call it for a newly typed
    expression so that its first run does not wait for the compiler."""
    from gdlab.fast import trajectory

    return trajectory.prepare(objective)


__all__ = [
    "BACKENDS",
    "ROW_MAX",
    "SEGMENT",
    "Settings",
    "cache_dir",
    "configure",
    "explain",
    "get_backend",
    "get_settings",
    "options",
    "prepare",
    "set_backend",
    "stats",
    "warmup",
]
