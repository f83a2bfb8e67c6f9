"""Exact derivatives by SymPy, derived once: the point program and the batched Hessian of a formula.

:func:`compile_expression` differentiates a SymPy expression (gradient and Hessian). Value and
gradient are evaluated through the formula's point program (:mod:`gdlab.landscapes.printer`, see
:meth:`~gdlab.landscapes.base.Landscape.program`); the Hessian is compiled with
``sympy.lambdify(modules="numpy")``. A formula the program printer does not support (one SymPy
writes with complex numbers, such as ``sqrt(-x**2) = I·|x|``) is evaluated by ``lambdify`` too.
The compiled functions take points of shape ``batch + (d,)``; every component is broadcast to the
batch shape (a constant such as a Hessian entry ``2`` becomes an array), complex results become NaN
where the imaginary part is not zero, and the distribution ``DiracDelta`` and unevaluated
derivatives of ``sign`` (second derivatives of ``abs``) are taken as 0, their value almost everywhere.

:class:`SymbolicLandscape` is the base of landscapes defined by a formula: it derives the formula
once per class and parameter values and caches the result.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from gdlab.landscapes.base import Landscape
from gdlab.landscapes.program import PointProgram

if TYPE_CHECKING:  # SymPy is imported where a formula is derived, not with the landscape classes
    import sympy


def _clean(expr: sympy.Expr) -> sympy.Expr:
    """Replace what NumPy cannot evaluate: DiracDelta → 0, complex infinity → NaN."""
    import sympy

    if expr.has(sympy.Derivative):  # d sign(u)/dv for a compound u stays unevaluated; it is 0 a.e.
        expr = expr.replace(
            lambda e: isinstance(e, sympy.Derivative) and isinstance(e.expr, sympy.sign), lambda e: sympy.S.Zero
        )
    if expr.has(sympy.DiracDelta):
        expr = expr.replace(sympy.DiracDelta, lambda *args: sympy.S.Zero)
    if expr.has(sympy.zoo):
        expr = expr.xreplace({sympy.zoo: sympy.nan})
    return expr


def _real(v: Any) -> np.ndarray:
    a = np.asarray(v)
    if a.dtype.kind == "c":
        a = np.where(a.imag == 0, a.real, np.nan)
    return a


class DerivationError(ValueError):
    """The derivatives of an expression cannot be used: too large, or not evaluated by SymPy."""


def tree_size(expr: sympy.Basic) -> int:
    """Number of nodes of a SymPy expression tree."""
    import sympy

    return sum(1 for _ in sympy.preorder_traversal(expr))


class CompiledExpression:
    """Value, gradient and Hessian of a SymPy expression in ``symbols``, batched over leading axes.

    Attributes ``expr``, ``symbols``, ``gradient`` (tuple of expressions) and ``hessian_exprs``
    (tuple of tuples) hold the symbolic forms. With ``max_gradient_size``, a gradient with more
    tree nodes than that raises :class:`DerivationError` before the (costlier) Hessian is derived.
    :meth:`program` prints value and gradient as a point program; :meth:`value`, :meth:`grad` and
    :meth:`value_and_grad` evaluate them by ``lambdify`` instead (compiled on first use), for a
    formula without a program.
    """

    def __init__(self, expr: sympy.Expr, symbols: Sequence[sympy.Symbol], max_gradient_size: int | None = None) -> None:
        import sympy

        self.symbols = tuple(symbols)
        self.expr = _clean(expr)
        d = len(self.symbols)
        self.gradient = tuple(_clean(sympy.diff(self.expr, s)) for s in self.symbols)
        if max_gradient_size is not None:
            size = sum(tree_size(g) for g in self.gradient)
            if size > max_gradient_size:
                raise DerivationError(
                    f"too complex to differentiate (its gradient has {size} nodes, more than {max_gradient_size})"
                )
        upper = {(i, j): _clean(sympy.diff(self.gradient[i], self.symbols[j])) for i in range(d) for j in range(i, d)}
        self.hessian_exprs = tuple(tuple(upper[min(i, j), max(i, j)] for j in range(d)) for i in range(d))
        self._upper = list(upper)
        if any(e.has(sympy.Derivative) for e in (*self.gradient, *upper.values())):
            raise DerivationError("has derivatives that SymPy leaves unevaluated")
        self._h = _lambdify(self.symbols, list(upper.values()), cse=True)

    def program(self) -> PointProgram:
        """The point program of value and gradient (:class:`~gdlab.landscapes.program.ProgramError`
        when the printer does not support the formula)."""
        from gdlab.landscapes.printer import program_from_sympy

        return program_from_sympy(self.symbols, self.expr, self.gradient)

    @cached_property
    def _f(self) -> Callable[..., Any]:
        return _lambdify(self.symbols, self.expr)

    @cached_property
    def _g(self) -> Callable[..., Any]:
        return _lambdify(self.symbols, list(self.gradient), cse=True)

    @cached_property
    def _fg(self) -> Callable[..., Any]:
        return _lambdify(self.symbols, [self.expr, *self.gradient], cse=True)

    def _call(self, fn: Callable[..., Any], x: np.ndarray) -> Any:
        with np.errstate(all="ignore"):
            return fn(*(x[..., i] for i in range(x.shape[-1])))

    def value(self, x: np.ndarray) -> np.ndarray:
        """``f(x)`` for ``x`` of shape ``batch + (d,)``: shape ``batch``."""
        out = np.empty(x.shape[:-1], dtype=x.dtype)
        out[...] = _real(self._call(self._f, x))
        return out

    def _fill(self, parts: Sequence[Any], x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, dtype=x.dtype)
        for i, part in enumerate(parts):
            out[..., i] = _real(part)
        return out

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``∇f(x)``, shape of ``x``."""
        return self._fill(self._call(self._g, x), x)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f(x), ∇f(x))`` from one compiled function (shared subexpressions computed once)."""
        parts = self._call(self._fg, x)
        value = np.empty(x.shape[:-1], dtype=x.dtype)
        value[...] = _real(parts[0])
        return value, self._fill(parts[1:], x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        """``∇²f(x)``, shape ``batch + (d, d)`` (symmetric)."""
        d = x.shape[-1]
        out = np.empty(x.shape[:-1] + (d, d), dtype=x.dtype)
        for (i, j), part in zip(self._upper, self._call(self._h, x), strict=True):
            out[..., i, j] = _real(part)
            if i != j:
                out[..., j, i] = out[..., i, j]
        return out


def _lambdify(symbols: Sequence[sympy.Symbol], exprs: Any, cse: bool = False) -> Callable[..., Any]:
    """``exprs`` as a NumPy function of the coordinates (``sympy.lambdify``)."""
    import sympy

    return sympy.lambdify(list(symbols), exprs, modules="numpy", cse=cse)


def compile_expression(
    expr: sympy.Expr, symbols: Sequence[sympy.Symbol], max_gradient_size: int | None = None
) -> CompiledExpression:
    """Differentiate ``expr`` twice in ``symbols`` and compile value, gradient and Hessian."""
    return CompiledExpression(expr, symbols, max_gradient_size)


def real_symbols(names: Sequence[str]) -> tuple[sympy.Symbol, ...]:
    """Real SymPy symbols (so that ``d|x|/dx = sign(x)``)."""
    import sympy

    return tuple(sympy.Symbol(n, real=True) for n in names)


_CACHE: dict[tuple[Any, ...], CompiledExpression] = {}
_CACHE_SIZE = 64


class CompiledLandscape(Landscape):
    """A landscape whose derivatives come from a :class:`CompiledExpression` (``self.compiled``,
    set by the subclass): value and gradient through its point program, the Hessian by lambdify."""

    compiled: CompiledExpression

    def symbolic(self) -> tuple[sympy.Expr, tuple[sympy.Symbol, ...]]:
        return self.compiled.expr, self.compiled.symbols

    def _make_program(self) -> PointProgram:
        return self.compiled.program()

    def _array_value(self, x: np.ndarray) -> np.ndarray:
        return self.compiled.value(x)

    def _array_grad(self, x: np.ndarray) -> np.ndarray:
        return self.compiled.grad(x)

    def _array_value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.compiled.value_and_grad(x)

    def _hessian(self, x: np.ndarray) -> np.ndarray:
        return self.compiled.hessian(x)


class SymbolicLandscape(CompiledLandscape):
    """A landscape given by a SymPy formula; its point program and Hessian are derived from it.

    Subclasses set ``variables`` and implement :meth:`formula` (using the validated parameters on
    ``self``) and :meth:`_setup` (domain, start, critical points, known without SymPy). The formula
    is derived when a program or a Hessian is first needed, not at construction, so describing a
    landscape imports no SymPy; the derivatives and the program are cached per class and parameter
    values, so the same landscape is derived once.
    """

    variables: ClassVar[tuple[str, ...]] = ("x", "y")

    def formula(self, *v: sympy.Symbol) -> sympy.Expr:
        """The landscape as a SymPy expression in the symbols ``v`` (one per coordinate)."""
        raise NotImplementedError

    def _setup(self) -> None:
        raise NotImplementedError

    @property
    def compiled(self) -> CompiledExpression:  # type: ignore[override]
        """The formula's derivatives, derived on first use (and shared by equal landscapes)."""
        compiled = self.__dict__.get("_compiled")
        if compiled is None:
            key = (type(self), tuple(sorted(self.get_params().items())))
            compiled = _CACHE.get(key)
            if compiled is None:
                symbols = real_symbols(self.variables)
                compiled = _CACHE[key] = compile_expression(self.formula(*symbols), symbols)
                if len(_CACHE) > _CACHE_SIZE:  # parameterised formulas: keep the most recent ones
                    _CACHE.pop(next(iter(_CACHE)))
            self._compiled = compiled
        return compiled

    def _build(self) -> None:
        self.dim = len(self.variables)
        self._setup()

