"""The :class:`Landscape` base class: an :class:`~gdlab.core.objective.Objective` that knows its shape.

A landscape is a differentiable test function ``f: ℝᵈ → ℝ`` with exact value, gradient and Hessian
(analytic, or derived once by SymPy; never finite differences), evaluated for a batch of points
``x`` of shape ``batch + (d,)`` (see :mod:`gdlab.core.batching`). On top of the objective interface
it carries what the lab needs to show and judge a run: a plotting box (:attr:`Landscape.domain`),
its known critical points (:class:`Point`), a demo start point and its declared parameters
(:class:`~gdlab.core.hyper.Hyper` specs, validated like an optimizer's hyperparameters).

Value and gradient of a landscape with at most :data:`~gdlab.landscapes.program.MAX_PROGRAM_DIM`
coordinates are its :meth:`Landscape.program`: straight-line code of one point that NumPy evaluates
on coordinate columns here and :mod:`gdlab.fast` compiles, so that both run the same arithmetic (bit
for bit when the program is exact). Wider landscapes keep a vectorised NumPy evaluation.

SymPy is imported when a program or a Hessian is first needed, never with a landscape class: a
landscape's description, box, start and critical points are known without it, so listing and
describing landscapes (``gdlab list``) stays fast.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gdlab.core.batching import as_params
from gdlab.core.hyper import Configurable, Hyper, validate_hyperparams
from gdlab.core.objective import Objective
from gdlab.landscapes.program import MAX_PROGRAM_DIM, PointProgram, ProgramError

#: The kinds of :class:`Point`.
GLOBAL_MINIMUM = "global minimum"
LOCAL_MINIMUM = "local minimum"
SADDLE = "saddle"
LOCAL_MAXIMUM = "local maximum"


@dataclass(frozen=True)
class Point:
    """A critical point of a landscape: where it is, the value there, and what it is.

    ``kind`` is one of ``"global minimum"``, ``"local minimum"``, ``"saddle"``, ``"local maximum"``.
    """

    location: tuple[float, ...]
    value: float
    kind: str

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form: ``{"location": [...], "value": v, "kind": k}``."""
        return {"location": [float(v) for v in self.location], "value": float(self.value), "kind": self.kind}


def point(location: Any, value: float, kind: str) -> Point:
    """A :class:`Point` with the location converted to a tuple of Python floats."""
    return Point(tuple(float(v) for v in np.ravel(location)), float(value), kind)


#: Programs (or the reason there is none) by :meth:`Landscape.program_key`; the most recent are kept.
_PROGRAMS: dict[Hashable, PointProgram | str] = {}
_PROGRAMS_SIZE = 256


class Landscape(Objective, Configurable):
    """Base class of landscapes.

    Subclasses set the class attributes ``name``, ``description`` (one or two sentences with the
    formula) and ``hyperparams`` (the landscape's parameters), and implement :meth:`_build`, which
    sets the instance attributes below, and ``_hessian`` on checked float arrays of shape
    ``batch + (dim,)``. Value and gradient come from :meth:`program` (by default derived by SymPy
    from :meth:`symbolic`; override :meth:`_make_program` to give another); a landscape without a
    program (more than :data:`~gdlab.landscapes.program.MAX_PROGRAM_DIM` coordinates) implements
    ``_array_value`` and ``_array_grad`` (and optionally ``_array_value_and_grad``) instead.

    Instance attributes set by :meth:`_build`:

    ``dim``
        Number of coordinates of a point.
    ``domain``
        A sensible plotting box: one ``(lo, hi)`` pair per axis.
    ``global_minima``, ``local_minima``, ``saddles``, ``local_maxima``
        Lists of :class:`Point` (empty when none is known or listed).
    ``default_start``
        A good start point for a demo run.

    The public ``value``/``grad``/``value_and_grad``/``hessian`` check that the last axis has
    ``dim`` entries and never print floating-point warnings: a value that is not finite (overflow
    far from the plotting box, a logarithm of a negative number) is returned as inf or NaN, which
    the run engine treats as divergence.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    hyperparams: ClassVar[tuple[Hyper, ...]] = ()
    has_hessian = True
    #: False when the function is not twice differentiable at some listed point (Ackley's cusp at 0).
    smooth: ClassVar[bool] = True

    dim: int
    domain: tuple[tuple[float, float], ...]
    default_start: tuple[float, ...]
    global_minima: list[Point]
    local_minima: list[Point]
    saddles: list[Point]
    local_maxima: list[Point]

    def __init__(self, **params: Any) -> None:
        owner = type(self).name or type(self).__name__
        try:
            values = validate_hyperparams(type(self).hyperparams, params, owner)
        except TypeError as exc:  # unknown name or wrong type: a bad parameter all the same
            raise ValueError(str(exc)) from None
        for key, value in values.items():
            setattr(self, key, value)
        self._check_combination()
        self.global_minima, self.local_minima, self.saddles, self.local_maxima = [], [], [], []
        self._build()

    # -- to implement ------------------------------------------------------------------------
    def _build(self) -> None:
        """Set ``dim``, ``domain``, ``default_start`` and the lists of critical points."""
        raise NotImplementedError

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        """``f(x)`` evaluated on whole arrays, for a landscape without a program."""
        raise NotImplementedError(f"{self.name} has neither a point program nor an array evaluation")

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        """``∇f(x)`` evaluated on whole arrays, for a landscape without a program."""
        raise NotImplementedError(f"{self.name} has neither a point program nor an array evaluation")

    def _array_value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self._array_value(x), self._array_grad(x)

    def symbolic(self) -> tuple[Any, tuple[Any, ...]]:
        """The landscape as a SymPy expression and its symbols ``(expr, (x0, x1, ...))``."""
        raise NotImplementedError(f"{self.name} has no symbolic form")

    # -- the point program ---------------------------------------------------------------------
    def _make_program(self) -> PointProgram:
        """The program of this landscape: :meth:`symbolic` and its SymPy gradient, printed.

        Raises :class:`~gdlab.landscapes.program.ProgramError` or ``NotImplementedError`` when
        there is none. SymPy is imported here, when a program is first needed, not with the class."""
        import sympy

        from gdlab.landscapes.printer import program_from_sympy

        expr, symbols = self.symbolic()
        return program_from_sympy(symbols, expr, [sympy.diff(expr, s) for s in symbols])

    def program_key(self) -> Hashable:
        """What identifies the landscape's formula: its class and parameter values."""
        return type(self), tuple(sorted((k, repr(v)) for k, v in self.get_params().items()))

    def program_or_reason(self) -> PointProgram | str:
        """:meth:`program`, or the reason there is none (memoised per :meth:`program_key`)."""
        found = self.__dict__.get("_program")
        if found is not None:
            return found
        if self.dim > MAX_PROGRAM_DIM:
            found = f"it has {self.dim} coordinates (point programs have at most {MAX_PROGRAM_DIM})"
        else:
            key = self.program_key()
            found = _PROGRAMS.get(key)
            if found is None:
                try:
                    found = self._make_program()
                except (ProgramError, NotImplementedError) as exc:
                    found = f"it has no point program ({exc})"
                _PROGRAMS[key] = found
                if len(_PROGRAMS) > _PROGRAMS_SIZE:
                    _PROGRAMS.pop(next(iter(_PROGRAMS)))
        self._program = found
        return found

    def program(self) -> PointProgram | None:
        """Value and gradient as straight-line code of one point (see :mod:`gdlab.landscapes.program`),
        or ``None`` (more than :data:`~gdlab.landscapes.program.MAX_PROGRAM_DIM` coordinates, or a
        formula the printer does not support). Memoised per class and parameters (per expression for
        typed formulas)."""
        found = self.program_or_reason()
        return found if isinstance(found, PointProgram) else None

    def _value(self, x: np.ndarray) -> np.ndarray:
        program = self.program()
        return self._array_value(x) if program is None else program.value(x)

    def _grad(self, x: np.ndarray) -> np.ndarray:
        program = self.program()
        return self._array_grad(x) if program is None else program.grad(x)

    def _value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        program = self.program()
        return self._array_value_and_grad(x) if program is None else program.value_and_grad(x)

    # -- the objective interface ---------------------------------------------------------------
    def check_points(self, x: Any) -> np.ndarray:
        """``x`` as a float array of shape ``batch + (dim,)``, or ``ValueError``/``TypeError``."""
        arr = as_params(x, "x")
        if arr.shape[-1] != self.dim:
            raise ValueError(
                f"{self.name}: points must have {self.dim} coordinate(s) on the last axis, got shape {arr.shape}"
            )
        return arr

    def value(self, x: np.ndarray) -> np.ndarray:
        """``f(x)``, shape ``batch``."""
        arr = self.check_points(x)
        with np.errstate(all="ignore"):
            return self._value(arr)

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``∇f(x)``, shape of ``x``."""
        arr = self.check_points(x)
        with np.errstate(all="ignore"):
            return self._grad(arr)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f(x), ∇f(x))``."""
        arr = self.check_points(x)
        with np.errstate(all="ignore"):
            return self._value_and_grad(arr)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """``∇²f(x)``, shape ``batch + (dim, dim)``."""
        arr = self.check_points(x)
        with np.errstate(all="ignore"):
            return self._hessian(arr)

    # -- what the lab shows ------------------------------------------------------------------
    @property
    def minima(self) -> list[Point]:
        """Global minima then local minima: the list :meth:`nearest_minimum` indexes."""
        return [*self.global_minima, *self.local_minima]

    def nearest_minimum(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """For each run, the index into :attr:`minima` of the nearest listed minimum and the distance.

        ``x`` has shape ``batch + (dim,)``; both results have shape ``batch``. Without listed minima
        the index is ``-1`` and the distance ``inf``. Non-finite points give index ``-1``, distance NaN.
        """
        arr = self.check_points(x)
        batch = arr.shape[:-1]
        if not self.minima:
            return np.full(batch, -1, dtype=np.intp), np.full(batch, np.inf)
        centers = np.array([m.location for m in self.minima], dtype=np.float64)  # (m, dim)
        with np.errstate(all="ignore"):
            diff = arr[..., np.newaxis, :] - centers  # batch + (m, dim)
            dist = np.sqrt(np.einsum("...i,...i->...", diff, diff))  # batch + (m,)
        finite = np.isfinite(dist).all(axis=-1)
        index = np.where(finite, np.argmin(np.where(np.isfinite(dist), dist, np.inf), axis=-1), -1)
        best = np.take_along_axis(dist, np.maximum(index, 0)[..., np.newaxis], axis=-1)[..., 0]
        return index.astype(np.intp), np.where(finite, best, np.nan)

    def params_dict(self) -> dict[str, Any]:
        """The validated parameters as JSON-ready values."""
        return {k: (v.tolist() if isinstance(v, np.ndarray) else v) for k, v in self.get_params().items()}


# -- helpers for subclasses -------------------------------------------------------------------------
def dim_hyper(default: int = 2, low: int = 1, high: int = 10_000) -> Hyper:
    """The ``dim`` parameter of N-dimensional landscapes."""
    return Hyper("dim", default, kind="int", low=low, high=high, batchable=False, doc="number of dimensions")


def box(lo: float, hi: float, dim: int) -> tuple[tuple[float, float], ...]:
    """The same ``(lo, hi)`` interval on every axis."""
    return tuple((float(lo), float(hi)) for _ in range(dim))


def alternating(a: float, b: float, dim: int) -> tuple[float, ...]:
    """``(a, b, a, b, ...)`` with ``dim`` entries (demo start points of N-D landscapes)."""
    return tuple(float(a if i % 2 == 0 else b) for i in range(dim))
