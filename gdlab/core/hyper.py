"""Declared, validated hyperparameters.

Every optimizer, schedule and transform declares its hyperparameters as a tuple of :class:`Hyper`
specs (name, default, kind, allowed range). :func:`validate_hyperparams` turns user keyword arguments
into checked values, so that a bad value is refused at construction with a message naming the
parameter and the value, never discovered as a NaN a thousand steps later.

Numeric hyperparameters marked ``batchable`` may be arrays: one value per independent run of a
batched computation (see :mod:`gdlab.core.batching`).
"""

from __future__ import annotations

import difflib
import inspect
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

Kind = Literal["real", "int", "bool", "pair", "choice", "int_list", "function", "schedules"]


@dataclass(frozen=True)
class Hyper:
    """Specification of one hyperparameter.

    ``low``/``high`` bound real, int and pair values; ``low_open``/``high_open`` make a bound strict.
    ``choices`` lists the allowed values of a ``choice``. ``batchable`` reals and pairs may be arrays.
    ``optional`` allows ``None`` (meaning "not set", e.g. OneCycle's ``total_steps``).
    A ``pair`` holds ``size`` numbers (2, or 3 for Muon's ``ns_coefficients``); with ``none_first``
    its first item may be ``None`` (Adafactor's ``eps = (None, 1e-3)``).
    """

    name: str
    default: Any
    kind: Kind = "real"
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[Any, ...] = ()
    batchable: bool = True
    optional: bool = False
    doc: str = ""
    size: int = 2
    none_first: bool = False

    def range_text(self) -> str:
        """Human-readable allowed range, e.g. ``[0, 1)``."""
        if self.kind == "choice":
            return "one of " + ", ".join(repr(c) for c in self.choices)
        if self.kind == "bool":
            return "true or false"
        # values must be finite, so an unbounded side is open: "[0, inf)" accepts every x ≥ 0 but inf
        left = "(" if self.low_open or self.low is None else "["
        right = ")" if self.high_open or self.high is None else "]"
        lo = "-inf" if self.low is None else f"{self.low:g}"
        hi = "inf" if self.high is None else f"{self.high:g}"
        return f"{left}{lo}, {hi}{right}"

    def validate(self, value: Any, owner: str) -> Any:
        """Return ``value`` checked and normalised, or raise ``ValueError``/``TypeError``."""
        if value is None:
            if self.optional:
                return None
            raise TypeError(f"{owner}: {self.name} must be set (got None)")
        if self.kind == "bool":
            return _check_bool(self, value, owner)
        if self.kind == "choice":
            if value not in self.choices:
                raise ValueError(f"{owner}: {self.name}={value!r} is not allowed; expected {self.range_text()}")
            return value
        if self.kind == "int":
            return _check_int(self, value, owner)
        if self.kind == "pair":
            return _check_pair(self, value, owner)
        return _check_real(self, value, owner, self.name)


def _check_bool(spec: Hyper, value: Any, owner: str) -> bool:
    if isinstance(value, bool | np.bool_):
        return bool(value)
    raise TypeError(f"{owner}: {spec.name} must be true or false, got {value!r}")


def _check_int(spec: Hyper, value: Any, owner: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        else:
            raise TypeError(f"{owner}: {spec.name} must be an integer, got {value!r}")
    value = int(value)
    if not _in_range(spec, float(value)):
        raise ValueError(f"{owner}: {spec.name}={value} is out of range; expected {spec.range_text()}")
    return value


def _check_pair(spec: Hyper, value: Any, owner: str) -> tuple[Any, Any]:
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise TypeError(f"{owner}: {spec.name} must be a pair of numbers, got {value!r}")
    items = list(value)
    if len(items) != spec.size:
        raise ValueError(f"{owner}: {spec.name} must have exactly {spec.size} values, got {len(items)}: {value!r}")
    return tuple(None if i == 0 and v is None and spec.none_first else _check_real(spec, v, owner, f"{spec.name}[{i}]")
                 for i, v in enumerate(items))  # type: ignore[return-value]


def _check_real(spec: Hyper, value: Any, owner: str, label: str) -> float | np.ndarray:
    if isinstance(value, bool | np.bool_ | str) or value is None:
        raise TypeError(f"{owner}: {label} must be a number, got {value!r}")
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: {label} must be a number, got {value!r}") from None
    if arr.ndim > 0 and not spec.batchable:
        raise TypeError(f"{owner}: {label} must be a single number, got an array of shape {arr.shape}")
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{owner}: {label}={_show(value)} must be finite")
    bad = ~_in_range_array(spec, arr)
    if bad.any():
        first = float(arr[bad].ravel()[0])
        raise ValueError(f"{owner}: {label}={first:g} is out of range; expected {spec.range_text()}")
    return float(arr) if arr.ndim == 0 else arr


def _show(value: Any) -> str:
    arr = np.asarray(value, dtype=np.float64)
    return f"{float(arr):g}" if arr.ndim == 0 else f"array with non-finite entries {arr[~np.isfinite(arr)][:3]}"


def _in_range_array(spec: Hyper, arr: np.ndarray) -> np.ndarray:
    """Vectorised :func:`_in_range` (no Python loop: batched hyperparameters can be large)."""
    ok = ~np.isnan(arr)
    if spec.low is not None:
        ok &= (arr > spec.low) if spec.low_open else (arr >= spec.low)
    if spec.high is not None:
        ok &= (arr < spec.high) if spec.high_open else (arr <= spec.high)
    return ok


def _in_range(spec: Hyper, v: float) -> bool:
    if math.isnan(v):
        return False
    if spec.low is not None and (v < spec.low or (spec.low_open and v == spec.low)):
        return False
    return not (spec.high is not None and (v > spec.high or (spec.high_open and v == spec.high)))


def suggest(name: str, valid: Iterable[str]) -> str:
    """A ``" (did you mean 'x'?)"`` suffix for the closest valid name, or ``""``."""
    close = difflib.get_close_matches(name, list(valid), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def lookup(table: Mapping[str, Any], name: Any, kind: str) -> Any:
    """``table[name]``, or ``ValueError`` naming the unknown ``kind`` with a close match and the valid names."""
    if isinstance(name, str) and name in table:
        return table[name]
    hint = suggest(name, table) if isinstance(name, str) else ""
    raise ValueError(f"unknown {kind} {name!r}{hint}; valid: {', '.join(table)}")


def validate_hyperparams(specs: tuple[Hyper, ...], given: Mapping[str, Any], owner: str) -> dict[str, Any]:
    """Check ``given`` against ``specs`` and fill defaults.

    Unknown names raise ``TypeError`` listing the valid ones (with a close-match suggestion).
    """
    by_name = {s.name: s for s in specs}
    for key in given:
        if key not in by_name:
            valid = ", ".join(by_name) or "(none)"
            raise TypeError(
                f"{owner}: unknown hyperparameter {key!r}{suggest(key, by_name)}; valid names: {valid}"
            )
    return {s.name: s.validate(given.get(s.name, s.default), owner) for s in specs}


def describe(specs: tuple[Hyper, ...]) -> list[dict[str, Any]]:
    """JSON-friendly description of hyperparameter specs (for ``gdlab list`` and the web lab)."""
    out = []
    for s in specs:
        default = list(s.default) if isinstance(s.default, tuple) else s.default
        item: dict[str, Any] = {"name": s.name, "kind": s.kind, "default": default, "doc": s.doc}
        if s.kind in ("real", "int", "pair"):
            item.update(low=s.low, high=s.high, low_open=s.low_open, high_open=s.high_open)
        if s.kind == "choice":
            item["choices"] = list(s.choices)
        if s.optional:
            item["optional"] = True
        out.append(item)
    return out


def signature_of(specs: tuple[Hyper, ...]) -> inspect.Signature:
    """The keyword signature ``(name=default, ...)`` of these specs."""
    return inspect.Signature(
        [inspect.Parameter(s.name, inspect.Parameter.KEYWORD_ONLY, default=s.default) for s in specs]
    )


def parameters_section(specs: tuple[Hyper, ...]) -> str:
    """A docstring section listing each hyperparameter, its default, its range and its meaning."""
    lines = ["Parameters", "----------"]
    for s in specs:
        allowed = s.range_text()
        if s.kind in ("real", "pair") and s.batchable:
            allowed += "; an array gives one value per run"
        lines.append(f"{s.name} : {s.kind}, default {s.default!r}, {allowed}")
        if s.doc:
            lines.append(f"    {s.doc}")
    return "\n".join(lines)


class Configurable:
    """Base for objects configured by declared hyperparameters (optimizers, schedules, transforms).

    Subclasses set ``name`` and ``hyperparams``; validated values become attributes, and
    :meth:`get_params` returns them (scikit-learn style).
    """

    name: str = ""
    hyperparams: tuple[Hyper, ...] = ()

    def __init_subclass__(cls, **kwargs: Any) -> None:
        """Give each class the explicit signature of its declared hyperparameters (``help`` and
        ``inspect.signature`` show ``Adam(lr=0.001, betas=(0.9, 0.999), ...)``), and a docstring
        section listing them with their ranges, unless the class defines its own ``__init__``."""
        super().__init_subclass__(**kwargs)
        if "__init__" in cls.__dict__ or "hyperparams" not in cls.__dict__:
            return
        cls.__signature__ = signature_of(cls.hyperparams)  # type: ignore[attr-defined]
        if cls.__doc__ and cls.hyperparams:
            cls.__doc__ = cls.__doc__.rstrip() + "\n\n" + parameters_section(cls.hyperparams)

    def __init__(self, **kwargs: Any) -> None:
        values = validate_hyperparams(type(self).hyperparams, kwargs, type(self).name or type(self).__name__)
        for key, value in values.items():
            setattr(self, key, value)
        self._check_combination()

    def _check_combination(self) -> None:
        """Override to refuse invalid combinations of otherwise valid values."""

    def get_params(self) -> dict[str, Any]:
        """The validated hyperparameters, by name."""
        return {s.name: getattr(self, s.name) for s in type(self).hyperparams}

    def __repr__(self) -> str:
        shown = []
        for key, value in self.get_params().items():
            text = f"array{np.shape(value)}" if isinstance(value, np.ndarray) else repr(value)
            shown.append(f"{key}={text}")
        return f"{type(self).__name__}({', '.join(shown)})"
