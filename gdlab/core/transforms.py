r"""Composable gradient transforms (optax-style) and :func:`chain`, which turns them into an optimizer.

A :class:`GradientTransform` is configured like any optimizer (validated :class:`~gdlab.core.hyper.Hyper`
specs) and is pure, with explicit state:

``state = tr.init(params)``
    Fresh state (a dict of arrays and ints).
``grad, state = tr.apply(grad, state, params)``
    The transformed gradient and the new state.

Two optional hooks let a transform do what a pure gradient map cannot:

``tr.should_step(state)``
    Whether the optimizer step runs this call (a bool, or one bool per run): gradient accumulation
    steps only on every k-th call, the loss scaler skips steps whose gradients overflowed.
``tr.apply_params(params, state, lr)``
    A map applied to θ just before the inner optimizer's step, with the current learning rate η:
    decoupled weight decay θ ← θ − ηλθ lives here (it is not a function of the gradient).

``opt = chain(t1, t2, ..., optimizer)`` is a :class:`~gdlab.core.optimizer.Optimizer` (``init``,
``update``, ``step``; usable by the run engine and driven by schedules through ``lr``). One update:

1. g ← t1.apply(g), t2.apply(g), ... in order; each sees the original params. When a transform says
   no run should step, the rest of the chain (later transforms and the optimizer) is not applied
   and the params are returned unchanged; only the transforms up to it advanced their state.
2. θ' ← t.apply_params(θ, η) for every transform, in order.
3. θ'' ← optimizer.update(g, θ') with learning rate η; runs that must not step keep θ and their
   optimizer state.

The chain's state is ``{"step": calls, "transforms": [state of each transform], "inner": optimizer
state}``: dicts and lists of arrays and ints (JSON/npz-serialisable). ``step`` counts calls of
:meth:`Chain.update`; ``inner["step"]`` counts the optimizer steps actually taken.

Batch convention: every reduction (a gradient norm, an overflow check) is per run, over the last
axis only; hyperparameters may be batched like an optimizer's.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import numpy as np

from gdlab.core.batching import as_params, batch_shape, check_like, expand, per_run, run_all_finite
from gdlab.core.hyper import Configurable, Hyper, lookup
from gdlab.core.objective import Objective
from gdlab.core.optimizer import LR_OVERRIDE, GradientOptimizer, Optimizer, State, StepResult, merge_state
from gdlab.core.rules import rule_class
from gdlab.core.rules.common import is_off
from gdlab.core.statespec import PARAMS, RUNS, Array, Count, Each, StateSpec


class NormTypeHyper(Hyper):
    """The order p of a vector norm: a real p > 0, or ``inf`` (also the string ``"inf"``)."""

    def range_text(self) -> str:
        return "a real p > 0, or inf"

    def validate(self, value: Any, owner: str) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("inf", "infinity"):
            return math.inf
        if isinstance(value, bool | np.bool_) or not isinstance(value, int | float | np.integer | np.floating):
            raise TypeError(f"{owner}: {self.name} must be a number or 'inf', got {value!r}")
        v = float(value)
        if v == math.inf:
            return math.inf
        if not math.isfinite(v) or v <= 0:
            raise ValueError(f"{owner}: {self.name}={value!r} is out of range; expected {self.range_text()}")
        return v


class GradientTransform(Configurable):
    """Base class of gradient transforms. Subclasses implement ``apply`` (and ``_init`` if stateful)."""

    #: True when the transform acts coordinate by coordinate (no reduction over the parameters).
    elementwise: ClassVar[bool] = True

    def init(self, params: Any) -> State:
        """Fresh state for ``params``."""
        p = as_params(params)
        for spec in type(self).hyperparams:
            value = getattr(self, spec.name)
            if isinstance(value, np.ndarray):
                expand(value, p, spec.name)
        return self._init(p)

    def _init(self, params: np.ndarray) -> State:
        return {}

    def state_spec(self) -> StateSpec:
        """What the state holds (nothing, unless the transform keeps a state)."""
        return StateSpec()

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        """The transformed gradient and the new state."""
        raise NotImplementedError

    def should_step(self, state: State) -> Any:
        """Whether the optimizer step runs after this call (bool, or bool per run), from the new state."""
        return True

    def apply_params(self, params: np.ndarray, state: State, lr: Any) -> np.ndarray:
        """Map applied to the params just before the optimizer step (identity by default)."""
        return params

    def preprocess(self, grad: np.ndarray, state: State) -> np.ndarray:
        """Applied by :meth:`Chain.step` to a gradient it computes from an objective (identity by default).

        Lets the loss scaler emulate the backward pass of a scaled loss in low precision.
        """
        return grad

    def _hp(self, name: str, params: np.ndarray) -> Any:
        return expand(getattr(self, name), params, name)

    def __call__(self, grad: Any, state: State, params: Any) -> tuple[np.ndarray, State]:
        p = as_params(params)
        return self.apply(check_like(grad, p), state, p)


# -- gradient maps ---------------------------------------------------------------------------


class ClipByGlobalNorm(GradientTransform):
    r"""Clip each run's gradient to a maximum norm, as ``torch.nn.utils.clip_grad_norm_``.

    .. math:: g \leftarrow g\cdot\min\Bigl(1,\ \frac{c}{\lVert g\rVert_p + \epsilon}\Bigr)

    with c = ``max_norm``, p = ``norm_type`` (2, any p > 0, or ``inf`` for max |gᵢ|) and PyTorch's
    ε = 1e-6. The norm is over a run's whole parameter vector (PyTorch: over all tensors together).
    Because of ε, clipping an already clipped gradient shrinks it again by about ε/c.
    """

    name = "clip_by_global_norm"
    elementwise = False
    hyperparams = (
        Hyper("max_norm", None, low=0.0, doc="maximum norm c"),
        NormTypeHyper("norm_type", 2.0, low=0.0, low_open=True, batchable=False, doc="order p of the norm (or inf)"),
        Hyper("eps", 1e-6, low=0.0, doc="ε added to the norm (PyTorch: 1e-6)"),
    )

    def norm(self, grad: np.ndarray) -> np.ndarray:
        """The p-norm of each run's gradient, shape ``batch``."""
        p = self.norm_type
        if p == math.inf:
            return np.max(np.abs(grad), axis=-1)
        if p == 2.0:
            return np.sqrt(np.sum(grad * grad, axis=-1))
        if p == 1.0:
            return np.sum(np.abs(grad), axis=-1)
        return np.sum(np.abs(grad) ** p, axis=-1) ** (1.0 / p)

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        total = per_run(self.norm(grad))
        with np.errstate(divide="ignore", invalid="ignore"):
            coef = self._hp("max_norm", params) / (total + self._hp("eps", params))
        return grad * np.minimum(coef, 1.0), state


class ClipByValue(GradientTransform):
    r"""Clip every coordinate to [−c, c], as ``torch.nn.utils.clip_grad_value_``: gᵢ ← clamp(gᵢ, −c, c)."""

    name = "clip_by_value"
    hyperparams = (Hyper("clip_value", None, low=0.0, doc="bound c of each coordinate"),)

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        c = self._hp("clip_value", params)
        return np.clip(grad, -c, c), state


class AddDecayedWeights(GradientTransform):
    r"""Coupled L2 weight decay: :math:`g \leftarrow g + \lambda\theta` (PyTorch's ``weight_decay`` of SGD/Adam)."""

    name = "add_decayed_weights"
    hyperparams = (Hyper("weight_decay", None, low=0.0, doc="L2 coefficient λ"),)

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        wd = self._hp("weight_decay", params)
        return (grad if is_off(wd) else grad + wd * params), state


class DecoupledWeightDecay(GradientTransform):
    r"""Decoupled weight decay (AdamW's): the gradient is untouched, the params decay before the step.

    .. math:: \theta \leftarrow \theta - \eta_t\lambda\theta = \theta(1 - \eta_t\lambda)

    with the step's learning rate :math:`\eta_t` (so it follows a schedule, as in PyTorch).
    ``chain(decoupled_weight_decay(λ), adam(weight_decay=0))`` is ``torch.optim.AdamW``.
    """

    name = "decoupled_weight_decay"
    hyperparams = (Hyper("weight_decay", None, low=0.0, doc="decoupled decay λ"),)

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        return grad, state

    def apply_params(self, params: np.ndarray, state: State, lr: Any) -> np.ndarray:
        wd = self._hp("weight_decay", params)
        if is_off(wd):
            return params
        return params * (1.0 - lr * wd)


class Accumulate(GradientTransform):
    r"""Gradient accumulation over k micro-batches (like ``optax.MultiSteps``).

    The state holds the running sum S of the gradients and the micro-step counter m. Each call adds
    the gradient; on every k-th call the mean :math:`S/k` is passed on, the sum resets, and the
    optimizer steps; on the other calls the rest of the chain is skipped and the params are
    unchanged. Mean of k micro-batch gradients of size b = the gradient of the batch of size k·b.
    """

    name = "accumulate"
    hyperparams = (Hyper("k", 1, kind="int", low=1, batchable=False, doc="micro-batches per optimizer step"),)

    def _init(self, params: np.ndarray) -> State:
        return {"mini_step": 0, "grad_sum": np.zeros_like(params)}

    def state_spec(self) -> StateSpec:
        return StateSpec({"mini_step": Count(self.k - 1), "grad_sum": Array(PARAMS)})

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        total = state["grad_sum"] + grad
        count = int(state["mini_step"]) + 1
        if count >= self.k:
            return total / self.k, {"mini_step": 0, "grad_sum": np.zeros_like(total)}
        return np.zeros_like(total), {"mini_step": count, "grad_sum": total}

    def should_step(self, state: State) -> Any:
        return int(state["mini_step"]) == 0


class DynamicLossScaler(GradientTransform):
    r"""Dynamic loss scaling for float16 mixed precision, as ``torch.amp.GradScaler``.

    The loss is multiplied by the scale s before the backward pass (:meth:`scale_loss`), so the
    gradients arrive scaled. As a chain element the scaler takes those *scaled* gradients and, per run:

    - unscales them, :math:`g \leftarrow g/s` (:meth:`unscale`);
    - if any entry is inf/NaN (:meth:`found_inf`): the step is skipped (params and optimizer state
      unchanged, the gradient passed on is zero) and :math:`s \leftarrow s\cdot` ``backoff_factor``;
    - otherwise the step runs, and after ``growth_interval`` consecutive clean steps
      :math:`s \leftarrow s\cdot` ``growth_factor``.

    State per run: ``scale``, ``growth_tracker`` (clean steps since the last change) and
    ``found_inf`` (whether the last call skipped). :meth:`Chain.step` emulates the scaled backward
    pass: it multiplies the objective's gradient by s and rounds it to ``grad_dtype`` (float16
    overflows above 65504). PyTorch keeps s in float32; with power-of-two factors (the defaults)
    the sequences are identical.
    """

    name = "loss_scale"
    hyperparams = (
        Hyper("init_scale", 2.0**16, low=0.0, low_open=True, batchable=False, doc="initial scale s"),
        Hyper("growth_factor", 2.0, low=1.0, low_open=True, batchable=False, doc="growth factor of s"),
        Hyper("backoff_factor", 0.5, low=0.0, high=1.0, low_open=True, high_open=True, batchable=False,
              doc="factor applied to s on overflow"),
        Hyper("growth_interval", 2000, kind="int", low=1, batchable=False, doc="clean steps before s grows"),
        Hyper("grad_dtype", "float16", kind="choice", choices=("float16", "float32", "float64"),
              doc="precision in which Chain.step emulates the scaled backward pass"),
    )

    def _init(self, params: np.ndarray) -> State:
        batch = batch_shape(params)
        return {
            "scale": np.full(batch, self.init_scale, dtype=np.float64),
            "growth_tracker": np.zeros(batch, dtype=np.int64),
            "found_inf": np.zeros(batch, dtype=bool),
        }

    def state_spec(self) -> StateSpec:
        return StateSpec({"scale": Array(RUNS), "growth_tracker": Array(RUNS, "i"), "found_inf": Array(RUNS, "b")})

    def scale_loss(self, loss: Any, state: State) -> np.ndarray:
        """The loss times the current scale (per run)."""
        return np.asarray(loss, dtype=np.float64) * state["scale"]

    def scale_grad(self, grad: np.ndarray, state: State) -> np.ndarray:
        """Emulate the gradient of the scaled loss computed in ``grad_dtype`` (overflow → inf)."""
        with np.errstate(over="ignore", invalid="ignore"):
            scaled = np.asarray(grad, dtype=np.float64) * per_run(state["scale"])
            return scaled.astype(self.grad_dtype).astype(np.float64)

    def unscale(self, grad: np.ndarray, state: State) -> np.ndarray:
        """Scaled gradients divided by the scale (multiplied by 1/s, as PyTorch)."""
        return grad * per_run(1.0 / np.asarray(state["scale"], dtype=np.float64))

    @staticmethod
    def found_inf(grad: np.ndarray) -> np.ndarray:
        """Per run: some entry of the gradient is inf or NaN."""
        return ~run_all_finite(grad)

    def update_scale(self, state: State, found_inf: Any) -> State:
        """The state after a step that did (``found_inf``) or did not overflow, per run."""
        scale = np.asarray(state["scale"], dtype=np.float64)
        tracker = np.asarray(state["growth_tracker"], dtype=np.int64)
        inf = np.broadcast_to(np.asarray(found_inf, dtype=bool), scale.shape)
        clean = tracker + 1
        grown = scale * self.growth_factor
        grow = ~inf & (clean >= self.growth_interval) & np.isfinite(grown)
        new_scale = np.where(inf, scale * self.backoff_factor, np.where(grow, grown, scale))
        new_tracker = np.where(inf | (clean >= self.growth_interval), 0, clean)
        return {"scale": new_scale, "growth_tracker": new_tracker.astype(np.int64), "found_inf": inf.copy()}

    def apply(self, grad: np.ndarray, state: State, params: np.ndarray) -> tuple[np.ndarray, State]:
        with np.errstate(over="ignore", invalid="ignore"):
            unscaled = self.unscale(grad, state)
        inf = self.found_inf(grad) | self.found_inf(unscaled)
        if inf.any():
            unscaled = np.where(per_run(inf), 0.0, unscaled)
        return unscaled, self.update_scale(state, inf)

    def should_step(self, state: State) -> Any:
        return ~np.asarray(state["found_inf"], dtype=bool)

    def preprocess(self, grad: np.ndarray, state: State) -> np.ndarray:
        return self.scale_grad(grad, state)


# -- chain ------------------------------------------------------------------------------------


class Chain(GradientOptimizer):
    """Gradient transforms followed by an optimizer, as one optimizer (see the module docstring)."""

    name = "chain"
    family = "wrapper"
    hyperparams = ()

    def __init__(self, transforms: tuple[GradientTransform, ...], inner: Optimizer) -> None:
        super().__init__()
        for tr in transforms:
            if not isinstance(tr, GradientTransform):
                raise TypeError(f"chain: expected gradient transforms before the optimizer, got {tr!r}")
        if not isinstance(inner, Optimizer):
            raise TypeError(f"chain: the last argument must be an optimizer, got {inner!r}")
        if not isinstance(inner, GradientOptimizer):
            raise ValueError(
                f"chain: optimizer {inner.name!r} evaluates the objective itself (needs={inner.needs!r}); "
                "only gradient-driven optimizers can follow gradient transforms"
            )
        self.transforms = tuple(transforms)
        self.inner = inner

    @property
    def lr(self) -> Any:
        """The inner optimizer's configured learning rate."""
        return self.inner.lr  # type: ignore[attr-defined]

    def get_params(self) -> dict[str, Any]:
        return {
            "transforms": [{"name": tr.name, **tr.get_params()} for tr in self.transforms],
            "inner": {"name": self.inner.name, **self.inner.get_params()},
        }

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> Chain:
        """Rebuild a chain from :meth:`get_params` output (used when loading saved states)."""
        try:
            transforms = [dict(t) for t in params["transforms"]]
            inner = dict(params["inner"])
        except (KeyError, TypeError):
            raise ValueError(f"chain: expected 'transforms' and 'inner' parameters, got {params!r}") from None
        parts = [make_transform(t.pop("name"), **t) for t in transforms]
        name = inner.pop("name")
        return cls(tuple(parts), cls.from_params(inner) if name == cls.name else rule_class(name)(**inner))

    def __repr__(self) -> str:
        return f"chain({', '.join(repr(part) for part in (*self.transforms, self.inner))})"

    def init(self, params: Any) -> State:
        p = as_params(params)
        return {"step": 0, "transforms": [tr.init(p) for tr in self.transforms], "inner": self.inner.init(p)}

    def state_spec(self) -> StateSpec:
        """What the state holds: ``step``, each transform's state and the inner optimizer's."""
        return StateSpec({"step": Count(), "transforms": Each(tuple(tr.state_spec() for tr in self.transforms)),
                          "inner": self.inner.state_spec()})

    def update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult:
        p = as_params(params)
        g = check_like(grad, p)
        go = np.ones(batch_shape(p), dtype=bool)
        states = list(state["transforms"])
        out: State = {"step": state["step"] + 1, "transforms": states, "inner": state["inner"]}
        for i, tr in enumerate(self.transforms):
            g, states[i] = tr.apply(g, states[i], p)
            go = go & np.asarray(tr.should_step(states[i]), dtype=bool)
            if not go.any():
                return StepResult(p, out, np.zeros(batch_shape(p), dtype=bool))
        lr_now = expand(self.lr if lr is None else LR_OVERRIDE.validate(lr, self.name), p, "lr")
        decayed = p
        for tr, s in zip(self.transforms, states, strict=True):
            decayed = tr.apply_params(decayed, s, lr_now)
        new_params, inner_state, bad = self.inner.update(g, state["inner"], decayed, lr)
        keep = bad | ~go
        if keep.any():
            new_params = np.where(per_run(keep), p, new_params)
            inner_state = merge_state(state["inner"], inner_state, keep, p)
        out["inner"] = inner_state
        return StepResult(new_params, out, bad)

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        """One update from the objective's gradient (``grad``: that gradient at ``params``, if known).

        An inner optimizer with a look-ahead point (textbook Nesterov) gets the gradient there, and
        ``grad`` is ignored, as that optimizer's own ``step`` does. Each transform's
        :meth:`~GradientTransform.preprocess` then sees the gradient (the loss scaler scales it, in
        its ``grad_dtype``), so the gradient handed to :meth:`update` is what a backward pass of the
        (scaled) loss would produce.
        """
        p = as_params(params)
        point = self.inner.gradient_point(p, state["inner"])
        if point is not p or grad is None:
            grad = objective.grad(point)
        g = np.asarray(grad, dtype=np.float64)
        for tr, s in zip(self.transforms, state["transforms"], strict=True):
            g = tr.preprocess(g, s)
        return self.update(g, state, p, lr)


def chain(*parts: GradientTransform | GradientOptimizer) -> Chain:
    """``chain(t1, ..., tn, optimizer)``: the transforms applied in order, then the optimizer."""
    if not parts:
        raise TypeError("chain: expected gradient transforms followed by an optimizer, got nothing")
    *transforms, inner = parts
    return Chain(tuple(transforms), inner)  # type: ignore[arg-type]


# -- constructors and registry ----------------------------------------------------------------


def clip_by_global_norm(max_norm: Any, norm_type: Any = 2.0, eps: Any = 1e-6) -> ClipByGlobalNorm:
    """:class:`ClipByGlobalNorm` (``torch.nn.utils.clip_grad_norm_``)."""
    return ClipByGlobalNorm(max_norm=max_norm, norm_type=norm_type, eps=eps)


def clip_by_value(clip_value: Any) -> ClipByValue:
    """:class:`ClipByValue` (``torch.nn.utils.clip_grad_value_``)."""
    return ClipByValue(clip_value=clip_value)


def add_decayed_weights(weight_decay: Any) -> AddDecayedWeights:
    """:class:`AddDecayedWeights`: g ← g + λθ."""
    return AddDecayedWeights(weight_decay=weight_decay)


def decoupled_weight_decay(weight_decay: Any) -> DecoupledWeightDecay:
    """:class:`DecoupledWeightDecay`: θ ← θ(1 − ηλ) before the step."""
    return DecoupledWeightDecay(weight_decay=weight_decay)


def accumulate(k: int) -> Accumulate:
    """:class:`Accumulate`: average k micro-batch gradients, step every k-th call."""
    return Accumulate(k=k)


def loss_scale(**hyperparams: Any) -> DynamicLossScaler:
    """:class:`DynamicLossScaler` (``torch.amp.GradScaler``)."""
    return DynamicLossScaler(**hyperparams)


TRANSFORMS: dict[str, type[GradientTransform]] = {
    cls.name: cls
    for cls in (ClipByGlobalNorm, ClipByValue, AddDecayedWeights, DecoupledWeightDecay, Accumulate, DynamicLossScaler)
}


def transform_class(name: str) -> type[GradientTransform]:
    """The transform class called ``name``; unknown names list the valid ones."""
    return lookup(TRANSFORMS, name, "transform")


def make_transform(name: str, **hyperparams: Any) -> GradientTransform:
    """Build transform ``name`` with validated hyperparameters."""
    return transform_class(name)(**hyperparams)


__all__ = [
    "TRANSFORMS",
    "Accumulate",
    "AddDecayedWeights",
    "Chain",
    "ClipByGlobalNorm",
    "ClipByValue",
    "DecoupledWeightDecay",
    "DynamicLossScaler",
    "GradientTransform",
    "NormTypeHyper",
    "accumulate",
    "add_decayed_weights",
    "chain",
    "clip_by_global_norm",
    "clip_by_value",
    "decoupled_weight_decay",
    "loss_scale",
    "make_transform",
    "transform_class",
]
