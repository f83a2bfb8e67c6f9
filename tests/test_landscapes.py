"""Landscapes: exact derivatives (finite differences, SymPy), listed critical points, batching, registry."""

from __future__ import annotations

import ast
import functools
import json
import math
import re
import warnings

import numpy as np
import pytest
import sympy
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from scipy.optimize import minimize

from gdlab.core.objective import Rosenbrock as CoreRosenbrock
from gdlab.landscapes import (
    LANDSCAPES,
    Landscape,
    describe_landscape,
    list_landscapes,
    make_landscape,
)
from gdlab.landscapes.printer import program_from_sympy
from gdlab.landscapes.program import MAX_PROGRAM_DIM, PointProgram, ProgramError, StraightLine

# Every registered landscape with default parameters, plus N-D and parameterised variants.
CASES: list[tuple[str, dict]] = [(name, {}) for name in LANDSCAPES] + [
    ("rosenbrock", {"dim": 5}),
    ("quadratic", {"dim": 5, "condition": 100.0, "angle": 45.0}),
    ("quadratic", {"condition": 1000.0, "angle": -60.0}),
    ("sphere", {"dim": 5}),
    ("rastrigin", {"dim": 3}),
    ("ackley", {"dim": 3}),
    ("styblinski_tang", {"dim": 3}),
    ("two_wells", {"depth_a": 1.0, "depth_b": 1.5}),
]
IDS = [name + "".join(f"-{k}={v}" for k, v in params.items()) for name, params in CASES]


@functools.cache
def _make(name: str, frozen: tuple) -> Landscape:
    return make_landscape(name, **dict(frozen))


def get(case: tuple[str, dict]) -> Landscape:
    name, params = case
    return _make(name, tuple(sorted(params.items())))


@pytest.fixture(params=CASES, ids=IDS)
def land(request: pytest.FixtureRequest) -> Landscape:
    return get(request.param)


def points_in_domain(land: Landscape, n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    lo, hi = np.array(land.domain).T
    return lo + (hi - lo) * rng.uniform(0.02, 0.98, size=(n, land.dim))


def fd_grad(land: Landscape, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    g = np.zeros_like(x)
    for i in range(x.shape[-1]):
        e = np.zeros_like(x)
        e[..., i] = h
        # fourth-order central difference
        g[..., i] = (-land.value(x + 2 * e) + 8 * land.value(x + e) - 8 * land.value(x - e) + land.value(x - 2 * e)) / (
            12 * h
        )
    return g


def fd_hessian(land: Landscape, x: np.ndarray, h: float = 1e-5) -> np.ndarray:
    d = x.shape[-1]
    H = np.zeros(x.shape + (d,))
    for j in range(d):
        e = np.zeros_like(x)
        e[..., j] = h
        H[..., :, j] = (-land.grad(x + 2 * e) + 8 * land.grad(x + e) - 8 * land.grad(x - e) + land.grad(x - 2 * e)) / (
            12 * h
        )
    return H


def scale_of(a: np.ndarray) -> np.ndarray:
    return 1.0 + np.max(np.abs(a), axis=tuple(range(1, a.ndim)), keepdims=True)


def assert_within(error: np.ndarray, bound: np.ndarray) -> None:
    bound = np.broadcast_to(bound, error.shape)
    assert np.all(error < bound), f"worst error/bound ratio {np.max(error / bound):.3g}"


# -- exact derivatives ------------------------------------------------------------------------------
def test_gradient_matches_finite_differences(land: Landscape) -> None:
    x = points_in_domain(land, 16)
    g = land.grad(x)
    assert g.shape == x.shape
    fd = fd_grad(land, x)
    assert_within(np.abs(g - fd), 1e-6 * scale_of(g) * (1 + np.abs(land.value(x)))[:, None])


def test_hessian_matches_finite_differences_of_gradient(land: Landscape) -> None:
    x = points_in_domain(land, 16, seed=1)
    H = land.hessian(x)
    assert H.shape == x.shape + (land.dim,)
    np.testing.assert_allclose(H, np.swapaxes(H, -1, -2), rtol=1e-12, atol=1e-12)
    fd = fd_hessian(land, x)
    assert_within(np.abs(H - fd), 1e-5 * scale_of(H))


def test_derivatives_match_sympy(land: Landscape) -> None:
    expr, symbols = land.symbolic()
    f = sympy.lambdify(symbols, expr, modules="numpy")
    g = sympy.lambdify(symbols, [sympy.diff(expr, s) for s in symbols], modules="numpy")
    h = sympy.lambdify(symbols, [[sympy.diff(expr, a, b) for b in symbols] for a in symbols], modules="numpy")
    for p in points_in_domain(land, 4, seed=2):
        args = list(p)
        np.testing.assert_allclose(land.value(p), f(*args), rtol=1e-11, atol=1e-11)
        np.testing.assert_allclose(land.grad(p), np.array(g(*args), dtype=float), rtol=1e-10, atol=1e-10)
        np.testing.assert_allclose(land.hessian(p), np.array(h(*args), dtype=float), rtol=1e-10, atol=1e-9)


def test_value_and_grad_agree(land: Landscape) -> None:
    """``value`` and ``grad`` are ``value_and_grad``'s program pruned: the same numbers."""
    x = points_in_domain(land, 5, seed=3)
    v, g = land.value_and_grad(x)
    np.testing.assert_array_equal(v, land.value(x))
    np.testing.assert_array_equal(g, land.grad(x))


def test_batched_equals_per_point(land: Landscape) -> None:
    """Bit for bit when the program is exact; to rounding otherwise (NumPy's transcendental functions
    may take another code path on a single point)."""
    x = points_in_domain(land, 12, seed=4).reshape(3, 4, land.dim)
    v, g, H = land.value(x), land.grad(x), land.hessian(x)
    assert v.shape == (3, 4) and g.shape == x.shape and H.shape == (3, 4, land.dim, land.dim)
    tol = 0.0 if land.program().exact else 1e-14
    for i in range(3):
        for j in range(4):
            np.testing.assert_allclose(v[i, j], land.value(x[i, j]), rtol=tol, atol=tol)
            np.testing.assert_allclose(g[i, j], land.grad(x[i, j]), rtol=tol, atol=tol)
            np.testing.assert_allclose(H[i, j], land.hessian(x[i, j]), rtol=1e-14, atol=1e-14)
    # a single point gives a 0-d value
    assert land.value(x[0, 0]).shape == ()


def test_wrong_dimension_is_refused(land: Landscape) -> None:
    with pytest.raises(ValueError, match="coordinate"):
        land.value(np.zeros(land.dim + 1))


def test_no_warnings_far_away(land: Landscape) -> None:
    x = np.full((2, land.dim), 1e200)
    x[1] = -1e300
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        land.value(x), land.grad(x), land.hessian(x)


# -- metadata --------------------------------------------------------------------------------------
def test_metadata(land: Landscape) -> None:
    assert land.name in LANDSCAPES
    assert land.description and land.has_hessian
    assert len(land.domain) == land.dim and all(lo < hi for lo, hi in land.domain)
    assert len(land.default_start) == land.dim
    lo, hi = np.array(land.domain).T
    assert np.all((lo <= land.default_start) & (land.default_start <= hi))
    for p in [*land.minima, *land.saddles, *land.local_maxima]:
        assert len(p.location) == land.dim
    kinds = {p.kind for p in land.global_minima} | {p.kind for p in land.local_minima}
    assert kinds <= {"global minimum", "local minimum"}
    if land.global_minima:
        best = min(p.value for p in land.global_minima)
        assert all(p.value >= best - 1e-9 for p in land.minima)
        assert all(abs(p.value - best) < 1e-9 for p in land.global_minima)


def _tol(land: Landscape, loc: np.ndarray) -> float:
    return 1e-7 * (1.0 + float(np.max(np.abs(land.hessian(loc))))) * (1.0 + float(np.max(np.abs(loc))))


def test_minima_are_minima(land: Landscape) -> None:
    rng = np.random.default_rng(5)
    for p in land.minima:
        loc = np.array(p.location)
        assert land.value(loc) == pytest.approx(p.value, rel=1e-10, abs=1e-10), p
        assert np.max(np.abs(land.grad(loc))) < _tol(land, loc), p
        if land.smooth:
            eig = np.linalg.eigvalsh(land.hessian(loc))
            assert eig.min() > -1e-9 * (1 + eig.max()), (p, eig)
        for _ in range(2):
            start = loc + 0.01 * rng.standard_normal(land.dim)
            if land.smooth:
                res = minimize(
                    land.value,
                    start,
                    jac=land.grad,
                    hess=land.hessian,
                    method="trust-exact",
                    options={"gtol": 1e-10, "initial_trust_radius": 0.01},
                )
            else:
                res = minimize(land.value, start, method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-14})
            assert np.max(np.abs(res.x - loc)) < 1e-4, (p, res.x)


def test_saddles_and_maxima(land: Landscape) -> None:
    for p in [*land.saddles, *land.local_maxima]:
        loc = np.array(p.location)
        assert land.value(loc) == pytest.approx(p.value, rel=1e-10, abs=1e-10), p
        assert np.max(np.abs(land.grad(loc))) < _tol(land, loc), p
        # look around on a small sphere
        rng = np.random.default_rng(6)
        u = rng.standard_normal((256, land.dim))
        u /= np.linalg.norm(u, axis=1, keepdims=True)
        around = land.value(loc + 1e-3 * u) - land.value(loc)
        if p.kind == "saddle":
            assert around.min() < 0 < around.max(), p
        else:
            assert p.kind == "local maximum"
            assert around.max() < 0, p
            assert np.linalg.eigvalsh(land.hessian(loc)).max() < 0


def test_nearest_minimum(land: Landscape) -> None:
    x = points_in_domain(land, 6, seed=7).reshape(2, 3, land.dim)
    index, dist = land.nearest_minimum(x)
    assert index.shape == (2, 3) and dist.shape == (2, 3)
    if not land.minima:
        assert np.all(index == -1) and np.all(np.isinf(dist))
        return
    centers = np.array([m.location for m in land.minima])
    for i in range(2):
        for j in range(3):
            d = np.linalg.norm(centers - x[i, j], axis=1)
            assert index[i, j] == np.argmin(d)
            assert dist[i, j] == pytest.approx(d.min())
    # at a listed minimum the distance is zero
    k = len(land.minima) - 1
    index, dist = land.nearest_minimum(np.array(land.minima[k].location))
    assert dist == 0.0 and land.minima[int(index)].location == land.minima[k].location


def test_nearest_minimum_of_nonfinite_point() -> None:
    land = make_landscape("himmelblau")
    index, dist = land.nearest_minimum(np.array([[np.nan, 0.0], [3.0, 2.0]]))
    assert index.tolist() == [-1, 0] and np.isnan(dist[0]) and dist[1] == 0.0


# -- particular landscapes --------------------------------------------------------------------------
def test_literature_minima() -> None:
    expected = {
        "sphere": [((0, 0), 0)],
        "elliptic": [((0, 0), 0)],
        "rosenbrock": [((1, 1), 0)],
        "beale": [((3, 0.5), 0)],
        "booth": [((1, 3), 0)],
        "matyas": [((0, 0), 0)],
        "goldstein_price": [((0, -1), 3)],
        "rastrigin": [((0, 0), 0)],
        "ackley": [((0, 0), 0)],
        "styblinski_tang": [((-2.903534, -2.903534), -78.33233)],
        "six_hump_camel": [((0.0898, -0.7126), -1.0316), ((-0.0898, 0.7126), -1.0316)],
        "three_hump_camel": [((0, 0), 0)],
        "mccormick": [((-0.54719, -1.54719), -1.9133)],
        "levi13": [((1, 1), 0)],
        "easom": [((math.pi, math.pi), -1)],
        "himmelblau": [
            ((3, 2), 0),
            ((-2.805118, 3.131312), 0),
            ((-3.779310, -3.283186), 0),
            ((3.584428, -1.848126), 0),
        ],
        "double_well": [((-math.sqrt(1.5),), -0.25), ((math.sqrt(1.5),), -0.25)],
    }
    for name, minima in expected.items():
        land = make_landscape(name)
        assert len(land.global_minima) == len(minima), name
        for (loc, value), p in zip(minima, land.global_minima, strict=True):
            np.testing.assert_allclose(p.location, loc, atol=1e-4, err_msg=name)
            assert p.value == pytest.approx(value, abs=1e-4), name
    assert make_landscape("saddle").minima == [] and make_landscape("monkey_saddle").minima == []
    assert [p.location for p in make_landscape("saddle").saddles] == [(0.0, 0.0)]
    assert [p.location for p in make_landscape("monkey_saddle").saddles] == [(0.0, 0.0)]
    assert make_landscape("double_well").local_maxima[0].location == (0.0,)
    assert len(make_landscape("six_hump_camel").local_minima) == 4
    assert [p.value for p in make_landscape("goldstein_price").local_minima] == [30.0, 84.0, 840.0]


def test_goldstein_price_points_are_exact() -> None:
    land = make_landscape("goldstein_price")
    expr, (x, y) = land.symbolic()
    grad = [sympy.diff(expr, v) for v in (x, y)]
    for p in [*land.minima, *land.saddles, *land.local_maxima]:
        at = {x: sympy.Rational(str(p.location[0])), y: sympy.Rational(str(p.location[1]))}
        assert expr.subs(at) == sympy.Rational(str(p.value))
        assert [g.subs(at) for g in grad] == [0, 0]


def test_elliptic_is_the_seeds_bowl() -> None:
    land = make_landscape("elliptic")
    x = points_in_domain(land, 10)
    np.testing.assert_allclose(land.value(x), x[:, 0] ** 2 + 10 * x[:, 1] ** 2, rtol=1e-14)
    assert land.default_start == (5.0, 5.0)


def test_double_well_is_the_seeds_function() -> None:
    land = make_landscape("double_well")
    x = np.linspace(-2.5, 2.5, 11)[:, None]
    np.testing.assert_allclose(land.value(x), x[:, 0] ** 4 - 3 * x[:, 0] ** 2 + 2, rtol=1e-14)
    np.testing.assert_allclose(land.grad(x), 4 * x**3 - 6 * x, rtol=1e-14, atol=1e-14)
    assert land.dim == 1 and land.default_start == (2.0,)


def test_quadratic_spectrum_and_rotation() -> None:
    for dim, kappa in ((2, 10.0), (5, 100.0)):
        land = make_landscape("quadratic", dim=dim, condition=kappa, angle=30.0)
        eig = np.linalg.eigvalsh(land.hessian(np.zeros(dim)))
        np.testing.assert_allclose(eig, kappa ** (np.arange(dim) / (dim - 1)), rtol=1e-12)
    land = make_landscape("quadratic", condition=10.0, angle=30.0)
    _, v = np.linalg.eigh(land.hessian(np.zeros(2)))
    flat = v[:, 0] * np.sign(v[0, 0])
    np.testing.assert_allclose(flat, [math.cos(math.radians(30)), math.sin(math.radians(30))], atol=1e-12)
    x = np.array([0.3, -1.2])
    assert land.value(x) == pytest.approx(0.5 * x @ land.hessian(x) @ x)


def test_rosenbrock_nd_matches_core_and_has_local_minimum() -> None:
    land = make_landscape("rosenbrock", dim=5)
    core = CoreRosenbrock()
    x = points_in_domain(land, 8)
    np.testing.assert_allclose(land.value(x), core.value(x), rtol=1e-14)  # the program sums in its own order
    np.testing.assert_allclose(land.grad(x), core.grad(x), rtol=1e-13, atol=1e-12)
    np.testing.assert_array_equal(land.hessian(x), core.hessian(x))
    wide = make_landscape("rosenbrock", dim=MAX_PROGRAM_DIM + 4)  # no program: the core's NumPy
    x = points_in_domain(wide, 8)
    np.testing.assert_array_equal(wide.value(x), core.value(x))
    np.testing.assert_array_equal(wide.grad(x), core.grad(x))
    assert land.global_minima[0].location == (1.0,) * 5
    (local,) = land.local_minima
    assert local.location[0] == pytest.approx(-1.0, abs=0.1) and local.value == pytest.approx(3.93, abs=0.01)
    assert make_landscape("rosenbrock").domain == ((-2.0, 2.0), (-1.0, 3.0))
    assert make_landscape("rosenbrock", dim=3).local_minima == []


def test_two_wells_critical_points() -> None:
    land = make_landscape("two_wells")
    (best,) = land.global_minima
    (other,) = land.local_minima
    (saddle,) = land.saddles
    assert best.location == pytest.approx((1.4633, 0.4878), abs=1e-3) and best.value == pytest.approx(-1.7561, abs=1e-3)
    assert other.location == pytest.approx((-1.4395, -0.4798), abs=1e-3) and other.value > best.value
    assert np.linalg.norm(saddle.location) < 0.1
    twin = make_landscape("two_wells", depth_a=1.2, depth_b=1.2)
    assert len(twin.global_minima) == 2 and twin.local_minima == []


def test_ackley_cusp() -> None:
    land = make_landscape("ackley")
    assert not land.smooth
    np.testing.assert_array_equal(land.grad(np.zeros(2)), [0.0, 0.0])
    H = land.hessian(np.zeros(2))
    assert np.all(np.isinf(np.diag(H))) and H[0, 1] == 0.0
    assert abs(float(land.value(np.zeros(2)))) < 1e-14


# -- registry --------------------------------------------------------------------------------------
def test_registry_names() -> None:
    assert list(LANDSCAPES) == [
        "sphere", "elliptic", "quadratic", "rosenbrock", "beale", "himmelblau", "booth", "matyas",
        "goldstein_price", "rastrigin", "ackley", "styblinski_tang", "six_hump_camel", "three_hump_camel",
        "mccormick", "levi13", "easom", "saddle", "monkey_saddle", "two_wells", "double_well",
    ]  # fmt: skip
    for name, cls in LANDSCAPES.items():
        assert cls.name == name


def test_unknown_landscape() -> None:
    with pytest.raises(ValueError, match=r"unknown landscape 'rosenbrok' \(did you mean 'rosenbrock'\?\); valid: "):
        make_landscape("rosenbrok")
    with pytest.raises(ValueError, match="sphere, elliptic"):
        make_landscape("nope")


@pytest.mark.parametrize(
    ("name", "params", "pattern"),
    [
        ("rosenbrock", {"dims": 3}, r"unknown hyperparameter 'dims' \(did you mean 'dim'\?\)"),
        ("rosenbrock", {"dim": 1}, r"dim=1 is out of range"),
        ("rosenbrock", {"dim": "three"}, r"dim must be an integer"),
        ("quadratic", {"condition": 0.5}, r"condition=0.5 is out of range"),
        ("quadratic", {"angle": float("nan")}, r"angle=nan must be finite"),
        ("quadratic", {"condition": [1.0, 2.0]}, r"condition must be a single number"),
        ("two_wells", {"depth_a": 0.0}, r"depth_a=0 is out of range"),
        ("beale", {"dim": 3}, r"unknown hyperparameter 'dim'"),
    ],
)
def test_bad_parameters(name: str, params: dict, pattern: str) -> None:
    with pytest.raises(ValueError, match=pattern):
        make_landscape(name, **params)


def test_describe_and_list_are_json_ready() -> None:
    infos = list_landscapes()
    assert [i["name"] for i in infos] == list(LANDSCAPES)
    json.dumps(infos)
    info = describe_landscape("quadratic", dim=3, condition=50.0)
    assert info["dim"] == 3 and len(info["domain"]) == 3 and info["params"]["condition"] == 50.0
    assert {p["name"] for p in info["parameters"]} == {"condition", "angle", "dim"}
    assert info["global_minima"] == [{"location": [0.0, 0.0, 0.0], "value": 0.0, "kind": "global minimum"}]
    for key in ("description", "default_start", "local_minima", "saddles", "local_maxima", "smooth"):
        assert key in info
    land = make_landscape("himmelblau")
    assert describe_landscape(land)["saddles"][0]["kind"] == "saddle"
    with pytest.raises(ValueError):
        describe_landscape(land, dim=2)
    json.dumps(describe_landscape("rosenbrock", dim=5))


# -- point programs --------------------------------------------------------------------------------
def test_programs_up_to_max_dim_and_memoised() -> None:
    for name in ("rosenbrock", "rastrigin", "ackley", "styblinski_tang", "sphere", "quadratic"):
        land = make_landscape(name, dim=MAX_PROGRAM_DIM)
        program = land.program()
        assert isinstance(program, PointProgram) and program.dim == MAX_PROGRAM_DIM
        assert make_landscape(name, dim=MAX_PROGRAM_DIM).program() is program  # memoised per parameters
        wide = make_landscape(name, dim=MAX_PROGRAM_DIM + 1)
        assert wide.program() is None and "at most 16" in wide.program_or_reason()
        x = points_in_domain(wide, 3)
        v, g = wide.value_and_grad(x)
        assert v.shape == (3,) and g.shape == x.shape and np.all(np.isfinite(g))
    assert make_landscape("quadratic", condition=5.0).program() is not make_landscape("quadratic").program()
    assert make_landscape("himmelblau").program() is make_landscape("himmelblau").program()


def test_programs_use_only_their_grammar(land: Landscape) -> None:
    program = land.program()
    assert "**" not in program.source and "np." not in program.source and "import" not in program.source
    if program.exact:
        assert "power(" not in program.source and "exp(" not in program.source


def test_quadratic_programs_are_written_out_from_the_matrix() -> None:
    land = make_landscape("quadratic", condition=10.0, angle=30.0)
    A = land.A
    source = land.program().value_grad_source
    assert repr(float(A[0, 0])) in source and repr(float(A[1, 1])) in source
    x = points_in_domain(land, 50)
    np.testing.assert_allclose(land.grad(x), x @ A.T, rtol=1e-14, atol=1e-14)
    np.testing.assert_allclose(land.value(x), 0.5 * np.einsum("ni,ij,nj->n", x, A, x), rtol=1e-13)
    assert make_landscape("saddle").program().value_grad_source.count("*x") == 2  # zero entries left out
    np.testing.assert_array_equal(land.hessian(x), np.broadcast_to(A, (50, 2, 2)))


def _x_y() -> tuple[sympy.Symbol, sympy.Symbol]:
    return sympy.Symbol("x", real=True), sympy.Symbol("y", real=True)


@pytest.mark.parametrize(
    ("power", "printed"),
    [
        (2, "x0*x0"),
        (3, "x0*(x0*x0)"),
        (-1, "1.0/x0"),
        (-3, "1.0/(x0*(x0*x0))"),
        (sympy.Rational(1, 2), "sqrt(x0)"),
        (-sympy.Rational(1, 2), "1.0/sqrt(x0)"),
        (sympy.Rational(3, 2), "power(x0, 1.5)"),
        (sympy.Float(0.3), "power(x0, 0.3)"),
    ],
)
def test_powers_are_printed_as_chains_roots_or_power(power: sympy.Expr, printed: str) -> None:
    x, _ = _x_y()
    program = program_from_sympy([x], x**power, [sympy.S.Zero])
    assert f"return {printed}, 0.0" in program.value_grad_source
    assert program.exact == ("power" not in printed)


def test_a_high_power_is_a_chain_of_squares() -> None:
    x, y = _x_y()
    source = program_from_sympy([x, y], x**4 + 2**y, [x**13, y]).value_grad_source
    assert "t0 = x0*x0" in source and "t1 = t0*t0" in source and "power(2.0, x1)" in source
    assert "x0*t1*(t1*t1)" in source  # 13 = 1 + 4 + 8


@pytest.mark.parametrize(
    ("expr", "words"),
    [
        (lambda x, y: sympy.sqrt(-(x**2)), "the constant I is not a real number"),
        (lambda x, y: x + sympy.nan, "not finite"),
        (lambda x, y: sympy.Min(x, y), "Min"),
        (lambda x, y: sympy.gamma(x), "gamma"),
        (lambda x, y: sympy.Piecewise((x, x > 0)), "undefined where no condition holds"),
        (lambda x, y: sympy.Piecewise((x, (x > 0) & (y > 0)), (y, True)), "not a comparison"),
        (lambda x, y: x + sympy.Symbol("z"), "unknown variable z"),
    ],
)
def test_printer_refuses_what_has_no_program_form(expr, words: str) -> None:
    x, y = _x_y()
    with pytest.raises(ProgramError, match=words):
        program_from_sympy([x, y], expr(x, y), [x, y])


@pytest.mark.parametrize(
    ("source", "words"),
    [
        ("def value_grad(x0):\n    return x0, 1\n", "only finite float literals"),
        ("def value_grad(x0):\n    return x0, 1e999\n", "only finite float literals"),
        ("def value_grad(x0):\n    return x0, x0**2.0\n", "not allowed"),
        ("def value_grad(x0):\n    return x0, x0.real\n", "not allowed"),
        ("def value_grad(x0):\n    return x0, np.exp(x0)\n", "not allowed"),
        ("def value_grad(x0):\n    return x0, open(x0)\n", "not allowed"),
        ("def value_grad(x0):\n    return x0, exp(x0, x0)\n", "takes 1 positional"),
        ("def value_grad(x0):\n    return x0, select(x0, x0, x0)\n", "not a comparison"),
        ("def value_grad(x0):\n    t0 = x0 > 0.0\n    return t0, x0\n", "not a number"),
        ("def value_grad(x0):\n    t0 = x0\n    t0 = 2.0*x0\n    return t0, x0\n", "assigned twice"),
        ("def value_grad(x0):\n    exp = x0\n    return exp, x0\n", "shadows"),
        ("def value_grad(x0):\n    return t0, x0\n", "not a number defined before"),
        ("def value_grad(x0):\n    import os\n    return x0, x0\n", "only 'name = expression'"),
        ("def value_grad(x0):\n    return (x0, x0)[0], x0\n", "not allowed"),
        ("def value_grad(x0):\n    return x0\n", "returning a tuple"),
        ("def value_grad(x0, x1):\n    return x0, x0\n", "expected 'def value_grad(x0):'"),
        ("@njit\ndef value_grad(x0):\n    return x0, x0\n", "expected 'def value_grad(x0):'"),
        ("def value_grad(x0):\n    return x0, x0\nimport os\n", "one function definition"),
        ("def value_grad(x0):\n    return x0,\n", "must return 2 value"),
        ("def value_grad(x0):\n    return x0, (x0 if x0 else x0)\n", "not allowed"),
        ("def value_grad(x0):\n    return x0, lambda: x0\n", "not allowed"),
    ],
)
def test_program_checker_refuses_anything_outside_the_grammar(source: str, words: str) -> None:
    with pytest.raises(ProgramError, match=re.escape(words)):
        PointProgram(1, source, "def grad(x0):\n    return x0,\n")


def test_program_exactness_is_derived_from_the_text() -> None:
    grad = "def grad(x0):\n    return sign(x0),\n"
    assert PointProgram(1, "def value_grad(x0):\n    return absolute(x0), sign(x0)\n", grad).exact
    assert not PointProgram(1, "def value_grad(x0):\n    return exp(x0), sign(x0)\n", grad).exact
    assert not PointProgram(1, "def value_grad(x0):\n    return x0, x0\n", "def grad(x0):\n    return log(x0),\n").exact
    line = StraightLine((("t0", "x0*x0"), ("t1", "t0*x0"), ("t2", "2.0*x0")), ("t1", "t2"))
    assert line.pick([1]) == StraightLine((("t2", "2.0*x0"),), ("t2",))
    assert line.pick([0]).statements == (("t0", "x0*x0"), ("t1", "t0*x0"))


# Exact rational evaluation: with constants that are doubles exactly, every literal of a program is
# exact, so a program free of square roots evaluated in fractions gives exactly the formula's value.
def _fraction_namespace() -> dict:
    from fractions import Fraction

    return {
        "F": Fraction,
        "select": lambda c, a, b: a if c else b,
        "absolute": abs,
        "sign": lambda v: Fraction(1) if v > 0 else (Fraction(-1) if v < 0 else v),
        "maximum": lambda a, b: a if a >= b else b,
    }


class _Exactly(ast.NodeTransformer):
    """Float literals → ``F(literal)`` (exact fractions)."""

    def visit_Constant(self, node: ast.Constant) -> ast.AST:
        return ast.Call(ast.Name("F", ast.Load()), [node], [])


def _run_in_fractions(source: str, args: list) -> tuple:
    tree = ast.fix_missing_locations(_Exactly().visit(ast.parse(source)))
    namespace = _fraction_namespace()
    exec(compile(tree, "<exact>", "exec"), namespace)
    return namespace["value_grad"](*args)


def _dyadic(expr: sympy.Expr) -> bool:
    """Every number of ``expr`` is a double exactly (p/2ᵏ with |p| < 2⁵³)."""
    return all(int(r.q) & (int(r.q) - 1) == 0 and abs(int(r.p)) < 2**53 for r in expr.atoms(sympy.Rational))


_X, _Y = _x_y()
_SYMPY_LEAVES = st.sampled_from([_X, _Y, sympy.Integer(2), sympy.Integer(-3), sympy.Rational(3, 4), sympy.Integer(5)])


def _sympy_combine(children: st.SearchStrategy) -> st.SearchStrategy:
    return st.one_of(
        st.tuples(children, children).map(lambda t: t[0] + t[1]),
        st.tuples(children, children).map(lambda t: t[0] - t[1]),
        st.tuples(children, children).map(lambda t: t[0] * t[1]),
        st.tuples(children, children).map(lambda t: t[0] / t[1]),
        st.tuples(children, st.sampled_from([2, 3, 4, 7, -1, -2])).map(lambda t: t[0] ** t[1]),
        children.map(sympy.Abs),
        children.map(sympy.sign),
        st.tuples(children, children).map(lambda t: sympy.Max(t[0], t[1])),
        st.tuples(children, children, children).map(lambda t: sympy.Piecewise((t[0], t[1] > t[2]), (t[2], True))),
    )


_SYMPY_EXPRS = st.recursive(_SYMPY_LEAVES, _sympy_combine, max_leaves=7)
_DYADIC_POINTS = st.tuples(*[st.integers(-64, 64).map(lambda k: sympy.Rational(k, 8))] * 2)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_SYMPY_EXPRS, min_size=3, max_size=3), st.lists(_DYADIC_POINTS, min_size=1, max_size=4))
def test_printed_programs_compute_the_formula_exactly(exprs: list, points: list) -> None:
    """The printer keeps the formula's algebra: in exact arithmetic the program is the formula."""
    from fractions import Fraction

    assume(all(_dyadic(e) and not e.has(sympy.zoo, sympy.nan, sympy.oo, -sympy.oo) for e in exprs))
    try:
        program = program_from_sympy([_X, _Y], exprs[0], exprs[1:])
    except ProgramError:
        assume(False)
        return
    assert program.exact
    for px, py in points:
        try:
            expected = [e.xreplace({_X: px, _Y: py}) for e in exprs]
        except (ValueError, TypeError):  # SymPy refuses Max(…, nan) and comparisons with zoo
            continue
        if any(not v.is_Rational for v in expected):  # a pole at this point
            continue
        try:
            got = _run_in_fractions(program.value_grad_source, [Fraction(int(px.p), int(px.q)),
                                                                Fraction(int(py.p), int(py.q))])
        except ZeroDivisionError:  # a removable singularity SymPy cancelled symbolically
            continue
        assert [Fraction(int(v.p), int(v.q)) for v in expected] == list(got), program.value_grad_source
