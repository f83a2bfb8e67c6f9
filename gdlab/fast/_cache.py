"""Where gdlab keeps compiled code on disk, and how much of it.

Everything lives under one per-user directory, :func:`cache_root`: ``$XDG_CACHE_HOME/gdlab``
(``~/.cache/gdlab``), or a per-user directory under the system temporary directory when that cannot
be written; never inside the installed package. Two parts:

``generated/``
    The generated modules (:mod:`gdlab.fast.generated`): one ``.py`` file per rule and options, and
    per landscape program, with numba's cache of their compiled code in ``generated/__pycache__``.
``numba/``
    numba's cache of gdlab's own compiled functions (the drivers), through a cache locator that
    applies to the package's sources only: a user's own numba functions keep numba's usual places. When
    the user sets ``NUMBA_CACHE_DIR`` numba uses it for everything, gdlab included.

:func:`prune` keeps the generated modules within :data:`~gdlab.core.limits.Limits.max_cached_modules`
and :data:`~gdlab.core.limits.Limits.max_cache_bytes`, removing the least recently used first (a
module's files are touched each time it is loaded).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

from gdlab.core.limits import LIMITS

#: The package's own directory: numba code defined below it is cached under :func:`cache_root`.
PACKAGE_DIR = Path(__file__).resolve().parents[1]


def is_writable(directory: Path) -> bool:
    """True when ``directory`` exists or can be created, and a file can be written in it."""
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=directory):
            pass
    except OSError:
        return False
    return True


def _user_id() -> str:
    getuid = getattr(os, "getuid", None)
    return str(getuid()) if getuid is not None else os.environ.get("USERNAME", "user")


def cache_root(env: dict[str, str] | None = None) -> Path:
    """The per-user directory of gdlab's caches (created if needed)."""
    env = os.environ if env is None else env
    base = env.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    for candidate in (Path(base) / "gdlab", Path(tempfile.gettempdir()) / f"gdlab-cache-{_user_id()}"):
        if is_writable(candidate):
            return candidate
    raise OSError(f"no writable cache directory for gdlab (tried {base}/gdlab and the temporary directory)")


def _locator_class(numba_dir: Path, roots: tuple[Path, ...]) -> Any:
    """A numba cache locator for the sources below ``roots``, caching under ``numba_dir``."""
    from numba.core import caching

    class GdlabCacheLocator(caching.UserProvidedCacheLocator):
        def __init__(self, py_func: Any, py_file: str) -> None:
            self._py_file = py_file
            self._lineno = py_func.__code__.co_firstlineno
            self._cache_path = str(numba_dir / self.get_suitable_cache_subpath(py_file))

        def get_source_stamp(self) -> Any:
            """The source file's stamp and the whole package's: numba checks only the function's own
            file, but gdlab's compiled functions inline code from other modules of the package
            (the stopping rules, the element primitives), so a change anywhere recompiles them."""
            return super().get_source_stamp(), package_stamp()

        @classmethod
        def from_function(cls, py_func: Any, py_file: str) -> Any:
            path = Path(py_file).resolve()
            if not any(path.is_relative_to(root) for root in roots):
                return None
            # the source-file mixin's own from_function (the parent's asks for NUMBA_CACHE_DIR)
            return super(caching.UserProvidedCacheLocator, cls).from_function(py_func, py_file)

    return GdlabCacheLocator


_stamp: list[str] = []


def package_stamp() -> str:
    """A hash of the names, sizes and modification times of the package's Python files."""
    if not _stamp:
        digest = hashlib.sha256()
        for path in sorted(PACKAGE_DIR.rglob("*.py")):
            with contextlib.suppress(OSError):
                st = path.stat()
                digest.update(f"{path.relative_to(PACKAGE_DIR)}:{st.st_size}:{st.st_mtime_ns}".encode())
        _stamp.append(digest.hexdigest()[:16])
    return _stamp[0]


_configured: dict[str, str] = {}


def configure_numba_cache() -> str:
    """Put numba's cache of gdlab's code under :func:`cache_root` (once); returns the directory used."""
    if "dir" in _configured:
        return _configured["dir"]
    if os.environ.get("NUMBA_CACHE_DIR"):
        _configured["dir"] = os.environ["NUMBA_CACHE_DIR"]
        return _configured["dir"]
    from numba.core import caching

    root = cache_root()
    numba_dir = root / "numba"
    locator = _locator_class(numba_dir, (PACKAGE_DIR,))  # generated modules cache next to themselves
    caching.CacheImpl._locator_classes.insert(0, locator)
    _configured["dir"] = str(numba_dir)
    return _configured["dir"]


def module_files(directory: Path, name: str) -> list[Path]:
    """The files of generated module ``name``: its source, marker and numba's cache entries."""
    files = [directory / f"{name}.py", directory / f"{name}.ok"]
    cache = directory / "__pycache__"
    if cache.is_dir():
        files += list(cache.glob(f"{name}.*"))
    return [f for f in files if f.exists()]


def touch(directory: Path, name: str) -> None:
    """Mark generated module ``name`` as just used (for :func:`prune`)."""
    with contextlib.suppress(OSError):
        os.utime(directory / f"{name}.ok")


def prune(directory: Path, max_modules: int = LIMITS.max_cached_modules,
          max_bytes: int = LIMITS.max_cache_bytes, keep: str = "") -> int:
    """Remove the least recently used generated modules of ``directory`` until at most
    ``max_modules`` remain and they take at most ``max_bytes``; ``keep`` is never removed.
    Returns how many were removed."""
    modules = []
    for source in directory.glob("*.py"):
        name = source.stem
        files = module_files(directory, name)
        try:
            used = max(f.stat().st_mtime for f in files)
            size = sum(f.stat().st_size for f in files)
        except (OSError, ValueError):
            continue
        modules.append((used, name, size, files))
    modules.sort()
    total = sum(m[2] for m in modules)
    count = len(modules)
    removed = 0
    for _, name, size, files in modules:
        if count <= max_modules and total <= max_bytes:
            break
        if name == keep:
            continue
        for f in files:
            with contextlib.suppress(OSError):
                f.unlink()
        count -= 1
        total -= size
        removed += 1
    return removed
