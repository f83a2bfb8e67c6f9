"""Compiled landscapes: the fused path runs the landscape's point program, bit for bit when it is exact.

The contract (see :mod:`gdlab.landscapes.program` and :mod:`gdlab.fast.landscape_codegen`): a program
without transcendental functions gives the same bits compiled as NumPy gives on arrays of any shape
and on single points; with them, the two agree to ``|a − b| ≤ INEXACT_ATOL + INEXACT_RTOL·|b|``
(1e-13 each) elementwise, with NaN and infinities in the same places.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gdlab.fast import landscape_codegen as lc
from gdlab.landscapes import LANDSCAPES, Landscape, make_landscape, parse_expression
from gdlab.landscapes.program import INEXACT_ATOL, INEXACT_RTOL, MAX_PROGRAM_DIM

#: The built-in landscapes whose programs use only + − × ÷ √ and exact primitives (polynomials, quadratics).
EXACT = {
    "sphere", "elliptic", "quadratic", "rosenbrock", "beale", "himmelblau", "booth", "matyas", "goldstein_price",
    "styblinski_tang", "six_hump_camel", "three_hump_camel", "saddle", "monkey_saddle", "double_well",
}  # fmt: skip
#: The ones with cos, sin or exp in their formula.
INEXACT = {"rastrigin", "ackley", "mccormick", "levi13", "easom", "two_wells"}
N_D = ("rosenbrock", "rastrigin", "ackley", "styblinski_tang", "sphere", "quadratic")

CASES: list[tuple[str, dict]] = [(name, {}) for name in LANDSCAPES] + [
    (name, {"dim": d}) for d in (3, 10) for name in N_D
]
IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CASES]


@functools.cache
def _make(name: str, frozen: tuple) -> Landscape:
    return make_landscape(name, **dict(frozen))


@pytest.fixture(params=CASES, ids=IDS)
def land(request: pytest.FixtureRequest) -> Landscape:
    name, params = request.param
    return _make(name, tuple(sorted(params.items())))


def sample_points(land: Landscape, n: int = 3000, seed: int = 0) -> np.ndarray:
    """Points of the domain (and a quarter beyond it on each side), the listed critical points, the
    origin and the start, exact zeros of each coordinate (both signs), tiny, huge and non-finite
    coordinates."""
    d = land.dim
    rng = np.random.default_rng(seed)
    lo, hi = np.array(land.domain).T
    width = hi - lo
    parts = [lo + width * rng.uniform(-0.25, 1.25, size=(n, d)), np.zeros((1, d)), -np.zeros((1, d))]
    special = [land.default_start] + [p.location for p in (*land.minima, *land.saddles, *land.local_maxima)]
    parts.append(np.array(special, dtype=np.float64).reshape(-1, d))
    for j in range(d):
        for zero in (0.0, -0.0):
            block = parts[0][j * 8 : j * 8 + 8].copy()
            block[:, j] = zero
            parts.append(block)
    for scale in (5e-324, 1e-300, 1e-8, 1e154, 1e300):
        parts.append(scale * rng.choice([-1.0, 1.0], size=(4, d)))
    for bad in (np.inf, -np.inf, np.nan):
        block = parts[0][:3].copy()
        block[:, 0] = bad
        parts.append(block)
    return np.concatenate(parts)


def assert_agree(got: np.ndarray, ref: np.ndarray, exact: bool, what: str) -> None:
    """Bit for bit (signed zeros included; NaN where NaN) when ``exact``, else within the stated tolerance."""
    assert got.shape == ref.shape, what
    if exact:
        same = (got.view(np.int64) == ref.view(np.int64)) | (np.isnan(got) & np.isnan(ref))
        bad = ~same
        assert same.all(), f"{what}: {np.count_nonzero(bad)} differ, e.g. {got[bad][:3]} vs {ref[bad][:3]}"
    else:
        np.testing.assert_allclose(got, ref, rtol=INEXACT_RTOL, atol=INEXACT_ATOL, equal_nan=True, err_msg=what)


# -- which landscapes are exact --------------------------------------------------------------------
def test_exactness_of_the_built_in_landscapes() -> None:
    assert set(LANDSCAPES) == EXACT | INEXACT and not EXACT & INEXACT
    for name in LANDSCAPES:
        program = make_landscape(name).program()
        assert program is not None and program.exact == (name in EXACT), name
    for name in N_D:
        for d in (3, 10, MAX_PROGRAM_DIM):
            assert make_landscape(name, dim=d).program().exact == (name in EXACT), (name, d)


def test_code_for_and_compiled_exactness(land: Landscape) -> None:
    code = lc.code_for(land)
    assert isinstance(code, lc.LandscapeCode)
    assert code.program is land.program() and code.dim == land.dim
    assert lc.code_for(land) is code  # memoised
    compiled = lc.compile_landscape(land)
    assert compiled.exact == land.program().exact == code.exact
    assert lc.is_ready(code) and lc.is_cached(code)
    assert isinstance(compiled.value_grad_address, int) and isinstance(compiled.grad_address, int)
    assert compiled.value_grad_address != compiled.grad_address


# -- the contract ------------------------------------------------------------------------------------
def test_compiled_equals_the_numpy_program(land: Landscape) -> None:
    compiled = lc.compile_landscape(land)
    x = sample_points(land)
    f_ref, g_ref = land.value_and_grad(x)
    f, g = compiled.value_and_grad(x)
    assert_agree(f, f_ref, compiled.exact, "value")
    assert_agree(g, g_ref, compiled.exact, "gradient")
    assert_agree(compiled.grad(x), land.grad(x), compiled.exact, "grad only")
    # the gradient alone is value_grad without the value: the same numbers, compiled and in NumPy
    assert np.array_equal(compiled.grad(x), g, equal_nan=True)
    assert np.array_equal(land.grad(x), g_ref, equal_nan=True)
    assert np.array_equal(land.value(x), f_ref, equal_nan=True)


def test_the_reference_is_the_program(land: Landscape) -> None:
    x = sample_points(land, n=200, seed=1)
    f, g = land.program().value_and_grad(x)
    f_ref, g_ref = land.value_and_grad(x)
    assert np.array_equal(f, f_ref, equal_nan=True) and np.array_equal(g, g_ref, equal_nan=True)


def test_the_listed_points_are_the_same_numbers_compiled(land: Landscape) -> None:
    """Minima, saddles, maxima and the origin: values and (vanishing) gradients."""
    points = [p.location for p in (*land.minima, *land.saddles, *land.local_maxima)] + [(0.0,) * land.dim]
    x = np.array(points, dtype=np.float64)
    compiled = lc.compile_landscape(land)
    f, g = compiled.value_and_grad(x)
    f_ref, g_ref = land.value_and_grad(x)
    assert_agree(f, f_ref, compiled.exact, "value")
    assert_agree(g, g_ref, compiled.exact, "gradient")
    for p, value in zip([*land.minima, *land.saddles, *land.local_maxima], f, strict=False):
        assert value == pytest.approx(p.value, rel=1e-10, abs=1e-10)


def test_ackley_cusp_compiled() -> None:
    for d in (2, 3, 10):
        compiled = lc.compile_landscape(make_landscape("ackley", dim=d))
        _, g = compiled.value_and_grad(np.zeros((2, d)))
        assert np.array_equal(g, np.zeros((2, d)))
        assert np.array_equal(compiled.grad(np.zeros((1, d))), np.zeros((1, d)))


# -- compiled_objective: the reference engine on the compiled code -----------------------------------
@pytest.mark.parametrize("shape", [(), (1,), (7,), (3, 5), (2, 1, 4)])
@pytest.mark.parametrize("name", ["rosenbrock", "himmelblau", "ackley", "double_well", "quadratic"])
def test_compiled_objective_any_batch_shape(name: str, shape: tuple[int, ...]) -> None:
    land = make_landscape(name)
    twin = lc.compiled_objective(land)
    assert type(twin) is type(land) and twin is not land
    assert (twin.name, twin.dim, twin.domain, twin.minima, twin.saddles) == (
        land.name, land.dim, land.domain, land.minima, land.saddles,
    )  # fmt: skip
    assert twin.get_params() == land.get_params() and twin.program() is land.program()
    assert lc.code_for(twin) is lc.code_for(land)
    rng = np.random.default_rng(3)
    lo, hi = np.array(land.domain).T
    x = lo + (hi - lo) * rng.uniform(size=shape + (land.dim,))
    exact = land.program().exact
    f, g = twin.value_and_grad(x)
    assert f.shape == shape and g.shape == x.shape
    compiled = lc.compile_landscape(land)
    f_c, g_c = compiled.value_and_grad(x.reshape(-1, land.dim))
    assert np.array_equal(f.ravel(), f_c) and np.array_equal(g.reshape(-1, land.dim), g_c)
    assert np.array_equal(twin.value(x), f) and np.array_equal(twin.grad(x), g)
    f_ref, g_ref = land.value_and_grad(x)
    assert_agree(f, f_ref, exact, "value")
    assert_agree(g, g_ref, exact, "gradient")
    np.testing.assert_array_equal(twin.hessian(x), land.hessian(x))
    with pytest.raises(ValueError, match="coordinate"):
        twin.value(np.zeros(land.dim + 1))


# -- what has no compiled form -------------------------------------------------------------------------
def test_reasons_without_compiled_form() -> None:
    from gdlab.core.objective import Quadratic

    assert "not a gdlab landscape" in lc.code_for(Quadratic(np.eye(2)))
    wide = make_landscape("rosenbrock", dim=lc.MAX_DIM + 1)
    assert wide.program() is None and "dimensions" in lc.code_for(wide)
    with pytest.raises(lc.CodegenError, match="dimensions"):
        lc.compile_landscape(wide)
    with pytest.raises(lc.CodegenError):
        lc.compiled_objective(wide)
    odd = parse_expression("sqrt(-x^2) + y")  # SymPy writes it with the imaginary unit
    reason = lc.code_for(odd)
    assert isinstance(reason, str) and "not a real number" in reason
    assert lc.MAX_DIM == MAX_PROGRAM_DIM == 16


def test_wide_landscapes_keep_their_vectorised_evaluation() -> None:
    from gdlab.core.objective import Rosenbrock as CoreRosenbrock

    land = make_landscape("rosenbrock", dim=20)
    x = np.random.default_rng(0).uniform(-2, 2, (6, 20))
    assert np.array_equal(land.value(x), CoreRosenbrock().value(x))
    assert np.array_equal(land.grad(x), CoreRosenbrock().grad(x))


# -- properties --------------------------------------------------------------------------------------------
def _coordinate(land: Landscape, j: int) -> st.SearchStrategy[float]:
    lo, hi = land.domain[j]
    width = hi - lo
    return st.floats(lo - width, hi + width) | st.sampled_from([0.0, -0.0, 1e-300, -1e-300, 1e150, -1e150])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from([c for c in CASES if c[0] in EXACT]), st.data())
def test_exact_programs_batch_point_and_compiled_agree(case: tuple[str, dict], data: st.DataObject) -> None:
    """For an exact program, a batch, each point alone (0-d arrays) and the compiled code are the same bits."""
    land = _make(case[0], tuple(sorted(case[1].items())))
    points = data.draw(
        st.lists(st.tuples(*[_coordinate(land, j) for j in range(land.dim)]), min_size=1, max_size=9)
    )
    x = np.array(points, dtype=np.float64)
    f, g = land.value_and_grad(x)
    for i, p in enumerate(x):
        fi, gi = land.value_and_grad(p)
        assert fi.shape == ()
        assert_agree(fi.reshape(1), f[i : i + 1], True, "value at a point")
        assert_agree(gi, g[i], True, "gradient at a point")
    f_c, g_c = lc.compile_landscape(land).value_and_grad(x)
    assert_agree(f_c, f, True, "compiled value")
    assert_agree(g_c, g, True, "compiled gradient")


_LEAVES = st.sampled_from(["x", "y", "2", "0.5", "3", "1.25"])


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    binary = st.tuples(children, st.sampled_from(["+", "-", "*", "/"]), children).map(lambda t: f"({t[0]}{t[1]}{t[2]})")
    power = st.tuples(children, st.sampled_from(["2", "3", "5", "-1", "-2"])).map(lambda t: f"({t[0]})^({t[1]})")
    unary = st.tuples(st.sampled_from(["-", "abs"]), children).map(
        lambda t: f"-({t[1]})" if t[0] == "-" else f"{t[0]}({t[1]})"
    )
    return binary | power | unary


_FORMULAS = st.recursive(_LEAVES, _combine, max_leaves=5)


@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.tuples(_FORMULAS, _FORMULAS).map(lambda t: f"{t[0]} - {t[1]}*(x - y)"))
def test_typed_arithmetic_compiles_exactly(text: str) -> None:
    """Typed rational functions (+ − × ÷, integer powers) with abs are exact programs (roots of
    roots are general powers: sqrt is covered by the fixed formulas)."""
    land = parse_expression(text, domain=(-3, 3))
    program = land.program()
    if program is None:  # a formula SymPy folds into something without a real program
        return
    assert program.exact, program.source
    x = sample_points(land, n=300, seed=4)
    f_ref, g_ref = land.value_and_grad(x)
    f, g = lc.compile_landscape(land).value_and_grad(x)
    assert_agree(f, f_ref, True, f"value of {text}")
    assert_agree(g, g_ref, True, f"gradient of {text}")



TYPED = [
    "sin(x)*cos(y) + x^2/10",
    "exp(-(x^2 + y^2)/4) * (x - 2*y)",
    "log(1 + x^2 + y^2) + sqrt(1 + x^2) * tanh(y)",
    "atan(x*y) + cosh(y/3) - sinh(x/4)",
    "2^x * 3^(y/2) + x^1.5",
    "log10(2 + sin(x)) * asin(y/6) + acos(x/6) + tan(x/3)",
    "abs(x - 1) + sqrt(x^2 + y^2) - 1/(1 + y^2)",
]


@pytest.mark.parametrize("text", TYPED)
def test_typed_formulas_compiled(text: str) -> None:
    """Every function a formula may use, compiled: within the tolerance (or exact without transcendentals)."""
    land = parse_expression(text)
    compiled = lc.compile_landscape(land)
    assert compiled.exact == land.program().exact == (text == TYPED[-1])
    x = sample_points(land, n=2000, seed=5)
    f_ref, g_ref = land.value_and_grad(x)
    f, g = compiled.value_and_grad(x)
    assert_agree(f, f_ref, compiled.exact, "value")
    assert_agree(g, g_ref, compiled.exact, "gradient")


def test_primitives_compiled_exactly() -> None:
    """select, maximum, sign, absolute and sqrt on signed zeros, infinities, NaN and subnormals."""
    from gdlab.landscapes.program import PointProgram, StraightLine

    body = StraightLine(
        (("t0", "x0 > x1"),),
        (
            "select(t0, x0, -x1) + maximum(x0, x1)",
            "maximum(x1, x0) - sign(x0)",
            "select(x0 <= 0.0, sqrt(x1), absolute(x0))*sign(x1)",
        ),
    )
    program = PointProgram.from_value_grad(2, body)
    assert program.exact
    special = np.array([0.0, -0.0, 1.0, -1.0, 2.5, np.inf, -np.inf, np.nan, 5e-324, -1e-310])
    x = np.stack(np.meshgrid(special, special), axis=-1).reshape(-1, 2)
    compiled = lc.compile_code(lc.LandscapeCode(program, lc.module_text(program)))
    f, g = compiled.value_and_grad(x)
    f_ref, g_ref = program.value_and_grad(x)
    assert_agree(f, f_ref, True, "value")
    assert_agree(g, g_ref, True, "gradient")
    assert_agree(compiled.grad(x), program.grad(x), True, "grad only")
    for i, p in enumerate(x):  # NumPy on single points: the same
        fi, gi = program.value_and_grad(p)
        assert_agree(fi.reshape(1), f_ref[i : i + 1], True, "value at a point")
        assert_agree(gi, g_ref[i], True, "gradient at a point")
