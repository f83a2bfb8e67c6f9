"""A ``torch.optim.Optimizer`` subclass as a gdlab :class:`~gdlab.core.optimizer.GradientOptimizer`.

The adapter holds one float64 torch tensor per run (a view of nothing: the parameters are copied
in before each step and out after it), sets its ``.grad`` from gdlab's gradient, calls ``step()``
and returns the new point. Torch optimizers take one run at a time, so the class says
``batched = False`` and the run engine loops over the runs of a batch (its records say
``looped``). The torch optimizer object and its tensor live in the state under ``"torch"``; the
state's ``"step"`` counts the updates like every gdlab state. A step whose result is not finite is
refused (the run stops diverged) and the parameters stay as they were.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
from collections.abc import Iterator
from typing import Any, ClassVar

import numpy as np

from gdlab.core.batching import check_like
from gdlab.core.optimizer import GradientOptimizer, State, StepResult
from gdlab.foreign.common import ForeignError, import_attr

INSTALL = "torch is not installed: pip install gdlab[torch]"


def _torch() -> Any:
    try:
        import torch
    except ImportError:
        raise ForeignError(INSTALL) from None
    return torch


@contextlib.contextmanager
def _float64_scalars(torch: Any) -> Iterator[None]:
    """torch's default dtype float64 while the optimizer is built and steps: some keep scalar state in
    the default dtype (NAdam's ``mu_product``), which in a float32 process would round every run's
    momentum schedule to float32 (1e-7 relative) where the parameters are float64."""
    before = torch.get_default_dtype()
    torch.set_default_dtype(torch.float64)
    try:
        yield
    finally:
        torch.set_default_dtype(before)


class TorchOptimizer(GradientOptimizer):
    """Base of the adapter classes (one per torch optimizer class, see :func:`torch_adapter_class`)."""

    family = "foreign"
    batched = False
    torch_class: Any = None
    defaults: ClassVar[dict[str, Any]] = {}

    def __init__(self, **kwargs: Any) -> None:
        torch = _torch()
        self._kwargs = dict(kwargs)
        for key, value in kwargs.items():
            if isinstance(value, np.ndarray):
                raise TypeError(f"{self.name}: {key} must be a single number (torch optimizers take one run)")
        try:  # let the class check its arguments now, on a throwaway tensor
            type(self).torch_class([torch.zeros(1, dtype=torch.float64, requires_grad=True)], **kwargs)
        except Exception as exc:
            raise ForeignError(f"{self.name}: {type(exc).__name__}: {exc}") from None
        if "lr" in kwargs or "lr" in type(self).defaults:
            value = kwargs.get("lr", type(self).defaults.get("lr"))
            if isinstance(value, int | float) and not isinstance(value, bool):
                self.lr = float(value)

    def get_params(self) -> dict[str, Any]:
        return {**{k: v for k, v in type(self).defaults.items() if _plain(v)}, **self._kwargs}

    def __repr__(self) -> str:
        return f"{self.name}({', '.join(f'{k}={v!r}' for k, v in self._kwargs.items())})"

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "family": self.family, "summary": f"torch optimizer {self.name[6:]}"}

    def init(self, params: Any) -> State:
        torch = _torch()
        p = np.asarray(params, dtype=np.float64)
        tensor = torch.tensor(p, dtype=torch.float64, requires_grad=True)
        with _float64_scalars(torch):
            opt = type(self).torch_class([tensor], **self._kwargs)
        return {"step": 0, "torch": {"optimizer": opt, "param": tensor}}

    def update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult:
        torch = _torch()
        g = check_like(grad, params)
        held = state["torch"]
        tensor, opt = held["param"], held["optimizer"]
        if params.ndim != 1:
            raise ValueError(f"{self.name} takes one run at a time (params of shape (d,)), got {params.shape}")
        if lr is not None:
            for group in opt.param_groups:
                group["lr"] = float(lr)
        bad = np.zeros((), dtype=bool)
        if not np.all(np.isfinite(g)):
            return StepResult(params, state, np.ones((), dtype=bool))
        with torch.no_grad():
            tensor.copy_(torch.from_numpy(np.ascontiguousarray(params, dtype=np.float64)))
        tensor.grad = torch.from_numpy(np.array(g, dtype=np.float64))
        try:
            with _float64_scalars(torch):
                opt.step()
        except Exception as exc:
            raise ForeignError(f"{self.name}: step failed: {type(exc).__name__}: {exc}") from None
        new = tensor.detach().numpy().copy()
        if not np.all(np.isfinite(new)):
            bad = np.ones((), dtype=bool)
            return StepResult(params, {**state, "step": state["step"] + 1}, bad)
        return StepResult(new.astype(params.dtype, copy=False), {**state, "step": state["step"] + 1}, bad)


def _plain(value: Any) -> bool:
    if isinstance(value, bool | int | float | str) or value is None:
        return True
    return isinstance(value, tuple) and all(isinstance(v, int | float) for v in value)


@functools.cache
def torch_adapter_class(path: str) -> type[TorchOptimizer]:
    """The adapter class of the torch optimizer class at ``path`` (``torch.optim.Adam``)."""
    torch = _torch()
    cls = import_attr(path, "torch optimizer")
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise ForeignError(f"torch optimizer {path!r}: {cls!r} is not a torch.optim.Optimizer subclass")
    return type(f"Torch_{cls.__name__}", (TorchOptimizer,), {
        "name": f"torch:{path}", "torch_class": cls, "defaults": signature_defaults(cls),
        "__doc__": f"torch optimizer {path} (adapted; one run at a time)",
    })


def signature_defaults(cls: Any) -> dict[str, Any]:
    """The keyword arguments of ``cls.__init__`` with their defaults (what a listing can show)."""
    try:
        sig = inspect.signature(cls.__init__)
    except (TypeError, ValueError):
        return {}
    out = {}
    for name, p in sig.parameters.items():
        if name in ("self", "params") or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            continue
        if p.default is not inspect.Parameter.empty:
            out[name] = p.default
    return out
