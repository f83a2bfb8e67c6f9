"""Sharpness-aware minimization (Foret et al. 2021) and its adaptive form ASAM (Kwon et al. 2021),
as a wrapper around any gradient-only gdlab optimizer."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.batching import as_params, check_like, expand, per_run, run_all_finite, run_norm
from gdlab.core.hyper import Hyper, suggest, validate_hyperparams
from gdlab.core.objective import GivenGradient, Objective
from gdlab.core.optimizer import GradientOptimizer, Optimizer, State, StepResult, guard_nonfinite
from gdlab.core.optimizers.blocks import BlockOptimizer
from gdlab.core.rules import RULES, rule_class
from gdlab.core.statespec import Count, StateSpec

RHO = Hyper("rho", 0.05, low=0.0, doc="radius ρ of the neighbourhood in which the loss is maximised")
ADAPTIVE = Hyper("adaptive", False, kind="bool",
                 doc="ASAM: scale the perturbation by T = |θ| + η (scale-invariant sharpness)")
ETA = Hyper("eta", 0.01, low=0.0, doc="η added to |θ| in ASAM's scaling T = |θ| + η")

_OWN = ("rho", "adaptive", "eta")


class SAM(Optimizer):
    r"""Sharpness-aware minimization (SAM / ASAM): a base optimizer stepping with ∇L(θ + e).

    The base optimizer steps with the gradient taken at the worst point θ + e of a ρ-ball.

    With :math:`g = \nabla L(\theta)`, per run (the norm of one run's vector):

    .. math::
        e &= \rho\, \frac{g}{\lVert g\rVert_2}
        \qquad\text{or, adaptive (ASAM), }\quad
        e = \rho\, \frac{T^2 g}{\lVert T g\rVert_2},\quad T = |\theta| + \eta\\
        g' &= \nabla L(\theta + e)\\
        (\theta, s) &\leftarrow \text{base.update}(g', s, \theta)

    so the base optimizer (with its own state s, learning rate, momentum, weight decay...) is
    applied at θ with the gradient of the perturbed point. Where :math:`\lVert g\rVert = 0` (or
    :math:`\lVert Tg\rVert = 0`) the perturbation is e = 0, so SAM steps like its base; ``rho=0``
    is exactly the base optimizer. When the base maximizes, the perturbation descends
    (e uses −g): the neighbourhood's worst point for a maximization.

    Construction (``make_optimizer("sam", base="adam", lr=0.01, rho=0.05)`` is the same):

    - ``SAM(base="sgd", rho=0.05, adaptive=False, eta=0.01, **base_hyperparams)``: every keyword
      other than SAM's own (``rho``, ``adaptive``, ``eta``) goes to the base optimizer and is
      validated by its specs;
    - ``base_kwargs={...}`` passes base hyperparameters whose names SAM uses itself (Adadelta's
      ``rho``), e.g. ``SAM(base="adadelta", rho=0.05, base_kwargs={"rho": 0.9})``;
    - ``SAM(base=<Optimizer instance>, rho=...)`` wraps an already configured optimizer.

    The base must be gradient-only (its ``step`` is the plain one): optimizers that ask the
    objective for more (Newton, L-BFGS, look-ahead Nesterov, SAM) cannot be wrapped.
    :meth:`get_params` returns ``base`` (a name), SAM's own values and ``base_kwargs`` (the base's
    validated hyperparameters), which rebuild the same optimizer. State: ``{"step", "base": base
    state}``. SAM needs the objective (the gradient at θ + e): it is an
    :class:`~gdlab.core.optimizer.Optimizer` with :meth:`step` and no ``update``, and
    :class:`~gdlab.core.objective.GivenGradient` objectives are refused.
    """

    name = "sam"
    family = "wrapper"
    needs = "grad"
    hyperparams = (RHO, ADAPTIVE, ETA)

    def __init__(self, base: str | Optimizer = "sgd", base_kwargs: dict[str, Any] | None = None, **kwargs: Any):
        own = {k: kwargs.pop(k) for k in _OWN if k in kwargs}
        for key, value in validate_hyperparams(type(self).hyperparams, own, self.name).items():
            setattr(self, key, value)
        if base_kwargs is not None and not isinstance(base_kwargs, dict):
            raise TypeError(f"sam: base_kwargs must be a dict of hyperparameters, got {base_kwargs!r}")
        self.base = _build_base(base, dict(base_kwargs or {}), kwargs)

    def get_params(self) -> dict[str, Any]:
        return {
            "base": self.base.name,
            **{name: getattr(self, name) for name in _OWN},
            "base_kwargs": self.base.get_params(),
        }

    # -- the public API ----------------------------------------------------------------------
    def _init_buffers(self, params: np.ndarray) -> State:
        return {"base": self.base.init(params)}

    def state_spec(self) -> StateSpec:
        """What the state holds: ``step`` and the base optimizer's state."""
        return StateSpec({"step": Count(), "base": self.base.state_spec()})

    def perturbation(self, params: Any, grad: Any) -> np.ndarray:
        """The ascent step e (see the class docstring), zero where the gradient is zero."""
        p = as_params(params)
        g = check_like(grad, p)
        if getattr(self.base, "maximize", False):
            g = -g
        rho = expand(self.rho, p, "rho")
        if self.adaptive:
            scale = np.abs(p) + expand(self.eta, p, "eta")
            g = scale * g
            direction = scale * g  # T² g
        else:
            direction = g
        norm = per_run(run_norm(g))
        safe = np.where(norm > 0, norm, 1.0)
        return np.where(norm > 0, rho * direction / safe, 0.0)

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """One SAM step: gradient at θ, perturbation e, base update with ∇L(θ + e)."""
        if isinstance(objective, GivenGradient):
            raise TypeError(
                "sam needs the gradient at the perturbed point θ + e, which a GivenGradient (a fixed gradient "
                "stream) cannot provide; give sam an objective that computes gradients"
            )
        p = as_params(params)
        g = check_like(objective.grad(p) if grad is None else grad, p)
        with np.errstate(invalid="ignore", over="ignore"):
            e = self.perturbation(p, np.where(per_run(run_all_finite(g)), g, 0.0))
        g_sharp = check_like(objective.grad(p + e), p, "gradient at the perturbed point")
        inner = self.base.update(g_sharp, state["base"], p, lr)
        new_state: State = {"step": state["step"] + 1, "base": inner.state}
        outer = guard_nonfinite(p, state, inner.params, new_state, g)
        return StepResult(outer.params, outer.state, outer.nonfinite | inner.nonfinite)


def can_wrap(cls: type[Optimizer]) -> bool:
    """Whether SAM can wrap optimizers of class ``cls``: gradient-only ones that take the gradient at
    the params (not the seeds' look-ahead Nesterov), updating each element or the whole vector (not
    the matrix optimizers, whose blocks a layout gives: SAM passes none on)."""
    return (issubclass(cls, GradientOptimizer) and cls.step is GradientOptimizer.step
            and getattr(cls, "lookahead", None) is None and not issubclass(cls, BlockOptimizer))


def _build_base(base: str | Optimizer, base_kwargs: dict[str, Any], extra: dict[str, Any]) -> GradientOptimizer:
    """The wrapped optimizer, from a name and hyperparameters or as given."""
    if isinstance(base, Optimizer):
        if base_kwargs or extra:
            given = ", ".join(sorted({**base_kwargs, **extra}))
            raise TypeError(
                f"sam: base is an already configured {base.name!r} optimizer, so hyperparameters for it "
                f"({given}) cannot be passed to sam; set them on the base optimizer instead"
            )
        opt = base
    elif isinstance(base, str):
        try:
            cls = rule_class(base)
        except ValueError:
            raise ValueError(
                f"sam cannot wrap {base!r}{suggest(base, RULES)}: the base must be a gradient-only optimizer, "
                f"one of {', '.join(name for name, c in RULES.items() if can_wrap(c))}"
            ) from None
        both = sorted(set(base_kwargs) & set(extra))
        if both:
            raise TypeError(f"sam: {', '.join(both)} given both as keywords and in base_kwargs")
        merged = {**extra, **base_kwargs}
        valid = [s.name for s in cls.hyperparams]
        for key in merged:
            if key not in valid:
                raise TypeError(
                    f"sam: unknown hyperparameter {key!r}{suggest(key, valid + list(_OWN))} for sam with base "
                    f"{base!r}; sam's own: {', '.join(_OWN)}; {base}'s: {', '.join(valid) or '(none)'}"
                )
        opt = cls(**merged)
    else:
        raise TypeError(f"sam: base must be an optimizer name or an Optimizer, got {base!r}")
    if not can_wrap(type(opt)):
        raise ValueError(
            f"sam: the base optimizer {opt.name!r} asks the objective for more than the gradient at θ, "
            "so sam cannot wrap it; use a gradient-only optimizer such as 'sgd' or 'adam'"
        )
    return opt  # type: ignore[return-value]
