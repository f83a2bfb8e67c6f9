"""Custom landscapes typed as text, e.g. ``"100*(y - x**2)**2 + (1 - x)**2"``.

:func:`parse_expression` reads a formula in ``x`` (and ``y``) with a hand-written whitelist tokenizer
and a precedence-climbing parser, builds the SymPy expression node by node from the parse tree
(nothing the user typed is ever handed to Python or to a SymPy string parser), differentiates it
once with SymPy and prints value and gradient as a point program (:mod:`gdlab.landscapes.printer`:
straight-line code of the coordinates, evaluated by NumPy and compiled by :mod:`gdlab.fast`), the
Hessian as a batched NumPy function (:mod:`gdlab.landscapes.symbolic`). The program's text is made
by the printer from the SymPy tree, checked against the program grammar, and only then run.

Grammar (lowest to highest precedence; ``**`` and ``^`` both mean power and associate to the right,
and a power binds tighter than a unary sign, as in Python: ``-x**2 = -(x**2)``, ``2**3**2 = 512``)::

    expr    := term   (('+' | '-') term)*
    term    := unary  (('*' | '/') unary)*
    unary   := ('+' | '-') unary | power
    power   := atom   (('**' | '^') unary)?
    atom    := number | 'x' | 'y' | 'pi' | 'e' | function '(' expr ')' | '(' expr ')'

Numbers: ``12``, ``1.5``, ``.5``, ``2.``, ``1e-3``, ``2.5E+4``. Functions: see :data:`FUNCTIONS`.
There is no implicit multiplication (``2x`` is an error) and no other name is known.

Limits (:data:`MAX_LENGTH` characters, :data:`MAX_TOKENS` tokens, :data:`MAX_DEPTH` levels of nesting,
:data:`MAX_GRADIENT_SIZE` nodes of derived gradient) keep parsing, differentiation and compilation
within a second or two whatever is typed. Subexpressions without a variable are folded to a float at
parse time; one that is not a finite real number (``log(0)``, ``sqrt(-1)``, ``1/0``, ``exp(1000)``)
is an error. Values that are not finite at some points (``log(x)`` for x ≤ 0) are simply inf or NaN
there, without warnings; the run engine treats them as divergence.

Every error is an :class:`ExpressionError` (a ``ValueError``) that says what is wrong and where
(1-based column), e.g. ``unknown name 'os' at column 1``.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from gdlab.core.hyper import suggest
from gdlab.landscapes.symbolic import CompiledLandscape, DerivationError, compile_expression, real_symbols

if TYPE_CHECKING:  # SymPy is imported when a formula is first read, not with this module
    import sympy

    Value = float | sympy.Expr

#: Longest accepted expression, in characters.
MAX_LENGTH = 200
#: Most tokens (numbers, names, operators, parentheses) in an expression.
MAX_TOKENS = 100
#: Deepest nesting: each parenthesis, function call, unary sign and exponent opens one level.
MAX_DEPTH = 32
#: Largest gradient (in SymPy tree nodes) derived further; bigger ones are "too complex".
MAX_GRADIENT_SIZE = 1200
#: Default plotting box of a custom landscape, on every axis.
DEFAULT_DOMAIN = (-5.0, 5.0)

VARIABLES = ("x", "y")
CONSTANTS: dict[str, float] = {"pi": math.pi, "e": math.e}


#: Known functions: name → the float function that folds a constant argument (their SymPy forms
#: are :func:`sympy_functions`).
FUNCTIONS: dict[str, Callable[[float], float]] = {
    "sin": math.sin,
    "cos": math.cos,
    "tan": math.tan,
    "exp": math.exp,
    "log": math.log,
    "ln": math.log,
    "log10": math.log10,
    "sqrt": math.sqrt,
    "abs": abs,
    "sinh": math.sinh,
    "cosh": math.cosh,
    "tanh": math.tanh,
    "arcsin": math.asin,
    "arccos": math.acos,
    "arctan": math.atan,
    "asin": math.asin,
    "acos": math.acos,
    "atan": math.atan,
}


@functools.cache
def sympy_functions() -> dict[str, Callable[[Any], Any]]:
    """Known functions: name → SymPy constructor, the same names as :data:`FUNCTIONS`."""
    import sympy

    def log10(a: sympy.Expr) -> sympy.Expr:
        return sympy.log(a) / sympy.log(10)

    out = {
        "sin": sympy.sin, "cos": sympy.cos, "tan": sympy.tan, "exp": sympy.exp, "log": sympy.log,
        "ln": sympy.log, "log10": log10, "sqrt": sympy.sqrt, "abs": sympy.Abs, "sinh": sympy.sinh,
        "cosh": sympy.cosh, "tanh": sympy.tanh, "arcsin": sympy.asin, "arccos": sympy.acos,
        "arctan": sympy.atan, "asin": sympy.asin, "acos": sympy.acos, "atan": sympy.atan,
    }
    assert out.keys() == FUNCTIONS.keys()
    return out

KNOWN_NAMES = (*VARIABLES, *CONSTANTS, *FUNCTIONS)


class ExpressionError(ValueError):
    """A custom expression that cannot be read; ``column`` is the 1-based position (or ``None``)."""

    def __init__(self, message: str, column: int | None = None) -> None:
        super().__init__(message)
        self.column = column


# -- tokens -----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    """One token: ``kind`` is ``"number"``, ``"name"``, ``"op"``, ``"("``, ``")"`` or ``"end"``."""

    kind: str
    text: str
    column: int
    value: float = 0.0


_NUMBER = re.compile(r"(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?", re.ASCII)
_BAD_EXPONENT = re.compile(r"[eE][+-]?", re.ASCII)
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*", re.ASCII)
_SPACE = " \t\r\n"
_OPS = ("**", "+", "-", "*", "/", "^")


def tokenize(text: str, variables: tuple[str, ...] = VARIABLES) -> list[Token]:
    """Split ``text`` into tokens (ending with an ``end`` token), or raise :class:`ExpressionError`.
    ``variables`` are the names of the formula's variables (``x``, ``y``; ``t`` for a schedule)."""
    known = (*variables, *CONSTANTS, *FUNCTIONS)
    if not isinstance(text, str):
        raise TypeError(f"expression must be a string, got {type(text).__name__}")
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"expression longer than {MAX_LENGTH} characters (got {len(text)})")
    if not text.strip(_SPACE):
        raise ExpressionError("expression is empty")
    tokens: list[Token] = []
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        col = i + 1
        if c in _SPACE:
            i += 1
            continue
        if len(tokens) == MAX_TOKENS:
            raise ExpressionError(
                f"expression has more than {MAX_TOKENS} tokens (token {MAX_TOKENS + 1} at column {col})", col
            )
        number = _NUMBER.match(text, i)
        if number:
            end = number.end()
            follow = _NAME.match(text, end)
            if follow and follow.group()[0] in "eE" and follow.group() not in FUNCTIONS:
                # "1e", "1e+", "2E-": an exponent marker without digits ("2exp(x)" is left to the parser)
                bad = _BAD_EXPONENT.match(text, end)
                raise ExpressionError(f"malformed number {text[i : bad.end()]!r} at column {col}", col)
            value = float(number.group())
            if not math.isfinite(value):
                raise ExpressionError(f"number {number.group()!r} at column {col} is too large", col)
            tokens.append(Token("number", number.group(), col, value))
            i = end
            continue
        name = _NAME.match(text, i)
        if name:
            word = name.group()
            if word not in known:
                hint = f" (did you mean {word.lower()!r}?)" if word.lower() in known else suggest(word, known)
                raise ExpressionError(
                    f"unknown name {word!r} at column {col}{hint}; known names: "
                    f"{', '.join(variables)}, pi, e and the functions {', '.join(FUNCTIONS)}",
                    col,
                )
            tokens.append(Token("name", word, col))
            i = name.end()
            continue
        op = next((o for o in _OPS if text.startswith(o, i)), None)
        if op is not None:
            tokens.append(Token("op", op, col))
            i += len(op)
            continue
        if c in "()":
            tokens.append(Token(c, c, col))
            i += 1
            continue
        raise ExpressionError(f"unexpected character {c!r} at column {col}", col)
    tokens.append(Token("end", "", n + 1))
    return tokens


# -- parse tree ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Node:
    """A parse-tree node: ``kind`` is ``"number"``, ``"name"``, ``"neg"``, ``"pos"``, ``"call"`` or a
    binary operator (``"+"``, ``"-"``, ``"*"``, ``"/"``, ``"**"``); ``column`` is where it starts
    (for operators: where the operator is)."""

    kind: str
    column: int
    args: tuple[Node, ...] = ()
    text: str = ""
    value: float = 0.0


_BINARY = {
    "+": (1, "left"),
    "-": (1, "left"),
    "*": (2, "left"),
    "/": (2, "left"),
    "**": (4, "right"),
    "^": (4, "right"),
}
_UNARY_PRECEDENCE = 3


def _show(tok: Token) -> str:
    return "end of expression" if tok.kind == "end" else repr(tok.text)


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.pos = 0
        self.depth = 0

    @property
    def tok(self) -> Token:
        return self.tokens[self.pos]

    def advance(self) -> Token:
        tok = self.tokens[self.pos]
        self.pos += 1
        return tok

    def enter(self, column: int) -> None:
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise ExpressionError(f"expression nested deeper than {MAX_DEPTH} levels at column {column}", column)

    def unexpected(self) -> ExpressionError:
        tok = self.tok
        return ExpressionError(f"unexpected {_show(tok)} at column {tok.column}", tok.column)

    def parse(self) -> Node:
        node = self.expression(0)
        if self.tok.kind != "end":
            raise self.unexpected()
        return node

    def expression(self, min_precedence: int) -> Node:
        left = self.prefix()
        while self.tok.kind == "op" and _BINARY[self.tok.text][0] >= min_precedence:
            op = self.advance()
            precedence, assoc = _BINARY[op.text]
            if assoc == "right":
                self.enter(op.column)
                right = self.expression(precedence)
                self.depth -= 1
            else:
                right = self.expression(precedence + 1)
            kind = "**" if op.text == "^" else op.text
            left = Node(kind, op.column, (left, right))
        return left

    def prefix(self) -> Node:
        tok = self.tok
        if tok.kind == "op" and tok.text in "+-":
            self.advance()
            self.enter(tok.column)
            operand = self.expression(_UNARY_PRECEDENCE)
            self.depth -= 1
            return Node("neg" if tok.text == "-" else "pos", tok.column, (operand,))
        if tok.kind == "number":
            self.advance()
            return Node("number", tok.column, text=tok.text, value=tok.value)
        if tok.kind == "name" and tok.text in FUNCTIONS:
            self.advance()
            if self.tok.kind != "(":
                found = self.tok
                raise ExpressionError(
                    f"expected '(' after {tok.text!r} at column {found.column}, found {_show(found)}", found.column
                )
            return Node("call", tok.column, (self.group(),), text=tok.text)
        if tok.kind == "name":
            self.advance()
            return Node("name", tok.column, text=tok.text)
        if tok.kind == "(":
            return self.group()
        raise self.unexpected()

    def group(self) -> Node:
        """``'(' expr ')'`` at the current token."""
        opening = self.advance()
        self.enter(opening.column)
        inner = self.expression(0)
        if self.tok.kind != ")":
            found = self.tok
            raise ExpressionError(
                f"expected ')' to close '(' at column {opening.column}, found {_show(found)} at column {found.column}",
                opening.column,
            )
        self.advance()
        self.depth -= 1
        return inner


def parse(text: str, variables: tuple[str, ...] = VARIABLES) -> Node:
    """The parse tree of ``text`` (a formula in ``variables``), or :class:`ExpressionError`."""
    return _Parser(tokenize(text, variables)).parse()


# -- parse tree → SymPy ------------------------------------------------------------------------------
@functools.cache
def _symbols() -> dict[str, sympy.Symbol]:
    """The variables' SymPy symbols (real), by name."""
    return dict(zip(VARIABLES, real_symbols(VARIABLES), strict=True))


def _sym(v: Value) -> sympy.Expr:
    """A SymPy number for a folded float (exact integers stay integers), or the expression itself."""
    import sympy

    if not isinstance(v, float):
        return v
    if v.is_integer() and abs(v) <= 2.0**53:
        return sympy.Integer(int(v))
    return sympy.Float(v, 17)


def _fold(fn: Callable[..., float], args: Sequence[float], node: Node) -> float:
    try:
        out = fn(*args)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero at column {node.column}", node.column) from None
    except (ValueError, OverflowError):
        out = math.nan
    if not (isinstance(out, float | int) and math.isfinite(out)):
        raise ExpressionError(
            f"the constant subexpression at column {node.column} is not a finite real number", node.column
        )
    return float(out)


def _build(node: Node) -> Value:
    kind = node.kind
    if kind == "number":
        return node.value
    if kind == "name":
        return CONSTANTS[node.text] if node.text in CONSTANTS else _symbols()[node.text]
    if kind in ("neg", "pos"):
        v = _build(node.args[0])
        return v if kind == "pos" else (-v if isinstance(v, float) else -_sym(v))
    if kind == "call":
        a = _build(node.args[0])
        return _fold(FUNCTIONS[node.text], [a], node) if isinstance(a, float) else sympy_functions()[node.text](a)
    left, right = _build(node.args[0]), _build(node.args[1])
    if isinstance(left, float) and isinstance(right, float):
        return _fold(_FLOAT_OPS[kind], [left, right], node)
    if kind == "/" and isinstance(right, float) and right == 0.0:
        raise ExpressionError(f"division by zero at column {node.column}", node.column)
    if kind == "**" and node.args[0].kind == "name" and node.args[0].text == "e":
        return sympy_functions()["exp"](_sym(right))
    return _SYMBOLIC_OPS[kind](_sym(left), _sym(right))


_FLOAT_OPS: dict[str, Callable[[float, float], float]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": math.pow,
}
_SYMBOLIC_OPS: dict[str, Callable[[sympy.Expr, sympy.Expr], sympy.Expr]] = {
    "+": lambda a, b: a + b,
    "-": lambda a, b: a - b,
    "*": lambda a, b: a * b,
    "/": lambda a, b: a / b,
    "**": lambda a, b: a**b,
}


def _names(node: Node) -> set[str]:
    out = {node.text} if node.kind == "name" else set()
    for arg in node.args:
        out |= _names(arg)
    return out


# -- the landscape ------------------------------------------------------------------------------
class ExprLandscape(CompiledLandscape):
    """A landscape given by a typed formula; build it with :func:`parse_expression`.

    ``text`` is the formula as typed, ``expression`` its SymPy form and ``variables`` the names of
    its coordinates (``("x",)`` or ``("x", "y")``). No critical points are listed (they are unknown).
    """

    name = "custom"
    description = "A custom landscape typed as a formula in x (and y)."

    def __init__(
        self,
        text: str,
        expression: sympy.Expr,
        variables: tuple[str, ...],
        domain: Sequence[Sequence[float]] | Sequence[float] | None = None,
    ) -> None:
        self.text = text
        self.variables = variables
        self.dim = len(variables)
        self.domain = _check_domain(domain, self.dim)
        import sympy

        symbols = tuple(_symbols()[v] for v in variables)
        try:
            self.compiled = compile_expression(expression, symbols, MAX_GRADIENT_SIZE)
        except DerivationError as exc:
            raise ExpressionError(f"expression {exc}") from None
        self.expression = self.compiled.expr
        self.description = f"Custom landscape f({', '.join(variables)}) = {text.strip(_SPACE)}."
        self.default_start = tuple(round(lo + 0.7 * (hi - lo), 12) for lo, hi in self.domain)
        self.smooth = not self.expression.has(sympy.Abs, sympy.sign)
        self.global_minima, self.local_minima, self.saddles, self.local_maxima = [], [], [], []

    def _build(self) -> None:  # everything is set in __init__
        pass

    def get_params(self) -> dict[str, Any]:
        return {}

    def program_key(self) -> Hashable:
        """Typed formulas share a program when their SymPy expressions are the same."""
        import sympy

        return type(self), sympy.srepr(self.expression), self.variables

    def __repr__(self) -> str:
        return f"ExprLandscape({self.text!r})"


def _check_domain(domain: Any, dim: int) -> tuple[tuple[float, float], ...]:
    if domain is None:
        return tuple((DEFAULT_DOMAIN[0], DEFAULT_DOMAIN[1]) for _ in range(dim))
    try:
        arr = np.asarray(domain, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"domain must be (lo, hi) or one (lo, hi) pair per axis, got {domain!r}") from None
    if arr.shape == (2,):
        arr = np.tile(arr, (dim, 1))
    if arr.shape != (dim, 2):
        raise ValueError(f"domain must be (lo, hi) or {dim} (lo, hi) pair(s), got shape {arr.shape}")
    if not (np.all(np.isfinite(arr)) and np.all(arr[:, 0] < arr[:, 1])):
        raise ValueError(f"domain bounds must be finite with lo < hi, got {arr.tolist()}")
    return tuple((float(lo), float(hi)) for lo, hi in arr)


def parse_expression(text: str, domain: Sequence[Sequence[float]] | Sequence[float] | None = None) -> ExprLandscape:
    """Read ``text`` (a formula in ``x`` and optionally ``y``) as a landscape.

    The landscape has ``dim`` 2 when ``y`` appears and 1 otherwise (``x`` only, or a constant).
    ``domain`` is the plotting box: one ``(lo, hi)`` for every axis, or one pair per axis (default
    ``(-5, 5)``). Raises :class:`ExpressionError` for text that cannot be read, ``ValueError`` for a
    bad ``domain`` and ``TypeError`` when ``text`` is not a string.
    """
    import sympy

    tree = parse(text)
    expression = _sym(_build(tree))
    if expression.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo):
        raise ExpressionError("expression is undefined everywhere (it divides by zero or similar)")
    variables = VARIABLES if "y" in _names(tree) else VARIABLES[:1]
    return ExprLandscape(text, expression, variables, domain)
