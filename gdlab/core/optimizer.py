"""The optimizer protocols: explicit state, and what an optimizer needs to take a step.

Every optimizer is configured once with validated hyperparameters (PyTorch's names and defaults)
and is then a pure function of its inputs. Two kinds exist, and the type says which:

:class:`Optimizer` — needs the objective.
    ``state = opt.init(params)`` gives a fresh state: a dict holding ``"step"`` (how many updates
    were applied) and the optimizer's buffers. ``params, state, nonfinite = opt.step(objective,
    params, state, lr=None, grad=None)`` takes one step, asking the
    :class:`~gdlab.core.objective.Objective` for what it needs (Newton its Hessian, L-BFGS values
    along a line, SAM a second gradient). ``grad`` passes the gradient at ``params`` when the
    caller has it already; ``lr`` overrides the configured learning rate for this step (that is how
    schedules drive any optimizer).

:class:`GradientOptimizer` — needs only a gradient.
    Adds ``params, state, nonfinite = opt.update(grad, state, params, lr=None)``, one update from a
    gradient, and its in-place form ``nonfinite = opt.update_(grad, state, params, lr=None,
    backend=None)``, which overwrites ``params`` and the state's buffers. Its :meth:`step` asks the
    objective for one gradient, at :meth:`GradientOptimizer.gradient_point` (``params``, or the
    look-ahead point of the seeds' Nesterov).

Neither mutates its inputs except ``update_``. ``nonfinite`` is a boolean per run: where it is
true the gradient or the update was not finite, and that run's params and state were left as they
were, so NaN or inf never reach the parameters. The run engine turns this into "diverged at step k".

**Faster executors.** :mod:`gdlab.fast` registers itself here (:func:`register_accelerator`); the
core never imports it. ``update_`` and ``update`` offer every call to the registered accelerator
first (it takes the call when a fused kernel applies, see :func:`gdlab.fast.set_backend`) and run
the reference otherwise.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar, NamedTuple

import numpy as np

from gdlab.core.batching import as_params, batch_shape, per_run, run_all_finite
from gdlab.core.hyper import Configurable, Hyper
from gdlab.core.objective import Objective

State = dict[str, Any]


class StepResult(NamedTuple):
    """What :meth:`GradientOptimizer.update` and :meth:`Optimizer.step` return."""

    params: np.ndarray
    state: State
    #: Per run (shape ``batch``): the step was refused because something was not finite.
    nonfinite: np.ndarray


class Optimizer(Configurable):
    """An optimizer that takes its steps on an objective (see the module docstring)."""

    #: Family shown in listings: "sgd", "adaptive", "second-order", "wrapper" (or "other").
    family: ClassVar[str] = "other"
    #: What the optimizer needs from an objective: "grad", "value" (loss and grad) or "hessian".
    needs: ClassVar[str] = "grad"
    #: False when ``step`` takes one run at a time (L-BFGS: its history and line search belong to
    #: one problem); the run engine then loops over the runs of a batch.
    batched: ClassVar[bool] = True

    def init(self, params: Any) -> State:
        """A fresh state for ``params`` (nothing is stored about the params themselves)."""
        p = as_params(params)
        return {"step": 0, **self._init_buffers(p)}

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """One step on ``objective`` from ``params``; ``grad``: the gradient there, if known."""
        raise NotImplementedError

    def _init_buffers(self, params: np.ndarray) -> State:
        return {}

    def describe(self) -> dict[str, Any]:
        """Name, family and the first line of the docstring (for listings)."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        return {"name": self.name, "family": self.family, "summary": doc[0] if doc else ""}


#: The check of a learning-rate override passed to ``update``/``step`` (the same range as ``lr``).
LR_OVERRIDE = Hyper("lr", None, low=0.0)

#: A faster executor of :meth:`GradientOptimizer.update_`/``update``: called as
#: ``accelerator(optimizer, grad, state, params, lr, backend, in_place)``; returns the per-run flags
#: (in place) or a :class:`StepResult`, or ``None`` when it does not take the call.
Accelerator = Callable[..., Any]
_accelerators: list[Accelerator] = []


def register_accelerator(accelerator: Accelerator) -> None:
    """Offer every ``update_``/``update`` call to ``accelerator`` first (:mod:`gdlab.fast` does)."""
    if accelerator not in _accelerators:
        _accelerators.append(accelerator)


def _accelerate(*args: Any) -> Any:
    for accelerator in _accelerators:
        result = accelerator(*args)
        if result is not None:
            return result
    return None


class GradientOptimizer(Optimizer):
    """An optimizer whose update needs only the gradient (see the module docstring)."""

    def update(self, grad: Any, state: State, params: Any, lr: Any = None) -> StepResult:
        """Apply one update from ``grad`` at ``params``; see the module docstring."""
        p = as_params(params)
        result = _accelerate(self, grad, state, p, lr, None, False)
        if result is not None:
            return result
        return self.update_reference(grad, state, p, lr)

    def update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult:
        """The reference (pure NumPy) update: the specification every faster executor matches."""
        raise NotImplementedError

    def update_(
        self, grad: Any, state: State, params: np.ndarray, lr: Any = None, backend: str | None = None
    ) -> np.ndarray:
        """One update **in place**: overwrite ``params`` and the state's buffers; return the flags.

        ``state["step"]`` is incremented (and any other scalar entry updated). Runs flagged
        non-finite keep their params and buffers. ``backend`` (``"auto"``, ``"reference"``,
        ``"fused"``; ``None``: the global choice of :func:`gdlab.fast.set_backend`) picks a fused
        kernel or the reference, :meth:`update_reference` followed by a copy back; when no kernel
        applies (batched hyperparameters, a dtype without kernels) the reference runs
        (:func:`gdlab.fast.explain` says why).
        """
        if not isinstance(params, np.ndarray) or as_params(params) is not params:
            raise TypeError("update_ needs params as a floating-point numpy array (it is updated in place)")
        if not params.flags.writeable:
            raise ValueError("update_: params are read-only")
        flags = _accelerate(self, grad, state, params, lr, backend, True)
        if flags is not None:
            return flags
        result = self.update_reference(grad, state, params, lr)
        np.copyto(params, result.params, casting="same_kind")
        assign_state(state, result.state)
        return result.nonfinite

    def gradient_point(self, params: np.ndarray, state: State) -> np.ndarray:
        """Where :meth:`step` takes the gradient: ``params`` (the look-ahead point for the seeds'
        Nesterov)."""
        return params

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """One update with the gradient at :meth:`gradient_point` (``grad``, when it is ``params``)."""
        p = as_params(params)
        point = self.gradient_point(p, state)
        g = objective.grad(point) if grad is None or point is not p else grad
        return self.update(g, state, p, lr)


def state_is_finite(state: State, batch: tuple[int, ...]) -> np.ndarray:
    """Per run (shape ``batch``): every number of the run's state is finite. Arrays whose leading
    axes are the batch's (buffers, per-run scalars) are judged run by run, others (a history shared
    by one run) as a whole; nested states (SAM's base, a chain's parts) are looked into."""
    ok = np.ones(batch, dtype=bool)
    for value in state.values():
        if isinstance(value, dict):
            ok &= state_is_finite(value, batch)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, dict):
                    ok &= state_is_finite(item, batch)
        elif isinstance(value, np.ndarray) and value.dtype.kind == "f":
            if value.shape[: len(batch)] == batch and value.ndim > len(batch):
                ok &= run_all_finite(value.reshape(batch + (-1,)))
            else:
                try:
                    ok &= np.broadcast_to(np.isfinite(value), batch)
                except ValueError:
                    ok &= bool(np.isfinite(value).all())
        elif isinstance(value, float):
            ok &= bool(np.isfinite(value))
    return ok


def assign_state(old: State, new: State) -> None:
    """Make ``old`` equal to ``new`` in place: arrays of the same shape and dtype are copied into."""
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            assign_state(before, value)
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
    return StepResult(safe_params, merge_state(state, new_state, bad, params), bad)


def merge_state(old: State, new: State, bad: np.ndarray, params: np.ndarray) -> State:
    """New state, except runs flagged ``bad`` keep their old buffers."""
    out: State = {}
    batch = batch_shape(params)
    for key, value in new.items():
        before = old.get(key)
        if isinstance(value, dict) and isinstance(before, dict):
            out[key] = merge_state(before, value, bad, params)
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
