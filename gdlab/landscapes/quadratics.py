"""Quadratic landscapes ``f(x) = ½ xᵀAx``: sphere, elliptic bowl, conditioned and rotated bowl, saddle.

All but the sphere wrap :class:`gdlab.core.objective.Quadratic`: its Hessian ``A`` is theirs, and so
are value and gradient above :data:`~gdlab.landscapes.program.MAX_PROGRAM_DIM` dimensions. Up to
that, value and gradient are the point program :func:`quadratic_program` writes out from ``A`` (no
BLAS, whose summation order and fused multiply-adds vary by CPU). The Hessian is constant: gradient
descent with step η is stable exactly when η < 2/λ_max, and converges at a rate set by the condition
number λ_max/λ_min.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from gdlab.core.hyper import Hyper
from gdlab.core.objective import Quadratic
from gdlab.landscapes.base import (
    GLOBAL_MINIMUM,
    SADDLE,
    Landscape,
    alternating,
    box,
    dim_hyper,
    point,
)
from gdlab.landscapes.program import PointProgram, StraightLine, literal
from gdlab.landscapes.symbolic import real_symbols

if TYPE_CHECKING:  # SymPy is imported by symbolic(), when a formula is first asked for
    import sympy


def quadratic_program(A: np.ndarray) -> PointProgram:
    """The point program of ``f(x) = ½ xᵀAx``: ``gᵢ = Σⱼ Aᵢⱼ xⱼ`` (left to right over ``j``, zero
    entries left out) and ``f = 0.5·(x₀g₀ + x₁g₁ + …)``."""
    A = np.asarray(A, dtype=np.float64)
    d = A.shape[0]
    statements = []
    for i in range(d):
        text = ""
        for j in (j for j in range(d) if A[i, j] != 0.0):
            a = float(A[i, j])
            term = f"{literal(abs(a))}*x{j}"  # a − |a|·x is a + (−|a|)·x exactly
            if not text:
                text = f"-{term}" if a < 0 else term
            else:
                text = f"{text} {'-' if a < 0 else '+'} {term}"
        statements.append((f"g{i}", text or "0.0"))
    grads = tuple(f"g{i}" for i in range(d))
    value = "0.5*(" + " + ".join(f"x{i}*g{i}" for i in range(d)) + ")"
    return PointProgram.from_value_grad(d, StraightLine(tuple(statements), (value, *grads)))


class QuadraticLandscape(Landscape):
    """Base of ``f(x) = ½ xᵀAx`` landscapes; subclasses set ``self.A`` in ``_build``."""

    A: np.ndarray

    def _use(self, A: np.ndarray) -> None:
        self.A = np.asarray(A, dtype=np.float64)
        self.dim = self.A.shape[0]
        self._quadratic = Quadratic(self.A)

    def _make_program(self) -> PointProgram:
        return quadratic_program(self.A)

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        return self._quadratic.value(x)

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        return self._quadratic.grad(x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return self._quadratic.hessian(x)

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        import sympy

        xs = real_symbols([f"x{i}" for i in range(self.dim)])
        v = sympy.Matrix(xs)
        A = sympy.Matrix(self.dim, self.dim, [sympy.Float(float(a), 17) for a in self.A.ravel()])
        return sympy.Rational(1, 2) * (v.T * A * v)[0, 0], xs


class Sphere(Landscape):
    """``f(x) = Σᵢ xᵢ²``: the round bowl, every direction alike (gradient 2x, Hessian 2I).

    Written out rather than as a :class:`~gdlab.core.objective.Quadratic` so that a large ``dim``
    stores no d × d matrix.
    """

    name = "sphere"
    description = "The round bowl f(x) = Σᵢ xᵢ² (condition number 1); minimum 0 at the origin."
    hyperparams = (dim_hyper(2),)

    def _build(self) -> None:
        self.domain = box(-2.0, 2.0, self.dim)
        self.default_start = alternating(-1.5, 1.0, self.dim)
        self.global_minima = [point(np.zeros(self.dim), 0.0, GLOBAL_MINIMUM)]

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        return np.einsum("...i,...i->...", x, x)

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * x

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(2.0 * np.eye(self.dim, dtype=x.dtype), x.shape + (self.dim,))

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        import sympy

        xs = real_symbols([f"x{i}" for i in range(self.dim)])
        return sum((v**2 for v in xs), sympy.S.Zero), xs


class Elliptic(QuadraticLandscape):
    """``f(x, y) = x² + 10y²``: the seeds' elliptic bowl (A = diag(2, 20), condition number 10)."""

    name = "elliptic"
    description = (
        "The elongated bowl f(x, y) = x² + 10y² (condition number 10), the seeds' SGD-versus-Adam "
        "example started at (5, 5); minimum 0 at the origin."
    )

    def _build(self) -> None:
        self._use(np.diag([2.0, 20.0]))
        self.domain = box(-6.0, 6.0, 2)
        self.default_start = (5.0, 5.0)
        self.global_minima = [point((0.0, 0.0), 0.0, GLOBAL_MINIMUM)]


def rotation(angle_degrees: float, dim: int) -> np.ndarray:
    """Rotation by ``angle_degrees`` in the plane of the first two axes (identity elsewhere)."""
    t = math.radians(angle_degrees)
    R = np.eye(dim)
    R[:2, :2] = [[math.cos(t), -math.sin(t)], [math.sin(t), math.cos(t)]]
    return R


class ConditionedQuadratic(QuadraticLandscape):
    """``f(x) = ½ xᵀAx`` with ``A = R diag(λ) Rᵀ``, ``λᵢ = κ^(i/(d−1))`` and R a rotation by ``angle``.

    The eigenvalues are spaced geometrically from 1 to κ (the condition number); R rotates the
    plane of the first two axes by ``angle`` degrees, so in 2-D the flat direction (eigenvalue 1)
    points at ``angle`` from the x axis and the steep one (eigenvalue κ) is perpendicular to it.
    """

    name = "quadratic"
    description = (
        "The quadratic bowl f(x) = ½ xᵀAx with A = R diag(λ) Rᵀ: eigenvalues λ spaced geometrically "
        "from 1 to the condition number κ, and R a rotation by `angle` degrees of the first two axes; "
        "minimum 0 at the origin."
    )
    hyperparams = (
        Hyper("condition", 10.0, low=1.0, high=1e8, batchable=False, doc="condition number κ = λ_max/λ_min"),
        Hyper("angle", 30.0, low=-360.0, high=360.0, batchable=False, doc="rotation of the first two axes, degrees"),
        dim_hyper(2, low=2, high=1000),
    )

    def _build(self) -> None:
        d = self.dim
        eigenvalues = self.condition ** (np.arange(d) / (d - 1))
        R = rotation(self.angle, d)
        A = R @ np.diag(eigenvalues) @ R.T
        self._use(0.5 * (A + A.T))
        self.eigenvalues = eigenvalues
        self.domain = box(-2.0, 2.0, d)
        self.default_start = alternating(-1.5, 1.0, d)
        self.global_minima = [point(np.zeros(d), 0.0, GLOBAL_MINIMUM)]


class Saddle(QuadraticLandscape):
    """``f(x, y) = x² − y²``: the horse saddle (A = diag(2, −2)); no minimum, a saddle at 0."""

    name = "saddle"
    description = (
        "The saddle f(x, y) = x² − y²: unbounded below, with a saddle point at the origin that "
        "gradient descent started on the x axis converges to and any perturbation escapes."
    )

    def _build(self) -> None:
        self._use(np.diag([2.0, -2.0]))
        self.domain = box(-2.0, 2.0, 2)
        self.default_start = (1.5, 0.01)
        self.saddles = [point((0.0, 0.0), 0.0, SADDLE)]
