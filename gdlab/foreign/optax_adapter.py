"""An optax ``GradientTransformation`` factory as a gdlab :class:`~gdlab.core.optimizer.GradientOptimizer`.

``optax:optax.lion`` with keyword arguments (``learning_rate=1e-3``): the factory is called once per
optimizer, ``init``/``update`` run in float64 and the updates are applied with
``optax.apply_updates``. Float64 needs jax's x64 mode, which is a **global** switch of the process:
building an optax optimizer here turns it on (``jax.config.update("jax_enable_x64", True)``) for
every later jax computation in the same process. One run at a time (``batched = False``): batched
runs are looped. The optax state lives in the gdlab state under ``"optax"``. Schedules override the
learning rate only through ``learning_rate``-taking factories, which are rebuilt with the step's
rate when it changes (optax states of the same factory keep their structure).
"""

from __future__ import annotations

import functools
import inspect
from typing import Any, ClassVar

import numpy as np

from gdlab.core.batching import check_like
from gdlab.core.optimizer import GradientOptimizer, State, StepResult
from gdlab.foreign.common import ForeignError, import_attr

INSTALL = "optax is not installed: pip install gdlab[optax]"


def _optax() -> Any:
    try:
        import jax
        import optax
    except ImportError:
        raise ForeignError(INSTALL) from None
    jax.config.update("jax_enable_x64", True)  # global: see the module docstring
    return optax, jax


class OptaxOptimizer(GradientOptimizer):
    """Base of the adapter classes (one per factory, see :func:`optax_adapter_class`)."""

    family = "foreign"
    batched = False
    factory: Any = None
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        _optax()
        self._kwargs = dict(kwargs)
        try:
            self._tx = type(self).factory(**kwargs)
            if not (hasattr(self._tx, "init") and hasattr(self._tx, "update")):
                raise TypeError("it did not return a GradientTransformation")
        except Exception as exc:
            raise ForeignError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        rate = kwargs.get("learning_rate", type(self).defaults.get("learning_rate"))
        if isinstance(rate, int | float) and not isinstance(rate, bool):
            self.lr = float(rate)

    def get_params(self) -> dict[str, Any]:
        return {**{k: v for k, v in type(self).defaults.items() if isinstance(v, int | float | bool)}, **self._kwargs}

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self._kwargs.items())})"

    def init(self, params: Any) -> State:
        _, jax = _optax()
        p = jax.numpy.asarray(np.asarray(params, dtype=np.float64))
        return {"step": 0, "optax": {"state": self._tx.init(p)}}

    def _transform(self, lr: Any) -> Any:
        if lr is None or "learning_rate" not in inspect.signature(type(self).factory).parameters:
            return self._tx
        return type(self).factory(**{**self._kwargs, "learning_rate": float(lr)})

    def update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult:
        optax, jax = _optax()
        g = check_like(grad, params)
        if not np.all(np.isfinite(g)):
            return StepResult(params, state, np.ones((), dtype=bool))
        p = jax.numpy.asarray(np.asarray(params, dtype=np.float64))
        try:
            updates, new = self._transform(lr).update(jax.numpy.asarray(g), state["optax"]["state"], p)
            out = np.asarray(optax.apply_updates(p, updates), dtype=np.float64)
        except Exception as exc:
            raise ForeignError(f"{self.name}: update failed: {type(exc).__name__}: {exc}") from None
        if not np.all(np.isfinite(out)):
            return StepResult(params, state, np.ones((), dtype=bool))
        return StepResult(out.astype(params.dtype, copy=True), {"step": state["step"] + 1, "optax": {"state": new}},
                          np.zeros((), dtype=bool))


@functools.cache
def optax_adapter_class(path: str) -> type[OptaxOptimizer]:
    """The adapter class of the optax factory at ``path`` (``optax.lion``)."""
    _optax()
    factory = import_attr(path, "optax optimizer")
    if not callable(factory) or isinstance(factory, type):
        raise ForeignError(f"optax optimizer {path!r}: {factory!r} is not a GradientTransformation factory")
    try:
        sig = inspect.signature(factory)
        defaults = {k: p.default for k, p in sig.parameters.items() if p.default is not inspect.Parameter.empty}
    except (TypeError, ValueError):
        defaults = {}
    return type(f"Optax_{path.rpartition('.')[2]}", (OptaxOptimizer,), {
        "name": f"optax:{path}", "factory": staticmethod(factory), "defaults": defaults,
        "__doc__": f"optax optimizer {path} (adapted; one run at a time)",
    })
