"""Landscapes compiled to scalar numba code: value and gradient of a block of points, bit for bit.

The fused trajectory kernels (:mod:`gdlab.fast.trajectory`) evaluate the landscape inside their
compiled loop. This module turns a :class:`~gdlab.landscapes.base.Landscape` into two C functions
(numba ``cfunc``, cached on disk) with one signature::

    void fn(double *X, double *F, double *G, int64 n, int64 stride, int64 mode)

``value_grad`` writes ``F[i] = f(x_i)`` and ``G[j*stride + i] = ∂f/∂x_j (x_i)`` for the points
``x_i = (X[i], X[stride + i], ...)``, ``i < n`` (coordinate-major blocks, so the loop over points
vectorises); ``grad`` writes the gradient only (what the look-ahead of textbook Nesterov asks for).

**Same numbers as the reference.** The goal is not "close to" the landscape's NumPy evaluation but
*equal* to it, so that a fused run is the reference run. The code is therefore generated from the
very arithmetic the reference performs:

- formula landscapes (:class:`~gdlab.landscapes.symbolic.SymbolicLandscape`, custom expressions,
  :class:`~gdlab.landscapes.expr.ExprLandscape`) are evaluated by ``sympy.lambdify(modules="numpy",
  cse=True)``. The same common-subexpression elimination is run and printed by a subclass of
  SymPy's ``NumPyPrinter`` (so operands and their order are the printer's), which only rewrites
  powers into what NumPy computes for them: on an array, ``x**2`` is ``x*x``, ``x**-1.0`` is
  ``1/x`` and ``x**0.5`` is ``sqrt(x)`` (NumPy's fast paths), anything else — and any power of a
  NumPy *scalar* — is C ``pow``. A run without batch axes evaluates the formula on 0-d arrays, whose
  results are scalars, so a second variant of the code (``mode`` 1) follows those rules;
- the hand-written N-dimensional landscapes (Rosenbrock, Sphere, Rastrigin, Ackley, Styblinski–Tang
  and the 2-D quadratics) are mirrored operation by operation, including ``np.sum``'s summation
  order (sequential below 8 terms, 8 interleaved partial sums above) and, for a quadratic's
  gradient, the fused multiply-adds of the BLAS kernel NumPy's ``@`` calls;
- any other landscape with a :meth:`~gdlab.landscapes.base.Landscape.symbolic` form gets code
  printed from it (equal to the reference only up to rounding).

Only functions whose NumPy implementation is the C library's are accepted (``tanh`` is not: NumPy
has its own vectorised one), so ``math.sin`` in numba is ``numpy.sin``. Every compiled landscape is
then **checked** against the reference on a few thousand points of its domain in every calling mode
(:func:`check`): ``"exact"`` when every value and gradient is equal, ``"close"`` when they agree to
1e-13 relative, otherwise it is refused. The trajectory engine uses exact landscapes automatically
and close ones only when asked to (``backend="fused"``).

**Caching.** The generated source is written to a content-addressed file (``lc_<hash>.py``) under
the fused kernels' cache directory and imported from there, so numba's ``cache=True`` works for it:
a landscape is compiled once per machine, later processes load it in milliseconds.
"""

from __future__ import annotations

import ast
import contextlib
import hashlib
import importlib.util
import math
import os
import sys
import tempfile
import threading
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import sympy
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic
from sympy.printing.numpy import NumPyPrinter

from gdlab.fast._cache import configure_numba_cache, is_writable, user_cache_dir

CACHE_DIR = configure_numba_cache()

#: Compilation options of every generated function (no fast-math: no reassociation, no FMA contraction).
JIT: dict[str, Any] = {"cache": True, "error_model": "numpy", "fastmath": False}
#: The C signature of ``value_grad`` and ``grad``.
SIGNATURE = types.void(
    types.CPointer(types.float64), types.CPointer(types.float64), types.CPointer(types.float64),
    types.int64, types.int64, types.int64,
)
#: Landscapes with more coordinates are not compiled (the engine's per-run norms switch algorithm there).
MAX_DIM = 16
#: Calling modes: a batch with a last axis of 2 or more, no batch axes at all, a last batch axis of 1,
#: and (quadratics only) a batch of exactly two runs, whose terms NumPy's einsum sums pairwise.
MODE_BATCH, MODE_SINGLE, MODE_ONE, MODE_PAIR = 0, 1, 2, 3
#: Version of the generated code (part of its hash: bump it when the generator changes).
CODEGEN_VERSION = 2
#: Relative agreement required of a "close" (not bit-identical) landscape.
CLOSE_RTOL = 1e-13


# ------------------------------------------------------------------------------------------------
# helpers the generated code calls (NumPy's semantics on scalars)
# ------------------------------------------------------------------------------------------------
@njit(inline="always", error_model="numpy")
def _sq(v):
    """``x**2`` on an array (NumPy's fast path: ``np.square``)."""
    return v * v


@njit(inline="always", error_model="numpy")
def _rcp(v):
    """``x**-1.0`` on an array (NumPy's fast path: ``np.reciprocal``)."""
    return 1.0 / v


@intrinsic
def _opaque(typingctx, v):
    """``v`` unchanged, but hidden from LLVM's optimiser (an empty inline-asm barrier).

    LLVM rewrites ``pow(2, x)`` into ``exp2(x)``, ``pow(x, 2)`` into ``x*x`` and ``pow(x, -1)`` into
    ``1/x`` even without fast-math; the C library's ``pow`` (what NumPy calls) differs from those in
    the last bit now and then, so :func:`_pow` hides its constant operands.
    """
    sig = types.float64(types.float64)

    def codegen(context, builder, signature, args):
        fnty = ir.FunctionType(ir.DoubleType(), [ir.DoubleType()])
        return builder.asm(fnty, "", "=x,0", [args[0]], False, name="opaque")

    return sig, codegen


@njit(inline="always", error_model="numpy")
def _pow(b, e):
    """Any other power: C ``pow`` on doubles, as ``np.power`` and Python floats compute it."""
    return math.pow(_opaque(float(b)), _opaque(float(e)))


@njit(inline="always", error_model="numpy")
def _sign(v):
    """``np.sign`` of a float: -1, 0 or 1, NaN for NaN."""
    if v > 0.0:
        return 1.0
    if v < 0.0:
        return -1.0
    if v == 0.0:
        return 0.0
    return v


@intrinsic
def _fma(typingctx, a, b, c):
    """``a*b + c`` rounded once (``llvm.fma``), as the BLAS kernels behind ``@`` compute it."""
    sig = types.float64(types.float64, types.float64, types.float64)

    def codegen(context, builder, signature, args):
        dbl = ir.DoubleType()
        fn = builder.module.declare_intrinsic("llvm.fma", [dbl], ir.FunctionType(dbl, [dbl, dbl, dbl]))
        return builder.call(fn, list(args))

    return sig, codegen


#: Names the printed formulas may use, and what they are in the generated module.
_FUNCTIONS = {
    "sin": "math.sin", "cos": "math.cos", "tan": "math.tan", "exp": "math.exp", "log": "math.log",
    "sqrt": "math.sqrt", "sinh": "math.sinh", "cosh": "math.cosh", "arcsin": "math.asin",
    "arccos": "math.acos", "arctan": "math.atan", "log10": "math.log10", "abs": "abs", "sign": "_sign",
}
_CONSTANTS = {"pi": "math.pi", "e": "math.e", "nan": "math.nan", "inf": "math.inf"}
_HELPERS = {"_sq", "_rcp", "_pow", "_sign", "_fma", "math", "abs", "float"}


class CodegenError(ValueError):
    """A landscape that cannot be compiled (with the reason)."""


# ------------------------------------------------------------------------------------------------
# printing formulas (SymbolicLandscape, ExprLandscape, symbolic())
# ------------------------------------------------------------------------------------------------
def _lambdify_settings() -> dict[str, Any]:
    """The printer settings ``sympy.lambdify`` uses for ``modules="numpy"``."""
    return {"fully_qualified_modules": False, "inline": True, "allow_unknown_functions": True, "user_functions": {}}


class _ExactPrinter(NumPyPrinter):
    """NumPyPrinter with renamed symbols and powers spelt as NumPy evaluates them.

    ``array_syms``: symbols holding arrays at run time (in the batched mode, everything that depends
    on a coordinate; in the single mode, the coordinates only: they are 0-d arrays, every result of
    an operation on them is a NumPy scalar).
    """

    def __init__(self, names: dict[sympy.Symbol, str], array_syms: set[sympy.Symbol], single: bool) -> None:
        super().__init__(_lambdify_settings())
        self._names = names
        self._array_syms = array_syms
        self._single = single

    def _print_Symbol(self, expr: sympy.Symbol) -> str:  # noqa: N802 (SymPy's printer protocol)
        name = self._names.get(expr)
        if name is None:
            raise CodegenError(f"unknown symbol {expr} in the formula")
        return name

    def _is_array(self, base: sympy.Expr) -> bool:
        if self._single:
            return base in self._array_syms
        return bool(base.free_symbols & self._array_syms)

    def _print_Pow(self, expr: sympy.Pow, rational: bool = False) -> str:  # noqa: N802
        base, e = expr.base, expr.exp
        if e.is_integer and e.is_negative:  # NumPyPrinter's rewrite: negative integer powers of floats
            e = e.evalf()
        b = self._print(base)
        if e == sympy.S.Half and not rational:
            return f"math.sqrt({b})"
        if expr.is_commutative and not rational and -e is sympy.S.Half:
            return f"1/math.sqrt({b})"
        if e.is_Number and self._is_array(base):
            v = float(e)
            if v == 2.0:
                return f"_sq({b})"
            if v == -1.0:
                return f"_rcp({b})"
            if v == 0.5:
                return f"math.sqrt({b})"
            if v == 1.0:
                return f"({b})"
            if v == 0.0:
                return "1.0"
        return f"_pow({b}, {self._print(e)})"


def _cse(exprs: list[sympy.Expr]) -> tuple[list[tuple[sympy.Symbol, sympy.Expr]], list[sympy.Expr]]:
    """What ``lambdify(..., cse=True)`` does to a list of expressions."""
    from sympy.simplify.cse_main import cse

    cses, reduced = cse(exprs, list=False)
    return list(cses), list(reduced)


def _lambdify_text(symbols: Sequence[sympy.Symbol], exprs: list[sympy.Expr]) -> str:
    """The function text ``lambdify(symbols, exprs, modules="numpy", cse=True)`` generates."""
    from sympy.utilities.lambdify import _EvaluatorPrinter

    cses, reduced = _cse(exprs)
    printer = NumPyPrinter(_lambdify_settings())
    return _EvaluatorPrinter(printer, False).doprint("_lambdifygenerated", list(symbols), reduced, cses=cses)


def _source_of(fn: Callable[..., Any]) -> str | None:
    import inspect

    try:
        return inspect.getsource(fn)
    except (OSError, TypeError):
        return None


def _formula_body(
    symbols: Sequence[sympy.Symbol], exprs: list[sympy.Expr], single: bool
) -> tuple[list[str], list[str]]:
    """(statements, output expressions) for ``exprs`` in ``symbols`` (renamed ``a0, a1, ...``)."""
    cses, reduced = _cse(exprs)
    names: dict[sympy.Symbol, str] = {s: f"a{i}" for i, s in enumerate(symbols)}
    for k, (s, _) in enumerate(cses):
        names[s] = f"c{k}"
    arrays = set(symbols)
    if not single:
        for s, e in cses:
            if e.free_symbols & arrays:
                arrays.add(s)
    printer = _ExactPrinter(names, arrays, single)
    lines = [f"{names[s]} = {printer.doprint(e)}" for s, e in cses]
    outs = [printer.doprint(e) for e in reduced]
    _check_names(lines + outs, set(names.values()))
    return lines, outs


def _check_names(code: list[str], known: set[str]) -> None:
    """Refuse printed code that calls anything but the whitelisted functions."""
    allowed = known | _HELPERS | set(_FUNCTIONS) | set(_CONSTANTS)
    for text in code:
        try:
            tree = ast.parse(text)
        except SyntaxError as exc:
            raise CodegenError(f"cannot compile the printed formula ({exc.msg})") from None
        for node in ast.walk(tree):
            if isinstance(node, ast.Name) and node.id not in allowed:
                raise CodegenError(f"uses {node.id!r}, which has no exact compiled equivalent")
            if isinstance(node, ast.Attribute) and not (
                isinstance(node.value, ast.Name) and node.value.id == "math"
            ):
                    raise CodegenError("uses an attribute the compiled code does not support")
            if isinstance(node, ast.Constant) and isinstance(node.value, complex):
                raise CodegenError("has complex constants")


class _Renamer(ast.NodeTransformer):
    """Rewrite the printer's bare function and constant names into the generated module's."""

    def visit_Name(self, node: ast.Name) -> ast.AST:
        target = _FUNCTIONS.get(node.id) or _CONSTANTS.get(node.id)
        if target is None:
            return node
        return ast.copy_location(ast.parse(target, mode="eval").body, node)


def _rename(text: str) -> str:
    tree = ast.parse(text)
    return ast.unparse(_Renamer().visit(tree))


# ------------------------------------------------------------------------------------------------
# what a landscape compiles to
# ------------------------------------------------------------------------------------------------
@dataclass
class Body:
    """One loop body: statements, the value (None for grad-only) and the gradient components."""

    lines: list[str]
    value: str | None
    grads: list[str]


@dataclass
class LandscapeCode:
    """Generated source for one landscape: a body per (function, mode), and how it was obtained."""

    dim: int
    source: str  # "formula", "mirror" or "symbolic"
    label: str
    #: (kind, mode) → Body, kind "vg" (value and gradient) or "g"; mode 0 / 1 / 2
    bodies: dict[tuple[str, int], Body] = field(default_factory=dict)
    #: mode for a batch shape (the default: no axes → single, otherwise batch)
    mode_of: Callable[[tuple[int, ...]], int] | None = None

    def mode(self, batch: tuple[int, ...]) -> int:
        if self.mode_of is not None:
            return self.mode_of(batch)
        return MODE_SINGLE if len(batch) == 0 else MODE_BATCH

    def module_text(self) -> str:
        out = [
            f'"""Generated by gdlab.fast.landscape_codegen (v{CODEGEN_VERSION}) for {self.label!r}; do not edit."""',
            f"# helpers: {_helpers_stamp()}",
            "import math",
            "from numba import carray, cfunc",
            "from gdlab.fast.landscape_codegen import JIT, SIGNATURE, _fma, _pow, _rcp, _sign, _sq",
            "",
        ]
        for kind, fname in (("vg", "value_grad"), ("g", "grad")):
            out += ["", "@cfunc(SIGNATURE, **JIT)", f"def {fname}(xp, fp, gp, n, stride, mode):"]
            out.append(f"    X = carray(xp, ({self.dim} * stride,))")
            if kind == "vg":
                out.append("    F = carray(fp, (n,))")
            out.append(f"    G = carray(gp, ({self.dim} * stride,))")
            groups: list[tuple[list[int], Body]] = []
            for m in sorted({m for (k, m) in self.bodies if k == kind}):
                body = self.bodies[(kind, m)]
                for ms, other in groups:
                    if other == body:
                        ms.append(m)
                        break
                else:
                    groups.append(([m], body))
            for idx, (ms, body) in enumerate(groups):
                prefix = "    "
                if len(groups) > 1:
                    prefix = "        "
                    if idx == 0:
                        out.append(f"    if {' or '.join(f'mode == {m}' for m in ms)}:")
                    elif idx == len(groups) - 1:
                        out.append("    else:")
                    else:
                        out.append(f"    elif {' or '.join(f'mode == {m}' for m in ms)}:")
                # views per coordinate: unit-stride, non-negative indexing (vectorisable loops)
                for j in range(self.dim):
                    out.append(f"{prefix}X{j} = X[{j} * stride:{j} * stride + n]")
                    out.append(f"{prefix}G{j} = G[{j} * stride:{j} * stride + n]")
                out.append(f"{prefix}for i in range(n):")
                inner = prefix + "    "
                for j in range(self.dim):
                    out.append(f"{inner}a{j} = X{j}[i]")
                out += [inner + line for line in body.lines]
                if kind == "vg":
                    out.append(f"{inner}F[i] = {body.value}")
                for j, gtext in enumerate(body.grads):
                    out.append(f"{inner}G{j}[i] = {gtext}")
        return "\n".join(out) + "\n"


_STAMP: list[str] = []


def _helpers_stamp() -> str:
    """A hash of this module's source: numba's cache of a generated module does not notice changes
    to the helpers it imports, so they are part of the generated text (and of its file name)."""
    if not _STAMP:
        try:
            _STAMP.append(hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16])
        except OSError:
            _STAMP.append(f"v{CODEGEN_VERSION}")
    return _STAMP[0]


def _formula_code(symbols: Sequence[sympy.Symbol], expr: sympy.Expr, grad: Sequence[sympy.Expr], label: str,
                  source: str) -> LandscapeCode:
    code = LandscapeCode(dim=len(symbols), source=source, label=label)
    for single, mode in ((False, MODE_BATCH), (True, MODE_SINGLE)):
        lines, outs = _formula_body(symbols, [expr, *grad], single)
        code.bodies[("vg", mode)] = Body([_rename(x) for x in lines], _rename(outs[0]), [_rename(x) for x in outs[1:]])
        lines, outs = _formula_body(symbols, list(grad), single)
        code.bodies[("g", mode)] = Body([_rename(x) for x in lines], None, [_rename(x) for x in outs])
    for kind in ("vg", "g"):
        code.bodies[(kind, MODE_ONE)] = code.bodies[(kind, MODE_BATCH)]
    return code


def _compiled_expression_code(land: Any) -> LandscapeCode:
    """Formula landscapes: reproduce ``lambdify``'s code, then print it NumPy-exactly."""
    compiled = land.compiled
    symbols = list(compiled.symbols)
    expr, grad = compiled.expr, list(compiled.gradient)
    for fn, exprs in ((compiled._fg, [expr, *grad]), (compiled._g, grad)):
        ours = _lambdify_text(symbols, exprs)
        theirs = _source_of(fn)
        if theirs is None or ours.strip() != theirs.strip():
            raise CodegenError("its compiled NumPy code could not be reproduced")
    label = getattr(land, "text", None) or type(land).name
    return _formula_code(symbols, expr, grad, str(label), "formula")


def _symbolic_code(land: Any) -> LandscapeCode:
    try:
        expr, symbols = land.symbolic()
    except NotImplementedError as exc:
        raise CodegenError(str(exc) or "it has no symbolic form") from None
    symbols = list(symbols)
    if len(symbols) != land.dim:
        raise CodegenError("its symbolic form has the wrong number of variables")
    grad = [sympy.diff(expr, s) for s in symbols]
    if any(g.has(sympy.Derivative, sympy.DiracDelta) for g in grad):
        raise CodegenError("its gradient has terms SymPy leaves unevaluated")
    return _formula_code(symbols, expr, grad, type(land).name or type(land).__name__, "symbolic")


# -- mirrors of the hand-written NumPy landscapes ---------------------------------------------------
def _r(v: float) -> str:
    """A float literal that reads back as exactly ``v``."""
    return repr(float(v))


def _np_sum(terms: list[str]) -> str:
    """``np.sum(..., axis=-1)`` of these terms in NumPy's order (pairwise blocks of 8 from 8 terms on)."""
    n = len(terms)
    if n < 8:
        acc = terms[0]
        for t in terms[1:]:
            acc = f"({acc} + {t})"
        return acc
    r = list(terms[:8])
    i = 8
    while i < n - n % 8:
        r = [f"({r[j]} + {terms[i + j]})" for j in range(8)]
        i += 8
    acc = f"((({r[0]} + {r[1]}) + ({r[2]} + {r[3]})) + (({r[4]} + {r[5]}) + ({r[6]} + {r[7]})))"
    while i < n:
        acc = f"({acc} + {terms[i]})"
        i += 1
    return acc


def _same_for_all_modes(code: LandscapeCode, vg: Body, g: Body) -> LandscapeCode:
    for mode in (MODE_BATCH, MODE_SINGLE, MODE_ONE):
        code.bodies[("vg", mode)] = vg
        code.bodies[("g", mode)] = g
    code.mode_of = lambda batch: MODE_BATCH
    return code


def _rosenbrock_code(land: Any) -> LandscapeCode:
    d, a, b = land.dim, float(land._core.a), float(land._core.b)
    lines = [f"h{i} = a{i + 1} - _sq(a{i})" for i in range(d - 1)]
    terms = [f"({_r(b)} * _sq(h{i}) + _sq({_r(a)} - a{i}))" for i in range(d - 1)]
    heads = [f"({_r(-4.0 * b)} * a{i} * h{i} - 2.0 * ({_r(a)} - a{i}))" for i in range(d - 1)]
    tails = [f"({_r(2.0 * b)} * h{i})" for i in range(d - 1)]
    grads = []
    for j in range(d):
        text = "0.0"
        if j < d - 1:
            text = f"({text} + {heads[j]})"
        if j > 0:
            text = f"({text} + {tails[j - 1]})"
        grads.append(text)
    code = LandscapeCode(dim=d, source="mirror", label=f"rosenbrock dim={d}")
    return _same_for_all_modes(code, Body(lines, _np_sum(terms), grads), Body(lines, None, grads))


def _sphere_code(land: Any) -> LandscapeCode:
    d = land.dim
    value = _np_sum([f"a{i} * a{i}" for i in range(d)])
    grads = [f"2.0 * a{i}" for i in range(d)]
    code = LandscapeCode(dim=d, source="mirror", label=f"sphere dim={d}")
    return _same_for_all_modes(code, Body([], value, grads), Body([], None, grads))


def _rastrigin_code(land: Any) -> LandscapeCode:
    d, A = land.dim, float(land.A)
    tp = 2.0 * np.pi
    terms = [f"(_sq(a{i}) - {_r(A)} * math.cos({_r(tp)} * a{i}))" for i in range(d)]
    value = f"{_r(A * d)} + {_np_sum(terms)}"
    grads = [f"2.0 * a{i} + {_r(tp * A)} * math.sin({_r(tp)} * a{i})" for i in range(d)]
    code = LandscapeCode(dim=d, source="mirror", label=f"rastrigin dim={d}")
    return _same_for_all_modes(code, Body([], value, grads), Body([], None, grads))


def _ackley_code(land: Any) -> LandscapeCode:
    d = land.dim
    a, b, c = float(land.a), float(land.b), float(land.c)
    common = [
        f"r = math.sqrt({_np_sum([f'a{i} * a{i}' for i in range(d)])} / {d})",
        f"wave = math.exp({_np_sum([f'math.cos({_r(c)} * a{i})' for i in range(d)])} / {d})",
    ]
    value = f"{_r(-a)} * math.exp({_r(-b)} * r) - wave + {_r(a)} + {_r(math.e)}"
    glines = [*common, f"cone = {_r(a * b)} * math.exp({_r(-b)} * r)", "pos = r > 0.0",
              "rs = r if pos else 1.0"]
    grads = [f"(cone * a{i} / ({d} * rs) if pos else 0.0) + {_r(c / d)} * math.sin({_r(c)} * a{i}) * wave"
             for i in range(d)]
    code = LandscapeCode(dim=d, source="mirror", label=f"ackley dim={d}")
    return _same_for_all_modes(code, Body(glines, value, grads), Body(glines, None, grads))


def _styblinski_tang_code(land: Any) -> LandscapeCode:
    d = land.dim
    terms = [f"(_pow(a{i}, 4) - 16.0 * _sq(a{i}) + 5.0 * a{i})" for i in range(d)]
    value = f"0.5 * {_np_sum(terms)}"
    grads = [f"2.0 * _pow(a{i}, 3) - 16.0 * a{i} + 2.5" for i in range(d)]
    code = LandscapeCode(dim=d, source="mirror", label=f"styblinski_tang dim={d}")
    return _same_for_all_modes(code, Body([], value, grads), Body([], None, grads))


def _quadratic_mode(batch: tuple[int, ...]) -> int:
    n = math.prod(batch)
    if n == 1:
        return MODE_SINGLE
    if n == 2:  # einsum sums a batch of two runs pairwise (the single order); the gradient's order stays
        return MODE_SINGLE if batch[-1] == 1 else MODE_PAIR
    return MODE_ONE if batch[-1] == 1 else MODE_BATCH


def _quadratic_code(land: Any) -> LandscapeCode:
    """``0.5 * einsum(x, A, x) - x @ b`` and ``x @ A.T - b`` for d = 2 (the einsum and BLAS orders)."""
    A = np.asarray(land.A, dtype=np.float64)
    bvec = np.asarray(land._quadratic.b, dtype=np.float64)
    if A.shape != (2, 2):
        raise CodegenError("quadratics are compiled in two dimensions only")
    t = {(i, j): f"a{i} * {_r(A[i, j])} * a{j}" for i in range(2) for j in range(2)}
    batched_sum = f"((({t[0, 0]} + {t[0, 1]}) + {t[1, 0]}) + {t[1, 1]})"
    pair_sum = f"(({t[0, 0]} + {t[0, 1]}) + ({t[1, 0]} + {t[1, 1]}))"
    bx_batched = f"_fma(a1, {_r(bvec[1])}, a0 * {_r(bvec[0])})"
    bx_single = f"_fma(a0, {_r(bvec[0])}, a1 * {_r(bvec[1])})"
    code = LandscapeCode(dim=2, source="mirror", label=f"quadratic A={A.tolist()}")
    for mode, s, bx in ((MODE_BATCH, batched_sum, bx_batched), (MODE_SINGLE, pair_sum, bx_single),
                        (MODE_ONE, batched_sum, bx_single), (MODE_PAIR, pair_sum, bx_batched)):
        if mode in (MODE_BATCH, MODE_PAIR):
            grads = [f"_fma(a1, {_r(A[i, 1])}, a0 * {_r(A[i, 0])}) - {_r(bvec[i])}" for i in range(2)]
        else:
            grads = [f"_fma(a0, {_r(A[i, 0])}, a1 * {_r(A[i, 1])}) - {_r(bvec[i])}" for i in range(2)]
        code.bodies[("vg", mode)] = Body([], f"0.5 * {s} - {bx}", grads)
        code.bodies[("g", mode)] = Body([], None, grads)
    code.mode_of = _quadratic_mode
    return code


def _mirror(land: Any) -> Callable[[Any], LandscapeCode] | None:
    from gdlab.landscapes import classic, quadratics

    table: dict[type, Callable[[Any], LandscapeCode]] = {
        classic.Rosenbrock: _rosenbrock_code,
        classic.Rastrigin: _rastrigin_code,
        classic.Ackley: _ackley_code,
        classic.StyblinskiTang: _styblinski_tang_code,
        quadratics.Sphere: _sphere_code,
        quadratics.Elliptic: _quadratic_code,
        quadratics.ConditionedQuadratic: _quadratic_code,
        quadratics.Saddle: _quadratic_code,
    }
    return table.get(type(land))


def generate(land: Any) -> LandscapeCode:
    """The code of ``land`` (mirror, formula or symbolic), or :class:`CodegenError` saying why not."""
    from gdlab.landscapes.base import Landscape
    from gdlab.landscapes.expr import ExprLandscape
    from gdlab.landscapes.symbolic import CompiledExpression, SymbolicLandscape

    if not isinstance(land, Landscape):
        raise CodegenError(f"{type(land).__name__} is not a gdlab landscape")
    d = int(land.dim)
    if d > MAX_DIM:
        raise CodegenError(f"it has {d} dimensions (compiled landscapes have at most {MAX_DIM})")
    mirror = _mirror(land)
    if mirror is not None:
        return mirror(land)
    compiled = getattr(land, "compiled", None)
    own = type(land)._value_and_grad in (SymbolicLandscape._value_and_grad, ExprLandscape._value_and_grad)
    if isinstance(compiled, CompiledExpression) and own and type(land)._grad in (
            SymbolicLandscape._grad, ExprLandscape._grad):
        return _compiled_expression_code(land)
    return _symbolic_code(land)


# ------------------------------------------------------------------------------------------------
# compiling (a content-addressed module per landscape, cached by numba on disk)
# ------------------------------------------------------------------------------------------------
def generated_dir() -> Path:
    """Where the generated modules live (next to the kernels' cache, else in a user cache directory)."""
    here = Path(__file__).resolve().parent / "__pycache__" / "generated"
    if is_writable(here):
        return here
    for candidate in (user_cache_dir() / "generated", Path(tempfile.gettempdir()) / "gdlab-generated"):
        if is_writable(candidate):
            return candidate
    raise CodegenError("no writable directory for the generated landscape code")


@dataclass
class CompiledLandscape:
    """A landscape's compiled functions: addresses for the kernels, callables for tests."""

    code: LandscapeCode
    key: str
    path: Path
    value_grad_address: int
    grad_address: int
    cfuncs: tuple[Any, Any]
    #: "exact", "close" or a reason why it is refused; set by :func:`check`.
    verdict: str = "unchecked"

    def mode(self, batch: tuple[int, ...]) -> int:
        return self.code.mode(batch)

    def value_and_grad(self, x: np.ndarray, mode: int = MODE_BATCH) -> tuple[np.ndarray, np.ndarray]:
        """Evaluate on points ``x`` of shape ``(n, d)`` (for tests and the check)."""
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1, self.code.dim).T)
        n = x.shape[1]
        f = np.empty(n)
        g = np.empty_like(x)
        self.cfuncs[0].ctypes(_ptr(x), _ptr(f), _ptr(g), n, n, mode)
        return f, np.ascontiguousarray(g.T)

    def grad(self, x: np.ndarray, mode: int = MODE_BATCH) -> np.ndarray:
        x = np.ascontiguousarray(np.asarray(x, dtype=np.float64).reshape(-1, self.code.dim).T)
        n = x.shape[1]
        g = np.empty_like(x)
        dummy = np.empty(1)
        self.cfuncs[1].ctypes(_ptr(x), _ptr(dummy), _ptr(g), n, n, mode)
        return np.ascontiguousarray(g.T)


def _ptr(a: np.ndarray) -> Any:
    import ctypes

    return a.ctypes.data_as(ctypes.POINTER(ctypes.c_double))


_modules: dict[str, CompiledLandscape] = {}
_module_lock = threading.Lock()


def source_key(code: LandscapeCode) -> tuple[str, str]:
    """(hash, module text) of the generated code."""
    text = code.module_text()
    return hashlib.sha256(text.encode()).hexdigest()[:20], text


def is_cached(code: LandscapeCode) -> bool:
    """True when this code was compiled before (in this process or, by its marker, on disk)."""
    key, _ = source_key(code)
    if key in _modules:
        return True
    try:
        return (generated_dir() / f"lc_{key}.ok").exists()
    except CodegenError:
        return False


def compile_code(code: LandscapeCode) -> CompiledLandscape:
    """Write, import and compile (or load from numba's cache) the generated module of ``code``."""
    key, text = source_key(code)
    done = _modules.get(key)
    if done is not None:
        return done
    with _module_lock:
        done = _modules.get(key)
        if done is not None:
            return done
        directory = generated_dir()
        path = directory / f"lc_{key}.py"
        if not path.exists() or path.read_text() != text:
            fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
            with os.fdopen(fd, "w") as fh:
                fh.write(text)
            os.replace(tmp, path)
        name = f"gdlab_fast_generated_lc_{key}"
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise CodegenError(f"cannot import the generated module {path}")
        module = importlib.util.module_from_spec(spec)
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise CodegenError(f"the generated code does not compile: {type(exc).__name__}: {exc}") from None
        vg, g = module.value_grad, module.grad
        compiled = CompiledLandscape(code, key, path, int(vg.address), int(g.address), (vg, g))
        with contextlib.suppress(OSError):
            (directory / f"lc_{key}.ok").touch()
        _modules[key] = compiled
        return compiled


# ------------------------------------------------------------------------------------------------
# the check against the reference
# ------------------------------------------------------------------------------------------------
def _sample_points(land: Any, n: int, seed: int = 12345) -> np.ndarray:
    d = int(land.dim)
    rng = np.random.default_rng(seed)
    dom = np.asarray(getattr(land, "domain", [(-5.0, 5.0)] * d), dtype=np.float64).reshape(d, 2)
    lo, hi = dom[:, 0], dom[:, 1]
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    pts = [rng.uniform(mid - 1.5 * half, mid + 1.5 * half, (n, d))]
    pts.append(rng.normal(0.0, 1e-3, (8, d)))
    pts.append(np.zeros((1, d)))
    special = [getattr(land, "default_start", None)] + [p.location for p in getattr(land, "minima", [])]
    special += [p.location for p in getattr(land, "saddles", [])]
    for s in special:
        if s is not None and len(s) == d:
            pts.append(np.asarray(s, dtype=np.float64).reshape(1, d))
    return np.concatenate(pts)


def _compare(ref: np.ndarray, got: np.ndarray) -> float:
    """0 when equal (NaN equal to NaN), else the largest relative difference (inf for a NaN mismatch)."""
    ref = np.asarray(ref, dtype=np.float64)
    got = np.asarray(got, dtype=np.float64)
    same = (ref == got) | (np.isnan(ref) & np.isnan(got))
    if same.all():
        return 0.0
    bad = ~same
    r, g = ref[bad], got[bad]
    if np.any(~np.isfinite(r) | ~np.isfinite(g)):
        return math.inf
    scale = np.maximum(np.abs(r), np.abs(g))
    return float(np.max(np.abs(r - g) / np.where(scale > 0, scale, 1.0)))


def check(land: Any, compiled: CompiledLandscape, n: int = 2048) -> str:
    """Compare the compiled functions with the landscape's NumPy evaluation in every mode.

    The reference is evaluated with batches of the shapes the engine passes (one axis, two axes,
    a last axis of 1, two runs, no batch axis). Returns ``"exact"`` (all equal), ``"close"`` (within
    :data:`CLOSE_RTOL`) or the reason it is refused.
    """
    d = int(land.dim)
    x = _sample_points(land, n)
    m = len(x) // 8
    cases = [(x, (len(x),)), (x[: m * 8], (m, 8)), (x[:7], (7, 1)), (x[:1], (1,)), (x[1:2], (1, 1))]
    cases += [(x[2 * i: 2 * i + 2], b) for i in range(16) for b in ((2,), (2, 1), (1, 2))]  # two runs
    cases += [(x[i], ()) for i in range(min(48, len(x)))]
    worst = 0.0
    with np.errstate(all="ignore"):
        for pts, batch in cases:
            arr = np.ascontiguousarray(pts.reshape(batch + (d,)))
            mode = compiled.mode(batch)
            f_ref, g_ref = land.value_and_grad(arr)
            g_only = land.grad(arr)
            f_got, g_got = compiled.value_and_grad(arr, mode)
            g2 = compiled.grad(arr, mode)
            worst = max(worst, _compare(np.ravel(f_ref), f_got), _compare(np.reshape(g_ref, (-1, d)), g_got),
                        _compare(np.reshape(g_only, (-1, d)), g2))
    if worst == 0.0:
        return "exact"
    if worst <= CLOSE_RTOL:
        return "close"
    return f"its compiled form differs from the reference by up to {worst:.2g} (relative)"


# ------------------------------------------------------------------------------------------------
# per-landscape memo
# ------------------------------------------------------------------------------------------------
_by_object: weakref.WeakKeyDictionary[Any, Any] = weakref.WeakKeyDictionary()
_by_key: dict[Any, Any] = {}
_memo_lock = threading.Lock()


def landscape_key(land: Any) -> Any:
    """A key that identifies the landscape's formula (class and parameters, or the expression)."""
    text = getattr(land, "text", None)
    if text is not None:
        return ("expr", type(land).__qualname__, str(text), tuple(getattr(land, "variables", ())))
    try:
        params = tuple(sorted((k, repr(v)) for k, v in land.get_params().items()))
    except Exception:
        return None
    return (type(land).__module__, type(land).__qualname__, params)


def code_for(land: Any) -> LandscapeCode | str:
    """The generated code of ``land`` (memoised), or the reason it has none."""
    try:
        hit = _by_object.get(land)
    except TypeError:
        hit = None
    if hit is not None:
        return hit
    key = landscape_key(land)
    if key is not None and key in _by_key:
        hit = _by_key[key]
    else:
        try:
            hit = generate(land)
        except CodegenError as exc:
            hit = str(exc)
        except Exception as exc:  # a landscape the generator does not understand: not compiled
            hit = f"its code could not be generated ({type(exc).__name__}: {exc})"
        with _memo_lock:
            if key is not None:
                _by_key[key] = hit
                if len(_by_key) > 256:
                    _by_key.pop(next(iter(_by_key)))
    with contextlib.suppress(TypeError):  # unhashable landscapes are only found by key
        _by_object[land] = hit
    return hit


_verdicts: dict[Any, str] = {}


def compile_landscape(land: Any) -> CompiledLandscape:
    """Compile ``land`` (or take it from the caches) and check it once; raises :class:`CodegenError`."""
    code = code_for(land)
    if isinstance(code, str):
        raise CodegenError(code)
    compiled = compile_code(code)
    vkey = (compiled.key, landscape_key(land))
    verdict = _verdicts.get(vkey)
    if verdict is None:
        verdict = check(land, compiled)
        _verdicts[vkey] = verdict
    compiled.verdict = verdict
    return compiled


__all__ = [
    "MAX_DIM",
    "CodegenError",
    "CompiledLandscape",
    "LandscapeCode",
    "check",
    "code_for",
    "compile_code",
    "compile_landscape",
    "generate",
    "is_cached",
]
