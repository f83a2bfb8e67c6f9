"""Data regimes: which training rows each optimizer step sees.

``batch_size`` picks the regime, for ``n`` training rows:

- ``None`` or ``≥ n`` — **full batch** (gradient descent): one step per epoch on all rows, in order
  ``0..n−1`` (the order does not change a mean, so nothing is shuffled);
- ``1`` — **stochastic** (SGD): ``n`` steps per epoch, one row each, in a fresh seeded random order;
- ``B`` — **mini-batch**: the rows are reshuffled every epoch (seeded) and cut into consecutive
  chunks of ``B``; the last, partial chunk of ``n mod B`` rows is **kept** (as PyTorch's
  ``DataLoader(drop_last=False)``), so an epoch has ``⌈n/B⌉`` steps and every row is seen exactly once.

The order of epoch ``e`` comes from ``numpy.random.default_rng([seed, e])``: the same seed gives the same
orders, different epochs give different orders, and any epoch can be regenerated on its own.

Gradient accumulation with ``k`` micro-batches: consecutive micro-batches of an epoch are grouped
``k`` at a time and one optimizer step uses the mean of their gradients; the last group of an epoch
may hold fewer than ``k`` (groups never cross an epoch boundary). An epoch then has
``⌈⌈n/B⌉/k⌉`` optimizer steps. With equal micro-batch sizes this equals one step on their union.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np


def _check_int(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer):
        raise ValueError(f"{name}={value!r} must be an integer ≥ {low}")
    if value < low:
        raise ValueError(f"{name}={value!r} must be an integer ≥ {low}")
    return int(value)


def check_batch_size(batch_size: Any, n_rows: int) -> int:
    """The effective batch size: ``n_rows`` for None or anything ≥ n_rows; ValueError if < 1."""
    n_rows = _check_int(n_rows, "n_rows", 1)
    if batch_size is None:
        return n_rows
    return min(_check_int(batch_size, "batch_size", 1), n_rows)


def epoch_batches(n_rows: int, batch_size: int | None, epoch: int, seed: int = 0) -> list[np.ndarray]:
    """The row-index arrays of the steps of epoch ``epoch`` (0-based); see the module docstring."""
    size = check_batch_size(batch_size, n_rows)
    epoch = _check_int(epoch, "epoch", 0)
    seed = _check_int(seed, "seed", 0)
    if size >= n_rows:
        return [np.arange(n_rows)]
    order = np.random.default_rng([seed, epoch]).permutation(n_rows)
    return [order[i : i + size] for i in range(0, n_rows, size)]


def minibatches(n_rows: int, batch_size: int | None = None, epochs: int = 1, seed: int = 0) -> Iterator[np.ndarray]:
    """Row-index arrays, one per step, for ``epochs`` epochs (epoch after epoch)."""
    epochs = _check_int(epochs, "epochs", 1)
    check_batch_size(batch_size, n_rows)
    for epoch in range(epochs):
        yield from epoch_batches(n_rows, batch_size, epoch, seed)


def group_batches(batches: list[np.ndarray], accumulate: int = 1) -> list[list[np.ndarray]]:
    """Consecutive groups of ``accumulate`` micro-batches (the last group may be shorter)."""
    k = _check_int(accumulate, "accumulate", 1)
    return [batches[i : i + k] for i in range(0, len(batches), k)]


def steps_per_epoch(n_rows: int, batch_size: int | None = None, accumulate: int = 1) -> int:
    """Optimizer steps per epoch: ``⌈⌈n/B⌉ / k⌉`` (1 for the full batch)."""
    size = check_batch_size(batch_size, n_rows)
    k = _check_int(accumulate, "accumulate", 1)
    return math.ceil(math.ceil(n_rows / size) / k)
