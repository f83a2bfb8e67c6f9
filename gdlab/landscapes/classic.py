"""The classic optimization test functions (Rosenbrock, Beale, Himmelblau, ... Easom).

Formulas, plotting boxes and minima follow the standard references (Wikipedia's "Test functions for
optimization", the Simon Fraser University virtual library of simulation experiments, Jamil & Yang
2013). Critical points that the references give only to four digits were refined by Newton's method
on the exact gradient and are stored to double precision; the tests check that the gradient vanishes
there and that each minimum is one.

The 2-D functions are SymPy formulas derived once
(:class:`~gdlab.landscapes.symbolic.SymbolicLandscape`). The N-dimensional ones (Rosenbrock,
Rastrigin, Ackley, Styblinski–Tang) are evaluated up to
:data:`~gdlab.landscapes.program.MAX_PROGRAM_DIM` dimensions by the point program printed from their
:meth:`symbolic` form (sums added in a fixed order, coordinate by coordinate), and above that by
hand-written vectorised NumPy; their Hessians are hand-written. Constructing a landscape needs no
SymPy (its formulas are derived when a program or Hessian is first asked for): the values listed at
the N-dimensional critical points are evaluated by the vectorised NumPy form.
"""

from __future__ import annotations

import itertools
import math
from typing import TYPE_CHECKING

import numpy as np

from gdlab.core.objective import Rosenbrock as _CoreRosenbrock
from gdlab.landscapes.base import (
    GLOBAL_MINIMUM,
    LOCAL_MAXIMUM,
    LOCAL_MINIMUM,
    SADDLE,
    Landscape,
    Point,
    alternating,
    box,
    dim_hyper,
    point,
)
from gdlab.landscapes.program import PointProgram
from gdlab.landscapes.symbolic import SymbolicLandscape, real_symbols

if TYPE_CHECKING:  # SymPy is imported by the formulas, when a landscape is first derived
    import sympy

#: The root of x + 10π sin 2πx = 0 in (0.9, 1): a coordinate of Rastrigin's local minima next to the
#: origin (Brent's method to 1e-15; the tests check that the gradient vanishes there).
RASTRIGIN_ROOT = 0.9949586376523347


def _diagonal(d: np.ndarray) -> np.ndarray:
    """Batch of diagonal matrices from ``d`` of shape ``batch + (n,)``."""
    n = d.shape[-1]
    H = np.zeros(d.shape + (n,), dtype=d.dtype)
    idx = np.arange(n)
    H[..., idx, idx] = d
    return H


# -- N-dimensional functions --------------------------------------------------------------------
class Rosenbrock(Landscape):
    """``f(x) = Σᵢ 100 (x_{i+1} − xᵢ²)² + (1 − xᵢ)²`` (its point program up to 16 dimensions, above
    that and for the Hessian :class:`gdlab.core.objective.Rosenbrock`).

    Global minimum 0 at (1, ..., 1). For 4 ≤ dim ≤ 7 the function has exactly one more minimum,
    near (−1, 1, ..., 1) (Kok & Sandrock 2009); it is located numerically at construction.
    """

    name = "rosenbrock"
    description = (
        "The banana valley f(x) = Σᵢ 100 (x_{i+1} − xᵢ²)² + (1 − xᵢ)²: a curved, flat-bottomed valley; "
        "minimum 0 at (1, ..., 1) (for 4 ≤ dim ≤ 7 also a local minimum near (−1, 1, ..., 1))."
    )
    hyperparams = (dim_hyper(2, low=2),)

    def _build(self) -> None:
        self._core = _CoreRosenbrock()
        d = self.dim
        self.domain = ((-2.0, 2.0), (-1.0, 3.0)) if d == 2 else box(-2.0, 2.0, d)
        self.default_start = alternating(-1.2, 1.0, d)
        self.global_minima = [point(np.ones(d), 0.0, GLOBAL_MINIMUM)]
        if 4 <= d <= 7:
            from scipy.optimize import minimize

            x0 = np.ones(d)
            x0[0] = -1.0
            res = minimize(
                self._value, x0, jac=self._grad, hess=self._hessian, method="trust-exact", options={"gtol": 1e-13}
            )
            self.local_minima = [point(res.x, float(self._value(res.x)), LOCAL_MINIMUM)]

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        return self._core.value(x)

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        return self._core.grad(x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return self._core.hessian(x)

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        import sympy

        xs = real_symbols([f"x{i}" for i in range(self.dim)])
        return sum(
            (100 * (xs[i + 1] - xs[i] ** 2) ** 2 + (1 - xs[i]) ** 2 for i in range(self.dim - 1)), sympy.S.Zero
        ), xs


class Rastrigin(Landscape):
    """``f(x) = 10d + Σᵢ (xᵢ² − 10 cos 2πxᵢ)``: a bowl covered in a lattice of local minima.

    Global minimum 0 at the origin. Listed local minima (for dim ≤ 10): the 2·dim nearest the
    origin, one coordinate ≈ ±0.995 (root of x + 10π sin 2πx = 0), value ≈ 0.995. Every point near
    the integer lattice holds another one.
    """

    name = "rastrigin"
    description = (
        "Rastrigin's function f(x) = 10d + Σᵢ (xᵢ² − 10 cos 2πxᵢ): a bowl covered by a lattice of "
        "local minima near the integer points; global minimum 0 at the origin."
    )
    hyperparams = (dim_hyper(2),)
    A = 10.0

    def _build(self) -> None:
        d = self.dim
        self.domain = box(-5.12, 5.12, d)
        self.default_start = alternating(2.5, -2.5, d)
        self.global_minima = [point(np.zeros(d), 0.0, GLOBAL_MINIMUM)]
        if d <= 10:
            for i, sign in itertools.product(range(d), (1.0, -1.0)):
                loc = np.zeros(d)
                loc[i] = sign * RASTRIGIN_ROOT
                self.local_minima.append(point(loc, float(self._array_value(loc)), LOCAL_MINIMUM))

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        return self.A * x.shape[-1] + np.sum(x**2 - self.A * np.cos(2.0 * np.pi * x), axis=-1)

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * x + 2.0 * np.pi * self.A * np.sin(2.0 * np.pi * x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return _diagonal(2.0 + 4.0 * np.pi**2 * self.A * np.cos(2.0 * np.pi * x))

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        import sympy

        xs = real_symbols([f"x{i}" for i in range(self.dim)])
        return 10 * self.dim + sum((v**2 - 10 * sympy.cos(2 * sympy.pi * v) for v in xs), sympy.S.Zero), xs


class Ackley(Landscape):
    """``f(x) = −20 exp(−0.2 √(Σxᵢ²/d)) − exp(Σ cos(2πxᵢ)/d) + 20 + e``.

    Global minimum 0 at the origin, where the first term has a cone-shaped cusp: the gradient
    returned there is 0 (a subgradient) and the Hessian has ``+inf`` on its diagonal (the curvature
    of a cone tip). Everywhere else the function is smooth. Its many local minima near the integer
    lattice are not listed.
    """

    name = "ackley"
    description = (
        "Ackley's function f(x) = −20 exp(−0.2 √(Σxᵢ²/d)) − exp(Σ cos(2πxᵢ)/d) + 20 + e: a nearly flat, "
        "bumpy plate with a deep funnel; global minimum 0 at the origin (a cusp, not differentiable there)."
    )
    hyperparams = (dim_hyper(2),)
    smooth = False
    a, b, c = 20.0, 0.2, 2.0 * math.pi

    def _build(self) -> None:
        d = self.dim
        self.domain = box(-5.0, 5.0, d)
        self.default_start = alternating(3.0, 2.5, d)
        self.global_minima = [point(np.zeros(d), 0.0, GLOBAL_MINIMUM)]

    def _parts(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
        n = x.shape[-1]
        r = np.sqrt(np.sum(x * x, axis=-1) / n)
        cone = self.a * self.b * np.exp(-self.b * r)  # a·b·e^{−br}
        wave = np.exp(np.sum(np.cos(self.c * x), axis=-1) / n)  # e^{Σcos(cx)/n}
        return r, cone, wave, n

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        n = x.shape[-1]
        r = np.sqrt(np.sum(x * x, axis=-1) / n)
        wave = np.exp(np.sum(np.cos(self.c * x), axis=-1) / n)
        return -self.a * np.exp(-self.b * r) - wave + self.a + math.e

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        r, cone, wave, n = self._parts(x)
        r_safe = np.where(r > 0, r, 1.0)[..., np.newaxis]
        g_cone = np.where((r > 0)[..., np.newaxis], cone[..., np.newaxis] * x / (n * r_safe), 0.0)
        return g_cone + (self.c / n) * np.sin(self.c * x) * wave[..., np.newaxis]

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        r, cone, wave, n = self._parts(x)
        s = np.sin(self.c * x)
        outer_x = x[..., :, np.newaxis] * x[..., np.newaxis, :]
        H = -(self.c**2 / n**2) * wave[..., np.newaxis, np.newaxis] * (s[..., :, np.newaxis] * s[..., np.newaxis, :])
        H = H + _diagonal((self.c**2 / n) * np.cos(self.c * x) * wave[..., np.newaxis])
        pos = r > 0
        rs = np.where(pos, r, 1.0)[..., np.newaxis, np.newaxis]
        k = cone[..., np.newaxis, np.newaxis]
        H_cone = k * (np.eye(n) / (n * rs) - outer_x / (n**2 * rs**3) - self.b * outer_x / (n**2 * rs**2))
        tip = np.where(np.eye(n, dtype=bool), np.inf, 0.0)
        return H + np.where(pos[..., np.newaxis, np.newaxis], H_cone, tip)

    def _terms(self) -> tuple[sympy.Expr, sympy.Expr, sympy.Expr, tuple[sympy.Symbol, ...]]:
        """``(cone, wave, r, symbols)``: ``f = cone + wave``, ``cone = −20 e^{−r/5}`` with
        ``r = √(Σxᵢ²/d)`` (the part with the cusp), ``wave = −e^{Σcos(2πxᵢ)/d} + 20 + e``."""
        import sympy

        xs = real_symbols([f"x{i}" for i in range(self.dim)])
        n = self.dim
        r = sympy.sqrt(sum((v**2 for v in xs), sympy.S.Zero) / n)
        wave = -sympy.exp(sum((sympy.cos(2 * sympy.pi * v) for v in xs), sympy.S.Zero) / n) + 20 + sympy.E
        return -20 * sympy.exp(-r / 5), wave, r, xs

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        cone, wave, _, xs = self._terms()
        return cone + wave, xs

    def _make_program(self) -> PointProgram:
        """The SymPy gradient, with the cone's part taken as 0 where ``r = 0`` (the subgradient at the
        cusp that :meth:`_array_grad` returns; the formula there is 0/0)."""
        import sympy

        from gdlab.landscapes.printer import program_from_sympy

        cone, wave, r, xs = self._terms()
        grad = [sympy.Piecewise((sympy.diff(cone, v), r > 0), (0, True)) + sympy.diff(wave, v) for v in xs]
        return program_from_sympy(xs, cone + wave, grad)


class StyblinskiTang(Landscape):
    """``f(x) = ½ Σᵢ (xᵢ⁴ − 16xᵢ² + 5xᵢ)``: separable, 2ᵈ minima at the corners of a box.

    Each coordinate's critical points are the roots of 2t³ − 16t + 2.5 = 0: t₋ ≈ −2.9035 and
    t₊ ≈ 2.7468 (minima) and t₀ ≈ 0.1567 (maximum). Global minimum ≈ −39.166·d at (t₋, ..., t₋);
    the other corners of {t₋, t₊}ᵈ are local minima (listed for dim ≤ 4); in 2-D the four saddles
    and the local maximum are listed as well.
    """

    name = "styblinski_tang"
    description = (
        "The Styblinski–Tang function f(x) = ½ Σᵢ (xᵢ⁴ − 16xᵢ² + 5xᵢ): 2ᵈ minima at the corners of a "
        "box; global minimum ≈ −39.166·d at xᵢ ≈ −2.9035."
    )
    hyperparams = (dim_hyper(2),)

    @staticmethod
    def roots() -> tuple[float, float, float]:
        """The critical points of one coordinate, (t₋, t₀, t₊), to double precision."""
        out = []
        for t in sorted(np.roots([2.0, 0.0, -16.0, 2.5]).real):
            for _ in range(4):  # Newton polish
                t = t - (2 * t**3 - 16 * t + 2.5) / (6 * t**2 - 16)
            out.append(float(t))
        return out[0], out[1], out[2]

    def _build(self) -> None:
        d = self.dim
        lo, mid, hi = self.roots()
        self.domain = box(-5.0, 5.0, d)
        self.default_start = alternating(1.0, -1.0, d)

        def at(loc: tuple[float, ...], kind: str) -> Point:
            return point(loc, float(self._array_value(np.array(loc))), kind)

        self.global_minima = [at((lo,) * d, GLOBAL_MINIMUM)]
        if d <= 4:
            corners = itertools.product((lo, hi), repeat=d)
            self.local_minima = [at(c, LOCAL_MINIMUM) for c in corners if c != (lo,) * d]
        if d == 2:
            self.saddles = [at(c, SADDLE) for c in ((mid, lo), (mid, hi), (lo, mid), (hi, mid))]
            self.local_maxima = [at((mid, mid), LOCAL_MAXIMUM)]

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * np.sum(x**4 - 16.0 * x**2 + 5.0 * x, axis=-1)

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * x**3 - 16.0 * x + 2.5

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return _diagonal(6.0 * x**2 - 16.0)

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        import sympy

        xs = real_symbols([f"x{i}" for i in range(self.dim)])
        return sympy.Rational(1, 2) * sum((v**4 - 16 * v**2 + 5 * v for v in xs), sympy.S.Zero), xs


# -- two-dimensional functions --------------------------------------------------------------------
class Beale(SymbolicLandscape):
    """``f = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²``; minimum 0 at (3, 0.5)."""

    name = "beale"
    description = (
        "Beale's function f(x, y) = (1.5 − x + xy)² + (2.25 − x + xy²)² + (2.625 − x + xy³)²: flat "
        "plateaus and sharp ridges; global minimum 0 at (3, 0.5), saddles at (0, 1) and (0.1005, −2.6445)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        R = sympy.Rational
        return (R(3, 2) - x + x * y) ** 2 + (R(9, 4) - x + x * y**2) ** 2 + (R(21, 8) - x + x * y**3) ** 2

    def _setup(self) -> None:
        self.domain = box(-4.5, 4.5, 2)
        self.default_start = (1.0, 1.5)
        self.global_minima = [point((3.0, 0.5), 0.0, GLOBAL_MINIMUM)]
        self.saddles = [
            point((0.0, 1.0), 14.203125, SADDLE),
            point((0.10053793732415836, -2.644513585023125), 9.86451228475556, SADDLE),
        ]


class Himmelblau(SymbolicLandscape):
    """``f = (x² + y − 11)² + (x + y² − 7)²``: four global minima of value 0."""

    name = "himmelblau"
    description = (
        "Himmelblau's function f(x, y) = (x² + y − 11)² + (x + y² − 7)²: four global minima of value 0, "
        "at (3, 2), (−2.805, 3.131), (−3.779, −3.283) and (3.584, −1.848), four saddles and a local maximum."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        return (x**2 + y - 11) ** 2 + (x + y**2 - 7) ** 2

    def _setup(self) -> None:
        self.domain = box(-5.0, 5.0, 2)
        self.default_start = (0.0, 0.0)
        self.global_minima = [
            point((3.0, 2.0), 0.0, GLOBAL_MINIMUM),
            point((-2.805118086952745, 3.131312518250573), 0.0, GLOBAL_MINIMUM),
            point((-3.779310253377747, -3.2831859912861696), 0.0, GLOBAL_MINIMUM),
            point((3.5844283403304917, -1.8481265269644036), 0.0, GLOBAL_MINIMUM),
        ]
        self.saddles = [
            point((3.385154183607021, 0.07385187983774928), 13.311926270405587, SADDLE),
            point((0.08667750455539636, 2.884254701174776), 67.71915008752613, SADDLE),
            point((-3.0730257507643897, -0.08135304428796751), 104.01516291755811, SADDLE),
            point((-0.12796134673068008, -1.9537149802445763), 178.33723920192745, SADDLE),
        ]
        self.local_maxima = [point((-0.2708445906673476, -0.9230385564799815), 181.6165215225827, LOCAL_MAXIMUM)]


class Booth(SymbolicLandscape):
    """``f = (x + 2y − 7)² + (2x + y − 5)²``; minimum 0 at (1, 3)."""

    name = "booth"
    description = (
        "Booth's function f(x, y) = (x + 2y − 7)² + (2x + y − 5)², a tilted quadratic bowl; minimum 0 at (1, 3)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        return (x + 2 * y - 7) ** 2 + (2 * x + y - 5) ** 2

    def _setup(self) -> None:
        self.domain = box(-10.0, 10.0, 2)
        self.default_start = (-5.0, -5.0)
        self.global_minima = [point((1.0, 3.0), 0.0, GLOBAL_MINIMUM)]


class Matyas(SymbolicLandscape):
    """``f = 0.26 (x² + y²) − 0.48 xy``; minimum 0 at the origin."""

    name = "matyas"
    description = (
        "Matyas' function f(x, y) = 0.26 (x² + y²) − 0.48xy: a quadratic bowl with a flat diagonal "
        "valley (Hessian eigenvalues 0.04 and 1); minimum 0 at the origin."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        R = sympy.Rational
        return R(26, 100) * (x**2 + y**2) - R(48, 100) * x * y

    def _setup(self) -> None:
        self.domain = box(-10.0, 10.0, 2)
        self.default_start = (8.0, 6.0)
        self.global_minima = [point((0.0, 0.0), 0.0, GLOBAL_MINIMUM)]


class GoldsteinPrice(SymbolicLandscape):
    """Goldstein–Price: ``[1 + (x+y+1)²(19 − 14x + 3x² − 14y + 6xy + 3y²)]·[30 + (2x−3y)²(18 − 32x
    + 12x² + 48y − 36xy + 27y²)]``; minimum 3 at (0, −1), local minima 30, 84, 840."""

    name = "goldstein_price"
    description = (
        "The Goldstein–Price function f(x, y) = [1 + (x+y+1)²(19 − 14x + 3x² − 14y + 6xy + 3y²)]·"
        "[30 + (2x−3y)²(18 − 32x + 12x² + 48y − 36xy + 27y²)]; global minimum 3 at (0, −1), local minima "
        "30 at (−0.6, −0.4), 84 at (1.8, 0.2) and 840 at (1.2, 0.8)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        a = 1 + (x + y + 1) ** 2 * (19 - 14 * x + 3 * x**2 - 14 * y + 6 * x * y + 3 * y**2)
        b = 30 + (2 * x - 3 * y) ** 2 * (18 - 32 * x + 12 * x**2 + 48 * y - 36 * x * y + 27 * y**2)
        return a * b

    def _setup(self) -> None:
        self.domain = box(-2.0, 2.0, 2)
        self.default_start = (-1.0, 1.0)
        self.global_minima = [point((0.0, -1.0), 3.0, GLOBAL_MINIMUM)]
        self.local_minima = [
            point((-0.6, -0.4), 30.0, LOCAL_MINIMUM),
            point((1.8, 0.2), 84.0, LOCAL_MINIMUM),
            point((1.2, 0.8), 840.0, LOCAL_MINIMUM),
        ]
        self.saddles = [
            point((-0.4, -0.6), 35.0, SADDLE),
            point((1.2, -0.2), 99.0, SADDLE),
            point((1.4, 0.6), 980.0, SADDLE),
            point((0.6, 0.4), 990.0, SADDLE),
        ]
        self.local_maxima = [point((0.8, 0.2), 1155.0, LOCAL_MAXIMUM)]


class SixHumpCamel(SymbolicLandscape):
    """``f = (4 − 2.1x² + x⁴/3)x² + xy + (−4 + 4y²)y²``; two global minima −1.0316 at ±(0.0898, −0.7126)."""

    name = "six_hump_camel"
    description = (
        "The six-hump camel f(x, y) = (4 − 2.1x² + x⁴/3)x² + xy + (−4 + 4y²)y²: six minima, two of them "
        "global with value −1.0316 at (0.0898, −0.7126) and (−0.0898, 0.7126)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        R = sympy.Rational
        return (4 - R(21, 10) * x**2 + x**4 / 3) * x**2 + x * y + (-4 + 4 * y**2) * y**2

    def _setup(self) -> None:
        self.domain = ((-2.0, 2.0), (-1.0, 1.0))
        self.default_start = (-1.0, -0.5)
        f_global, f_a, f_b = -1.0316284534898774, -0.2154638243837197, 2.104250310311258
        self.global_minima = [
            point((0.08984201310031806, -0.7126564030207396), f_global, GLOBAL_MINIMUM),
            point((-0.08984201310031806, 0.7126564030207396), f_global, GLOBAL_MINIMUM),
        ]
        self.local_minima = [
            point((-1.703606714969981, 0.7960835686726251), f_a, LOCAL_MINIMUM),
            point((1.703606714969981, -0.7960835686726251), f_a, LOCAL_MINIMUM),
            point((-1.6071047529201972, -0.5686514548841314), f_b, LOCAL_MINIMUM),
            point((1.6071047529201972, 0.5686514548841314), f_b, LOCAL_MINIMUM),
        ]
        self.saddles = [point((0.0, 0.0), 0.0, SADDLE)]
        for loc, value in (
            ((1.1092053368047865, -0.7682680925095399), 0.5437186009781853),
            ((1.6380679841897785, 0.22867406904439408), 2.2293571975307134),
            ((1.2960702671671092, 0.6050843880386585), 2.229470818029859),
        ):
            self.saddles += [point(loc, value, SADDLE), point((-loc[0], -loc[1]), value, SADDLE)]
        f_max = 2.4962953510235764
        self.local_maxima = [
            point((1.2302298765166526, 0.16233458445899496), f_max, LOCAL_MAXIMUM),
            point((-1.2302298765166526, -0.16233458445899496), f_max, LOCAL_MAXIMUM),
        ]


class ThreeHumpCamel(SymbolicLandscape):
    """``f = 2x² − 1.05x⁴ + x⁶/6 + xy + y²``; minimum 0 at the origin, local minima ±(1.7476, −0.8738)."""

    name = "three_hump_camel"
    description = (
        "The three-hump camel f(x, y) = 2x² − 1.05x⁴ + x⁶/6 + xy + y²: global minimum 0 at the origin and "
        "two local minima 0.2986 at ±(1.7476, −0.8738)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        R = sympy.Rational
        return 2 * x**2 - R(105, 100) * x**4 + x**6 / 6 + x * y + y**2

    def _setup(self) -> None:
        self.domain = box(-2.5, 2.5, 2)
        self.default_start = (-2.0, 2.0)
        self.global_minima = [point((0.0, 0.0), 0.0, GLOBAL_MINIMUM)]
        f_local, f_saddle = 0.29863844223685987, 0.87736155776314
        self.local_minima = [
            point((1.7475523458302888, -0.8737761729151444), f_local, LOCAL_MINIMUM),
            point((-1.7475523458302888, 0.8737761729151444), f_local, LOCAL_MINIMUM),
        ]
        self.saddles = [
            point((1.07054229182366, -0.53527114591183), f_saddle, SADDLE),
            point((-1.07054229182366, 0.53527114591183), f_saddle, SADDLE),
        ]


class McCormick(SymbolicLandscape):
    """``f = sin(x + y) + (x − y)² − 1.5x + 2.5y + 1``.

    Critical points solve x − y = 1, cos(x + y) = −½: minima where x + y = −2π/3 + 2πk, saddles where
    x + y = 2π/3 + 2πk. Global minimum −√3/2 − π/3 ≈ −1.9132 at (½ − π/3, −½ − π/3).
    """

    name = "mccormick"
    description = (
        "McCormick's function f(x, y) = sin(x + y) + (x − y)² − 1.5x + 2.5y + 1; global minimum "
        "−√3/2 − π/3 ≈ −1.9132 at (½ − π/3, −½ − π/3) ≈ (−0.5472, −1.5472)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        return sympy.sin(x + y) + (x - y) ** 2 - sympy.Rational(3, 2) * x + sympy.Rational(5, 2) * y + 1

    def _setup(self) -> None:
        pi, h = math.pi, math.sqrt(3.0) / 2.0
        self.domain = ((-1.5, 4.0), (-3.0, 4.0))
        self.default_start = (-1.0, 3.0)
        self.global_minima = [point((0.5 - pi / 3, -0.5 - pi / 3), -h - pi / 3, GLOBAL_MINIMUM)]
        self.local_minima = [point((0.5 + 2 * pi / 3, -0.5 + 2 * pi / 3), -h + 2 * pi / 3, LOCAL_MINIMUM)]
        self.saddles = [point((0.5 + pi / 3, -0.5 + pi / 3), h + pi / 3, SADDLE)]


class Levi13(SymbolicLandscape):
    """Lévi N.13: ``f = sin²(3πx) + (x − 1)²(1 + sin²(3πy)) + (y − 1)²(1 + sin²(2πy))``; minimum 0 at (1, 1)."""

    name = "levi13"
    description = (
        "Lévi function N.13, f(x, y) = sin²(3πx) + (x − 1)²(1 + sin²(3πy)) + (y − 1)²(1 + sin²(2πy)): "
        "a rippled bowl with many local minima; global minimum 0 at (1, 1)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        s = sympy.sin
        p = sympy.pi
        return s(3 * p * x) ** 2 + (x - 1) ** 2 * (1 + s(3 * p * y) ** 2) + (y - 1) ** 2 * (1 + s(2 * p * y) ** 2)

    def _setup(self) -> None:
        self.domain = box(-4.0, 6.0, 2)
        self.default_start = (-3.0, 4.0)
        self.global_minima = [point((1.0, 1.0), 0.0, GLOBAL_MINIMUM)]


class Easom(SymbolicLandscape):
    """``f = −cos x cos y exp(−((x − π)² + (y − π)²))``; minimum −1 at (π, π)."""

    name = "easom"
    description = (
        "Easom's function f(x, y) = −cos x cos y exp(−((x − π)² + (y − π)²)): a flat plain with one narrow "
        "hole; global minimum −1 at (π, π)."
    )

    def formula(self, x: sympy.Symbol, y: sympy.Symbol) -> sympy.Expr:
        import sympy

        p = sympy.pi
        return -sympy.cos(x) * sympy.cos(y) * sympy.exp(-((x - p) ** 2 + (y - p) ** 2))

    def _setup(self) -> None:
        self.domain = box(-1.0, 7.0, 2)
        self.default_start = (2.0, 2.0)
        self.global_minima = [point((math.pi, math.pi), -1.0, GLOBAL_MINIMUM)]
