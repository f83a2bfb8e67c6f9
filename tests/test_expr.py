"""Custom landscapes from text: grammar, exact derivatives, error messages, fuzzing, no eval."""

from __future__ import annotations

import ast
import inspect
import math
import re
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import gdlab.landscapes.expr as expr_module
import gdlab.landscapes.printer as printer_module
import gdlab.landscapes.program as program_module
import gdlab.landscapes.symbolic as symbolic_module
from gdlab.landscapes import ExpressionError, ExprLandscape, Landscape, make_landscape, parse_expression
from gdlab.landscapes.expr import MAX_DEPTH, MAX_LENGTH, MAX_TOKENS, tokenize
from gdlab.landscapes.program import ARITY, PointProgram, ProgramError


def at(text: str, *point: float) -> float:
    return float(parse_expression(text).value(np.array(point, dtype=float)))


# -- valid expressions ----------------------------------------------------------------------------
def test_rosenbrock_text_equals_builtin() -> None:
    typed = parse_expression("100*(y - x**2)**2 + (1 - x)**2")
    builtin = make_landscape("rosenbrock")
    assert isinstance(typed, Landscape) and typed.dim == 2
    x = np.random.default_rng(0).uniform(-2, 2, size=(50, 2))
    np.testing.assert_allclose(typed.value(x), builtin.value(x), rtol=1e-13)
    np.testing.assert_allclose(typed.grad(x), builtin.grad(x), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(typed.hessian(x), builtin.hessian(x), rtol=1e-12, atol=1e-12)
    v, g = typed.value_and_grad(x)
    np.testing.assert_allclose(v, builtin.value(x), rtol=1e-13)
    np.testing.assert_allclose(g, builtin.grad(x), rtol=1e-12, atol=1e-12)
    # the same with ^ and spaces anywhere
    caret = parse_expression("  100 * ( y-x^2 )^2+(1-x)^2 ")
    np.testing.assert_allclose(caret.value(x), builtin.value(x), rtol=1e-13)
    # the same formula prints as the same program: the same numbers (and the same compiled code)
    assert typed.program() == builtin.program() == caret.program()
    np.testing.assert_array_equal(typed.value_and_grad(x)[1], builtin.value_and_grad(x)[1])


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2**3**2", 512.0),
        ("2^3^2", 512.0),
        ("(2**3)**2", 64.0),
        ("2^3", 8.0),
        ("-2**2", -4.0),
        ("(-2)**2", 4.0),
        ("2**-1", 0.5),
        ("2*3+4", 10.0),
        ("2+3*4", 14.0),
        ("10-4-3", 3.0),
        ("2/4/2", 0.25),
        ("-3-2", -5.0),
        ("+3", 3.0),
        ("--3", 3.0),
        ("-+-3", 3.0),
        ("1.5e2", 150.0),
        ("1E-3*1000", 1.0),
        (".5+2.", 2.5),
        ("pi", math.pi),
        ("e", math.e),
        ("log10(1000)", 3.0),
        ("ln(e^2)", 2.0),
        ("sqrt(16)", 4.0),
        ("abs(-3)", 3.0),
    ],
)
def test_constants_and_precedence(text: str, expected: float) -> None:
    assert at(text, 0.7) == pytest.approx(expected, rel=1e-15)


@pytest.mark.parametrize(
    ("text", "x", "expected"),
    [
        ("-x**2", 3.0, -9.0),
        ("-x^2", 3.0, -9.0),
        ("(-x)**2", 3.0, 9.0),
        ("x**-2", 2.0, 0.25),
        ("2*x^3", 2.0, 16.0),
        ("x/2/2", 8.0, 2.0),
        ("e^x", 1.5, math.exp(1.5)),
        ("exp(x)", 1.5, math.exp(1.5)),
        ("sin(x)^2 + cos(x)^2", 0.3, 1.0),
        ("atan(x) - arctan(x) + asin(x/2) - arcsin(x/2) + acos(x/2) - arccos(x/2)", 0.4, 0.0),
        ("tanh(x) + sinh(x) + cosh(x)", 0.5, math.tanh(0.5) + math.sinh(0.5) + math.cosh(0.5)),
        ("tan(x)", 0.5, math.tan(0.5)),
        ("log(x)", math.e, 1.0),
        ("log10(x)", 100.0, 2.0),
        ("abs(x)", -2.5, 2.5),
        ("sqrt(x)", 2.25, 1.5),
    ],
)
def test_one_variable_expressions(text: str, x: float, expected: float) -> None:
    land = parse_expression(text)
    assert land.dim == 1
    assert at(text, x) == pytest.approx(expected, rel=1e-14, abs=1e-14)


def test_dimension_follows_the_variables() -> None:
    assert parse_expression("x^2").dim == 1
    assert parse_expression("x + y").dim == 2
    assert parse_expression("y^2").dim == 2
    assert parse_expression("3").dim == 1
    assert parse_expression("x - x").dim == 1
    const = parse_expression("3")
    np.testing.assert_array_equal(const.value(np.zeros((4, 1))), [3.0] * 4)
    np.testing.assert_array_equal(const.grad(np.zeros((4, 1))), np.zeros((4, 1)))
    np.testing.assert_array_equal(const.hessian(np.zeros((4, 1))), np.zeros((4, 1, 1)))


SMOOTH_EXPRESSIONS = [
    "sin(x)*cos(y) + x^2/10",
    "exp(-(x^2 + y^2)/4) * (x - 2*y)",
    "log(1 + x^2 + y^2) + sqrt(1 + x^2) * tanh(y)",
    "atan(x*y) + cosh(y/3) - sinh(x/4)",
    "x^4 - 3*x^2 + 2",
    "(x^2 + y - 11)^2 + (x + y^2 - 7)^2",
    "abs(x - 10) + y^3 / 27",
    "2^x * 3^(y/2) + x^y^0.5 * 0",
    "log10(2 + sin(x)) * asin(y/6) + acos(x/6)",
]


@pytest.mark.parametrize("text", SMOOTH_EXPRESSIONS)
def test_derivatives_match_finite_differences(text: str) -> None:
    land = parse_expression(text)
    rng = np.random.default_rng(1)
    x = rng.uniform(0.5, 4.5, size=(20, land.dim))
    h = 1e-5
    g, H = land.grad(x), land.hessian(x)
    for i in range(land.dim):
        e = np.zeros(land.dim)
        e[i] = h
        fd = (-land.value(x + 2 * e) + 8 * land.value(x + e) - 8 * land.value(x - e) + land.value(x - 2 * e)) / (12 * h)
        np.testing.assert_allclose(g[:, i], fd, rtol=1e-7, atol=1e-7)
        fd_col = (-land.grad(x + 2 * e) + 8 * land.grad(x + e) - 8 * land.grad(x - e) + land.grad(x - 2 * e)) / (12 * h)
        np.testing.assert_allclose(H[:, :, i], fd_col, rtol=1e-6, atol=1e-6)
    # batched equals per point
    for k in range(3):
        np.testing.assert_allclose(land.value(x[k]), land.value(x)[k], rtol=1e-15)
        np.testing.assert_allclose(land.hessian(x[k]), land.hessian(x)[k], rtol=1e-15)


def test_double_well_text_equals_builtin() -> None:
    typed, builtin = parse_expression("x^4 - 3*x^2 + 2"), make_landscape("double_well")
    x = np.linspace(-2.5, 2.5, 21)[:, None]
    np.testing.assert_array_equal(typed.value(x), builtin.value(x))
    np.testing.assert_allclose(typed.hessian(x), builtin.hessian(x), rtol=1e-14)


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("x^4 - 3*x^2 + 2", True),
        ("(x^2 + y - 11)^2 + (x + y^2 - 7)^2", True),
        ("sqrt(x^2 + y^2 + 1) + abs(x - y)/3", True),
        ("x^-2 + 1/(1 + y^2) + x^0.5", True),
        ("x^-0.5 + y", False),  # its derivative −½·x^(−3/2) is a general power
        ("sin(x) + y", False),
        ("exp(-x^2) * y", False),
        ("x^1.5 + y", False),
        ("2^x + y", False),
        ("log10(x) + atan(y) + tanh(x)", False),
    ],
)
def test_typed_formulas_have_programs(text: str, exact: bool) -> None:
    """Arithmetic, integer and half powers, sqrt and abs give exact programs; other functions do not."""
    land = parse_expression(text)
    program = land.program()
    assert program is not None and program.exact == exact, program.source if program else None
    assert parse_expression(text).program() is program  # memoised per expression
    x = np.random.default_rng(2).uniform(0.5, 3.0, size=(40, land.dim))
    np.testing.assert_array_equal(land.value_and_grad(x)[0], program.value(x))
    np.testing.assert_array_equal(land.grad(x), program.grad(x))


def test_a_formula_without_program_is_still_evaluated() -> None:
    """SymPy writes sqrt(-x²) as I·|x|: no program (nothing to compile), evaluated as before."""
    land = parse_expression("sqrt(-x^2) + y")
    assert land.program() is None and "not a real number" in land.program_or_reason()
    x = np.array([[0.0, 1.0], [1.0, 2.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g = land.value_and_grad(x)
    assert v[0] == 1.0 and np.isnan(v[1]) and g[0, 1] == 1.0
    np.testing.assert_array_equal(land.value(x), v)


def test_nonfinite_values_without_warnings() -> None:
    land = parse_expression("log(x) + sqrt(y) + 1/x")
    x = np.array([[-1.0, 1.0], [1.0, -4.0], [0.0, 1.0], [1.0, 4.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g, H = land.value(x), land.grad(x), land.hessian(x)
    assert np.isnan(v[0]) and np.isnan(v[1]) and not np.isfinite(v[2])
    assert v[3] == pytest.approx(3.0)
    assert not np.all(np.isfinite(g[:3])) and np.all(np.isfinite(H[3]))


def test_landscape_metadata_and_domain() -> None:
    land = parse_expression("x^2 + y^2")
    assert isinstance(land, ExprLandscape)
    assert land.domain == ((-5.0, 5.0), (-5.0, 5.0))
    assert land.minima == [] and land.saddles == []
    assert "x^2 + y^2" in land.description and land.text == "x^2 + y^2"
    assert len(land.default_start) == 2
    assert parse_expression("x", domain=(-1, 2)).domain == ((-1.0, 2.0),)
    assert parse_expression("x+y", domain=[(-1, 2), (0, 3)]).domain == ((-1.0, 2.0), (0.0, 3.0))
    for bad in [(2, 1), [(0, 1)], (0, float("inf")), "wide"]:
        with pytest.raises(ValueError, match="domain"):
            parse_expression("x+y", domain=bad)
    index, dist = land.nearest_minimum(np.zeros((3, 2)))
    assert np.all(index == -1) and np.all(np.isinf(dist))


def test_limits() -> None:
    ok = "x+" * 49 + "x"  # 99 tokens, 99 characters
    assert parse_expression(ok).dim == 1
    assert parse_expression("(" * MAX_DEPTH + "x" + ")" * MAX_DEPTH).dim == 1
    assert parse_expression("x" + " " * (MAX_LENGTH - 1)).dim == 1
    assert len(tokenize("x+" * 50)) == MAX_TOKENS + 1  # 100 tokens and the end marker


# -- errors ---------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("os.system('x')", "unknown name 'os' at column 1", 1),
        ("__import__('os')", "unknown name '__import__' at column 1", 1),
        ("x +", "unexpected end of expression at column 4", 4),
        ("(x", "expected ')' to close '(' at column 1, found end of expression at column 3", 1),
        ("sin(x", "expected ')' to close '(' at column 4, found end of expression at column 6", 4),
        ("(x y)", "expected ')' to close '(' at column 1, found 'y' at column 4", 1),
        ("x)", "unexpected ')' at column 2", 2),
        ("sin x", "expected '(' after 'sin' at column 5, found 'x'", 5),
        ("y z", "unknown name 'z' at column 3", 3),
        ("x y", "unexpected 'y' at column 3", 3),
        ("1e", "malformed number '1e' at column 1", 1),
        ("2 * 3e+", "malformed number '3e+' at column 5", 5),
        ("2x", "unexpected 'x' at column 2", 2),
        ("2exp(x)", "unexpected 'exp' at column 2", 2),
        ("1.2.3", "unexpected '.3' at column 4", 4),
        ("x @ y", "unexpected character '@' at column 3", 3),
        ("x; y", "unexpected character ';' at column 2", 2),
        ("max(x, y)", "unknown name 'max' at column 1", 1),
        ("X", "unknown name 'X' at column 1 (did you mean 'x'?)", 1),
        ("sinn(x)", "unknown name 'sinn' at column 1 (did you mean 'sin'?)", 1),
        ("*x", "unexpected '*' at column 1", 1),
        ("x**", "unexpected end of expression at column 4", 4),
        ("x * * 2", "unexpected '*' at column 5", 5),
        ("sin()", "unexpected ')' at column 5", 5),
        ("()", "unexpected ')' at column 2", 2),
        ("x(2)", "unexpected '(' at column 2", 2),
        ("pi(2)", "unexpected '(' at column 3", 3),
        ("1/0 + x", "division by zero at column 2", 2),
        ("x/(2-2)", "division by zero at column 2", 2),
        ("log(0) + x", "the constant subexpression at column 1 is not a finite real number", 1),
        ("sqrt(-1)*x", "the constant subexpression at column 1 is not a finite real number", 1),
        ("(-8)^(1/3) + x", "the constant subexpression at column 5 is not a finite real number", 5),
        ("exp(1000)*x", "the constant subexpression at column 1 is not a finite real number", 1),
        ("1e999*x", "number '1e999' at column 1 is too large", 1),
        ("x/(x-x)", "expression is undefined everywhere", None),
        ("", "expression is empty", None),
        ("  \t ", "expression is empty", None),
        ("x" * 201, "expression longer than 200 characters (got 201)", None),
        ("(" * 40 + "x" + ")" * 40, "expression nested deeper than 32 levels at column 33", 33),
        ("-" * 33 + "x", "expression nested deeper than 32 levels at column 33", 33),
        ("x+" * 50 + "x", "expression has more than 100 tokens (token 101 at column 101)", 101),
        ("x^" * 40 + "x", "expression nested deeper than 32 levels at column 66", 66),
        ("x^" * 30 + "x", "expression too complex to differentiate", None),
    ],
)
def test_error_messages(text: str, message: str, column: int | None) -> None:
    with pytest.raises(ExpressionError) as info:
        parse_expression(text)
    assert str(info.value).startswith(message), str(info.value)
    assert info.value.column == column
    assert isinstance(info.value, ValueError)


def test_non_string_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        parse_expression(3)  # type: ignore[arg-type]


# -- fuzzing --------------------------------------------------------------------------------------
POINTS = np.array([[0.5, -1.5], [2.0, 0.25], [-3.0, 4.0]])


def _exercise(text: str) -> None:
    try:
        land = parse_expression(text)
    except ExpressionError as exc:
        assert str(exc)
        return
    x = POINTS[:, : land.dim]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        v, g, H = land.value(x), land.grad(x), land.hessian(x)
    assert v.shape == (3,) and g.shape == x.shape and H.shape == (3, land.dim, land.dim)
    assert v.dtype == g.dtype == H.dtype == np.float64


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text(max_size=60))
def test_fuzz_arbitrary_text(text: str) -> None:
    _exercise(text)


EXPRESSION_ALPHABET = "xy()+-*/^.e0123456789 "


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.text(alphabet=EXPRESSION_ALPHABET, max_size=30)
    | st.lists(
        st.sampled_from(
            [
                "x",
                "y",
                "(",
                ")",
                "+",
                "-",
                "*",
                "/",
                "**",
                "^",
                "2",
                "0.5",
                "1e-3",
                "pi",
                "e",
                "sin(",
                "log(",
                "sqrt(",
                "abs(",
                "exp(",
                "atan(",
                " ",
            ]
        ),
        max_size=14,
    ).map("".join)
)
def test_fuzz_expression_like_text(text: str) -> None:
    _exercise(text)


LEAVES = st.sampled_from(["x", "y", "2", "0.5", "3.25", "pi", "e", "1e-2"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/", "^"]), children).map(
        lambda t: f"({t[0]}{t[1]}{t[2]})"
    )
    unary = st.tuples(st.sampled_from(["-", "sin", "cos", "exp", "log", "sqrt", "abs", "tanh", "atan"]), children).map(
        lambda t: f"-({t[1]})" if t[0] == "-" else f"{t[0]}({t[1]})"
    )
    return binary | unary


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.recursive(LEAVES, _combine, max_leaves=6))
def test_fuzz_valid_grammar(text: str) -> None:
    # grammatical expressions either compile or are refused for a folded constant (e.g. log(-2))
    try:
        land = parse_expression(text)
    except ExpressionError as exc:
        assert "constant subexpression" in str(exc) or "division by zero" in str(exc) or "undefined" in str(exc)
        return
    _exercise(text)
    assert land.dim == (2 if "y" in text else 1)


# -- safety ---------------------------------------------------------------------------------------
FORBIDDEN_NAMES = {"eval", "exec", "compile", "__import__", "sympify", "parse_expr", "S", "getattr", "globals"}


@pytest.mark.parametrize("module", [expr_module, symbolic_module, printer_module])
def test_no_eval_exec_or_string_parsing(module: object) -> None:
    source = inspect.getsource(module)  # type: ignore[arg-type]
    for pattern in (r"\bsympify\b", r"\bparse_expr\b", r"\beval\s*\(", r"\bexec\s*\(", r"__import__"):
        assert not re.search(pattern, source), pattern
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES, node.id
        if isinstance(node, ast.Attribute) and node.attr in {"sympify", "parse_expr", "eval", "exec"}:
            pytest.fail(f"forbidden attribute {node.attr}")
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "S":
            pytest.fail("sympy.S(...) parses strings")


def test_program_text_is_checked_before_it_runs() -> None:
    """The one ``exec`` (NumPy's binding of a program) runs text the printer made from the SymPy tree
    and the checker accepted: only arithmetic and the program's own functions, no builtins."""
    source = inspect.getsource(program_module)
    assert source.count("exec(") == 1 and '"__builtins__": {}' in source
    for hostile in ("__import__('os').system('true')", "open('x')", "x0.__class__", "eval('1')", "[x0][0]"):
        with pytest.raises(ProgramError):
            PointProgram(1, f"def value_grad(x0):\n    return x0, {hostile}\n", "def grad(x0):\n    return x0,\n")
    for text in ["x^2 + y", "sin(x)*y", "abs(x - 1)"]:
        program = parse_expression(text).program()
        assert all(name in ARITY or name.startswith(("x", "t")) for name in _names(program.source))


def _names(source: str) -> set[str]:
    return {n.id for n in ast.walk(ast.parse(source)) if isinstance(n, ast.Name)}
