r"""The learning problems: linear, logistic and softmax regression, and a one-hidden-layer MLP.

Notation: rows :math:`x_i \in \mathbb{R}^d` (standardised), :math:`n` rows in the (mini-)batch,
:math:`\sigma(z) = 1/(1 + e^{-z})`, :math:`\operatorname{softplus}(z) = \log(1 + e^z)`. Every loss
below is a mean over the rows; the optional L2 penalty :math:`\tfrac{\alpha}{2}\lVert W\rVert^2`
(weights only) is added on top by :class:`~gdlab.problems.base.Problem`.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np
from scipy.special import expit

from gdlab.core.hyper import Hyper
from gdlab.problems.base import ALPHA, SPLIT_SEED, VAL_FRACTION, Problem

Forward = tuple[np.ndarray, np.ndarray | None]


def log_softmax(Z: np.ndarray) -> np.ndarray:
    """Stable ``log softmax`` over the last axis: ``Z − max Z − log Σ exp(Z − max Z)``."""
    shifted = Z - Z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


class LinearRegression(Problem):
    r"""Least-squares linear regression on the diabetes data (442 patients, 10 features).

    Parameters ``θ = (w, b)``: ``w`` (10,) then the intercept ``b`` (1,). The target (disease
    progression after one year) is **standardised** with the training mean and std, like the
    features, so the loss is scale-free: predicting the mean gives a training loss of ½.

    .. math::
        L(w, b) = \frac{1}{2n}\sum_i (x_i^\top w + b - y_i)^2,\qquad
        \nabla_w L = \frac1n X^\top r,\quad \nabla_b L = \frac1n \sum_i r_i,\quad r = Xw + b - y

    (half the mean squared error, the ``(1/m) Xᵀ(Xθ − y)`` gradient of seed 004). The Hessian is
    the constant :math:`\frac1n [X\,1]^\top [X\,1]`. :meth:`solution` gives the exact minimiser.
    """

    name = "linear_regression"
    description = "diabetes progression (442×10), half mean squared error, standardised target"
    dataset = "diabetes"
    task = "regression"
    hyperparams: ClassVar[tuple[Hyper, ...]] = (VAL_FRACTION, SPLIT_SEED, ALPHA)
    penalized = ("w",)
    has_hessian = True

    def _prepare_targets(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y_train = np.asarray(y_train, dtype=np.float64)
        self.target_mean, self.target_std = float(y_train.mean()), float(y_train.std())
        y_val = np.asarray(y_val, dtype=np.float64)
        return (y_train - self.target_mean) / self.target_std, (y_val - self.target_mean) / self.target_std

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (("w", (self.n_features,)), ("b", (1,)))

    def _forward(self, params: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool) -> Forward:
        w, b = params[..., :-1], params[..., -1:]
        r = w @ X.T + b - y  # (..., n)
        n = X.shape[0]
        loss = 0.5 * np.einsum("...i,...i->...", r, r) / n
        if not need_grad:
            return loss, None
        grad = np.concatenate([r @ X / n, r.mean(axis=-1, keepdims=True)], axis=-1)
        return loss, grad

    def _hessian(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        A = np.hstack([X, np.ones((len(X), 1))])
        return np.broadcast_to(A.T @ A / len(X), params.shape[:-1] + (self.n_params,) * 2)

    def predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predictions in the original target units for raw (unstandardised) features ``X``."""
        p = self.check_params(params)
        z = p[..., :-1] @ self.standardize(X).T + p[..., -1:]
        return z * self.target_std + self.target_mean

    def solution(self) -> np.ndarray:
        r"""The exact minimiser of the training objective, by ``np.linalg.lstsq``.

        Solves :math:`\min \lVert [X\,1]\theta - y\rVert^2` on the standardised training data (with the
        rows :math:`\sqrt{n\alpha}\,[I\;0]` and zero targets appended when α > 0, i.e. ridge).
        """
        A = np.hstack([self.X_train, np.ones((self.n_train, 1))])
        rhs = self.y_train
        if self.alpha > 0:
            ridge = np.sqrt(self.n_train * self.alpha) * np.eye(self.n_features, self.n_params)
            A, rhs = np.vstack([A, ridge]), np.concatenate([rhs, np.zeros(self.n_features)])
        return np.linalg.lstsq(A, rhs, rcond=None)[0]


class LogisticRegression(Problem):
    r"""Binary logistic regression on the breast-cancer data (569 tumours, 30 features).

    Parameters ``θ = (w, b)``: ``w`` (30,) then the bias ``b`` (1,); label 1 = benign. With
    :math:`z_i = x_i^\top w + b`, the mean binary cross-entropy in its stable form

    .. math::
        L = \frac1n \sum_i \big[\operatorname{softplus}(z_i) - y_i z_i\big]
          = -\frac1n \sum_i \big[y_i \log\sigma(z_i) + (1-y_i)\log(1-\sigma(z_i))\big],

    computed with ``logaddexp(0, z)`` (no overflow). Gradient
    :math:`\nabla_w L = \frac1n X^\top(\sigma(z) - y)`, :math:`\nabla_b L = \frac1n\sum_i(\sigma(z_i) - y_i)`;
    Hessian :math:`\frac1n [X\,1]^\top \operatorname{diag}(\sigma(1-\sigma)) [X\,1]`.
    ``alpha`` adds :math:`\tfrac\alpha2\lVert w\rVert^2`. Prediction: class 1 when :math:`z > 0`.
    """

    name = "logistic_regression"
    description = "breast cancer diagnosis (569×30), mean binary cross-entropy, optional L2"
    dataset = "breast_cancer"
    task = "classification"
    hyperparams: ClassVar[tuple[Hyper, ...]] = (VAL_FRACTION, SPLIT_SEED, ALPHA)
    penalized = ("w",)
    has_hessian = True
    n_classes = 2

    def _prepare_targets(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(y_train, dtype=np.float64), np.asarray(y_val, dtype=np.float64)

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (("w", (self.n_features,)), ("b", (1,)))

    def _logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return params[..., :-1] @ X.T + params[..., -1:]

    def _forward(self, params: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool) -> Forward:
        z = self._logits(params, X)
        loss = np.mean(np.logaddexp(0.0, z) - y * z, axis=-1)
        if not need_grad:
            return loss, None
        r = expit(z) - y
        n = X.shape[0]
        return loss, np.concatenate([r @ X / n, r.mean(axis=-1, keepdims=True)], axis=-1)

    def _hessian(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        s = expit(self._logits(params, X))
        A = np.hstack([X, np.ones((len(X), 1))])
        return np.einsum("...n,ni,nj->...ij", s * (1.0 - s), A, A) / len(X)

    def _predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return (self._logits(params, X) > 0).astype(np.float64)

    def predict_proba(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """P(benign) for raw (unstandardised) features ``X``, shape ``batch + (n,)``."""
        return expit(self._logits(self.check_params(params), self.standardize(X)))


class SoftmaxRegression(Problem):
    r"""Multinomial (softmax) regression on the 8×8 digits (1797 images, 64 pixels, 10 classes).

    Parameters ``θ = (W, b)``: ``W`` (64, 10) row-major (entry ``W[j, k]`` at ``10 j + k``), then
    ``b`` (10,). With logits :math:`Z = XW + b` and one-hot targets :math:`Y`,

    .. math::
        L = -\frac1n \sum_i \log\operatorname{softmax}(Z_i)_{y_i}
          = \frac1n \sum_i \Big[\log\sum_k e^{Z_{ik}} - Z_{i y_i}\Big],\qquad
        \nabla_W L = \frac1n X^\top (P - Y),\quad \nabla_b L = \frac1n \sum_i (P_i - Y_i)

    with :math:`P = \operatorname{softmax}(Z)` row by row, computed through a stable log-softmax.
    ``alpha`` adds :math:`\tfrac\alpha2\lVert W\rVert_F^2`.
    """

    name = "softmax_regression"
    description = "handwritten digits 8×8 (1797×64), 10 classes, softmax cross-entropy"
    dataset = "digits"
    task = "classification"
    hyperparams: ClassVar[tuple[Hyper, ...]] = (VAL_FRACTION, SPLIT_SEED, ALPHA)
    penalized = ("W",)
    n_classes = 10

    def _prepare_targets(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(y_train, dtype=np.int64), np.asarray(y_val, dtype=np.int64)

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        return (("W", (self.n_features, self.n_classes)), ("b", (self.n_classes,)))

    def _logits(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        blocks = self.unpack(params)
        return X @ blocks["W"] + blocks["b"][..., np.newaxis, :]  # (..., n, K)

    def _forward(self, params: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool) -> Forward:
        logp = log_softmax(self._logits(params, X))
        n = X.shape[0]
        loss = -np.mean(logp[..., np.arange(n), y], axis=-1)
        if not need_grad:
            return loss, None
        dZ = np.exp(logp)
        dZ[..., np.arange(n), y] -= 1.0
        dZ /= n
        batch = params.shape[:-1]
        gW = (X.T @ dZ).reshape(batch + (-1,))
        return loss, np.concatenate([gW, dZ.sum(axis=-2)], axis=-1)

    def _predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.argmax(self._logits(params, X), axis=-1)


class MLP(Problem):
    r"""A one-hidden-layer perceptron on the digits: 64 → ``hidden`` (tanh) → 10 (softmax).

    Parameters, in storage order (matrices row-major): ``W1`` (64, h), ``b1`` (h,), ``W2`` (h, 10),
    ``b2`` (10,); with the default ``hidden=32`` that is 2410 parameters. The activation is **tanh**
    (smooth, so finite-difference checks hold everywhere). Forward pass and loss:

    .. math::
        A = XW_1 + b_1,\quad H = \tanh A,\quad Z = HW_2 + b_2,\quad
        L = \frac1n\sum_i\Big[\log\sum_k e^{Z_{ik}} - Z_{i y_i}\Big]

    Backpropagation, with :math:`P = \operatorname{softmax}(Z)` and one-hot :math:`Y`:

    .. math::
        \delta_Z = (P - Y)/n,\quad \nabla_{W_2} = H^\top\delta_Z,\quad \nabla_{b_2} = \textstyle\sum_i \delta_{Z,i},\\
        \delta_A = (\delta_Z W_2^\top) \odot (1 - H^2),\quad \nabla_{W_1} = X^\top\delta_A,\quad
        \nabla_{b_1} = \textstyle\sum_i \delta_{A,i}.

    :meth:`init_params` draws LeCun-normal weights :math:`W \sim \mathcal N(0, 1/\text{fan-in})`
    and zero biases. ``alpha`` penalises ``W1`` and ``W2``.
    """

    name = "mlp"
    description = "handwritten digits 8×8 (1797×64), one tanh hidden layer, softmax cross-entropy"
    dataset = "digits"
    task = "classification"
    activation = "tanh"
    hyperparams: ClassVar[tuple[Hyper, ...]] = (
        VAL_FRACTION, SPLIT_SEED, ALPHA,
        Hyper("hidden", 32, kind="int", low=1, high=4096, doc="width of the hidden layer"),
    )
    penalized = ("W1", "W2")
    n_classes = 10
    hidden: int

    def _prepare_targets(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return np.asarray(y_train, dtype=np.int64), np.asarray(y_val, dtype=np.int64)

    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        d, h, k = self.n_features, self.hidden, self.n_classes
        return (("W1", (d, h)), ("b1", (h,)), ("W2", (h, k)), ("b2", (k,)))

    def init_params(self, seed: int = 0, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
        """LeCun-normal weights, zero biases; independent draws per run of ``batch_shape``."""
        rng = np.random.default_rng(seed)
        batch = tuple(batch_shape)
        d, h, k = self.n_features, self.hidden, self.n_classes
        return self.pack(
            W1=rng.standard_normal(batch + (d, h)) / np.sqrt(d),
            b1=np.zeros(batch + (h,)),
            W2=rng.standard_normal(batch + (h, k)) / np.sqrt(h),
            b2=np.zeros(batch + (k,)),
        )

    def _hidden(self, blocks: dict[str, np.ndarray], X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        H = np.tanh(X @ blocks["W1"] + blocks["b1"][..., np.newaxis, :])
        return H, H @ blocks["W2"] + blocks["b2"][..., np.newaxis, :]

    def _forward(self, params: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool) -> Forward:
        blocks = self.unpack(params)
        H, Z = self._hidden(blocks, X)
        logp = log_softmax(Z)
        n = X.shape[0]
        rows = np.arange(n)
        loss = -np.mean(logp[..., rows, y], axis=-1)
        if not need_grad:
            return loss, None
        dZ = np.exp(logp)
        dZ[..., rows, y] -= 1.0
        dZ /= n
        gW2 = np.swapaxes(H, -1, -2) @ dZ
        dA = (dZ @ np.swapaxes(blocks["W2"], -1, -2)) * (1.0 - H * H)
        gW1 = X.T @ dA
        return loss, self.pack(W1=gW1, b1=dA.sum(axis=-2), W2=gW2, b2=dZ.sum(axis=-2))

    def _predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        return np.argmax(self._hidden(self.unpack(params), X)[1], axis=-1)
