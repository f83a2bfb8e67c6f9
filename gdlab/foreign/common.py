"""What every foreign source shares: the one-line error and import by path."""

from __future__ import annotations

import importlib
import re
from typing import Any


class ForeignError(ValueError):
    """A foreign optimizer could not be resolved or built (one line, for the user)."""


def is_foreign(name: str) -> bool:
    """Whether ``name`` names a foreign optimizer (it has a ``:``)."""
    return isinstance(name, str) and ":" in name


def import_attr(path: str, what: str) -> Any:
    """The object at ``module.path.Attr`` (or ``module.path`` + ``Attr`` split on ``:``)."""
    if ":" in path:
        module_name, _, attr = path.partition(":")
    else:
        module_name, _, attr = path.rpartition(".")
    if not module_name or not attr or not re.fullmatch(r"[A-Za-z_][\w.]*", module_name + "." + attr):
        raise ForeignError(f"{what} {path!r}: expected an import path like package.module.Name")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise ForeignError(f"{what} {path!r}: cannot import module {module_name!r} ({exc})") from None
    except Exception as exc:  # a user module that fails while importing
        raise ForeignError(f"{what} {path!r}: importing {module_name!r} failed: {type(exc).__name__}: {exc}") from None
    obj: Any = module
    for part in attr.split("."):
        if not hasattr(obj, part):
            raise ForeignError(f"{what} {path!r}: module {module_name!r} has no attribute {attr!r}")
        obj = getattr(obj, part)
    return obj
