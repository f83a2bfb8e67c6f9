"""Where numba keeps the compiled kernels (``cache=True``), chosen before the kernels are defined.

numba writes its cache next to the module (``gdlab/fast/__pycache__``). When that directory cannot
be written (a read-only install) and the user has not set ``NUMBA_CACHE_DIR``, the cache goes to
``$XDG_CACHE_HOME/gdlab/numba`` (``~/.cache/gdlab/numba``), and failing that to a per-user
directory under the system temporary directory.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path


def is_writable(directory: Path) -> bool:
    """True when ``directory`` exists or can be created, and a file can be written in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError:
        return False
    return True


def user_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "gdlab" / "numba"


def choose_cache_dir(package_dir: Path, env: dict[str, str] | None = None) -> Path | None:
    """The directory to hand numba, or ``None`` when numba's default (in-tree or user-set) works."""
    env = os.environ if env is None else env
    if env.get("NUMBA_CACHE_DIR"):
        return None
    if is_writable(package_dir / "__pycache__"):
        return None
    for candidate in (user_cache_dir(), Path(tempfile.gettempdir()) / f"gdlab-numba-{_user_id()}"):
        if is_writable(candidate):
            return candidate
    return None


def _user_id() -> str:
    getuid = getattr(os, "getuid", None)
    return str(getuid()) if getuid is not None else os.environ.get("USERNAME", "user")


def configure_numba_cache() -> str:
    """Point numba at a writable cache directory if needed; returns the directory in use."""
    from numba.core import config

    package_dir = Path(__file__).resolve().parent
    chosen = choose_cache_dir(package_dir)
    if chosen is not None:
        config.CACHE_DIR = str(chosen)
    return config.CACHE_DIR or str(package_dir / "__pycache__")
