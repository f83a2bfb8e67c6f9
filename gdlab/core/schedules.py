r"""Learning-rate schedules, with PyTorch's names and closed forms.

A schedule maps a 0-based optimizer step ``t`` and a base learning rate η₀ to the learning rate of
that step:

``schedule(t, base_lr)``
    The rate used by the (t+1)-th update, i.e. what ``torch.optim.lr_scheduler`` gives after ``t``
    calls of ``scheduler.step()``. ``t`` may be an int or an integer array (a whole curve at once);
    ``base_lr`` a float or a batch array; both broadcast (numpy rules) with any batched
    hyperparameter, so ``schedule(np.arange(T)[:, None], lrs)`` is a ``(T, B)`` table.

Every schedule also has the same small stateful interface, so that a run engine can treat the
closed-form ones and the loss-driven ``plateau`` alike::

    state = sched.init()
    for t in range(steps):
        lr = sched.lr(t, base_lr, state)            # feed to opt.update(..., lr=lr)
        ...
        state = sched.observe(state, loss, base_lr)  # no-op unless sched.needs_loss

A schedule drives any optimizer through the ``lr`` argument of ``update``/``step``. The closed forms
are evaluated directly (not by PyTorch's chainable recursion), so they agree with
``torch.optim.lr_scheduler`` to a few units in the last place, not always bit for bit. Their powers
and cosines are computed by :mod:`gdlab.core.scalarmath`, element by element with the C library, so
the rate of a step is the same number whether it is asked for alone or in a whole curve: the
step-by-step reference and the fused trajectories (which take a whole table at once) agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import Any, ClassVar

import numpy as np

from gdlab.core.hyper import Configurable, Hyper, lookup
from gdlab.core.scalarmath import cos, power

ScheduleState = dict[str, Any]


class IntListHyper(Hyper):
    """A hyperparameter holding a list of non-negative integers (milestones), kept sorted: in any order,
    and a value given twice counts twice, as PyTorch's ``MultiStepLR`` counts them."""

    def range_text(self) -> str:
        return "a list of integers ≥ 0"

    def validate(self, value: Any, owner: str) -> Any:
        if value is None:
            if self.optional:
                return None
            raise TypeError(f"{owner}: {self.name} must be set (got None)")
        if isinstance(value, str | bytes) or not isinstance(value, Iterable | np.ndarray):
            raise TypeError(f"{owner}: {self.name} must be a list of integers, got {value!r}")
        items: list[int] = []
        for v in np.asarray(value).ravel().tolist() if isinstance(value, np.ndarray) else list(value):
            if isinstance(v, bool) or not isinstance(v, int | np.integer | float):
                raise TypeError(f"{owner}: {self.name} must hold integers, got {v!r} in {value!r}")
            if isinstance(v, float) and not v.is_integer():
                raise TypeError(f"{owner}: {self.name} must hold integers, got {v!r} in {value!r}")
            items.append(int(v))
        if any(v < 0 for v in items):
            raise ValueError(f"{owner}: {self.name}={items} has a negative entry; expected {self.range_text()}")
        return tuple(sorted(items))


# -- input conversion -------------------------------------------------------------------------

_BASE_LR = Hyper("base_lr", None, low=0.0)


def as_steps(step: Any) -> np.ndarray:
    """Check a step index (int or integer array, ≥ 0) and return it as an int64 array."""
    if type(step) is int and step >= 0:  # the common scalar case, fast
        return np.asarray(step, dtype=np.int64)
    if isinstance(step, bool | np.bool_):
        raise TypeError(f"step must be an integer or an integer array, got {step!r}")
    arr = np.asarray(step)
    if arr.dtype.kind == "f" and np.all(np.isfinite(arr)) and np.all(arr == np.round(arr)):
        arr = arr.astype(np.int64)
    if arr.dtype.kind not in "iu":
        raise TypeError(f"step must be an integer or an integer array, got {step!r}")
    if np.any(arr < 0):
        raise ValueError(f"step must be ≥ 0, got {int(arr.min())}")
    return arr.astype(np.int64)


def as_base_lr(value: Any, owner: str) -> np.ndarray:
    """Check a base learning rate (finite, ≥ 0; a float or a batch array), vectorised."""
    if type(value) is float and 0.0 <= value < math.inf:  # the common scalar case, fast
        return np.asarray(value)
    if not isinstance(value, bool | np.bool_ | str) and value is not None:
        try:
            arr = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError):
            arr = None
        if arr is not None and np.isfinite(arr).all() and (arr >= 0).all():
            return arr
    return np.asarray(_BASE_LR.validate(value, owner), dtype=np.float64)  # raises the precise error


def _out(value: Any) -> float | np.ndarray:
    if np.ndim(value) == 0:
        return float(value)
    return np.asarray(value, dtype=np.float64)


def _broadcast(owner: str, *arrays: Any) -> None:
    try:
        np.broadcast_shapes(*(np.shape(a) for a in arrays))
    except ValueError:
        shapes = ", ".join(str(np.shape(a)) for a in arrays)
        raise ValueError(
            f"{owner}: step, base_lr and batched hyperparameters must broadcast together; got shapes {shapes} "
            "(use e.g. step[:, None] with a batch of base rates)"
        ) from None


# -- the base class ---------------------------------------------------------------------------


class Schedule(Configurable):
    """Base class of learning-rate schedules. Subclasses implement ``_lr(t, base)`` on arrays."""

    #: True when the schedule reacts to the loss (``observe`` must be called after every step).
    needs_loss: ClassVar[bool] = False
    #: True when the rate is the base rate times a factor of the step alone (``η₀·f(t)``): such
    #: schedules can be chained (:class:`ChainedScheduler`).
    multiplicative: ClassVar[bool] = False

    def __call__(self, step: Any, base_lr: Any) -> float | np.ndarray:
        """The learning rate at 0-based step ``step`` (int or array) for base rate ``base_lr``."""
        t = as_steps(step)
        base = as_base_lr(base_lr, self.name)
        params = [v for v in self.get_params().values() if isinstance(v, np.ndarray)]
        if params or (t.ndim and base.ndim):
            _broadcast(self.name, t, base, *params)
        with np.errstate(divide="ignore", invalid="ignore"):
            return _out(self._lr(t, base))

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        raise NotImplementedError

    def cycled_momentum(self, step: Any) -> float | np.ndarray | None:
        """The momentum (SGD's μ, or Adam's β₁) of the update at 0-based ``step`` when the schedule
        cycles it (OneCycleLR's and CyclicLR's ``cycle_momentum``), else ``None``."""
        return None

    # -- the uniform stateful interface ----------------------------------------------------
    def init(self) -> ScheduleState:
        """Fresh schedule state (empty for closed-form schedules)."""
        return {}

    def lr(self, step: Any, base_lr: Any, state: ScheduleState) -> float | np.ndarray:
        """The learning rate at ``step`` given the schedule state (closed forms ignore the state)."""
        return self(step, base_lr)

    def observe(self, state: ScheduleState, loss: Any, base_lr: Any = None) -> ScheduleState:
        """Report the loss after a step; returns the new state (a no-op for closed forms)."""
        return state

    def curve(self, steps: int, base_lr: Any = 1.0) -> np.ndarray:
        """The rates of steps ``0 .. steps-1`` (shape ``(steps,) + shape(base_lr)``)."""
        base = np.asarray(base_lr, dtype=np.float64)
        t = np.arange(steps).reshape((steps,) + (1,) * base.ndim)
        return np.asarray(self(t, base_lr), dtype=np.float64)

    def describe(self) -> dict[str, Any]:
        """Name and the first line of the docstring (for listings)."""
        doc = (type(self).__doc__ or "").strip().splitlines()
        return {"name": self.name, "summary": doc[0] if doc else "", "needs_loss": self.needs_loss}


def _int(name: str, default: Any, low: float = 1, doc: str = "", optional: bool = False) -> Hyper:
    return Hyper(name, default, kind="int", low=low, batchable=False, optional=optional, doc=doc)


GAMMA_DECAY = Hyper("gamma", 0.1, low=0.0, doc="multiplicative decay factor γ")
ETA_MIN = Hyper("eta_min", 0.0, low=0.0, doc="minimum learning rate η_min")


# -- closed-form schedules ------------------------------------------------------------------


class Constant(Schedule):
    r"""Constant learning rate: :math:`\eta_t = \eta_0`."""

    name = "constant"
    multiplicative = True

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base * np.ones(t.shape)


class ConstantLR(Schedule):
    r"""``torch.optim.lr_scheduler.ConstantLR``: a reduced rate for the first ``total_iters`` steps.

    .. math:: \eta_t = \eta_0 \cdot f \ \text{ for } t < T,\qquad \eta_t = \eta_0 \ \text{ for } t \ge T
    """

    name = "constant_lr"
    multiplicative = True
    hyperparams = (
        Hyper("factor", 1.0 / 3, low=0.0, high=1.0, doc="factor f applied before total_iters"),
        _int("total_iters", 5, doc="number of steps T at the reduced rate"),
    )

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return np.where(t < self.total_iters, base * self.factor, base * np.ones(t.shape))


class StepLR(Schedule):
    r"""``StepLR``: decay by γ every ``step_size`` steps, :math:`\eta_t = \eta_0\,\gamma^{\lfloor t/s\rfloor}`."""

    name = "step"
    multiplicative = True
    hyperparams = (_int("step_size", None, doc="period s of the decay, in steps"), GAMMA_DECAY)

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base * power(self.gamma, t // self.step_size)


class MultiStepLR(Schedule):
    r"""``MultiStepLR``: decay by γ at each milestone, :math:`\eta_t = \eta_0\,\gamma^{\#\{m_i \le t\}}`
    (milestones in any order; one given twice decays twice, as in PyTorch)."""

    name = "multistep"
    multiplicative = True
    hyperparams = (
        IntListHyper("milestones", None, kind="int_list", batchable=False,  # type: ignore[arg-type]
                      doc="steps m_i at which the rate decays"),
        GAMMA_DECAY,
    )

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        passed = np.searchsorted(np.asarray(self.milestones, dtype=np.int64), t, side="right")
        return base * power(self.gamma, passed)


class ExponentialLR(Schedule):
    r"""``ExponentialLR``: :math:`\eta_t = \eta_0\,\gamma^t`."""

    name = "exponential"
    multiplicative = True
    hyperparams = (Hyper("gamma", None, low=0.0, doc="per-step decay factor γ"),)

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base * power(self.gamma, t)


def _cosine(base: np.ndarray, eta_min: Any, num: np.ndarray, den: Any) -> np.ndarray:
    """η_min + (η₀ − η_min)(1 + cos(π num/den))/2, in PyTorch's order of operations."""
    return eta_min + (base - eta_min) * (1 + cos(math.pi * num / den)) / 2


class CosineAnnealingLR(Schedule):
    r"""``CosineAnnealingLR`` (SGDR without restarts), in closed form:

    .. math:: \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})\bigl(1 + \cos(\pi t / T_{max})\bigr)

    Beyond ``T_max`` the cosine continues (period 2 T_max), as PyTorch's does.
    """

    name = "cosine"
    hyperparams = (_int("T_max", None, doc="half-period T_max, in steps"), ETA_MIN)

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return _cosine(base, self.eta_min, t, self.T_max)


class CosineAnnealingWarmRestarts(Schedule):
    r"""``CosineAnnealingWarmRestarts`` (SGDR):

    .. math:: \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})\bigl(1 + \cos(\pi T_{cur}/T_i)\bigr)

    where cycle i lasts :math:`T_i = T_0 T_{mult}^i` steps and :math:`T_{cur}` counts the steps since
    the last restart (cycle i starts at :math:`T_0 (T_{mult}^i - 1)/(T_{mult} - 1)`, or :math:`i T_0`).
    """

    name = "cosine_warm_restarts"
    hyperparams = (
        _int("T_0", None, doc="length of the first cycle"),
        _int("T_mult", 1, doc="growth factor of the cycle length after each restart"),
        ETA_MIN,
    )

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        if self.T_mult == 1:
            t_cur, t_i = t % self.T_0, np.full(t.shape, self.T_0)
        else:
            t_cur, t_i = t.copy(), np.full(t.shape, self.T_0)
            start, length = 0, self.T_0
            last = int(t.max()) if t.size else 0
            while start + length <= last:
                start, length = start + length, length * self.T_mult
                later = t >= start
                t_cur = np.where(later, t - start, t_cur)
                t_i = np.where(later, length, t_i)
        return _cosine(base, self.eta_min, t_cur, t_i)


class LinearLR(Schedule):
    r"""``LinearLR`` — the usual *linear warmup* (from ``start_factor``·η₀ to ``end_factor``·η₀):

    .. math:: \eta_t = \eta_0\Bigl(f_s + (f_e - f_s)\,\frac{\min(t, T)}{T}\Bigr)
    """

    name = "linear"
    multiplicative = True
    hyperparams = (
        Hyper("start_factor", 1.0 / 3, low=0.0, high=1.0, low_open=True, doc="factor f_s at step 0"),
        Hyper("end_factor", 1.0, low=0.0, high=1.0, doc="factor f_e reached at total_iters"),
        _int("total_iters", 5, doc="number of steps T of the linear ramp"),
    )

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        ramp = (self.end_factor - self.start_factor) * np.minimum(self.total_iters, t) / self.total_iters
        return base * (self.start_factor + ramp)


class WarmupCosine(Schedule):
    r"""Linear warmup then cosine decay (the Transformer recipe of seed 002):

    .. math::
        \eta_t = \eta_0\,t/T_w \ \ (t < T_w),\qquad
        \eta_t = \eta_{min} + \tfrac12(\eta_0 - \eta_{min})\Bigl(1 + \cos\bigl(\pi\,\tfrac{t - T_w}{T - T_w}\bigr)\Bigr)
        \ \ (T_w \le t \le T)

    and :math:`\eta_t = \eta_{min}` after ``total_steps`` T. The warmup starts from 0 whatever η_min.
    """

    name = "warmup_cosine"
    hyperparams = (
        _int("warmup_steps", None, low=0, doc="warmup length T_w, in steps"),
        _int("total_steps", None, doc="step T at which the cosine reaches eta_min"),
        ETA_MIN,
    )

    def _check_combination(self) -> None:
        if self.warmup_steps >= self.total_steps:
            raise ValueError(
                f"warmup_cosine: warmup_steps={self.warmup_steps} must be smaller than "
                f"total_steps={self.total_steps}"
            )

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        warm, total = self.warmup_steps, self.total_steps
        ramp = base * t / max(warm, 1)
        progress = (np.minimum(t, total) - warm) / (total - warm)
        decay = self.eta_min + (base - self.eta_min) * 0.5 * (1 + cos(progress * math.pi))
        return np.where(t < warm, ramp, decay)


class OneCycleLR(Schedule):
    r"""``OneCycleLR`` (1cycle policy), with PyTorch's momentum cycling as an option.

    With peak :math:`\eta_{max}` (``max_lr``, default the base rate), start
    :math:`\eta_s = \eta_{max}/d` (``div_factor``) and end :math:`\eta_e = \eta_s/f`
    (``final_div_factor``), the rate anneals between phase boundaries
    :math:`e_1 = pT - 1` and :math:`e_2 = T - 1` (two phases: η_s → η_max → η_e) or
    :math:`e_1 = pT - 1,\ e_2 = 2pT - 2,\ e_3 = T - 1` (three phases: η_s → η_max → η_s → η_e),
    with, inside the phase from :math:`e_{k-1}` (:math:`e_0 = 0`) to :math:`e_k` going from a to b,
    :math:`x = (t - e_{k-1})/(e_k - e_{k-1})` and

    .. math::
        \eta_t = b + \tfrac12(a - b)\bigl(1 + \cos(\pi x)\bigr)\ \ (\text{cos}),\qquad
        \eta_t = (b - a)\,x + a\ \ (\text{linear}).

    After the last step (t ≥ T − 1) the rate stays at :math:`\eta_e`. When ``max_lr`` is given, the
    base rate is ignored (as PyTorch overrides the optimizer's rate).

    With ``cycle_momentum`` the momentum (SGD's μ or Adam's β₁) follows the same phases inversely:
    :math:`m_{max} \to m_{base} \to m_{max}` (three phases: then stays at :math:`m_{max}`), by the
    same anneal function. PyTorch's default is ``cycle_momentum=True``; gdlab's is ``False``, so that
    a schedule drives any optimizer; set it to match PyTorch's default.
    """

    name = "onecycle"
    hyperparams = (
        Hyper("max_lr", None, low=0.0, optional=True, doc="peak learning rate (default: the base rate)"),
        _int("total_steps", None, optional=True, doc="length T of the cycle, in steps (required)"),
        Hyper("pct_start", 0.3, low=0.0, high=1.0, batchable=False, doc="fraction p of the cycle spent rising"),
        Hyper("anneal_strategy", "cos", kind="choice", choices=("cos", "linear"), doc="shape of each phase"),
        Hyper("div_factor", 25.0, low=0.0, low_open=True, doc="initial rate = max_lr / div_factor"),
        Hyper("final_div_factor", 1e4, low=0.0, low_open=True, doc="final rate = initial rate / final_div_factor"),
        Hyper("three_phase", False, kind="bool", doc="add a symmetric descent before the final annihilation"),
        Hyper("cycle_momentum", False, kind="bool", doc="cycle the momentum (μ or β₁) inversely to the rate"),
        Hyper("base_momentum", 0.85, low=0.0, batchable=False, doc="lowest momentum of the cycle (at the peak rate)"),
        Hyper("max_momentum", 0.95, low=0.0, batchable=False, doc="highest momentum of the cycle"),
    )

    def _check_combination(self) -> None:
        if self.total_steps is None:
            raise ValueError("onecycle: total_steps=None; total_steps (the length of the cycle) is required")
        if float(self.pct_start * self.total_steps) == 1.0:
            raise ValueError(
                f"onecycle: pct_start={self.pct_start} with total_steps={self.total_steps} gives a rising phase of "
                "zero length (pct_start·total_steps = 1)"
            )

    def _anneal(self, a: Any, b: Any, pct: np.ndarray) -> np.ndarray:
        if self.anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (cos(math.pi * pct) + 1)
        return (b - a) * pct + a

    def _ends(self) -> list[float]:
        total, p = self.total_steps, self.pct_start
        if self.three_phase:
            return [float(p * total) - 1, float(2 * p * total) - 2, total - 1]
        return [float(p * total) - 1, total - 1]

    def cycled_momentum(self, step: Any) -> float | np.ndarray | None:
        if not self.cycle_momentum:
            return None
        low, high = self.base_momentum, self.max_momentum
        values = [(high, low), (low, high), (high, high)] if self.three_phase else [(high, low), (low, high)]
        return _out(self._follow(as_steps(step), [(e, a, b) for e, (a, b) in zip(self._ends(), values, strict=True)]))

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        peak = base if self.max_lr is None else np.asarray(self.max_lr)
        initial = peak / self.div_factor
        final = initial / self.final_div_factor
        values = [(initial, peak), (peak, initial), (initial, final)] if self.three_phase else \
            [(initial, peak), (peak, final)]
        return self._follow(t, [(e, a, b) for e, (a, b) in zip(self._ends(), values, strict=True)], peak, base)

    def _follow(self, t: np.ndarray, phases: list[tuple[float, Any, Any]], *shapes: Any) -> np.ndarray:
        """The anneal from phase to phase at steps ``t`` (PyTorch's ``get_lr`` loop)."""
        total = self.total_steps
        t = np.minimum(t, total - 1)
        out = np.zeros(np.broadcast_shapes(t.shape, *(np.shape(a) for a in shapes)))
        done = np.zeros(t.shape, dtype=bool)
        start = 0.0
        for i, (end, a, b) in enumerate(phases):
            here = ~done & ((t <= end) | (i == len(phases) - 1))
            out = np.where(here, self._anneal(a, b, (t - start) / (end - start)), out)
            done |= here
            start = end
        return out


class PolynomialLR(Schedule):
    r"""``PolynomialLR``: :math:`\eta_t = \eta_0\,(1 - \min(t, T)/T)^{p}` (zero from step T on)."""

    name = "polynomial"
    multiplicative = True
    hyperparams = (
        _int("total_iters", 5, doc="number of steps T of the decay"),
        Hyper("power", 1.0, low=0.0, doc="power p of the polynomial"),
    )

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base * power(1.0 - np.minimum(self.total_iters, t) / self.total_iters, self.power)


class CyclicLR(Schedule):
    r"""``CyclicLR`` (triangular cyclical rates), with PyTorch's momentum cycling as an option.

    The base rate η₀ is the lower bound (PyTorch's ``base_lr``), ``max_lr`` the upper. With
    :math:`u` = ``step_size_up``, :math:`d` = ``step_size_down`` (default u), :math:`S = u + d`,
    :math:`r = u/S`, cycle :math:`c = \lfloor 1 + t/S\rfloor` and :math:`x = 1 + t/S - c`:

    .. math::
        h = x/r\ (x \le r)\ \text{else}\ (x - 1)/(r - 1),\qquad
        \eta_t = \eta_0 + (\eta_{max} - \eta_0)\,h\,s

    with amplitude scale :math:`s = 1` (``triangular``), :math:`2^{-(c-1)}` (``triangular2``) or
    :math:`\gamma^t` (``exp_range``). With ``cycle_momentum`` the momentum (μ or β₁) is
    :math:`m_t = m_{max} - (m_{max} - m_{base})\,h\,s`. PyTorch's default is ``cycle_momentum=True``;
    gdlab's is ``False``, so that a schedule drives any optimizer.
    """

    name = "cyclic"
    hyperparams = (
        Hyper("max_lr", None, low=0.0, doc="upper learning-rate bound of the cycle"),
        _int("step_size_up", 2000, doc="steps of the rising half of a cycle"),
        _int("step_size_down", None, low=0, optional=True, doc="steps of the falling half (default: step_size_up)"),
        Hyper("mode", "triangular", kind="choice", choices=("triangular", "triangular2", "exp_range"),
              doc="amplitude policy"),
        Hyper("gamma", 1.0, low=0.0, high=1.0, low_open=True, doc="per-step amplitude decay of exp_range"),
        Hyper("cycle_momentum", False, kind="bool", doc="cycle the momentum (μ or β₁) inversely to the rate"),
        Hyper("base_momentum", 0.8, low=0.0, batchable=False, doc="lowest momentum of the cycle (at max_lr)"),
        Hyper("max_momentum", 0.9, low=0.0, batchable=False, doc="highest momentum of the cycle (at the base rate)"),
    )

    def _shape(self, t: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(h, s): the triangle's height factor and the amplitude scale at steps ``t``."""
        up = float(self.step_size_up)
        down = up if self.step_size_down is None else float(self.step_size_down)
        size = up + down
        ratio = up / size
        cycle = np.floor(1 + t / size)
        x = 1.0 + t / size - cycle
        factor = np.where(x <= ratio, x / ratio, (x - 1) / (ratio - 1))
        if self.mode == "triangular":
            scale: Any = 1.0
        elif self.mode == "triangular2":
            scale = 1 / power(2.0, cycle - 1)
        else:
            scale = power(self.gamma, t)
        return factor, scale

    def cycled_momentum(self, step: Any) -> float | np.ndarray | None:
        if not self.cycle_momentum:
            return None
        factor, scale = self._shape(as_steps(step))
        height = (self.max_momentum - self.base_momentum) * factor
        return _out(self.max_momentum - height * scale)

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        factor, scale = self._shape(t)
        height = (np.asarray(self.max_lr) - base) * factor
        return base + height * scale


# -- schedules of a function of the step and of other schedules ------------------------------------


class FunctionHyper(Hyper):
    """A function of the step t (an int, or an int64 array when the function takes arrays) returning a
    number (LambdaLR's and MultiplicativeLR's ``lr_lambda``). In Python any callable; the command
    line and the lab turn a formula in ``t`` (``0.95**t``) into one with the landscapes' safe
    expression parser, never ``eval``, and give it here."""

    def range_text(self) -> str:
        return "a function of the step t (a formula in t on the command line and in the lab)"

    def validate(self, value: Any, owner: str) -> Any:
        if value is None:
            raise TypeError(f"{owner}: {self.name} must be set (got None): {self.range_text()}")
        if isinstance(value, str) or not callable(value):
            raise TypeError(f"{owner}: {self.name} must be {self.range_text()}, got {value!r}")
        return value


class SchedulesHyper(Hyper):
    """A non-empty list of closed-form schedules (SequentialLR's and ChainedScheduler's parts)."""

    def range_text(self) -> str:
        return "a non-empty list of closed-form schedules"

    def validate(self, value: Any, owner: str) -> Any:
        if value is None:
            raise TypeError(f"{owner}: {self.name} must be set (got None): {self.range_text()}")
        items = list(value) if isinstance(value, list | tuple) else None
        if not items:
            raise ValueError(f"{owner}: {self.name} must be {self.range_text()}, got {value!r}")
        for i, item in enumerate(items):
            if not isinstance(item, Schedule):
                raise TypeError(f"{owner}: {self.name}[{i}] must be a schedule, got {item!r}")
            if item.needs_loss:
                raise ValueError(f"{owner}: {self.name}[{i}] is {item.name!r}, which reacts to the loss; "
                                 "only closed-form schedules can be combined (as PyTorch refuses ReduceLROnPlateau)")
        return tuple(items)


def _evaluate(fn: Any, t: np.ndarray, owner: str) -> np.ndarray:
    """``fn`` at every step of ``t``: once on the whole array when it takes arrays and returns one of
    the same shape, else step by step (Python ints).

    A callable that takes arrays should give the same numbers on a table of steps as on one step (the
    fused trajectories ask for the table, the reference loop for one step at a time); NumPy's ``pow``
    or ``exp`` may differ in the last bit between the two. Formulas from the command line and the lab
    (:mod:`gdlab.landscapes.formula`) take one step at a time, with the C library, so they always agree.
    """
    try:
        out = np.asarray(fn(t) if t.ndim else fn(int(t)), dtype=np.float64)
        if out.shape == t.shape:
            return out
    except Exception:  # a function of scalars only: evaluate it step by step below
        pass
    flat = [fn(int(k)) for k in t.ravel()]
    try:
        return np.asarray(flat, dtype=np.float64).reshape(t.shape)
    except (TypeError, ValueError):
        raise TypeError(f"{owner}: lr_lambda must return a number, got {flat[0]!r}") from None


class LambdaLR(Schedule):
    r"""``LambdaLR``: :math:`\eta_t = \eta_0\,\lambda(t)` for a function λ of the step."""

    name = "lambda"
    multiplicative = True
    hyperparams = (FunctionHyper("lr_lambda", None, kind="function", batchable=False,
                                 doc="λ(t): the factor of the base rate at step t"),)

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base * _evaluate(self.lr_lambda, t, self.name)


class MultiplicativeLR(Schedule):
    r"""``MultiplicativeLR``: each step multiplies the rate by λ(t),
    :math:`\eta_0` then :math:`\eta_t = \eta_{t-1}\,\lambda(t)` (rounded step after step, as PyTorch)."""

    name = "multiplicative"
    multiplicative = True
    hyperparams = (FunctionHyper("lr_lambda", None, kind="function", batchable=False,
                                 doc="λ(t): the factor applied at step t ≥ 1"),)

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        last = int(t.max()) if t.size else 0
        factors = _evaluate(self.lr_lambda, np.arange(1, last + 1, dtype=np.int64), self.name)
        steps, bases = np.broadcast_arrays(t, base)
        out = np.empty(steps.shape)
        for value in np.unique(bases):
            table = np.multiply.accumulate(np.concatenate(([value], factors)))
            here = bases == value
            out[here] = table[steps[here]]
        nan = np.isnan(bases)
        if nan.any():
            out[nan] = np.nan
        return out


class SequentialLR(Schedule):
    r"""``SequentialLR``: schedule i from milestone :math:`m_{i-1}` on, restarted there
    (:math:`m_0 = 0`): :math:`\eta_t = s_i(t - m_{i-1},\ \eta_0)` for :math:`m_{i-1} \le t < m_i`."""

    name = "sequential"
    hyperparams = (
        SchedulesHyper("schedulers", None, kind="schedules", batchable=False, doc="the schedules, in order"),
        IntListHyper("milestones", None, kind="int_list", batchable=False,  # type: ignore[arg-type]
                     doc="steps at which the next schedule starts (one fewer than the schedules)"),
    )

    def _check_combination(self) -> None:
        if len(self.milestones) != len(self.schedulers) - 1:
            raise ValueError(f"sequential: {len(self.schedulers)} schedulers need {len(self.schedulers) - 1} "
                             f"milestones, got milestones={list(self.milestones)}")

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        marks = np.asarray(self.milestones, dtype=np.int64)
        index = np.searchsorted(marks, t, side="right")
        out = None
        for i, sched in enumerate(self.schedulers):
            start = 0 if i == 0 else int(marks[i - 1])
            mine = sched._lr(np.maximum(t - start, 0), base)
            out = mine if out is None else np.where(index == i, mine, out)
        return np.asarray(out)


class ChainedScheduler(Schedule):
    r"""``ChainedScheduler``: every schedule steps at every step, each multiplying the rate the
    previous ones left: :math:`\eta_t = \eta_0 \prod_i f_i(t)` for schedules whose rate is the base
    rate times a factor (:attr:`Schedule.multiplicative`: constant_lr, step, multistep, exponential,
    linear, polynomial, multiplicative, lambda as the first). Others (cosine, cyclic, ...) advance in
    PyTorch by a recursion on the current rate that is no product of closed forms; they are refused.
    A ``lambda`` after the first would, in PyTorch, overwrite what the earlier ones did; refused too.
    """

    name = "chained"
    hyperparams = (SchedulesHyper("schedulers", None, kind="schedules", batchable=False,
                                  doc="multiplicative schedules, applied in order"),)

    def _check_combination(self) -> None:
        for i, sched in enumerate(self.schedulers):
            if not sched.multiplicative or (i > 0 and sched.name == "lambda"):
                ok = ", ".join(n for n, c in SCHEDULES.items() if c.multiplicative)
                raise ValueError(f"chained: schedulers[{i}] is {sched.name!r}, whose rate is not the base rate times "
                                 f"a factor (PyTorch chains it by a recursion); chain only {ok} "
                                 "(lambda only first)")

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        rate = base
        for sched in self.schedulers:
            rate = sched._lr(t, rate)
        return np.asarray(rate)


# -- the stateful one -------------------------------------------------------------------------


class ReduceLROnPlateau(Schedule):
    r"""``ReduceLROnPlateau``: multiply the rate by ``factor`` when the loss stops improving.

    The rate is :math:`\eta_t = \eta_0\,s` with a multiplier s (state ``scale``, initially 1). After
    each step, :meth:`observe` compares the loss L with the best so far: L improves when
    L < best·(1 − θ) (``rel``) or L < best − θ (``abs``), mirrored for ``mode="max"``. More than
    ``patience`` non-improving steps (not counting ``cooldown`` steps after a reduction) trigger
    :math:`\eta \leftarrow \max(f\eta, \eta_{min})`, applied only when it lowers η by more than ``eps``.

    Pass ``base_lr`` to :meth:`observe` so that ``min_lr`` and ``eps`` compare absolute rates as
    PyTorch does; without it they apply to the multiplier s (as if η₀ = 1). A batch of losses gives
    per-run state.
    """

    name = "plateau"
    needs_loss = True
    hyperparams = (
        Hyper("mode", "min", kind="choice", choices=("min", "max"), doc="minimise or maximise the monitored value"),
        Hyper("factor", 0.1, low=0.0, high=1.0, high_open=True, doc="reduction factor f"),
        _int("patience", 10, low=0, doc="non-improving steps tolerated before reducing"),
        Hyper("threshold", 1e-4, low=0.0, doc="improvement threshold θ"),
        Hyper("threshold_mode", "rel", kind="choice", choices=("rel", "abs"), doc="relative or absolute threshold"),
        _int("cooldown", 0, low=0, doc="steps to wait after a reduction before counting again"),
        Hyper("min_lr", 0.0, low=0.0, doc="lower bound of the learning rate"),
        Hyper("eps", 1e-8, low=0.0, doc="reductions smaller than eps are ignored"),
    )

    def init(self) -> ScheduleState:
        worst = math.inf if self.mode == "min" else -math.inf
        return {
            "best": np.float64(worst),
            "num_bad_epochs": np.int64(0),
            "cooldown_counter": np.int64(0),
            "scale": np.float64(1.0),
            "num_reductions": np.int64(0),
        }

    def _lr(self, t: np.ndarray, base: np.ndarray) -> np.ndarray:
        return base * np.ones(t.shape)

    def lr(self, step: Any, base_lr: Any, state: ScheduleState) -> float | np.ndarray:
        t = as_steps(step)
        base = as_base_lr(base_lr, self.name)
        scale = np.asarray(state["scale"], dtype=np.float64)
        _broadcast(self.name, t, base, scale)
        return _out(base * scale * np.ones(t.shape))

    def _is_better(self, current: np.ndarray, best: np.ndarray) -> np.ndarray:
        if self.mode == "min" and self.threshold_mode == "rel":
            return current < best * (1.0 - self.threshold)
        if self.mode == "min":
            return current < best - self.threshold
        if self.threshold_mode == "rel":
            return current > best * (self.threshold + 1.0)
        return current > best + self.threshold

    def observe(self, state: ScheduleState, loss: Any, base_lr: Any = None) -> ScheduleState:
        current = np.asarray(loss, dtype=np.float64)
        better = self._is_better(current, np.asarray(state["best"]))
        best = np.where(better, current, state["best"])
        bad = np.where(better, 0, np.asarray(state["num_bad_epochs"]) + 1)
        cooling = np.asarray(state["cooldown_counter"]) > 0
        cooldown = np.where(cooling, np.asarray(state["cooldown_counter"]) - 1, state["cooldown_counter"])
        bad = np.where(cooling, 0, bad)
        reduce = bad > self.patience
        base = np.float64(1.0) if base_lr is None else as_base_lr(base_lr, self.name)
        scale = np.asarray(state["scale"], dtype=np.float64)
        old = base * scale
        new = np.maximum(old * self.factor, self.min_lr)
        applied = reduce & (old - new > self.eps)
        with np.errstate(divide="ignore", invalid="ignore"):
            new_scale = np.where(applied, new / np.where(base > 0, base, 1.0), scale)
        shape = np.broadcast_shapes(current.shape, np.shape(new_scale))
        return {
            "best": np.broadcast_to(best, shape).astype(np.float64),
            "num_bad_epochs": np.broadcast_to(np.where(reduce, 0, bad), shape).astype(np.int64),
            "cooldown_counter": np.broadcast_to(np.where(reduce, self.cooldown, cooldown), shape).astype(np.int64),
            "scale": np.broadcast_to(new_scale, shape).astype(np.float64),
            "num_reductions": np.broadcast_to(np.asarray(state["num_reductions"]) + applied, shape).astype(np.int64),
        }


# -- registry ---------------------------------------------------------------------------------

SCHEDULES: dict[str, type[Schedule]] = {
    cls.name: cls
    for cls in (
        Constant,
        ConstantLR,
        StepLR,
        MultiStepLR,
        ExponentialLR,
        CosineAnnealingLR,
        CosineAnnealingWarmRestarts,
        LinearLR,
        WarmupCosine,
        OneCycleLR,
        PolynomialLR,
        CyclicLR,
        LambdaLR,
        MultiplicativeLR,
        SequentialLR,
        ChainedScheduler,
        ReduceLROnPlateau,
    )
}


def schedule_class(name: str) -> type[Schedule]:
    """The schedule class called ``name``; unknown names list the valid ones."""
    return lookup(SCHEDULES, name, "schedule")


def make_schedule(name: str, **hyperparams: Any) -> Schedule:
    """Build schedule ``name`` with validated hyperparameters."""
    return schedule_class(name)(**hyperparams)


__all__ = [
    "SCHEDULES",
    "ChainedScheduler",
    "Constant",
    "ConstantLR",
    "CosineAnnealingLR",
    "CosineAnnealingWarmRestarts",
    "CyclicLR",
    "ExponentialLR",
    "IntListHyper",
    "LambdaLR",
    "LinearLR",
    "MultiStepLR",
    "MultiplicativeLR",
    "OneCycleLR",
    "PolynomialLR",
    "ReduceLROnPlateau",
    "Schedule",
    "SequentialLR",
    "StepLR",
    "WarmupCosine",
    "as_steps",
    "make_schedule",
    "schedule_class",
]
