"""SymPy formulas → point programs (:mod:`gdlab.landscapes.program`): ``sympy.cse`` and one small printer.

:func:`program_from_sympy` takes a formula and its gradient, extracts their common subexpressions
(``sympy.cse``) and prints each one as an assignment. The printer fixes every rounding the program
will do:

- a sum is added left to right in SymPy's (deterministic) order of its terms, with its constant
  terms folded into one literal first; a negative term is subtracted (``a − b`` is ``a + (−b)``
  exactly);
- a product is ``c·f₁·f₂·…`` left to right, divided once by the product of its factors with
  negative exponents; constant factors are folded into ``c``;
- a subexpression without variables (``2π``, ``1/ln 10``, ``√2``) is evaluated by SymPy to 40
  digits and rounded once to the nearest double;
- an integer power ``xⁿ`` is a chain of multiplications by squaring (``x⁴ = t·t`` with
  ``t = x·x``; ``x³ = x·(x·x)``), ``x⁻ⁿ`` is ``1/xⁿ``, ``x^½`` is ``sqrt(x)``, ``x^−½`` is
  ``1/sqrt(x)``; any other power is ``power(x, y)``;
- ``Piecewise`` becomes nested ``select``, ``Abs`` ``absolute``, ``Max`` nested ``maximum``, and
  ``asin``/``acos``/``atan`` are ``arcsin``/``arccos``/``arctan``.

Anything else (complex numbers, infinities, ``Min``, boolean connectives, unevaluated derivatives,
other functions) raises :class:`~gdlab.landscapes.program.ProgramError` naming it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sympy

from gdlab.landscapes.program import PointProgram, ProgramError, StraightLine, coordinates, literal

#: SymPy function classes and the program names they print as.
FUNCTIONS: dict[type, str] = {
    sympy.exp: "exp",
    sympy.log: "log",
    sympy.sin: "sin",
    sympy.cos: "cos",
    sympy.tan: "tan",
    sympy.sinh: "sinh",
    sympy.cosh: "cosh",
    sympy.tanh: "tanh",
    sympy.asin: "arcsin",
    sympy.acos: "arccos",
    sympy.atan: "arctan",
    sympy.Abs: "absolute",
    sympy.sign: "sign",
}
#: Largest |n| printed as a multiplication chain (larger integer exponents use ``power``).
MAX_CHAIN_EXPONENT = 2**53

# Binding strength of printed text: a name, literal or call; a unary minus; a product; a sum.
_ATOM, _UNARY, _PRODUCT, _SUM = 4, 3, 2, 1
Printed = tuple[str, int]


def _wrap(printed: Printed, below: int) -> str:
    """The text, in parentheses when it binds less tightly than ``below``."""
    text, strength = printed
    return f"({text})" if strength < below else text


def constant(expr: sympy.Expr) -> float:
    """A subexpression without variables as the double nearest its exact value (a rational ``p/q``
    by Python's correctly rounded integer division, anything else from 60 significant digits)."""
    try:
        if expr.is_Rational:
            number = int(expr.p) / int(expr.q)
        else:
            number = float(expr if expr.is_Float else expr.evalf(60))
    except OverflowError:
        raise ProgramError(f"the constant {expr} is not finite") from None
    except (TypeError, ValueError):
        raise ProgramError(f"the constant {expr} is not a real number") from None
    literal(number)  # refuses inf and NaN
    return number


class _Printer:
    """Prints expressions of known symbols, adding assignments for temporaries as it goes."""

    def __init__(self, names: dict[sympy.Symbol, str]) -> None:
        self.names = dict(names)
        self.booleans: set[sympy.Symbol] = set()
        self.statements: list[tuple[str, str]] = []
        self.assigned: dict[str, str] = {}  # text → the temporary holding it

    def temporary(self, text: str) -> str:
        """A name holding ``text`` (the same text twice is the same value: every name is assigned once)."""
        name = self.assigned.get(text)
        if name is None:
            name = self.assigned[text] = f"t{len(self.statements)}"
            self.statements.append((name, text))
        return name

    def assign(self, symbol: sympy.Symbol, expr: sympy.Basic) -> None:
        """A common subexpression: a temporary holding a number or a comparison."""
        if isinstance(expr, sympy.Basic) and expr.is_Relational:
            self.names[symbol] = self.temporary(self.condition(expr))
            self.booleans.add(symbol)
        else:
            self.names[symbol] = self.temporary(self.text(expr))

    def text(self, expr: sympy.Basic) -> str:
        return self.print(expr)[0]

    def print(self, expr: sympy.Basic) -> Printed:
        if not isinstance(expr, sympy.Expr):
            raise ProgramError(f"{expr} is not a number")
        if expr.is_Symbol:
            if expr not in self.names or expr in self.booleans:
                raise ProgramError(f"unknown variable {expr}")
            return self.names[expr], _ATOM
        if not expr.free_symbols:
            text = literal(constant(expr))
            return text, (_UNARY if text.startswith("-") else _ATOM)
        if expr.is_Add:
            return self.add(expr)
        if expr.is_Mul:
            return self.mul(expr)
        if expr.is_Pow:
            return self.pow(expr.base, expr.exp)
        if isinstance(expr, sympy.Piecewise):
            return self.piecewise(expr)
        if isinstance(expr, sympy.Max):
            text = self.text(expr.args[0])
            for arg in expr.args[1:]:
                text = f"maximum({text}, {self.text(arg)})"
            return text, _ATOM
        name = FUNCTIONS.get(type(expr))
        if name is not None and len(expr.args) == 1:
            return f"{name}({self.text(expr.args[0])})", _ATOM
        raise ProgramError(f"{type(expr).__name__} ({expr}) has no program form")

    def add(self, expr: sympy.Add) -> Printed:
        terms = [t for t in expr.args if t.free_symbols]
        folded = [t for t in expr.args if not t.free_symbols]
        pieces: list[tuple[bool, sympy.Expr]] = []  # (subtracted, term)
        if folded and constant(sympy.Add(*folded)) != 0.0:
            pieces.append((False, sympy.Add(*folded)))
        for term in terms:
            negative = term.as_coeff_Mul()[0].is_negative
            pieces.append((bool(negative), -term if negative else term))
        negative, first = pieces[0]
        printed = self.print(first)
        if negative:
            printed = f"-{_wrap(printed, _PRODUCT)}", _UNARY
        text = _wrap(printed, _SUM)
        for negative, term in pieces[1:]:
            text = f"{text} {'-' if negative else '+'} {_wrap(self.print(term), _SUM + 1)}"
        return text, (_SUM if len(pieces) > 1 else printed[1])

    def product(self, factors: Sequence[Printed]) -> Printed:
        """``f₁·f₂·…`` left to right (each operand a unit: ``a*(x*x)``)."""
        text = _wrap(factors[0], _PRODUCT)
        for factor in factors[1:]:
            text = f"{text}*{_wrap(factor, _PRODUCT + 1)}"
        return text, (_PRODUCT if len(factors) > 1 else factors[0][1])

    def mul(self, expr: sympy.Mul) -> Printed:
        c = constant(sympy.Mul(*[f for f in expr.args if not f.free_symbols]))
        numerator: list[Printed] = []
        denominator: list[Printed] = []
        for factor in (f for f in expr.args if f.free_symbols):
            if factor.is_Pow and factor.exp.is_Number and factor.exp.is_negative:
                denominator.append(self.pow(factor.base, -factor.exp))
            else:
                numerator.append(self.print(factor))
        if abs(c) != 1.0 or not numerator:
            numerator.insert(0, (literal(abs(c)), _ATOM))
        text, strength = self.product(numerator)
        if denominator:
            text, strength = f"{_wrap((text, strength), _PRODUCT)}/{_wrap(self.product(denominator), _UNARY)}", _PRODUCT
        if c < 0:
            return f"-{_wrap((text, strength), _PRODUCT)}", _UNARY
        return text, strength

    def pow(self, base: sympy.Expr, exponent: sympy.Expr) -> Printed:
        if exponent.is_Number and not exponent.free_symbols:
            value = constant(exponent)
            if value.is_integer() and 1.0 <= abs(value) <= MAX_CHAIN_EXPONENT:
                chain = self.chain(base, int(abs(value)))
                return chain if value > 0 else (f"1.0/{_wrap(chain, _UNARY)}", _PRODUCT)
            if value == 0.5:
                return f"sqrt({self.text(base)})", _ATOM
            if value == -0.5:
                return f"1.0/sqrt({self.text(base)})", _PRODUCT
        return f"power({self.text(base)}, {self.text(exponent)})", _ATOM

    def chain(self, base: sympy.Expr, n: int) -> Printed:
        """``baseⁿ`` by squaring: squares ``s₁ = b``, ``s₂ = s₁·s₁``, ``s₄ = s₂·s₂``, ...; the
        product of the squares of ``n``'s one bits, lowest first, left to right."""
        printed = self.print(base)
        current = printed[0] if printed[1] == _ATOM and "(" not in printed[0] else self.temporary(printed[0])
        factors: list[Printed] = []
        while True:
            if n & 1:
                factors.append((current, _ATOM if "*" not in current else _PRODUCT))
            n >>= 1
            if not n:
                break
            square = f"{current}*{current}"
            current = self.temporary(square) if n > 1 else self.assigned.get(square, square)
        return self.product(factors)

    def piecewise(self, expr: sympy.Piecewise) -> Printed:
        *branches, (last, otherwise) = expr.args
        if otherwise is not sympy.true:
            raise ProgramError(f"{expr} is undefined where no condition holds")
        text = self.text(last)
        for value, condition in reversed(branches):
            text = f"select({self.condition(condition)}, {self.text(value)}, {text})"
        return text, _ATOM

    def condition(self, cond: sympy.Basic) -> str:
        if cond in self.booleans:
            return self.names[cond]
        if isinstance(cond, sympy.core.relational.Relational):
            op = cond.rel_op
            if op in ("<", "<=", ">", ">=", "==", "!="):
                return f"{self.text(cond.lhs)} {op} {self.text(cond.rhs)}"
        raise ProgramError(f"the condition {cond} is not a comparison of two numbers")


def straight_line(symbols: Sequence[sympy.Symbol], exprs: Sequence[sympy.Expr]) -> StraightLine:
    """Straight-line code computing ``exprs`` from the coordinates ``symbols`` (named ``x0, x1, ...``)."""
    replacements, reduced = sympy.cse(list(exprs), symbols=sympy.numbered_symbols("_cse", cls=sympy.Dummy))
    printer = _Printer(dict(zip(symbols, coordinates(len(symbols)), strict=True)))
    constants: dict[sympy.Symbol, sympy.Expr] = {}  # constant subexpressions go back in, to be folded
    for symbol, sub in replacements:
        sub = sub.xreplace(constants)
        if sub.free_symbols:
            printer.assign(symbol, sub)
        else:
            constants[symbol] = sub
    outputs = tuple(printer.text(e.xreplace(constants)) for e in reduced)
    return StraightLine(tuple(printer.statements), outputs)


def program_from_sympy(
    symbols: Sequence[sympy.Symbol], value: sympy.Expr, gradient: Sequence[sympy.Expr]
) -> PointProgram:
    """The point program of ``value`` and its ``gradient`` in ``symbols``; :class:`ProgramError`
    when a part has no program form."""
    if len(gradient) != len(symbols):
        raise ProgramError(f"{len(symbols)} coordinates but {len(gradient)} gradient components")
    return PointProgram.from_value_grad(len(symbols), straight_line(symbols, [value, *gradient]))
