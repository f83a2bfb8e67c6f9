"""The :class:`Problem` base: a learning problem on real data, seen by optimizers as an Objective.

A problem owns a data set shipped inside scikit-learn (nothing is downloaded), a seeded
train/validation split and a feature standardisation fitted on the training rows only:

.. math::
    \\tilde x_{ij} = (x_{ij} - \\mu_j) / \\sigma_j,\\qquad
    \\mu_j, \\sigma_j = \\text{mean and std of feature } j \\text{ over the training rows}

(a feature that is constant on the training rows keeps σ = 1, so it stays 0 rather than NaN).

Parameters are **flat vectors**: the last axis of a ``params`` array holds one model's parameters,
leading axes are independent runs (the batch convention of :mod:`gdlab.core.batching`). Each problem
declares its :attr:`Problem.layout`, the named blocks (weight matrices, biases) stored one after the
other in that order, each matrix row-major (C order); :meth:`Problem.unpack` and :meth:`Problem.pack`
convert between the two views. Losses are means over rows, so the loss of a mini-batch is an unbiased
estimate of the training loss, plus an optional L2 penalty ``α/2 Σ W²`` over the weight blocks
(never the biases). Gradients are written by hand and evaluated for all runs at once with
``matmul``/``einsum`` (no Python loop over runs).
"""

from __future__ import annotations

import functools
import math
from typing import Any, ClassVar

import numpy as np

from gdlab.core.batching import as_params
from gdlab.core.hyper import Configurable, Hyper, describe
from gdlab.core.objective import Objective

Split = str  # "train" or "val"
SPLITS: tuple[str, ...] = ("train", "val")

VAL_FRACTION = Hyper(
    "val_fraction", 0.2, low=0.0, high=1.0, low_open=True, high_open=True, batchable=False,
    doc="fraction of the rows held out for validation",
)
SPLIT_SEED = Hyper("split_seed", 0, kind="int", low=0, doc="seed of the train/validation split")
ALPHA = Hyper("alpha", 0.0, low=0.0, batchable=False, doc="L2 penalty α/2 Σ W² on the weights (not the biases)")


@functools.cache
def load_dataset(name: str) -> tuple[np.ndarray, np.ndarray]:
    """Features (float64) and targets of a data set bundled with scikit-learn (cached, read-only).

    ``diabetes`` (442 × 10, raw unscaled features, real-valued target), ``breast_cancer``
    (569 × 30, target 0 = malignant / 1 = benign), ``digits`` (1797 × 64 pixel intensities 0..16,
    target 0..9). Only the bundled ``load_*`` loaders are used, never ``fetch_*``.
    """
    from sklearn import datasets

    if name == "diabetes":
        bunch = datasets.load_diabetes(scaled=False)
    elif name == "breast_cancer":
        bunch = datasets.load_breast_cancer()
    elif name == "digits":
        bunch = datasets.load_digits()
    else:
        raise ValueError(f"unknown data set {name!r}; valid: diabetes, breast_cancer, digits")
    X = np.array(bunch.data, dtype=np.float64)
    y = np.array(bunch.target)
    X.setflags(write=False)
    y.setflags(write=False)
    return X, y


def split_indices(n_rows: int, val_fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Seeded split of ``range(n_rows)`` into sorted train and validation row indices.

    The validation set has ``round(val_fraction · n_rows)`` rows (at least 1, at most n_rows − 1).
    """
    n_val = min(max(round(val_fraction * n_rows), 1), n_rows - 1)
    perm = np.random.default_rng(seed).permutation(n_rows)
    return np.sort(perm[n_val:]), np.sort(perm[:n_val])


def _out(value: np.ndarray) -> float | np.ndarray:
    """A per-run result: a Python float for a single run, else the array of shape ``batch``."""
    value = np.asarray(value)
    return float(value) if value.ndim == 0 else value


class Problem(Configurable):
    """Base class of learning problems. See the module docstring for the conventions.

    Subclasses set ``name``, ``description``, ``dataset``, ``task`` and ``hyperparams``, and implement
    :attr:`layout`, :meth:`_forward` (loss and optionally gradient, batched) and, for classifiers,
    :meth:`_predict`.
    """

    #: Name of the bundled scikit-learn data set.
    dataset: ClassVar[str] = ""
    #: "regression" or "classification".
    task: ClassVar[str] = "regression"
    #: One line shown in listings.
    description: ClassVar[str] = ""
    hyperparams: ClassVar[tuple[Hyper, ...]] = (VAL_FRACTION, SPLIT_SEED)
    #: Blocks that the L2 penalty α applies to (names from :attr:`layout`).
    penalized: ClassVar[tuple[str, ...]] = ()

    alpha: float = 0.0
    val_fraction: float
    split_seed: int

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        X, y = load_dataset(self.dataset)
        train, val = split_indices(len(X), self.val_fraction, self.split_seed)
        self.train_rows, self.val_rows = train, val
        self.feature_mean = X[train].mean(axis=0)
        std = X[train].std(axis=0)
        self.feature_std = np.where(std > 0, std, 1.0)
        self.X_train = self.standardize(X[train])
        self.X_val = self.standardize(X[val])
        self.y_train, self.y_val = self._prepare_targets(y[train], y[val])
        self._offsets = self._block_offsets()
        self._penalty_mask = np.zeros(self.n_params)
        for block in self.penalized:
            lo, hi, _ = self._offsets[block]
            self._penalty_mask[lo:hi] = 1.0

    # -- data ------------------------------------------------------------------------------
    def standardize(self, X: np.ndarray) -> np.ndarray:
        """Features standardised with the training-split mean and std."""
        return (np.asarray(X, dtype=np.float64) - self.feature_mean) / self.feature_std

    def _prepare_targets(self, y_train: np.ndarray, y_val: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        return y_train, y_val

    def data(self, split: Split = "train") -> tuple[np.ndarray, np.ndarray]:
        """Standardised features and (prepared) targets of ``split`` ("train" or "val")."""
        if split == "train":
            return self.X_train, self.y_train
        if split == "val":
            return self.X_val, self.y_val
        raise ValueError(f"split={split!r} is not allowed; expected one of {', '.join(SPLITS)}")

    @property
    def n_train(self) -> int:
        return len(self.X_train)

    @property
    def n_val(self) -> int:
        return len(self.X_val)

    @property
    def n_features(self) -> int:
        return self.X_train.shape[1]

    # -- parameters ------------------------------------------------------------------------
    @property
    def layout(self) -> tuple[tuple[str, tuple[int, ...]], ...]:
        """Named parameter blocks and their shapes, in storage order."""
        raise NotImplementedError

    @property
    def n_params(self) -> int:
        """Length of the flat parameter vector."""
        return sum(math.prod(shape) for _, shape in self.layout)

    def _block_offsets(self) -> dict[str, tuple[int, int, tuple[int, ...]]]:
        out, start = {}, 0
        for name, shape in self.layout:
            size = math.prod(shape)
            out[name] = (start, start + size, shape)
            start += size
        return out

    def check_params(self, params: Any, name: str = "params") -> np.ndarray:
        """``params`` as a floating array whose last axis has :attr:`n_params` entries, else ValueError."""
        p = as_params(params, name)
        if p.shape[-1] != self.n_params:
            raise ValueError(
                f"{name} has shape {p.shape}, but {self.name} needs a last axis of n_params={self.n_params}"
            )
        return p

    def unpack(self, params: Any) -> dict[str, np.ndarray]:
        """The named blocks of ``params`` (views), each of shape ``batch + block_shape``."""
        p = self.check_params(params)
        batch = p.shape[:-1]
        return {name: p[..., lo:hi].reshape(batch + shape) for name, (lo, hi, shape) in self._offsets.items()}

    def pack(self, **blocks: Any) -> np.ndarray:
        """Flat parameters from named blocks (the inverse of :meth:`unpack`); all blocks are required."""
        missing = [name for name, _ in self.layout if name not in blocks]
        extra = [name for name in blocks if name not in self._offsets]
        if missing or extra:
            raise ValueError(
                f"{self.name}.pack needs exactly the blocks {[n for n, _ in self.layout]}; "
                f"missing {missing}, unknown {extra}"
            )
        arrays = [np.asarray(blocks[name], dtype=np.float64) for name, _ in self.layout]
        batch = None
        for (name, shape), arr in zip(self.layout, arrays, strict=True):
            if arr.shape[arr.ndim - len(shape):] != shape:
                raise ValueError(f"block {name!r} has shape {arr.shape}, expected (...,) + {shape}")
            here = arr.shape[: arr.ndim - len(shape)]
            batch = here if batch is None else np.broadcast_shapes(batch, here)
        assert batch is not None
        flat = [np.broadcast_to(a, batch + shape).reshape(batch + (-1,)) for a, (_, shape) in
                zip(arrays, self.layout, strict=True)]
        return np.concatenate(flat, axis=-1)

    def init_params(self, seed: int = 0, batch_shape: tuple[int, ...] = ()) -> np.ndarray:
        """Initial parameters of shape ``batch_shape + (n_params,)`` (zeros unless overridden).

        Seeded initialisations draw independently for every run of the batch; to give every run the
        same start, broadcast a single ``init_params(seed)``.
        """
        return np.zeros(tuple(batch_shape) + (self.n_params,))

    # -- losses ----------------------------------------------------------------------------
    def _forward(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Mean data loss over the rows (shape ``batch``) and its gradient (shape of ``params``)."""
        raise NotImplementedError

    def _penalized(
        self, params: np.ndarray, X: np.ndarray, y: np.ndarray, need_grad: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Data loss plus ``α/2 Σ W²`` over the penalised blocks; gradient gains ``α W``."""
        loss, grad = self._forward(params, X, y, need_grad)
        if self.alpha > 0:
            masked = params * self._penalty_mask
            loss = loss + 0.5 * self.alpha * np.einsum("...i,...i->...", masked, masked)
            if grad is not None:
                grad = grad + self.alpha * masked
        return loss, grad

    def objective(self, indices: Any = None) -> ProblemObjective:
        """The objective (mean loss plus penalty) on training rows ``indices`` (all when None).

        ``indices`` are positions in the training split, ``0 .. n_train − 1`` (what
        :mod:`gdlab.problems.batches` yields), not row numbers of the full data set.
        """
        if indices is None:
            return ProblemObjective(self, self.X_train, self.y_train)
        idx = np.asarray(indices)
        if idx.dtype.kind not in "iu" or idx.ndim != 1 or len(idx) == 0:
            raise ValueError(f"indices must be a non-empty 1-D integer array, got {indices!r}")
        if idx.min() < 0 or idx.max() >= self.n_train:
            raise ValueError(f"indices must lie in [0, {self.n_train}), got values from {idx.min()} to {idx.max()}")
        return ProblemObjective(self, self.X_train[idx], self.y_train[idx])

    def loss(self, params: Any, split: Split = "train") -> float | np.ndarray:
        """The objective (mean loss plus penalty) on all rows of ``split``; a float per run."""
        X, y = self.data(split)
        return _out(self._penalized(self.check_params(params), X, y, need_grad=False)[0])

    def _predict(self, params: np.ndarray, X: np.ndarray) -> np.ndarray:
        """Predicted class of every row, shape ``batch + (n,)`` (classifiers only)."""
        raise NotImplementedError

    def accuracy(self, params: Any, split: Split = "train") -> float | np.ndarray | None:
        """Fraction of correctly classified rows of ``split`` per run; None for regression."""
        if self.task != "classification":
            return None
        X, y = self.data(split)
        return _out(np.mean(self._predict(self.check_params(params), X) == y, axis=-1))

    def metrics(self, params: Any) -> dict[str, float | np.ndarray | None]:
        """``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy`` (None for regression)."""
        p = self.check_params(params)
        return {
            "train_loss": self.loss(p, "train"),
            "val_loss": self.loss(p, "val"),
            "train_accuracy": self.accuracy(p, "train"),
            "val_accuracy": self.accuracy(p, "val"),
        }

    def _hessian(self, params: np.ndarray, X: np.ndarray, y: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{self.name} provides no Hessian")

    has_hessian: ClassVar[bool] = False

    # -- listing ---------------------------------------------------------------------------
    def info(self) -> dict[str, Any]:
        """JSON-ready description: data, sizes, parameter layout and hyperparameters."""
        return {
            "name": self.name,
            "description": self.description,
            "dataset": self.dataset,
            "task": self.task,
            "n_params": self.n_params,
            "n_features": self.n_features,
            "n_train": self.n_train,
            "n_val": self.n_val,
            "layout": [{"name": n, "shape": list(s)} for n, s in self.layout],
            "hyperparams": describe(type(self).hyperparams),
            "values": {k: v for k, v in self.get_params().items()},
            "summary": (type(self).__doc__ or "").strip().splitlines()[0] if type(self).__doc__ else "",
        }


class ProblemObjective(Objective):
    """The penalised mean loss of a :class:`Problem` on fixed rows (an :class:`Objective`).

    ``value``/``grad``/``value_and_grad`` accept ``params`` of shape ``batch + (n_params,)``.
    """

    def __init__(self, problem: Problem, X: np.ndarray, y: np.ndarray) -> None:
        self.problem, self.X, self.y = problem, X, y
        self.has_hessian = problem.has_hessian

    @property
    def n_rows(self) -> int:
        return len(self.X)

    def value(self, x: np.ndarray) -> np.ndarray:
        return self.problem._penalized(self.problem.check_params(x), self.X, self.y, need_grad=False)[0]

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.value_and_grad(x)[1]

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        loss, grad = self.problem._penalized(self.problem.check_params(x), self.X, self.y, need_grad=True)
        assert grad is not None
        return loss, grad

    def hessian(self, x: np.ndarray) -> np.ndarray:
        p = self.problem.check_params(x)
        H = self.problem._hessian(p, self.X, self.y)
        if self.problem.alpha > 0:
            H = H + self.problem.alpha * np.diag(self.problem._penalty_mask)
        return H
