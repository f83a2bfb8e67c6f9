"""The one interface through which optimizers see a problem.

An :class:`Objective` answers, for parameters ``x`` of shape ``batch + (d,)``:

- ``value(x)``: the loss of each run, shape ``batch``;
- ``grad(x)``: the gradient, shape of ``x``;
- ``value_and_grad(x)``: both at once (override when sharing work is cheaper);
- ``hessian(x)``: the Hessian, shape ``batch + (d, d)``, where defined.

Optimizers that need more than the gradient at the current point (Nesterov's look-ahead, Newton,
L-BFGS's line search, SAM's perturbed point) ask the objective; callers never special-case them.
Landscapes, learning problems and custom expressions all implement this interface.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np


class Objective:
    """Base class of differentiable objectives. Subclasses implement ``value`` and ``grad``."""

    #: Whether :meth:`hessian` is available.
    has_hessian: bool = False
    #: Whether :meth:`value` is available (a bare gradient stream has none).
    has_value: bool = True

    def value(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} provides no loss value")

    def grad(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} provides no gradient")

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return self.value(x), self.grad(x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} provides no Hessian")


class FunctionObjective(Objective):
    """An objective from plain functions ``fun(x) -> loss``, ``grad(x)``, optional ``hess(x)``.

    The functions must follow the batch convention (last axis = parameters).
    """

    def __init__(
        self,
        fun: Callable[[np.ndarray], np.ndarray] | None,
        grad: Callable[[np.ndarray], np.ndarray],
        hess: Callable[[np.ndarray], np.ndarray] | None = None,
    ) -> None:
        self._fun, self._grad, self._hess = fun, grad, hess
        self.has_value = fun is not None
        self.has_hessian = hess is not None

    def value(self, x: np.ndarray) -> np.ndarray:
        if self._fun is None:
            return super().value(x)
        return self._fun(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self._grad(x)

    def hessian(self, x: np.ndarray) -> np.ndarray:
        if self._hess is None:
            return super().hessian(x)
        return self._hess(x)


class GivenGradient(Objective):
    """A gradient supplied from outside (e.g. a data stream): ``grad`` returns it whatever ``x`` is.

    Lets gradient-only optimizers run through the common :meth:`Optimizer.step` path on streams of
    gradients that do not come from a known function. Optimizers that need the loss or the gradient
    elsewhere (Newton, L-BFGS, SAM, look-ahead Nesterov) refuse it.
    """

    has_value = False

    def __init__(self, gradient: np.ndarray) -> None:
        self.gradient = np.asarray(gradient)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.gradient


class Quadratic(Objective):
    """``f(x) = ½ xᵀAx − bᵀx`` for a symmetric matrix ``A`` (shared by all runs)."""

    has_hessian = True

    def __init__(self, A: np.ndarray, b: np.ndarray | None = None) -> None:
        self.A = np.asarray(A, dtype=np.float64)
        if self.A.ndim != 2 or self.A.shape[0] != self.A.shape[1]:
            raise ValueError(f"A must be a square matrix, got shape {self.A.shape}")
        self.b = np.zeros(self.A.shape[0]) if b is None else np.asarray(b, dtype=np.float64)

    def value(self, x: np.ndarray) -> np.ndarray:
        return 0.5 * np.einsum("...i,ij,...j->...", x, self.A, x) - x @ self.b

    def grad(self, x: np.ndarray) -> np.ndarray:
        return x @ self.A.T - self.b

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return np.broadcast_to(self.A, x.shape[:-1] + self.A.shape)


class Rosenbrock(Objective):
    """``f(x) = Σᵢ 100 (x_{i+1} − x_i²)² + (1 − x_i)²``, the banana valley; minimum 0 at (1, ..., 1)."""

    has_hessian = True

    def __init__(self, a: float = 1.0, b: float = 100.0) -> None:
        self.a, self.b = a, b

    def value(self, x: np.ndarray) -> np.ndarray:
        head, tail = x[..., :-1], x[..., 1:]
        return np.sum(self.b * (tail - head**2) ** 2 + (self.a - head) ** 2, axis=-1)

    def grad(self, x: np.ndarray) -> np.ndarray:
        head, tail = x[..., :-1], x[..., 1:]
        inner = tail - head**2
        g = np.zeros_like(x)
        g[..., :-1] += -4.0 * self.b * head * inner - 2.0 * (self.a - head)
        g[..., 1:] += 2.0 * self.b * inner
        return g

    def hessian(self, x: np.ndarray) -> np.ndarray:
        d = x.shape[-1]
        H = np.zeros(x.shape[:-1] + (d, d), dtype=x.dtype)
        head, tail = x[..., :-1], x[..., 1:]
        idx = np.arange(d - 1)
        H[..., idx, idx] += 12.0 * self.b * head**2 - 4.0 * self.b * tail + 2.0
        H[..., idx + 1, idx + 1] += 2.0 * self.b
        off = -4.0 * self.b * head
        H[..., idx, idx + 1] = off
        H[..., idx + 1, idx] = off
        return H
