"""Stochastic gradient descent in PyTorch's form and the two textbook momentum forms of the seeds."""

from __future__ import annotations

from typing import Any

import numpy as np

from gdlab.core.batching import as_params
from gdlab.core.hyper import Hyper
from gdlab.core.objective import Objective
from gdlab.core.optimizer import Optimizer, State, StepResult
from gdlab.core.optimizers.common import MAXIMIZE, WEIGHT_DECAY, add_l2, is_off, is_zero, lr, signed

MOMENTUM = Hyper("momentum", 0.0, low=0.0, doc="momentum factor μ")


class SGD(Optimizer):
    r"""Stochastic gradient descent, exactly as ``torch.optim.SGD``.

    With gradient :math:`g_t` at :math:`\theta_{t-1}`:

    .. math::
        g &\leftarrow \pm g_t + \lambda\theta_{t-1} \quad(\text{minus when maximize})\\
        b_t &\leftarrow g \;\text{if } t = 1,\ \text{else}\ \mu b_{t-1} + (1-\tau) g\\
        g &\leftarrow g + \mu b_t \;\text{(nesterov)}\quad\text{or}\quad g \leftarrow b_t\\
        \theta_t &\leftarrow \theta_{t-1} - \eta g

    (the momentum lines only when μ ≠ 0). With ``momentum=0`` this is plain gradient descent
    θ ← θ − η∇L. ``dampening`` τ scales the new gradient in the buffer; Nesterov needs τ = 0.
    PyTorch's Nesterov evaluates the gradient at the current point; its iterates are the look-ahead
    points of the textbook form (see :class:`Nesterov`).
    """

    name = "sgd"
    family = "sgd"
    hyperparams = (
        lr(1e-3),
        MOMENTUM,
        Hyper("dampening", 0.0, low=0.0, doc="dampening τ for momentum"),
        WEIGHT_DECAY,
        Hyper("nesterov", False, kind="bool", doc="use Nesterov momentum"),
        MAXIMIZE,
    )

    def _check_combination(self) -> None:
        if self.nesterov and (is_zero(self.momentum) or not is_zero(self.dampening)):
            raise ValueError(
                f"sgd: nesterov=True requires momentum > 0 and dampening = 0 "
                f"(got momentum={self.momentum}, dampening={self.dampening})"
            )

    def _init_buffers(self, params: np.ndarray) -> State:
        return {"momentum_buffer": np.zeros_like(params)} if not is_off(self.momentum) else {}

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        g = add_l2(signed(grad, self.maximize), params, self._hp("weight_decay", params))
        new_state: State = {"step": state["step"] + 1}
        if not is_off(self.momentum):
            mu = self._hp("momentum", params)
            if state["step"] == 0:
                buf = g.copy()
            else:
                buf = state["momentum_buffer"] * mu + (1.0 - self._hp("dampening", params)) * g
            new_state["momentum_buffer"] = buf
            g = g + mu * buf if self.nesterov else buf
        return params - lr * g, new_state


class Momentum(Optimizer):
    r"""Classic (heavy-ball) momentum in the textbook form of the seeds.

    .. math::
        v_t \leftarrow \gamma v_{t-1} + \eta_t \nabla L(\theta_{t-1}),\qquad
        \theta_t \leftarrow \theta_{t-1} - v_t,\qquad v_0 = 0

    With a constant learning rate this is exactly ``SGD(momentum=γ)``: the velocity is η times
    PyTorch's buffer. Under a schedule they differ: here a past gradient keeps the learning rate of
    its own step, in PyTorch every stored gradient is rescaled by the current η.
    ``weight_decay`` adds λθ to the gradient.
    """

    name = "momentum"
    family = "sgd"
    hyperparams = (
        lr(1e-2),
        Hyper("momentum", 0.9, low=0.0, doc="momentum coefficient γ"),
        WEIGHT_DECAY,
        MAXIMIZE,
    )

    def _init_buffers(self, params: np.ndarray) -> State:
        return {"velocity": np.zeros_like(params)}

    def _velocity(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> np.ndarray:
        g = add_l2(signed(grad, self.maximize), params, self._hp("weight_decay", params))
        return self._hp("momentum", params) * state["velocity"] + lr * g

    def _update(self, grad: np.ndarray, state: State, params: np.ndarray, lr: Any) -> tuple[np.ndarray, State]:
        v = self._velocity(grad, state, params, lr)
        return params - v, {"step": state["step"] + 1, "velocity": v}


class Nesterov(Momentum):
    r"""Nesterov accelerated gradient in the textbook look-ahead form of the seeds.

    .. math::
        v_t \leftarrow \gamma v_{t-1} + \eta_t \nabla L(\theta_{t-1} - \gamma v_{t-1}),\qquad
        \theta_t \leftarrow \theta_{t-1} - v_t

    The gradient is taken at the look-ahead point θ − γv, so :meth:`step` asks the objective for it
    there; :meth:`update` expects a gradient already taken at :meth:`lookahead`. With a constant
    learning rate, the look-ahead points φ_t = θ_t − γv_t are exactly the iterates of
    ``SGD(momentum=γ, nesterov=True)``; under a schedule the two differ.
    """

    name = "nesterov"

    def lookahead(self, params: Any, state: State) -> np.ndarray:
        """The point θ − γv where this step's gradient is taken."""
        p = as_params(params)
        return p - self._hp("momentum", p) * state["velocity"]

    def step(
        self, objective: Objective, params: Any, state: State, lr: Any = None, grad: Any = None
    ) -> StepResult:
        p = as_params(params)
        g = objective.grad(self.lookahead(p, state))
        return self.update(g, state, p, lr)
