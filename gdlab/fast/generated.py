"""Generated modules: source written to a content-addressed file, imported from there.

The compiled executors generate Python source for each rule and landscape (a loop around a body)
and compile it with numba. numba caches compiled code on disk (``cache=True``) only for functions
defined in a file, so the source is written to ``<prefix>_<hash>.py`` under :func:`generated_dir`
and imported: compiled once per machine, loaded in milliseconds by later processes. The hash covers
the whole text, and every generator puts a stamp of the sources it depends on into its text
(:func:`stamp`), so a change to any of them gives a new file instead of a stale cache entry.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import inspect
import os
import sys
import tempfile
import threading
from pathlib import Path
from types import ModuleType
from typing import Any

from gdlab.fast._cache import cache_root, prune, touch


class GenerationError(ValueError):
    """Generated code that cannot be written or compiled (with the reason)."""


def generated_dir() -> Path:
    """Where generated modules live: ``generated/`` of the per-user cache (:mod:`gdlab.fast._cache`)."""
    try:
        directory = cache_root() / "generated"
        directory.mkdir(exist_ok=True)
    except OSError as exc:
        raise GenerationError(f"no writable directory for generated code: {exc}") from None
    return directory


def stamp(*objects: Any) -> str:
    """A short hash of the source files of ``objects`` (modules, classes or functions)."""
    digest = hashlib.sha256()
    for obj in objects:
        try:
            digest.update(Path(inspect.getfile(obj)).read_bytes())
        except (OSError, TypeError):
            digest.update(repr(obj).encode())
    return digest.hexdigest()[:16]


def code_stamp(*functions: Any) -> str:
    """A short hash of the bytecode and constants of ``functions`` (catches a body redefined in a
    notebook, whose file stamp cannot tell)."""
    digest = hashlib.sha256()
    for fn in functions:
        code = getattr(fn, "__code__", None)
        digest.update(repr(fn).encode() if code is None else code.co_code + repr(code.co_consts).encode())
    return digest.hexdigest()[:16]


#: Python objects a generated module refers to (rule classes, which may live where no import reaches
#: them: a notebook, a test function), by the name its text uses; set before the module is loaded.
OBJECTS: dict[str, Any] = {}


def provide(obj: Any, *code: Any) -> str:
    """Register ``obj`` in :data:`OBJECTS` and return its name there: its qualified name and a stamp
    of ``code`` (the functions of it that generated code compiles)."""
    name = f"{obj.__module__}.{obj.__qualname__}#{code_stamp(*code)}"
    OBJECTS[name] = obj
    return name


def provide_named(name: str, obj: Any) -> str:
    """Register ``obj`` in :data:`OBJECTS` under ``name`` (a generated module for another one to use)."""
    OBJECTS[name] = obj
    return name


def key_of(text: str) -> str:
    """The content hash naming a generated module."""
    return hashlib.sha256(text.encode()).hexdigest()[:20]


_modules: dict[str, ModuleType] = {}
_lock = threading.Lock()


def is_built(text: str, prefix: str) -> bool:
    """True when this source was imported in this process or, by its marker, compiled on disk."""
    key = key_of(text)
    if f"{prefix}_{key}" in _modules:
        return True
    try:
        return (generated_dir() / f"{prefix}_{key}.ok").exists()
    except GenerationError:
        return False


def load(text: str, prefix: str) -> ModuleType:
    """Write (if needed) and import the generated module ``text``; cached per process.

    Importing it runs its numba decorators: ``cfunc`` compiles (or loads from numba's cache) at
    once. Raises :class:`GenerationError` when the code does not compile.
    """
    name = f"{prefix}_{key_of(text)}"
    module = _modules.get(name)
    if module is not None:
        return module
    with _lock:
        module = _modules.get(name)
        if module is not None:
            return module
        directory = generated_dir()
        path = directory / f"{name}.py"
        if not path.exists() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as handle:
                handle.write(text)
            os.replace(tmp, path)
            prune(directory, keep=name)  # a new module: keep the cache within its bounds
        qualified = f"gdlab_generated_{name}"
        spec = importlib.util.spec_from_file_location(qualified, path)
        if spec is None or spec.loader is None:
            raise GenerationError(f"cannot import the generated module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[qualified] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(qualified, None)
            raise GenerationError(f"the generated code does not compile: {type(exc).__name__}: {exc}") from None
        with contextlib.suppress(OSError):
            (directory / f"{name}.ok").touch()
        touch(directory, name)
        _modules[name] = module
        return module
