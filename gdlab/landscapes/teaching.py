"""Small landscapes built to show one phenomenon each: a degenerate saddle, two wells, a 1-D double well.

(The plain saddle x² − y² is a quadratic form and lives in :mod:`gdlab.landscapes.quadratics`.)
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, ClassVar

import numpy as np

from gdlab.core.hyper import Hyper
from gdlab.landscapes.base import (
    GLOBAL_MINIMUM,
    LOCAL_MAXIMUM,
    LOCAL_MINIMUM,
    SADDLE,
    Landscape,
    Point,
    box,
    point,
)
from gdlab.landscapes.symbolic import SymbolicLandscape

if TYPE_CHECKING:  # SymPy is imported by the formulas, when a landscape is first derived
    import sympy


class MonkeySaddle(SymbolicLandscape):
    """``f = x³ − 3xy²``: a saddle with three descending valleys; gradient and Hessian both vanish at 0."""

    name = "monkey_saddle"
    description = (
        "The monkey saddle f(x, y) = x³ − 3xy²: three valleys (for the legs and the tail) meet at a "
        "degenerate saddle at the origin, where gradient and Hessian both vanish; no minimum."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        return x**3 - 3 * x * y**2

    def _setup(self) -> None:
        self.domain = box(-2.0, 2.0, 2)
        self.default_start = (1.0, 0.2)
        self.saddles = [point((0.0, 0.0), 0.0, SADDLE)]


class DoubleWell(SymbolicLandscape):
    """``f(x) = x⁴ − 3x² + 2`` (1-D, the seeds' example): minima −0.25 at ±√1.5, local maximum 2 at 0."""

    name = "double_well"
    description = (
        "The seeds' 1-D double well f(x) = x⁴ − 3x² + 2: two global minima −0.25 at x = ±√1.5 separated "
        "by a local maximum 2 at x = 0 (the seeds start at x = 2)."
    )
    variables = ("x",)

    def formula(self, x: sympy.Symbol) -> sympy.Expr:
        return x**4 - 3 * x**2 + 2

    def _setup(self) -> None:
        self.domain = ((-2.5, 2.5),)
        self.default_start = (2.0,)
        r = math.sqrt(1.5)
        self.global_minima = [point((-r,), -0.25, GLOBAL_MINIMUM), point((r,), -0.25, GLOBAL_MINIMUM)]
        self.local_maxima = [point((0.0,), 2.0, LOCAL_MAXIMUM)]


def classify(landscape: Landscape, starts: np.ndarray, tol: float = 1e-9) -> list[Point]:
    """Critical points found by Newton-type root finding on the exact gradient from each start.

    Duplicates (within 1e-6) are dropped; each point is classified by the signs of its Hessian's
    eigenvalues (minima are marked local; the caller promotes the lowest). Used once at construction.
    """
    from scipy.optimize import root

    found: list[Point] = []
    for x0 in starts:
        x = root(landscape.grad, x0, jac=landscape.hessian, method="hybr", tol=1e-13).x
        # judged by the gradient, not by the solver's flag (which reports "no progress" once converged)
        if not np.all(np.isfinite(x)) or np.linalg.norm(landscape.grad(x)) > tol:
            continue
        if any(np.linalg.norm(x - np.array(p.location)) < 1e-6 for p in found):
            continue
        eig = np.linalg.eigvalsh(landscape.hessian(x))
        if eig.min() > 0:
            kind = LOCAL_MINIMUM
        elif eig.max() < 0:
            kind = LOCAL_MAXIMUM
        elif eig.min() < 0 < eig.max():
            kind = SADDLE
        else:
            continue  # degenerate: not classified by second derivatives
        found.append(point(x, float(landscape.value(x)), kind))
    return found


class TwoWells(SymbolicLandscape):
    """``f = 0.1(x² + y²) − a·exp(−((x − 1.5)² + (y − 0.5)²)/0.5) − b·exp(−((x + 1.5)² + (y + 0.5)²)/0.5)``.

    A shallow bowl with two Gaussian wells of depths ``a`` (default 2) and ``b`` (default 1.2). Its
    critical points are located numerically (root finding on the exact gradient from a grid of
    starts), once per pair of depths: with the defaults, the global minimum ≈ −1.756 near
    (1.46, 0.49), a local minimum ≈ −0.960 near (−1.44, −0.48), and a saddle between them near the
    origin. Those of the defaults are stored (:data:`DEFAULT_CRITICAL`, what the search finds, checked
    by the tests), so the default landscape is described without SymPy or SciPy.
    """

    name = "two_wells"
    description = (
        "A shallow bowl with two Gaussian wells of different depth, f(x, y) = 0.1(x² + y²) "
        "− a·exp(−((x − 1.5)² + (y − 0.5)²)/0.5) − b·exp(−((x + 1.5)² + (y + 0.5)²)/0.5), a = 2, b = 1.2: "
        "a deep global minimum, a shallower local one, and a saddle between them."
    )
    hyperparams = (
        Hyper(
            "depth_a",
            2.0,
            low=0.0,
            high=10.0,
            low_open=True,
            batchable=False,
            doc="depth a of the well centred at (1.5, 0.5)",
        ),
        Hyper(
            "depth_b",
            1.2,
            low=0.0,
            high=10.0,
            low_open=True,
            batchable=False,
            doc="depth b of the well centred at (−1.5, −0.5)",
        ),
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        R = sympy.Rational
        a, b = sympy.Float(self.depth_a, 17), sympy.Float(self.depth_b, 17)
        well_a = sympy.exp(-2 * ((x - R(3, 2)) ** 2 + (y - R(1, 2)) ** 2))
        well_b = sympy.exp(-2 * ((x + R(3, 2)) ** 2 + (y + R(1, 2)) ** 2))
        return R(1, 10) * (x**2 + y**2) - a * well_a - b * well_b

    _critical: ClassVar[dict[tuple[float, float], tuple[list[Point], ...]]] = {}

    def _setup(self) -> None:
        self.domain = box(-4.0, 4.0, 2)
        self.default_start = (0.5, 2.5)
        key = (self.depth_a, self.depth_b)
        found = DEFAULT_CRITICAL if key == DEFAULT_DEPTHS else self._critical.get(key)
        if found is None:
            if len(self._critical) >= 64:
                self._critical.pop(next(iter(self._critical)))
            found = self._critical[key] = self._locate()
        self.global_minima, self.local_minima, self.saddles, self.local_maxima = (list(part) for part in found)

    def _locate(self) -> tuple[list[Point], list[Point], list[Point], list[Point]]:
        grid = np.linspace(-4.0, 4.0, 9)
        starts = np.concatenate(
            [[[1.5, 0.5], [-1.5, -0.5], [0.0, 0.0]], np.stack(np.meshgrid(grid, grid), -1).reshape(-1, 2)]
        )
        points = sorted(classify(self, starts), key=lambda p: p.value)
        minima = [p for p in points if p.kind == LOCAL_MINIMUM]
        best = minima[0].value
        return (
            [Point(p.location, p.value, GLOBAL_MINIMUM) for p in minima if p.value - best < 1e-12],
            [p for p in minima if p.value - best >= 1e-12],
            [p for p in points if p.kind == SADDLE],
            [p for p in points if p.kind == LOCAL_MAXIMUM],
        )


#: The default depths (a, b) of :class:`TwoWells`.
DEFAULT_DEPTHS = (2.0, 1.2)
#: The critical points of :class:`TwoWells` with the default depths, as :meth:`TwoWells._locate` finds
#: them: (global minima, local minima, saddles, local maxima).
DEFAULT_CRITICAL: tuple[list[Point], list[Point], list[Point], list[Point]] = (
    [Point((1.463307688541934, 0.487769229513978), -1.7561064550504883, GLOBAL_MINIMUM)],
    [Point((-1.4395301801573326, -0.47984339338577753), -0.9600389058674708, LOCAL_MINIMUM)],
    [Point((-0.058153010489684714, -0.019384336829894898), -0.02052624191373766, SADDLE)],
    [],
)
