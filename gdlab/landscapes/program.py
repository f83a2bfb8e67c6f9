"""Point programs: a landscape's value and gradient as straight-line code of its coordinates.

A :class:`PointProgram` holds the Python source of two functions of the coordinates of one point::

    def value_grad(x0, ..., x{d-1}):   # returns f, ∂f/∂x0, ..., ∂f/∂x{d-1}
    def grad(x0, ..., x{d-1}):         # returns ∂f/∂x0, ..., ∂f/∂x{d-1}

made of assignments and one ``return``. The same text is run by every executor: here NumPy evaluates
it on whole coordinate columns ``x[..., j]`` (the reference), and :mod:`gdlab.fast.landscape_codegen`
compiles it to scalar code for the fused trajectories. What the text may use is checked
(:func:`check_function`):

- ``+ - * /``, unary minus, comparisons (only as the condition of ``select``) and finite float
  literals written as ``repr`` writes them;
- :data:`ARITHMETIC`: ``sqrt``, ``absolute``, ``select``, ``sign``, ``maximum`` with the exact
  semantics of :mod:`gdlab.core.elementwise`;
- :data:`TRANSCENDENTAL`: ``exp, log, log10, sin, cos, tan, sinh, cosh, tanh, arcsin, arccos,
  arctan`` and ``power`` (a general real power ``power(x, y) = xʸ``).

**Exactness.** IEEE 754 defines ``+ − × ÷ √`` as correctly rounded, the primitives of
:mod:`gdlab.core.elementwise` are defined bit for bit, and neither NumPy nor the compiled code
(built without fast-math: no reassociation, no fused multiply-add contraction) changes the order the
text fixes. A program without transcendental functions (:attr:`PointProgram.exact`) therefore gives
the same bits on arrays of any shape, on 0-d arrays and compiled, on every CPU. A transcendental
function has no such definition: NumPy's SIMD ``exp``/``cos``/``pow`` and the C library's differ in
the last bit on some CPUs (AVX-512), so an inexact program's executors agree only to a tolerance:
``|a − b| ≤ INEXACT_ATOL + INEXACT_RTOL·|b|`` elementwise (both 1e-13; the absolute part covers
results that cancel to nearly 0, such as Ackley's value at its minimum), NaN and infinities in the
same places. Even NumPy alone may take another code path for one point than for an array there.
"""

from __future__ import annotations

import ast
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from gdlab.core import elementwise

#: Landscapes with more coordinates have no program (they keep a vectorised NumPy evaluation).
MAX_PROGRAM_DIM = 16
#: Functions with exactly defined results (see :mod:`gdlab.core.elementwise`).
ARITHMETIC = ("sqrt", "absolute", "select", "sign", "maximum")
#: Functions whose results differ between implementations in the last bits.
TRANSCENDENTAL = (
    "exp", "log", "log10", "sin", "cos", "tan", "sinh", "cosh", "tanh", "arcsin", "arccos", "arctan", "power",
)  # fmt: skip
#: Every function a program may call, with its number of arguments.
ARITY: dict[str, int] = {name: 1 for name in (*ARITHMETIC, *TRANSCENDENTAL)} | {
    "select": 3,
    "maximum": 2,
    "power": 2,
}
#: What an inexact program's executors are held to, elementwise: ``|a − b| ≤ INEXACT_ATOL + INEXACT_RTOL·|b|``.
INEXACT_RTOL = 1e-13
INEXACT_ATOL = 1e-13

#: The NumPy binding of every name (the reference executor).
NUMPY_FUNCTIONS: dict[str, Callable[..., Any]] = {
    "sqrt": elementwise.sqrt,
    "absolute": elementwise.absolute,
    "select": elementwise.select,
    "sign": elementwise.sign,
    "maximum": elementwise.maximum,
    "exp": np.exp,
    "log": np.log,
    "log10": np.log10,
    "sin": np.sin,
    "cos": np.cos,
    "tan": np.tan,
    "sinh": np.sinh,
    "cosh": np.cosh,
    "tanh": np.tanh,
    "arcsin": np.arcsin,
    "arccos": np.arccos,
    "arctan": np.arctan,
    "power": np.power,
}
assert set(NUMPY_FUNCTIONS) == set(ARITY)


class ProgramError(ValueError):
    """A formula or source text that is not a valid point program (with the reason)."""


def coordinates(dim: int) -> tuple[str, ...]:
    """The argument names of a program: ``x0, ..., x{dim-1}``."""
    return tuple(f"x{j}" for j in range(dim))


def literal(value: float) -> str:
    """A float literal that reads back as exactly ``value`` (negative values as ``-literal``)."""
    v = float(value)
    if not math.isfinite(v):
        raise ProgramError(f"the constant {v} is not finite")
    return repr(v)


# -- straight-line code -----------------------------------------------------------------------------
def _names_in(text: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(text, mode="eval")) if isinstance(n, ast.Name)}


@dataclass(frozen=True)
class StraightLine:
    """The body of one program function: assignments ``name = expression`` in order, then the
    returned expressions."""

    statements: tuple[tuple[str, str], ...]
    outputs: tuple[str, ...]

    def render(self, name: str, dim: int) -> str:
        """The source of ``def name(x0, ...): ... return ...`` (always returning a tuple)."""
        lines = [f"def {name}({', '.join(coordinates(dim))}):"]
        lines += [f"    {target} = {text}" for target, text in self.statements]
        trailing = "," if len(self.outputs) == 1 else ""
        lines.append(f"    return {', '.join(self.outputs)}{trailing}")
        return "\n".join(lines) + "\n"

    @classmethod
    def parse(cls, source: str) -> StraightLine:
        """The body of a rendered (and checked) program function."""
        fn = ast.parse(source).body[0]
        assert isinstance(fn, ast.FunctionDef)
        *body, last = fn.body
        assert isinstance(last, ast.Return) and isinstance(last.value, ast.Tuple)

        def text(node: ast.AST) -> str:
            segment = ast.get_source_segment(source, node)
            assert segment is not None
            return segment

        statements = tuple((stmt.targets[0].id, text(stmt.value)) for stmt in body
                           if isinstance(stmt, ast.Assign) and isinstance(stmt.targets[0], ast.Name))  # fmt: skip
        return cls(statements, tuple(text(node) for node in last.value.elts))

    def pick(self, outputs: Sequence[int]) -> StraightLine:
        """Only the outputs at these indices, and only the statements they depend on (unchanged, so
        each kept output has the same bits as here)."""
        kept_outputs = tuple(self.outputs[i] for i in outputs)
        needed: set[str] = set().union(*(_names_in(text) for text in kept_outputs))
        kept: list[tuple[str, str]] = []
        for target, text in reversed(self.statements):
            if target in needed:
                kept.append((target, text))
                needed |= _names_in(text)
        return StraightLine(tuple(reversed(kept)), kept_outputs)


_BINARY = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_COMPARE = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


class _Checker:
    """Walks one function and checks it against the program grammar (see the module docstring)."""

    def __init__(self, dim: int) -> None:
        self.numbers = set(coordinates(dim))  # names holding floats
        self.booleans: set[str] = set()  # names holding the result of a comparison
        self.calls: set[str] = set()

    def number(self, node: ast.expr) -> None:
        """``node`` must be a float-valued expression."""
        if isinstance(node, ast.Constant):
            if type(node.value) is not float or not math.isfinite(node.value):
                raise ProgramError(f"constant {node.value!r}: only finite float literals are allowed")
        elif isinstance(node, ast.Name):
            if node.id not in self.numbers:
                raise ProgramError(f"name {node.id!r} is not a number defined before")
        elif isinstance(node, ast.BinOp) and isinstance(node.op, _BINARY):
            self.number(node.left)
            self.number(node.right)
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            self.number(node.operand)
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in ARITY:
            name = node.func.id
            if node.keywords or len(node.args) != ARITY[name]:
                raise ProgramError(f"{name} takes {ARITY[name]} positional argument(s)")
            self.calls.add(name)
            args = list(node.args)
            if name == "select":
                self.condition(args.pop(0))
            for arg in args:
                self.number(arg)
        else:
            raise ProgramError(f"{ast.unparse(node)!r} is not allowed in a program")

    def condition(self, node: ast.expr) -> None:
        """``node`` must be a comparison of two numbers, or a name holding one."""
        if isinstance(node, ast.Name) and node.id in self.booleans:
            return
        if isinstance(node, ast.Compare) and len(node.ops) == 1 and isinstance(node.ops[0], _COMPARE):
            self.number(node.left)
            self.number(node.comparators[0])
            return
        raise ProgramError(f"{ast.unparse(node)!r} is not a comparison")

    def function(self, tree: ast.Module, name: str, dim: int, outputs: int) -> None:
        if len(tree.body) != 1 or not isinstance(tree.body[0], ast.FunctionDef):
            raise ProgramError(f"the source of {name} must be one function definition")
        fn = tree.body[0]
        args = fn.args
        if (
            fn.name != name
            or fn.decorator_list
            or fn.returns is not None
            or args.posonlyargs
            or args.vararg
            or args.kwonlyargs
            or args.kwarg
            or args.defaults
            or tuple(a.arg for a in args.args) != coordinates(dim)
            or any(a.annotation is not None for a in args.args)
        ):
            raise ProgramError(f"expected 'def {name}({', '.join(coordinates(dim))}):'")
        *body, last = fn.body
        for stmt in body:
            if not (isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name)):
                raise ProgramError(f"line {stmt.lineno}: only 'name = expression' and a final return are allowed")
            target = stmt.targets[0].id
            if target in self.numbers or target in self.booleans or target in ARITY:
                raise ProgramError(f"line {stmt.lineno}: {target!r} is assigned twice or shadows a name")
            if isinstance(stmt.value, ast.Compare):
                self.condition(stmt.value)
                self.booleans.add(target)
            else:
                self.number(stmt.value)
                self.numbers.add(target)
        if not (isinstance(last, ast.Return) and isinstance(last.value, ast.Tuple)):
            raise ProgramError(f"{name} must end by returning a tuple")
        returned = last.value.elts
        if len(returned) != outputs:
            raise ProgramError(f"{name} must return {outputs} value(s), returns {len(returned)}")
        for node in returned:
            self.number(node)


def check_function(source: str, name: str, dim: int, outputs: int) -> frozenset[str]:
    """Check that ``source`` is the program function ``name`` of ``dim`` coordinates returning
    ``outputs`` numbers; returns the names of the functions it calls. Raises :class:`ProgramError`."""
    try:
        tree = ast.parse(source)
    except SyntaxError as exc:
        raise ProgramError(f"{name}: {exc.msg}") from None
    checker = _Checker(dim)
    try:
        checker.function(tree, name, dim, outputs)
    except ProgramError as exc:
        raise ProgramError(f"{name}: {exc}") from None
    return frozenset(checker.calls)


# -- the program ------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PointProgram:
    """Value and gradient of a landscape as straight-line code (see the module docstring).

    ``value_grad_source`` and ``grad_source`` are checked at construction; ``exact`` is derived:
    True when neither function calls a :data:`TRANSCENDENTAL` function. :meth:`value`,
    :meth:`grad` and :meth:`value_and_grad` evaluate the program with NumPy on points of shape
    ``batch + (dim,)``, without floating-point warnings (overflow gives inf, an undefined result
    NaN). Programs made by :meth:`from_value_grad` have a ``grad`` that is
    ``value_grad`` without the statements only the value needs, so that ``grad(x)`` and the gradient
    of ``value_and_grad(x)`` are the same numbers; NumPy's ``value(x)`` is pruned likewise.
    """

    dim: int
    value_grad_source: str
    grad_source: str
    exact: bool = field(init=False)

    def __post_init__(self) -> None:
        if not 1 <= self.dim <= MAX_PROGRAM_DIM:
            raise ProgramError(f"a program has 1 to {MAX_PROGRAM_DIM} coordinates, got {self.dim}")
        calls = check_function(self.value_grad_source, "value_grad", self.dim, self.dim + 1)
        calls |= check_function(self.grad_source, "grad", self.dim, self.dim)
        object.__setattr__(self, "exact", not (calls & set(TRANSCENDENTAL)))

    @classmethod
    def from_value_grad(cls, dim: int, value_grad: StraightLine) -> PointProgram:
        """The program whose ``value_grad`` has this body (outputs ``f, g0, ..., g{dim-1}``)."""
        if len(value_grad.outputs) != dim + 1:
            raise ProgramError(f"value_grad must have {dim + 1} outputs, got {len(value_grad.outputs)}")
        grad = value_grad.pick(range(1, dim + 1))
        return cls(dim, value_grad.render("value_grad", dim), grad.render("grad", dim))

    def __getstate__(self) -> dict[str, Any]:
        """Pickled without its NumPy functions (they are rebuilt from the text on first use)."""
        return {k: v for k, v in self.__dict__.items() if k != "_numpy"}

    @property
    def source(self) -> str:
        """Both functions, as one text."""
        return self.value_grad_source + "\n\n" + self.grad_source

    @cached_property
    def _numpy(self) -> dict[str, Callable[..., Any]]:
        """The functions ``value_grad``, ``grad`` and ``value`` bound to :data:`NUMPY_FUNCTIONS`.

        The source was checked at construction: it can only do arithmetic and call those functions.
        """
        namespace: dict[str, Any] = {"__builtins__": {}, **NUMPY_FUNCTIONS}
        value = StraightLine.parse(self.value_grad_source).pick([0]).render("value", self.dim)
        for source in (self.value_grad_source, self.grad_source, value):
            exec(compile(source, "<point program>", "exec"), namespace)
        return {name: namespace[name] for name in ("value_grad", "grad", "value")}

    def _columns(self, x: np.ndarray) -> list[np.ndarray]:
        if x.shape[-1] != self.dim:
            raise ValueError(f"points must have {self.dim} coordinate(s) on the last axis, got shape {x.shape}")
        return [x[..., j] for j in range(self.dim)]

    @staticmethod
    def _stack(parts: Sequence[Any], x: np.ndarray) -> np.ndarray:
        out = np.empty(x.shape, dtype=x.dtype)
        for j, part in enumerate(parts):
            out[..., j] = part
        return out

    def value(self, x: np.ndarray) -> np.ndarray:
        """``f(x)`` for ``x`` of shape ``batch + (dim,)``: shape ``batch``."""
        out = np.empty(x.shape[:-1], dtype=x.dtype)
        with np.errstate(all="ignore"):
            (out[...],) = self._numpy["value"](*self._columns(x))
        return out

    def grad(self, x: np.ndarray) -> np.ndarray:
        """``∇f(x)``, shape of ``x``."""
        with np.errstate(all="ignore"):
            return self._stack(self._numpy["grad"](*self._columns(x)), x)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(f(x), ∇f(x))`` from ``value_grad`` (shared subexpressions computed once)."""
        with np.errstate(all="ignore"):
            f, *g = self._numpy["value_grad"](*self._columns(x))
        value = np.empty(x.shape[:-1], dtype=x.dtype)
        value[...] = f
        return value, self._stack(g, x)
