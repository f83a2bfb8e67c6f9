"""gdlab's elementwise optimizers as ``torch.optim.Optimizer`` subclasses (``gdlab.torch.Adam``, ...).

One class per rule of the registry (:data:`gdlab.core.rules.RULES`), generated here: the class of
rule ``Adam`` is ``gdlab.torch.Adam``, and so on (``SGD``, ``Momentum``, ``Nesterov``, ``Lion``, ...).
Keyword arguments are the rule's hyperparameters (PyTorch's names and defaults), validated by the
rule. Param groups, ``zero_grad``, ``state_dict``/``load_state_dict`` and learning-rate schedulers
work as with torch's own optimizers (a group's ``lr`` is passed to every step).

Each step runs the rule's in-place update (:meth:`gdlab.core.optimizer.GradientOptimizer.update_`,
the fused kernels of :mod:`gdlab.fast` when they apply) directly on the memory of the parameter,
its gradient and its state tensors (``tensor.numpy()`` shares memory: no copies). A parameter is
one run (flattened): if its gradient or update is not finite, that parameter keeps its value and
state for this step. Only contiguous float32/float64 CPU tensors are accepted; anything else is
refused with a ``ValueError`` naming the parameter.

Importing this module imports torch (``pip install gdlab[torch]``); ``import gdlab`` does not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

try:
    import torch
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise ImportError("gdlab.torch needs torch: pip install gdlab[torch]") from exc

from gdlab.core.optimizer import GradientOptimizer
from gdlab.core.rule import Rule
from gdlab.core.rules import RULES

_DTYPES = (torch.float32, torch.float64)


def _array(t: torch.Tensor, what: str) -> Any:
    if t.device.type != "cpu":
        raise ValueError(f"gdlab.torch: {what} is on {t.device}; gdlab.torch runs on CPU tensors only")
    if t.dtype not in _DTYPES:
        raise ValueError(f"gdlab.torch: {what} has dtype {t.dtype}; expected torch.float32 or torch.float64")
    if not t.is_contiguous():
        raise ValueError(f"gdlab.torch: {what} is not contiguous; call .contiguous() on it first")
    return t.detach().numpy().reshape(-1)


class GdlabOptimizer(torch.optim.Optimizer):
    """Base of the generated classes: runs rule :attr:`rule` on every parameter (see the module docstring)."""

    rule: type[Rule]

    def __init__(self, params: Any, **hyperparams: Any) -> None:
        defaults = {**{h.name: h.default for h in self.rule.hyperparams}, **hyperparams}
        self.rule(**defaults)  # validate now: the error names the hyperparameter
        super().__init__(params, defaults)
        self._rules: dict[tuple[Any, ...], GradientOptimizer] = {}

    def _rule_for(self, group: dict[str, Any]) -> GradientOptimizer:
        values = {h.name: group[h.name] for h in self.rule.hyperparams}
        key = tuple((k, tuple(v) if isinstance(v, list) else v) for k, v in values.items())
        opt = self._rules.get(key)
        if opt is None:
            opt = self._rules[key] = self.rule(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})
        return opt

    def _check(self) -> None:
        for gi, group in enumerate(self.param_groups):
            for pi, p in enumerate(group["params"]):
                _array(p, f"parameter {pi} of group {gi}")

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        self._check()
        for group in self.param_groups:
            self._update_group(group, self._rule_for(group))
        return loss

    def _update_group(self, group: dict[str, Any], opt: GradientOptimizer) -> None:
        for p in group["params"]:
            if p.grad is None:
                continue
            if p.grad.dtype != p.dtype or p.grad.device != p.device:
                raise ValueError("gdlab.torch: a gradient must have its parameter's dtype and device")
            params = _array(p, "a parameter")
            grad = _array(p.grad, "a gradient")
            st = self.state[p]
            if not st:
                st["step"] = 0
                fresh = opt.init(params)
                for key, value in fresh.items():
                    if key != "step":
                        st[key] = torch.from_numpy(value).view_as(p) if hasattr(value, "shape") and \
                            getattr(value, "shape", ()) == params.shape else value
            state = {key: (_array(v, f"state {key!r}") if isinstance(v, torch.Tensor) else v) for key, v in st.items()}
            state["step"] = int(st["step"])
            opt.update_(grad, state, params, lr=float(group["lr"]))
            for key, value in state.items():  # buffers were updated in place; scalars come back
                if not isinstance(st.get(key), torch.Tensor):
                    st[key] = value.item() if hasattr(value, "item") else value


def _make(rule: type[Rule]) -> type[GdlabOptimizer]:
    doc = f"gdlab's ``{rule.name}`` rule as a torch optimizer.\n\n" + (rule.__doc__ or "")
    return type(rule.__name__, (GdlabOptimizer,), {"rule": rule, "__doc__": doc, "__module__": __name__})


#: The generated classes by rule name (``"adam"`` → ``gdlab.torch.Adam``).
OPTIMIZERS: dict[str, type[GdlabOptimizer]] = {name: _make(cls) for name, cls in RULES.items()}
globals().update({cls.__name__: cls for cls in OPTIMIZERS.values()})

__all__ = ["OPTIMIZERS", "GdlabOptimizer", *sorted(cls.__name__ for cls in OPTIMIZERS.values())]
