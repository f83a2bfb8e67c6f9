"""What an optimizer's state holds, declared: entry names, kinds, dtypes and shapes.

``opt.state_spec()`` describes the state that ``opt.init(params)`` returns and ``opt.step`` keeps:
a :class:`StateSpec` naming every entry and what it holds. :mod:`gdlab.core.serialization` checks a
saved state against it (before reading any array of a file), so a state file holds exactly what the
optimizer would have made, nothing missing, nothing more.

The parts of a spec:

- :class:`Count`: an integer from 0 to a bound (the step, L-BFGS's history length);
- :class:`Real`: a float scalar (a loss, a step length);
- :class:`Array`: an array whose dtype is of the given kinds, shaped by a :data:`Pattern`;
- :class:`RunScalar`: a float, or a float array broadcasting against the batch (a rule's carries,
  shaped like its batched hyperparameters);
- :class:`Maybe`: ``None`` or another part; :class:`StateSpec`: a nested state (a dict);
  :class:`Each`: a list of nested states (a chain's transforms).

Shapes are patterns, because the params' shape is not stored with a state: a tuple of axis sizes
(ints) and two names, :data:`BATCH` (the batch axes, any number of them: the params' shape without
its last axis) and :data:`DIM` (the params' last axis). The first array using a name binds it and
every other use must agree (:class:`ShapeBinding`), so :data:`PARAMS` arrays all share the params'
shape, :data:`RUNS` arrays hold one value per run, and L-BFGS's history is ``(history_size, DIM)``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: A shape pattern: axis sizes, :data:`BATCH` (at most once) and :data:`DIM`.
Pattern = tuple[int | str, ...]
#: The batch axes of the params (``params.shape[:-1]``), any number of them.
BATCH = "..."
#: The last axis of the params (one run's number of parameters).
DIM = "d"
#: Shaped like the params.
PARAMS: Pattern = (BATCH, DIM)
#: One value per run.
RUNS: Pattern = (BATCH,)
#: Largest step count (the compiled executors count steps in 64-bit integers).
MAX_COUNT = 2**63 - 1


@dataclass(frozen=True)
class Count:
    """A Python ``int`` (or a NumPy integer scalar), not a bool, from 0 to ``high``."""

    high: int = MAX_COUNT


@dataclass(frozen=True)
class Real:
    """A float scalar: a Python ``float`` or a NumPy floating scalar (NaN and ±inf included)."""


@dataclass(frozen=True)
class Array:
    """A NumPy array shaped by ``shape`` whose dtype is of one of ``kinds`` (NumPy's kind codes:
    ``f`` floating point, ``i`` signed integer, ``b`` boolean)."""

    shape: Pattern
    kinds: str = "f"


@dataclass(frozen=True)
class RunScalar:
    """A per-run float carried from step to step: a :class:`Real`, or a floating-point array whose
    shape broadcasts to the batch shape (the shape of the batched hyperparameters it comes from)."""


@dataclass(frozen=True)
class Maybe:
    """``None``, or what ``entry`` describes."""

    entry: Entry


@dataclass(frozen=True)
class StateSpec:
    """A state dict holding exactly ``entries`` (name → what it holds)."""

    entries: Mapping[str, Entry] = field(default_factory=dict)


@dataclass(frozen=True)
class Each:
    """A list of nested states, item ``i`` described by ``items[i]``."""

    items: tuple[StateSpec, ...]


Entry = Count | Real | Array | RunScalar | Maybe | StateSpec | Each


class ShapeBinding:
    """The sizes of :data:`BATCH` and :data:`DIM` in one state, bound by the first array using them."""

    def __init__(self) -> None:
        self.batch: tuple[int, ...] | None = None
        self.dim: int | None = None
        self.origin = ""  # where the first array binding a name is

    def match(self, pattern: Pattern, shape: tuple[int, ...], where: str = "") -> str | None:
        """Bind or check the names of ``pattern`` against ``shape`` (the array at ``where``); the
        mismatch, or ``None``."""
        fixed = len(pattern) - (1 if BATCH in pattern else 0)
        batch_at = pattern.index(BATCH) if BATCH in pattern else len(pattern)
        batch_len = len(shape) - fixed
        axes = [p for p in pattern if p != BATCH]
        fits = batch_len >= 0 and (BATCH in pattern or batch_len == 0)
        if fits:
            batch = shape[batch_at : batch_at + batch_len]
            rest = shape[:batch_at] + shape[batch_at + batch_len :]
            fits = not (BATCH in pattern and self.batch is not None and batch != self.batch) and all(
                (want == DIM and (self.dim is None or got == self.dim)) or want == got
                for want, got in zip(axes, rest, strict=True)
            )
        if not fits:
            agree = f" to agree with {self.origin}" if self.origin and (BATCH in pattern or DIM in axes) else ""
            return f"has shape {shape}, expected {self.show(pattern)}{agree}"
        if (BATCH in pattern or DIM in axes) and not self.origin:
            self.origin = where
        if BATCH in pattern:
            self.batch = batch
        if DIM in axes:
            self.dim = rest[axes.index(DIM)]
        return None

    def broadcasts(self, shape: tuple[int, ...]) -> str | None:
        """Check that ``shape`` broadcasts to the batch shape (when it is bound); the mismatch, or ``None``."""
        if self.batch is None:
            return None
        if len(shape) > len(self.batch) or any(
            s not in (1, b) for s, b in zip(reversed(shape), reversed(self.batch), strict=False)
        ):
            return f"has shape {shape}, which does not broadcast to the batch shape {self.batch}"
        return None

    def show(self, pattern: Pattern) -> str:
        """``pattern`` with the names bound so far filled in (e.g. ``(3, 2)`` or ``(*batch, d)``)."""
        parts: list[str] = []
        for p in pattern:
            if p == BATCH:
                parts += [str(b) for b in self.batch] if self.batch is not None else ["*batch"]
            elif p == DIM:
                parts.append(str(self.dim) if self.dim is not None else "d")
            else:
                parts.append(str(p))
        return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


__all__ = [
    "BATCH",
    "DIM",
    "MAX_COUNT",
    "PARAMS",
    "RUNS",
    "Array",
    "Count",
    "Each",
    "Entry",
    "Maybe",
    "Pattern",
    "Real",
    "RunScalar",
    "ShapeBinding",
    "StateSpec",
]
