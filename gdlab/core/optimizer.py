"""The optimizer protocol: a small ``init`` / ``update`` / ``step`` trio with explicit state.

An optimizer is configured once with validated hyperparameters (PyTorch's names and defaults) and is
then a pure function of its inputs:

``state = opt.init(params)``
    Fresh state: a dict holding ``"step"`` (how many updates were applied) and the optimizer's
    buffers (arrays shaped like ``params``; per-run scalars shaped like the batch).

``params, state, nonfinite = opt.update(grad, state, params, lr=None)``
    One update from a gradient at ``params``. ``lr`` overrides the configured learning rate for
    this step (that is how schedules drive any optimizer); it may be batched like any hyperparameter.

``params, state, nonfinite = opt.step(objective, params, state, lr=None, grad=None)``
    One update that asks an :class:`~gdlab.core.objective.Objective` for what it needs (by default
    the gradient at ``params``; ``grad`` passes it in if the caller already has it). Optimizers that
    need more (look-ahead Nesterov, Newton, L-BFGS, SAM) override :meth:`step`.

Neither call mutates its inputs. ``nonfinite`` is a boolean per run: where it is true the gradient
or the update was not finite, and that run's params and state were left as they were, so NaN or
inf never reach the parameters. The run engine turns this into a "diverged at step k" status.

``nonfinite = opt.update_(grad, state, params, lr=None, backend=None)``
    The same update **in place**: ``params`` (a writeable float array) and the state's buffers are
    overwritten, ``state["step"]`` is incremented, and the per-run flags are returned. The reference
    implementation is :meth:`update` followed by a copy back; for large arrays a fused kernel
    (:mod:`gdlab.fast`) makes one multithreaded pass over memory instead.

Subclasses implement ``_init_buffers`` and ``_update``, and state their update rule in their
docstring. **Backends:** ``_update`` is the reference (the specification). For the elementwise
optimizers of PyTorch, :mod:`gdlab.fast` has fused numba kernels computing the same arithmetic;
``backend="auto"`` (the default, see :func:`gdlab.fast.set_backend`) uses them when
``params.size >= 2**16`` and every hyperparameter is a scalar, in :meth:`update` (on fresh copies)
and :meth:`update_` (in place); ``"reference"`` never does, ``"fused"`` does at any size.
"""

from __future__ import annotations

from typing import Any, ClassVar, NamedTuple

import numpy as np

from gdlab.core.batching import as_params, batch_shape, check_like, expand, per_run, run_all_finite
from gdlab.core.hyper import Configurable, Hyper
from gdlab.core.objective import Objective
from gdlab.fast import config as _fast_config

State = dict[str, Any]


class StepResult(NamedTuple):
    """What :meth:`Optimizer.update` and :meth:`Optimizer.step` return."""

    params: np.ndarray
    state: State
    #: Per run (shape ``batch``): the step was refused because something was not finite.
    nonfinite: np.ndarray


class Optimizer(Configurable):
    """Base class of all optimizers."""

    #: Family shown in listings: "sgd", "adaptive", "second-order", "wrapper".
    family: ClassVar[str] = "sgd"
    #: What the optimizer needs from an objective: "grad", "value" (loss and grad) or "hessian".
    needs: ClassVar[str] = "grad"
    #: True when the update acts coordinate by coordinate (batched by broadcasting, fusable).
    elementwise: ClassVar[bool] = True

    # -- the public, pure API ---------------------------------------------------------------
    def init(self, params: Any) -> State:
        """A fresh state for ``params`` (nothing is stored about the params themselves)."""
        p = as_params(params)
        self._check_batched_hyperparams(p)
        return {"step": 0, **self._init_buffers(p)}

    def update(self, grad: Any, state: State, params: Any, lr: Any = None) -> StepResult:
        """Apply one update from ``grad`` at ``params``; see the module docstring."""
        p = as_params(params)
        if _fast_config.wants_fused(p.size) and self.elementwise:
            from gdlab.fast.dispatch import fused_update

            result = fused_update(self, grad, state, p, lr)
            if result is not None:
                return result
        return self._update_reference(grad, state, p, lr)

    def update_(
        self, grad: Any, state: State, params: np.ndarray, lr: Any = None, backend: str | None = None
    ) -> np.ndarray:
        """One update **in place**: overwrite ``params`` and the state's buffers; return the flags.

        ``state["step"]`` is incremented (and any other scalar entry updated). Runs flagged
        non-finite keep their params and buffers. ``backend`` (``"auto"``, ``"reference"``,
        ``"fused"``; ``None``: the global choice of :func:`gdlab.fast.set_backend`) picks the fused
        kernel or the reference, :meth:`update` followed by a copy back.
        """
        if not isinstance(params, np.ndarray) or as_params(params) is not params:
            raise TypeError("update_ needs params as a floating-point numpy array (it is updated in place)")
        if not params.flags.writeable:
            raise ValueError("update_: params are read-only")
        if _fast_config.wants_fused(params.size, backend) and self.elementwise:
            from gdlab.fast.dispatch import fused_update_

            nonfinite = fused_update_(self, grad, state, params, lr)
            if nonfinite is not None:
                return nonfinite
        if type(self).update is Optimizer.update:
            result = self._update_reference(grad, state, params, lr)
        else:
            result = self.update(grad, state, params, lr)
        np.copyto(params, result.params, casting="same_kind")
        _assign_state(state, result.state)
        return result.nonfinite

    def _update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any) -> StepResult:
        """The pure numpy path of :meth:`update` (the specification the kernels are tested against)."""
        p = params
        _fast_config.stats["reference"] += 1
        g = check_like(grad, p)
        lr_now = self._current_lr(lr, p)
        with np.errstate(all="ignore"):  # non-finite results are caught by the guard below
            new_params, new_state = self._update(g, state, p, lr_now)
        return guard_nonfinite(p, state, new_params, new_state, g)

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """Evaluate what the update needs from ``objective`` and apply it."""
        p = as_params(params)
        g = objective.grad(p) if grad is None else grad
        return self.update(g, state, p, lr)

    # -- for subclasses ----------------------------------------------------------------------
    def _init_buffers(self, params: np.ndarray) -> State:
        return {}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        raise NotImplementedError

    def _hp(self, name: str, params: np.ndarray) -> Any:
        """Hyperparameter ``name`` ready to broadcast against ``params``."""
        return expand(getattr(self, name), params, name)

    def _current_lr(self, lr: Any, params: np.ndarray) -> Any:
        """The learning rate of this step: the override if given (validated), else the configured."""
        if lr is None:
            return self._hp("lr", params) if hasattr(self, "lr") else None
        value = _LR_OVERRIDE.validate(lr, self.name)
        return expand(value, params, "lr")

    def _check_batched_hyperparams(self, params: np.ndarray) -> None:
        for spec in type(self).hyperparams:
            value = getattr(self, spec.name)
            parts = value if spec.kind == "pair" else (value,)
            for i, part in enumerate(parts):
                if isinstance(part, np.ndarray):
                    label = spec.name if spec.kind != "pair" else f"{spec.name}[{i}]"
                    expand(part, params, label)

    def describe(self) -> dict[str, Any]:
        """Name, family and the first line of the docstring (for listings)."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        return {"name": self.name, "family": self.family, "summary": doc[0] if doc else ""}


_LR_OVERRIDE = Hyper("lr", None, low=0.0)


def _assign_state(old: State, new: State) -> None:
    """Make ``old`` equal to ``new`` in place: arrays of the same shape and dtype are copied into."""
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            _assign_state(before, value)
        elif (
            isinstance(value, np.ndarray) and isinstance(before, np.ndarray) and before is not value
            and before.shape == value.shape and before.dtype == value.dtype and before.flags.writeable
        ):
            np.copyto(before, value)
        else:
            old[key] = value


def guard_nonfinite(
    params: np.ndarray, state: State, new_params: np.ndarray, new_state: State, grad: np.ndarray | None = None
) -> StepResult:
    """Keep old params and state for every run whose gradient or new params are not finite."""
    ok = run_all_finite(new_params)
    if grad is not None:
        ok &= run_all_finite(grad)
    bad = ~ok
    if not bad.any():
        return StepResult(new_params, new_state, bad)
    keep = per_run(bad)
    safe_params = np.where(keep, params, new_params)
    return StepResult(safe_params, _merge_state(state, new_state, bad, params), bad)


def _merge_state(old: State, new: State, bad: np.ndarray, params: np.ndarray) -> State:
    """New state, except runs flagged ``bad`` keep their old buffers."""
    out: State = {}
    batch = batch_shape(params)
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            out[key] = _merge_state(before, value, bad, params)
        elif isinstance(value, np.ndarray) and isinstance(before, np.ndarray) and value.shape == before.shape:
            if value.shape == params.shape:
                out[key] = np.where(per_run(bad), before, value)
            elif value.shape[: len(batch)] == batch and len(batch) > 0:
                mask = bad.reshape(batch + (1,) * (value.ndim - len(batch)))
                out[key] = np.where(mask, before, value)
            elif bad.all():
                out[key] = before
            else:
                out[key] = value
        else:
            out[key] = value
    return out
