r"""One elementwise optimizer, written once: :class:`Rule`, and the NumPy executor that runs it.

An elementwise optimizer (SGD, Adam, ... every optimizer whose update of a parameter depends only on
that parameter's gradient and buffers) is one subclass of :class:`Rule`, in one file, declaring:

``hyperparams``
    Names, defaults and allowed ranges (:class:`~gdlab.core.hyper.Hyper`), PyTorch's names.
``buffers``
    Its state arrays, shaped like the parameters (:class:`Buffer`: name, initial value, and the
    option under which it exists), and ``carries``: per-run scalars carried from step to step
    (:class:`Carry`, NAdam's μ product).
:meth:`Rule.options`
    Compile-time switches derived from the hyperparameters (``amsgrad``, "is weight decay on").
:meth:`Rule.constants` and :meth:`Rule.scalars`
    The numbers the element body needs besides the arrays: per run (``1 − β₂``, ε) and per step
    (bias corrections, the step's learning rate). They are computed once per step and
    hyperparameter value, by these functions and nothing else, with :mod:`gdlab.core.scalarmath`
    for powers and cosines, so every path gets the same bits.
:meth:`Rule.element`
    The update of one element: ``(param, grad, *buffers, <constants, scalars and options by
    name>) -> (param, *buffers)``, with its math in the docstring. It uses only the operations of
    :mod:`gdlab.core.elementwise`, so it gives the same bits evaluated by NumPy on whole arrays
    (here) or compiled to scalar code (:mod:`gdlab.fast`).
``lookahead`` (optional)
    ``(param, *buffers, <constants>) -> point``: where the gradient is taken (the seeds' Nesterov).

The executors are generic and name no optimizer: :meth:`Rule.update_reference` below evaluates the
element body with NumPy; :mod:`gdlab.fast` compiles it into in-place step kernels and fused
trajectories. Adding an optimizer means one new file, its registry entry and its tests.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from gdlab.core.batching import as_params, check_like, expand
from gdlab.core.optimizer import LR_OVERRIDE, GradientOptimizer, State, StepResult, guard_nonfinite
from gdlab.core.statespec import PARAMS, Array, Count, RunScalar, StateSpec

#: Largest number of buffers a rule may keep (the compiled kernels have this many slots).
MAX_BUFFERS = 3


@dataclass(frozen=True)
class Buffer:
    """A state array of a rule, shaped like the parameters."""

    name: str
    doc: str = ""
    #: Initial value: 0, or the value of this hyperparameter (Adagrad's ``initial_accumulator_value``).
    init: str | None = None
    #: The option (a key of :meth:`Rule.options`) that must be true for the buffer to exist.
    when: str | None = None


@dataclass(frozen=True)
class Carry:
    """A per-run scalar carried from step to step as a running product.

    After step t it holds ``initial · factor(1, h) · factor(2, h) · … · factor(t, h)``, each
    product rounded in turn (as PyTorch keeps NAdam's ``mu_product``). ``factor(t, h)`` is a
    function of the step and the hyperparameters, vectorised like :meth:`Rule.scalars`.
    """

    name: str
    factor: Callable[[Any, Hypers], Any]
    initial: float = 1.0


class Hypers:
    """Hyperparameter values by attribute (``h.lr``, ``h.betas[0]``): floats, or arrays of runs."""

    def __init__(self, values: Mapping[str, Any]) -> None:
        self.__dict__.update(values)

    def __repr__(self) -> str:
        return f"Hypers({', '.join(sorted(self.__dict__))})"


@dataclass(frozen=True)
class Tables:
    """A rule's numbers for ``T`` steps of ``U`` distinct hyperparameter values (see :meth:`Rule.tables`).

    ``constants[name]`` has shape ``(U,)``, ``scalars[name]`` shape ``(T, U)``; row ``k`` of a scalar
    is step ``k + 1``.
    """

    constants: dict[str, np.ndarray]
    scalars: dict[str, np.ndarray]


class Rule(GradientOptimizer):
    """Base class of the elementwise optimizers (see the module docstring)."""

    buffers: ClassVar[tuple[Buffer, ...]] = ()
    carries: ClassVar[tuple[Carry, ...]] = ()
    #: ``(param, *buffers, <constants>) -> point`` where the gradient is taken, or ``None`` (at param).
    lookahead: ClassVar[Callable[..., Any] | None] = None

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "element" in cls.__dict__:
            names = positional_names(cls.element)
            expected = ("param", "grad", *(b.name for b in cls.buffers))
            if names[: len(expected)] != expected:
                raise TypeError(f"{cls.__name__}.element must take {expected} first, then values by name; got {names}")
            if len(cls.buffers) > MAX_BUFFERS:
                raise TypeError(f"{cls.__name__}: at most {MAX_BUFFERS} buffers, got {len(cls.buffers)}")

    # -- what a rule declares ----------------------------------------------------------------
    def options(self) -> dict[str, bool]:
        """Compile-time switches of the element body (each a Python bool)."""
        return {}

    def constants(self, h: Hypers) -> dict[str, Any]:
        """Per-run values of the element body (functions of the hyperparameters only)."""
        return {}

    def scalars(self, t: Any, lr: Any, h: Hypers, **carries: Any) -> dict[str, Any]:
        """Per-step values of the element body: ``t`` is the 1-based step, ``lr`` its learning
        rate, ``carries`` the values of :attr:`carries` after this step."""
        return {}

    @staticmethod
    def element(param: Any, grad: Any, *buffers: Any) -> tuple[Any, ...]:
        """The update of one element (see the module docstring)."""
        raise NotImplementedError

    # -- derived -------------------------------------------------------------------------------
    def active_buffers(self) -> tuple[Buffer, ...]:
        """The buffers this configuration keeps (a buffer whose option is off does not exist)."""
        opts = self.options()
        return tuple(b for b in type(self).buffers if b.when is None or opts[b.when])

    def state_spec(self) -> StateSpec:
        """What the state holds: ``step``, the active buffers (shaped like the params) and the carries."""
        entries: dict[str, Any] = {"step": Count()}
        entries.update({b.name: Array(PARAMS) for b in self.active_buffers()})
        entries.update({c.name: RunScalar() for c in type(self).carries})
        return StateSpec(entries)

    def hypers(self) -> Hypers:
        """The configured hyperparameter values."""
        return Hypers(self.get_params())

    def step_values(self, t: Any, lr: Any, h: Hypers, carries: Mapping[str, Any]) -> tuple[dict[str, Any],
                                                                                        dict[str, Any]]:
        """(constants and scalars of step ``t``, the carries after it), from the carries before it."""
        after = {c.name: carries[c.name] * c.factor(t, h) for c in type(self).carries}
        values = {**self.constants(h), **self.scalars(t, lr, h, **after)}
        return values, after

    def tables(self, steps: int, lr: np.ndarray, h: Hypers) -> Tables:
        """Constants and per-step scalars for steps 1..``steps`` at once: ``lr`` has shape
        ``(steps, U)`` (the learning rate of each step) and every array of ``h`` shape ``(U,)``.

        Each entry equals what :meth:`step_values` gives for that step alone, bit for bit: the
        functions are elementwise, and carries are multiplied step after step as there.
        """
        t = np.arange(1, steps + 1, dtype=np.int64)[:, None]
        after = {}
        for c in type(self).carries:
            factors = np.broadcast_to(np.asarray(c.factor(t, h), dtype=np.float64), lr.shape)
            running = np.empty(lr.shape)
            value: Any = np.float64(c.initial)
            for k in range(steps):
                value = value * factors[k]
                running[k] = value
            after[c.name] = running
        with np.errstate(all="ignore"):
            constants = self.constants(h)
            scalars = self.scalars(t, lr, h, **after)
        width = lr.shape[1]
        return Tables(
            {k: np.broadcast_to(np.asarray(v, dtype=np.float64), (width,)) for k, v in constants.items()},
            {k: np.broadcast_to(np.asarray(v, dtype=np.float64), lr.shape) for k, v in scalars.items()},
        )

    # -- the NumPy executor ----------------------------------------------------------------------
    def init(self, params: Any) -> State:
        p = as_params(params)
        for key, value in self.get_params().items():  # array hyperparameters must fit the batch
            for i, part in enumerate(value if isinstance(value, tuple) else (value,)):
                if isinstance(part, np.ndarray):
                    expand(part, p, f"{key}[{i}]" if isinstance(value, tuple) else key)
        return super().init(p)

    def _init_buffers(self, params: np.ndarray) -> State:
        h = self.get_params()
        out: State = {}
        for b in self.active_buffers():
            out[b.name] = np.zeros_like(params) if b.init is None else np.zeros_like(params) + expand(h[b.init], params)
        for c in type(self).carries:
            out[c.name] = c.initial
        return out

    def learning_rate(self, lr: Any) -> Any:
        """The learning rate of a step: the override ``lr`` (checked), else the configured one."""
        if lr is None:
            return self.lr  # type: ignore[attr-defined]
        return LR_OVERRIDE.validate(lr, self.name)

    def update_reference(self, grad: Any, state: State, params: np.ndarray, lr: Any = None) -> StepResult:
        """One update evaluated with NumPy: the specification the compiled executors match."""
        p = params
        g = check_like(grad, p)
        t = state["step"] + 1
        with np.errstate(all="ignore"):
            values, carries = self.step_values(t, self.learning_rate(lr), self.hypers(), state)
            args = body_arguments(type(self), type(self).element, values, self.options(), p)
            zero = np.zeros((), dtype=p.dtype)
            buffers = [state[b.name] if b in self.active_buffers() else zero for b in type(self).buffers]
            new_param, *new_buffers = type(self).element(p, g, *buffers, **args)
        new_state: State = {"step": t}
        for b, value in zip(type(self).buffers, new_buffers, strict=True):
            if b.name in state:
                new_state[b.name] = value
        result = guard_nonfinite(p, state, new_param, new_state, g)
        result.state.update(carries)  # a carry follows the step count, which every run advances
        return result

    def gradient_point(self, params: np.ndarray, state: State) -> np.ndarray:
        look = type(self).lookahead
        if look is None:
            return params
        with np.errstate(all="ignore"):
            values = self.constants(self.hypers())
            args = body_arguments(type(self), look, values, self.options(), params)
            buffers = [state[b.name] for b in type(self).buffers]
            return look(params, *buffers, **args)


# ------------------------------------------------------------------------------------------------
# helpers shared by every executor
# ------------------------------------------------------------------------------------------------
@functools.cache
def positional_names(fn: Callable[..., Any]) -> tuple[str, ...]:
    """The parameter names of ``fn`` in order (read once per function: every step asks for them)."""
    return tuple(inspect.signature(fn).parameters)


def value_names(fn: Callable[..., Any], rule: type[Rule]) -> tuple[str, ...]:
    """The names ``fn`` (an element body or a look-ahead) takes after the param, grad and buffers."""
    names = positional_names(fn)
    skip = 2 + len(rule.buffers) if fn is rule.element else 1 + len(rule.buffers)
    return names[skip:]


def body_arguments(rule: type[Rule], fn: Callable[..., Any], values: Mapping[str, Any],
                   options: Mapping[str, bool], params: np.ndarray) -> dict[str, Any]:
    """The keyword arguments of ``fn`` (after its arrays): options as they are, numbers in the
    params' dtype, arrays of runs with a trailing axis so that they broadcast against ``params``."""
    out: dict[str, Any] = {}
    for name in value_names(fn, rule):
        if name in options:
            out[name] = options[name]
        elif name in values:  # a 0-d array of the params' dtype (not a Python float, which np.where widens)
            value = np.asarray(values[name], dtype=params.dtype)
            out[name] = value if value.ndim == 0 else expand(value, params, name)
        else:
            raise TypeError(f"{fn.__qualname__} takes {name!r}, which none of {rule.__name__}'s options(), "
                            "constants() and scalars() provides")
    return out
