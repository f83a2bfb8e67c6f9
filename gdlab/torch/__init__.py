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


class SAM(torch.optim.Optimizer):
    """Sharpness-aware minimisation around any gdlab.torch optimizer (gdlab's ``sam``).

    ``SAM(params, base=gdlab.torch.Adam, rho=0.05, adaptive=False, eta=0.01, **base_hyperparams)``
    (``base`` also by rule name, ``"adam"``). ``step(closure)`` needs a closure that zeroes the
    gradients, recomputes the loss, calls ``backward()`` and returns the loss; the gradients at θ
    must already be in ``.grad`` (the usual ``loss.backward()`` before ``step``). As in gdlab's
    ``sam``, e = ρ g/‖g‖ (ASAM: ρ T²g/‖Tg‖, T = |θ| + η), here with the norm over all parameters of
    a group; the base then steps at θ with the gradient at θ + e (e = 0 where ‖g‖ = 0).
    """

    def __init__(self, params: Any, base: Any = "sgd", rho: float = 0.05, adaptive: bool = False,
                 eta: float = 0.01, **base_hyperparams: Any) -> None:
        if isinstance(base, str):
            if base not in OPTIMIZERS:
                raise ValueError(f"gdlab.torch.SAM: unknown base {base!r}; expected one of {', '.join(OPTIMIZERS)}")
            base = OPTIMIZERS[base]
        if not (isinstance(base, type) and issubclass(base, GdlabOptimizer)):
            raise TypeError("gdlab.torch.SAM: base must be a gdlab.torch optimizer class or a rule name")
        from gdlab.core.optimizers import make_optimizer

        make_optimizer("sam", base=base.rule.name, rho=rho, adaptive=adaptive, eta=eta)  # validate ρ, η
        super().__init__(params, {"rho": rho, "adaptive": adaptive, "eta": eta})
        self.base = base(self.param_groups, **base_hyperparams)
        self.param_groups = self.base.param_groups  # one list of groups, shared
        self.state = self.base.state

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> Any:
        if closure is None:
            raise ValueError("gdlab.torch.SAM.step needs a closure (it evaluates the gradient at θ + e)")
        self.base._check()
        moved = []
        for group in self.param_groups:
            rho, adaptive, eta = group["rho"], group["adaptive"], group["eta"]
            ps = [p for p in group["params"] if p.grad is not None]
            sign = -1.0 if group.get("maximize", False) else 1.0
            gs = [sign * (p.grad * (p.abs() + eta) if adaptive else p.grad) for p in ps]
            norm = torch.sqrt(sum((g * g).sum() for g in gs)) if gs else torch.zeros(())
            for p, g in zip(ps, gs, strict=True):
                e = torch.zeros_like(p) if norm == 0 else rho * (g * (p.abs() + eta) if adaptive else g) / norm
                p.add_(e)
                moved.append((p, e))
        with torch.enable_grad():
            loss = closure()
        for p, e in moved:
            p.sub_(e)
        self.base.step()
        return loss

    def state_dict(self) -> dict[str, Any]:
        return self.base.state_dict()

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        self.base.load_state_dict(state_dict)
        self.param_groups = self.base.param_groups
        self.state = self.base.state


def _make(rule: type[Rule]) -> type[GdlabOptimizer]:
    doc = f"gdlab's ``{rule.name}`` rule as a torch optimizer.\n\n" + (rule.__doc__ or "")
    return type(rule.__name__, (GdlabOptimizer,), {"rule": rule, "__doc__": doc, "__module__": __name__})


#: The generated classes by rule name (``"adam"`` → ``gdlab.torch.Adam``).
OPTIMIZERS: dict[str, type[GdlabOptimizer]] = {name: _make(cls) for name, cls in RULES.items()}
globals().update({cls.__name__: cls for cls in OPTIMIZERS.values()})

__all__ = ["OPTIMIZERS", "SAM", "GdlabOptimizer", *sorted(cls.__name__ for cls in OPTIMIZERS.values())]
