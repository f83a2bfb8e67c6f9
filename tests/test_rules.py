"""The one-rule design: every elementwise optimizer is one declaration, run by generic executors.

Checks the declarations themselves (one file each, exact operations only, math in the docstring),
that the executors name no optimizer, that a rule written outside gdlab runs on every path, that
hyperparameters are validated once and shown by ``help``, Lion against the paper, and the fixes of
batched SGD momentum found by the checks against torch.optim.
"""

from __future__ import annotations

import ast
import inspect
import pydoc
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from helpers import run_stream

import gdlab
from gdlab.core import elementwise, hyper
from gdlab.core.hyper import Hyper
from gdlab.core.optimizers import OPTIMIZERS, make_optimizer
from gdlab.core.rule import Buffer, Hypers, Rule, value_names
from gdlab.core.rules import RULES
from gdlab.core.rules.common import MAXIMIZE, lr
from gdlab.engine.run import run_batch
from gdlab.landscapes import make_landscape

PACKAGE = Path(gdlab.__file__).parent


def _body_functions(cls: type[Rule]) -> list[Any]:
    """The element body, the look-ahead and every helper they call (recursively)."""
    found: list[Any] = []
    todo = [f for f in (cls.element, cls.lookahead) if f is not None]
    while todo:
        fn = todo.pop()
        if fn in found:
            continue
        found.append(fn)
        for name in fn.__code__.co_names:
            value = fn.__globals__.get(name)
            if value in elementwise.HELPERS:
                todo.append(value)
    return found


# -- the declarations ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", sorted(RULES))
def test_each_rule_is_one_file(name: str) -> None:
    cls = RULES[name]
    assert cls.__module__ == f"gdlab.core.rules.{name}"
    assert OPTIMIZERS[name] is cls
    assert cls.__doc__ and ".. math::" in cls.__doc__  # the update rule, as torch.optim documents it
    assert cls.element.__doc__  # the element body states its math too
    expected = ("param", "grad", *(b.name for b in cls.buffers))
    assert inspect.getfullargspec(cls.element).args[: len(expected)] == list(expected)


@pytest.mark.parametrize("name", sorted(RULES))
def test_element_bodies_use_only_exact_operations(name: str) -> None:
    """Only + − × ÷, comparisons, the primitives of gdlab.core.elementwise and helpers written the same
    way (so NumPy and the compiled code give the same bits); no literal in arithmetic (float32 would
    round it differently); no power operator."""
    for fn in _body_functions(RULES[name]):
        helpers = {n for n in fn.__code__.co_names if fn.__globals__.get(n) in elementwise.HELPERS}
        definition = ast.parse(textwrap.dedent(inspect.getsource(fn))).body[0]
        assert isinstance(definition, ast.FunctionDef)
        nodes = [n for statement in definition.body for n in ast.walk(statement)]
        known = {a.arg for a in definition.args.args} | {n.id for n in nodes if isinstance(n, ast.Name)
                                                          and isinstance(n.ctx, ast.Store)}
        for node in nodes:
            if isinstance(node, ast.Call):
                assert isinstance(node.func, ast.Name), ast.unparse(node)
                assert node.func.id in set(elementwise.PRIMITIVES) | helpers, ast.unparse(node)
            if isinstance(node, ast.BinOp):
                assert not isinstance(node.op, ast.Pow | ast.Mod | ast.FloorDiv), ast.unparse(node)
                for side in (node.left, node.right):
                    assert not isinstance(side, ast.Constant), f"literal in arithmetic: {ast.unparse(node)}"
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load):
                assert node.id in known | set(elementwise.PRIMITIVES) | helpers, node.id


def test_the_executors_name_no_optimizer() -> None:
    """The NumPy executor, the step kernels and the trajectories are generic: no rule is named in their
    code (identifiers, imports, strings outside docstrings)."""
    names = {n.lower() for n in RULES} | {cls.__name__.lower() for cls in RULES.values()}
    for path in ("core/rule.py", "core/optimizer.py", "fast/kernels.py", "fast/steps.py", "fast/trajectory.py",
                 "engine/reference.py"):
        tree = ast.parse((PACKAGE / path).read_text())
        docstrings = {id(node.body[0].value) for node in ast.walk(tree)
                      if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef) and node.body
                      and isinstance(node.body[0], ast.Expr) and isinstance(node.body[0].value, ast.Constant)}
        for node in ast.walk(tree):
            words: list[str] = []
            if isinstance(node, ast.Name):
                words = [node.id]
            elif isinstance(node, ast.Attribute):
                words = [node.attr]
            elif isinstance(node, ast.ImportFrom):
                words = (node.module or "").split(".")
            elif isinstance(node, ast.Constant) and isinstance(node.value, str) and id(node) not in docstrings:
                words = node.value.replace(".", " ").replace("'", " ").split()
            for word in words:
                assert word.lower() not in names, f"{path} names {word!r}"


# -- a rule written outside gdlab runs on every path ------------------------------------------------------------


class SignSGD(Rule):
    r"""signSGD with momentum (Bernstein et al. 2018), written as a user would.

    .. math::
        m_t \leftarrow \beta m_{t-1} + (1-\beta) g,\qquad \theta_t \leftarrow \theta_{t-1} - \eta\,\mathrm{sign}(m_t)
    """

    name = "signsgd"
    hyperparams = (lr(0.01), Hyper("beta", 0.9, low=0.0, high=1.0, high_open=True), MAXIMIZE)
    buffers = (Buffer("momentum_buffer"),)

    def options(self) -> dict[str, bool]:
        return {"maximize": self.maximize}

    def constants(self, h: Hypers) -> dict[str, Any]:
        return {"beta": h.beta, "one_minus_beta": 1.0 - np.asarray(h.beta)}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        return {"lr": lr}

    @staticmethod
    def element(param, grad, momentum_buffer, beta, one_minus_beta, lr, maximize):
        """``m = βm + (1 − β)g``; ``θ − η·sign(m)``."""
        g = -grad if maximize else grad
        m = momentum_buffer * beta + one_minus_beta * g
        return param - lr * elementwise.sign(m), m


def test_a_user_rule_runs_on_every_path() -> None:
    import gdlab.fast as fast

    opt = SignSGD(lr=0.05, beta=np.array([0.5, 0.9]))
    # reference, step by step, against the formula
    rng = np.random.default_rng(0)
    x0 = rng.normal(size=(2, 3))
    grads = rng.normal(size=(6, 2, 3))
    got = run_stream(opt, x0, grads)
    m, x = np.zeros((2, 3)), x0.copy()
    for g in grads:
        m = m * np.array([[0.5], [0.9]]) + np.array([[0.5], [0.1]]) * g
        x = x - 0.05 * np.sign(m)
    np.testing.assert_array_equal(got[-1], x)
    # the fused in-place kernel, bit for bit
    scalar = SignSGD(lr=0.05)
    p, q = rng.normal(size=(3, 1000)), None
    q = p.copy()
    sp, sq = scalar.init(p), scalar.init(q)
    for _ in range(4):
        g = rng.normal(size=p.shape)
        scalar.update_(g, sp, p, backend="fused")
        scalar.update_(g, sq, q, backend="reference")
    assert fast.explain(scalar, sp, p) == "fused" and p.tobytes() == q.tobytes()
    # the fused trajectories, bit for bit with the reference engine
    land = make_landscape("rosenbrock")
    starts = rng.uniform(-2, 2, size=(5, 2))
    fused = run_batch(land, opt, starts[:, None, :], steps=40, backend="fused")
    ref = run_batch(land, opt, starts[:, None, :], steps=40, backend="reference")
    assert fused.positions.tobytes() == ref.positions.tobytes()
    assert np.array_equal(fused.status_code, ref.status_code)


# -- validated once, at the boundary; explicit signatures ---------------------------------------------------------


def test_hyperparameters_are_checked_when_made_not_on_every_step(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    original = Hyper.validate

    def counting(self: Hyper, value: Any, owner: str) -> Any:
        calls.append(self.name)
        return original(self, value, owner)

    monkeypatch.setattr(Hyper, "validate", counting)
    opt = make_optimizer("adam", lr=0.1, betas=(0.8, 0.99))
    assert len(calls) == len(type(opt).hyperparams)
    calls.clear()
    p = np.ones((4, 3))
    state = opt.init(p)
    for _ in range(20):
        p, state, _ = opt.update(np.ones_like(p), state, p)
    assert calls == []
    opt.update(np.ones_like(p), state, p, lr=0.5)  # a per-call override is an input: checked
    assert calls == ["lr"]


@pytest.mark.parametrize("name", sorted(OPTIMIZERS))
def test_signatures_and_help_show_the_parameters(name: str) -> None:
    cls = OPTIMIZERS[name]
    if name == "sam":  # SAM's own signature: base, base_kwargs, then its own and the base's keywords
        assert list(inspect.signature(cls).parameters)[:2] == ["base", "base_kwargs"]
        return
    params = inspect.signature(cls).parameters
    assert [p.name for p in params.values()] == [s.name for s in cls.hyperparams]
    assert all(p.default == s.default for p, s in zip(params.values(), cls.hyperparams, strict=True))
    text = pydoc.render_doc(make_optimizer(name), renderer=pydoc.plaintext)
    for spec in cls.hyperparams:
        assert f"{spec.name} : " in text and spec.range_text() in text


def test_ranges_say_what_is_accepted() -> None:
    assert Hyper("x", 0.0, low=0.0).range_text() == "[0, inf)"  # inf itself is refused: the bound is open
    assert Hyper("x", 0.5, low=0.0, high=1.0, high_open=True).range_text() == "[0, 1)"
    assert Hyper("x", 0.5).range_text() == "(-inf, inf)"
    with pytest.raises(ValueError, match=r"expected \[0, inf\)"):
        make_optimizer("adam", weight_decay=-1.0)
    with pytest.raises(ValueError, match="must be finite"):
        make_optimizer("adam", weight_decay=float("inf"))
    assert hyper.signature_of((Hyper("a", 1.0), Hyper("b", True, kind="bool"))).parameters["b"].default is True


# -- Lion -------------------------------------------------------------------------------------------------------


def _lion_torch(x0: np.ndarray, grads: np.ndarray, lr: float, betas: tuple[float, float], wd: float) -> np.ndarray:
    """Lion from the paper's Algorithm 2, in torch (float64), as its reference implementation writes it."""
    p = torch.tensor(x0, dtype=torch.float64)
    m = torch.zeros_like(p)
    out = [p.clone()]
    for g in torch.tensor(grads, dtype=torch.float64):
        p.mul_(1 - lr * wd)
        update = (m * betas[0] + g * (1 - betas[0])).sign()
        p.add_(update, alpha=-lr)
        m.mul_(betas[1]).add_(g, alpha=1 - betas[1])
        out.append(p.clone())
    return torch.stack(out).numpy()


@pytest.mark.parametrize("wd", [0.0, 0.1])
@pytest.mark.parametrize("betas", [(0.9, 0.99), (0.5, 0.7)])
def test_lion_against_the_paper(wd: float, betas: tuple[float, float]) -> None:
    rng = np.random.default_rng(3)
    x0 = rng.normal(size=7)
    grads = rng.normal(size=(200, 7))
    got = run_stream(make_optimizer("lion", lr=1e-3, betas=betas, weight_decay=wd), x0, grads)
    np.testing.assert_allclose(got, _lion_torch(x0, grads, 1e-3, betas, wd), rtol=1e-12, atol=1e-15)


def test_lion_moves_every_coordinate_by_exactly_the_learning_rate() -> None:
    opt = make_optimizer("lion", lr=0.25)
    p = np.array([1.0, -2.0, 3.0, 0.5])
    new, _, _ = opt.update(np.array([3.0, -1e-9, 0.0, 1e6]), opt.init(p), p)
    np.testing.assert_array_equal(new, [0.75, -1.75, 3.0, 0.25])  # sign(0) = 0: that coordinate stays
    maxi = make_optimizer("lion", lr=0.25, maximize=True)
    np.testing.assert_array_equal(maxi.update(np.array([3.0, -1.0, 0.0, 1.0]), maxi.init(p), p).params,
                                  [1.25, -2.25, 3.0, 0.75])


def test_lion_defaults_follow_the_paper() -> None:
    opt = make_optimizer("lion")
    assert opt.betas == (0.9, 0.99) and opt.weight_decay == 0.0 and opt.lr == 1e-4


# -- SGD with a batch of momenta ----------------------------------------------------------------------------------


def _torch_sgd(x0: np.ndarray, grads: np.ndarray, **kwargs: Any) -> np.ndarray:
    p = torch.tensor(x0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.SGD([p], **kwargs)
    for g in grads:
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
    return p.detach().numpy()


def test_sgd_batched_momentum_with_a_zero_row_and_dampening() -> None:
    """A run whose momentum is 0 steps as plain gradient descent, as it does alone and in torch
    (before the fix it took the damped buffer, (1 − τ)g, from step 2)."""
    rng = np.random.default_rng(1)
    x0 = rng.normal(size=(2, 4))
    grads = rng.normal(size=(5, 2, 4))
    opt = make_optimizer("sgd", lr=0.1, momentum=np.array([0.0, 0.9]), dampening=0.5)
    batched = run_stream(opt, x0, grads)[-1]
    for i, mu in enumerate((0.0, 0.9)):
        alone = run_stream(make_optimizer("sgd", lr=0.1, momentum=mu, dampening=0.5), x0[i], grads[:, i])[-1]
        np.testing.assert_array_equal(batched[i], alone)
        np.testing.assert_allclose(alone, _torch_sgd(x0[i], grads[:, i], lr=0.1, momentum=mu, dampening=0.5),
                                   rtol=1e-14)


def test_run_batch_with_a_zero_momentum_row_equals_the_runs_alone() -> None:
    land = make_landscape("elliptic")
    start = np.array([5.0, 5.0])
    momenta = np.array([0.0, 0.5, 0.9])
    for backend in ("reference", "fused"):
        batched = run_batch(land, make_optimizer("sgd", lr=0.01, momentum=momenta, dampening=0.3), start, steps=30,
                            backend=backend)
        for i, mu in enumerate(momenta):
            alone = run_batch(land, make_optimizer("sgd", lr=0.01, momentum=float(mu), dampening=0.3), start,
                              steps=30, backend="reference")
            np.testing.assert_array_equal(batched.positions[:, i], alone.positions)


@pytest.mark.parametrize("momentum", [0.0, np.array([0.0, 0.9]), np.array([[0.9], [0.0]])])
def test_sgd_nesterov_needs_momentum_in_every_run(momentum: Any) -> None:
    with pytest.raises(ValueError, match=r"nesterov=True requires momentum > 0 for every run, got momentum=0\.0"):
        make_optimizer("sgd", momentum=momentum, nesterov=True)
    with pytest.raises(ValueError, match="dampening = 0"):
        make_optimizer("sgd", momentum=0.9, nesterov=True, dampening=np.array([0.0, 0.1]))
    make_optimizer("sgd", momentum=np.array([0.5, 0.9]), nesterov=True)  # every run has momentum: fine


def test_value_names_follow_the_signature() -> None:
    assert value_names(RULES["adam"].element, RULES["adam"])[:3] == ("w", "one_minus_w", "beta2")
