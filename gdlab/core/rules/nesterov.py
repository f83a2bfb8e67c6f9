r"""Nesterov accelerated gradient in the textbook look-ahead form of the seeds."""

from __future__ import annotations

from gdlab.core.rules.momentum import Momentum


def lookahead(param, velocity, momentum):
    """The point ``θ − γv`` where the gradient of the step is taken."""
    return param - momentum * velocity


class Nesterov(Momentum):
    r"""Nesterov accelerated gradient in the textbook look-ahead form of the seeds.

    .. math::
        v_t \leftarrow \gamma v_{t-1} + \eta_t \nabla L(\theta_{t-1} - \gamma v_{t-1}),\qquad
        \theta_t \leftarrow \theta_{t-1} - v_t

    The update is the heavy-ball one (:class:`~gdlab.core.rules.momentum.Momentum`), with the
    gradient taken at the look-ahead point θ − γv: :meth:`step` asks the objective for it there,
    :meth:`update` expects a gradient already taken at :meth:`gradient_point`. With a constant
    learning rate the look-ahead points φ_t = θ_t − γv_t are exactly the iterates of
    ``SGD(momentum=γ, nesterov=True)``; under a schedule the two differ.
    """

    name = "nesterov"
    hyperparams = Momentum.hyperparams
    lookahead = staticmethod(lookahead)
