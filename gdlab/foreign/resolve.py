"""Resolve a foreign optimizer name into a gdlab optimizer.

- ``torch:<module.path.Class>``: any ``torch.optim.Optimizer`` subclass, wrapped by
  :mod:`gdlab.foreign.torch_adapter` (one run at a time: batched runs are looped).
- ``<module.path>:<RuleClass>``: a subclass of :class:`gdlab.core.rule.Rule` in the user's module;
  it is a gdlab rule, so the fused executors run it like a built-in.

Every failure (a module that does not import, a missing attribute, a class that is not an
optimizer, keyword arguments the class rejects) raises :class:`ForeignError` with one line.
"""

from __future__ import annotations

import math
import re
from typing import Any

from gdlab.core.optimizer import Optimizer
from gdlab.core.rule import Rule
from gdlab.foreign.common import ForeignError, import_attr, is_foreign

__all__ = ["ForeignError", "import_attr", "is_foreign", "make_foreign", "parse_foreign_sets", "resolve_class"]


def resolve_class(name: str) -> type[Optimizer]:
    """The gdlab optimizer class for foreign ``name`` (a dynamic adapter class for torch)."""
    source, _, rest = name.partition(":")
    if source == "torch":
        from gdlab.foreign.torch_adapter import torch_adapter_class

        return torch_adapter_class(rest)
    if source == "optax":
        from gdlab.foreign.optax_adapter import optax_adapter_class

        return optax_adapter_class(rest)
    cls = import_attr(name, "optimizer")
    if not (isinstance(cls, type) and issubclass(cls, Rule)):
        raise ForeignError(f"optimizer {name!r}: {cls!r} is not a subclass of gdlab.core.rule.Rule")
    if "element" not in cls.__dict__ and cls.element is Rule.element:
        raise ForeignError(f"optimizer {name!r}: {cls.__name__} defines no element body")
    return cls


def make_foreign(name: str, **kwargs: Any) -> Optimizer:
    """Build foreign optimizer ``name`` with ``kwargs``; bad input raises :class:`ForeignError`."""
    cls = resolve_class(name)
    try:
        return cls(**kwargs)
    except ForeignError:
        raise
    except TypeError as exc:
        if "single number" in str(exc):  # array hyperparameters: callers fall back to one run per value
            raise
        raise ForeignError(f"optimizer {name!r}: {exc}") from None
    except ValueError as exc:
        raise ForeignError(f"optimizer {name!r}: {exc}") from None


_TRUE = {"true", "yes", "on"}
_FALSE = {"false", "no", "off"}


def parse_foreign_value(text: str, label: str) -> Any:
    """A ``--set`` value for a foreign optimizer, without eval: a boolean, ``none``, a number, or a
    tuple of numbers written ``0.9,0.999`` (or ``0.9/0.999``)."""
    t = text.strip()
    low = t.lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    if low in ("none", "null"):
        return None
    parts = [p for p in re.split(r"[,/]", t)]
    values = []
    for p in parts:
        p = p.strip()
        try:
            v: Any = int(p) if re.fullmatch(r"[+-]?\d+", p) else float(p)
        except ValueError:
            raise ForeignError(f"{label}: {text!r} is not a number, boolean or tuple of numbers") from None
        if isinstance(v, float) and not math.isfinite(v):
            raise ForeignError(f"{label}: {text!r} is not finite")
        values.append(v)
    return values[0] if len(values) == 1 else tuple(values)


def parse_foreign_sets(items: Any, option: str = "--set") -> dict[str, Any]:
    """``["k=v", ...]`` for a foreign optimizer (names are checked by the class itself)."""
    out: dict[str, Any] = {}
    for item in items or ():
        if "=" not in item:
            raise ForeignError(f"{option} {item!r}: expected NAME=VALUE")
        key, _, text = item.partition("=")
        key = key.strip()
        if not key.isidentifier():
            raise ForeignError(f"{option} {item!r}: {key!r} is not a parameter name")
        if key in out:
            raise ForeignError(f"{option}: {key} given twice")
        out[key] = parse_foreign_value(text, f"{option} {key}")
    return out
