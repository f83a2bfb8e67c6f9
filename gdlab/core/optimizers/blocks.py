"""Matrix optimizers: updates that act on whole parameter blocks (weight matrices), not elementwise.

Adafactor factors its second moment over a matrix's rows and columns; Muon orthogonalises a
matrix's momentum. Both need to know where the matrices are in gdlab's flat parameter vector
(``batch + (d,)``): a :data:`Layout`, the named blocks and their shapes in storage order, as
:attr:`gdlab.problems.base.Problem.layout` declares them. :meth:`BlockOptimizer.with_layout` gives a
copy of the optimizer that splits the params so (the training loop does this); without a layout the
whole vector of a run is one 1-D block (a landscape point).

Every norm, mean and step count is taken per run and per block: a batch of runs is a batch of
independent PyTorch optimizers, each holding one tensor per block.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from typing import Any

import numpy as np

from gdlab.core.batching import as_params, batch_shape, check_like, expand
from gdlab.core.optimizer import LR_OVERRIDE, GradientOptimizer, State, StepResult, guard_nonfinite
from gdlab.core.statespec import BATCH, DIM, Array, Count, StateSpec

#: Named blocks and their shapes, in storage order along the params' last axis.
Layout = tuple[tuple[str, tuple[int, ...]], ...]

#: The name of the single block of a params vector without a layout.
WHOLE = "params"


def check_layout(layout: Any) -> Layout:
    """A validated layout: distinct non-empty names, shapes of positive integers."""
    out = []
    seen = set()
    for item in layout:
        name, shape = item
        shape = tuple(int(s) for s in shape)
        if not isinstance(name, str) or not name or name in seen:
            raise ValueError(f"layout: block names must be distinct non-empty strings, got {name!r}")
        if not shape or any(s <= 0 for s in shape):
            raise ValueError(f"layout: block {name!r} must have a shape of positive sizes, got {shape}")
        seen.add(name)
        out.append((name, shape))
    if not out:
        raise ValueError("layout: at least one block is needed")
    return tuple(out)


class BlockOptimizer(GradientOptimizer):
    """Base of the optimizers that update each parameter block as a whole (see the module docstring).

    A subclass implements :meth:`block_buffers` (the state arrays of one block) and
    :meth:`update_block` (the update of one block, every run at once).
    """

    #: The params' blocks (``None``: each run's vector is one 1-D block).
    layout: Layout | None = None

    def with_layout(self, layout: Any) -> BlockOptimizer:
        """A copy of this optimizer that splits the params into ``layout``'s blocks."""
        out = copy.copy(self)
        out.layout = check_layout(layout)
        out.check_layout(out.layout)
        return out

    def check_layout(self, layout: Layout) -> None:
        """Refuse blocks this optimizer cannot update (Muon: not 2-D)."""

    # -- what a subclass declares ------------------------------------------------------------
    def block_buffers(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        """The buffers of block ``name`` of ``shape`` (per run): buffer name → its shape."""
        raise NotImplementedError

    def update_block(self, shape: tuple[int, ...], param: np.ndarray, grad: np.ndarray,
                     buffers: dict[str, np.ndarray], t: int, lr: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Step ``t`` (1-based) of one block of ``shape`` (per run): ``param``, ``grad`` of shape
        ``batch + shape``; ``lr`` a float or an array broadcasting against ``batch``. Returns the new
        block and buffers."""
        raise NotImplementedError

    # -- the executor ------------------------------------------------------------------------
    def blocks(self, d: int) -> Iterator[tuple[str, int, int, tuple[int, ...]]]:
        """``(name, start, stop, shape)`` of each block of a params vector of ``d`` entries."""
        layout = self.layout if self.layout is not None else ((WHOLE, (d,)),)
        total = sum(math.prod(shape) for _, shape in layout)
        if total != d:
            raise ValueError(f"{self.name}: the layout has {total} parameters but the params have {d}")
        start = 0
        for name, shape in layout:
            size = math.prod(shape)
            yield name, start, start + size, shape
            start += size

    def _init_buffers(self, params: np.ndarray) -> State:
        batch = batch_shape(params)
        for key, value in self.get_params().items():  # array hyperparameters must fit the batch
            if isinstance(value, np.ndarray):
                expand(value, params, key)
        out: State = {}
        for name, _, _, shape in self.blocks(params.shape[-1]):
            for buf, buf_shape in self.block_buffers(name, shape).items():
                out[f"{name}.{buf}"] = np.zeros(batch + buf_shape, dtype=params.dtype)
        return out

    def state_spec(self) -> StateSpec:
        """``step`` and the buffers of each block, named ``block.buffer``."""
        entries: dict[str, Any] = {"step": Count()}
        layout = self.layout if self.layout is not None else ((WHOLE, (-1,)),)
        for name, shape in layout:
            for buf, buf_shape in self.block_buffers(name, shape).items():
                pattern = tuple(DIM if s == -1 else s for s in buf_shape)
                entries[f"{name}.{buf}"] = Array((BATCH, *pattern))
        return StateSpec(entries)

    def update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult:
        p = as_params(params)
        g = check_like(grad, p)
        rate = self.lr if lr is None else LR_OVERRIDE.validate(lr, self.name)  # type: ignore[attr-defined]
        t = state["step"] + 1
        batch = batch_shape(p)
        new_params = np.empty_like(p)
        new_state: State = {"step": t}
        with np.errstate(all="ignore"):
            for name, lo, hi, shape in self.blocks(p.shape[-1]):
                block = p[..., lo:hi].reshape(batch + shape)
                block_grad = g[..., lo:hi].reshape(batch + shape)
                prefix = f"{name}."
                buffers = {k[len(prefix):]: v for k, v in state.items() if k.startswith(prefix)}
                new_block, new_buffers = self.update_block(shape, block, block_grad, buffers, t, rate)
                new_params[..., lo:hi] = new_block.reshape(batch + (hi - lo,))
                new_state.update({prefix + k: v for k, v in new_buffers.items()})
        return guard_nonfinite(p, state, new_params, new_state, g)


def run_value(value: Any, batch: tuple[int, ...], ndim: int) -> Any:
    """A hyperparameter (a float, or an array of runs broadcasting against ``batch``) shaped to
    broadcast against a block of ``ndim`` axes per run."""
    if not isinstance(value, np.ndarray):
        return value
    return np.broadcast_to(value, batch).reshape(batch + (1,) * ndim)


def block_norm(x: np.ndarray, ndim: int) -> np.ndarray:
    """The Frobenius norm of each run's block (shape ``batch + (1,)*ndim``)."""
    axes = tuple(range(x.ndim - ndim, x.ndim))
    return np.sqrt(np.sum(x * x, axis=axes, keepdims=True))
