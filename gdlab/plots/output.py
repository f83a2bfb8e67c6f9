"""Writing pictures to disk: format from the suffix, atomically (:mod:`gdlab.core.atomic`).

A failed write leaves nothing behind: no empty or half-written file at the requested path. A
target that exists and is not a regular file (a symbolic link, a folder, a device node, a fifo) is
refused, and every error names the target, never the temporary file.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

from matplotlib.figure import Figure

from gdlab.core import atomic

STILL_FORMATS = ("png", "svg", "pdf")
ANIMATION_FORMATS = ("gif", "mp4")


class PlotError(ValueError):
    """A picture cannot be produced as asked (bad suffix, unwritable path, nothing to draw)."""


def output_format(path: str | os.PathLike[str], allowed: tuple[str, ...]) -> str:
    """The format named by ``path``'s suffix, refused unless in ``allowed``."""
    suffix = Path(path).suffix.lower().lstrip(".")
    if suffix not in allowed:
        shown = f"'.{suffix}'" if suffix else "no suffix"
        raise PlotError(f"cannot write {os.fspath(path)!r}: {shown}; use one of " + ", ".join("." + a for a in allowed))
    return suffix


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds
    (:func:`gdlab.core.atomic.atomic_path`, its errors as :class:`PlotError`)."""
    try:
        with atomic.atomic_path(path) as tmp:
            yield tmp
    except atomic.WriteError as exc:
        raise PlotError(str(exc)) from None


def save_figure(fig: Figure, path: str | os.PathLike[str]) -> Path:
    """Save ``fig`` as PNG, SVG or PDF (from the suffix) at the figure's own size."""
    fmt = output_format(path, STILL_FORMATS)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format=fmt, dpi=fig.dpi)
    return Path(path)


def write_atomically(path: str | os.PathLike[str], writer: Callable[[Path], None]) -> Path:
    """Run ``writer(tmp_path)`` and move the result onto ``path`` only when it succeeded."""
    with atomic_path(path) as tmp:
        writer(tmp)
    return Path(path)
