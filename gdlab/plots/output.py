"""Writing pictures to disk: format from the suffix, atomically (temporary file, then rename).

A failed write leaves nothing behind: no empty or half-written file at the requested path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from matplotlib.figure import Figure

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
    """Yield a temporary path beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    folder = target.parent if str(target.parent) else Path(".")
    if not folder.is_dir():
        raise PlotError(f"cannot write {os.fspath(path)!r}: folder {os.fspath(folder)!r} does not exist")
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.name}.", suffix=target.suffix, dir=folder)
    except OSError as exc:
        raise PlotError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}") from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        os.replace(tmp, target)
    except OSError as exc:
        raise PlotError(f"cannot write {os.fspath(path)!r}: {exc.strerror or exc}") from None
    finally:
        if tmp.exists():
            tmp.unlink()


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
