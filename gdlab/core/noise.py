r"""Stochastic gradients: a seeded Gaussian model of minibatch gradient noise.

A minibatch of ``B`` samples whose per-sample gradients scatter with standard deviation σ around the
full gradient gives, by the central limit theorem, the gradient estimate

.. math::
    \tilde g_t = \nabla f(x_t) + \frac{\sigma}{\sqrt B}\,\xi_t,\qquad \xi_t \sim \mathcal N(0, I_d)

with a fresh, independent :math:`\xi_t` at every step ``t``. :class:`Noise` holds (σ, B, seed);
:meth:`Noise.stream` draws :math:`\xi_t` from NumPy's ``Generator`` (PCG64) seeded with ``seed``, one
array of shape ``batch + (d,)`` per step in step order, so the same seed and batch shape give the same
trajectory. :class:`NoisyGradient` is the objective an optimizer sees at one step: every gradient it
asks for (at the point, or at a look-ahead or perturbed point) carries that step's noise; values do not.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gdlab.core.limits import LIMITS
from gdlab.core.objective import Objective


@dataclass(frozen=True)
class Noise:
    """Gaussian gradient noise of standard deviation ``sigma / sqrt(batch_size)`` per coordinate.

    ``sigma`` ≥ 0 (finite, at most :attr:`~gdlab.core.limits.Limits.max_noise_sigma`), ``batch_size``
    an integer ≥ 1 (at most :attr:`~gdlab.core.limits.Limits.max_noise_batch`), ``seed`` an integer
    in ``[0, max_noise_seed]``. Bad values raise ``ValueError`` naming the value.
    """

    sigma: float
    batch_size: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        sigma = self.sigma
        if isinstance(sigma, bool) or not isinstance(sigma, int | float | np.integer | np.floating):
            raise TypeError(f"noise sigma must be a number, got {sigma!r}")
        if not math.isfinite(float(sigma)) or not 0.0 <= float(sigma) <= LIMITS.max_noise_sigma:
            raise ValueError(f"noise sigma must be between 0 and {LIMITS.max_noise_sigma:g}, got {sigma!r}")
        object.__setattr__(self, "sigma", float(sigma))
        for name, low, high in (("batch_size", 1, LIMITS.max_noise_batch), ("seed", 0, LIMITS.max_noise_seed)):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | np.integer):
                raise TypeError(f"noise {name} must be an integer, got {value!r}")
            if not low <= int(value) <= high:
                raise ValueError(f"noise {name} must be between {low} and {high}, got {value}")
            object.__setattr__(self, name, int(value))

    @property
    def scale(self) -> float:
        """The standard deviation σ/√B of each coordinate of the gradient noise."""
        return self.sigma / math.sqrt(self.batch_size)

    @property
    def is_off(self) -> bool:
        """σ = 0: the runs are exactly the noiseless ones."""
        return self.sigma == 0.0

    def stream(self, shape: tuple[int, ...]) -> NoiseStream:
        """A fresh stream of per-step noise arrays of ``shape`` (``batch + (d,)``), from the seed."""
        return NoiseStream(self.scale, np.random.default_rng(self.seed), shape)

    def to_dict(self) -> dict[str, float | int]:
        return {"sigma": self.sigma, "batch_size": self.batch_size, "seed": self.seed}

    @classmethod
    def parse(cls, text: str) -> Noise:
        """``"SIGMA[,B[,SEED]]"`` or ``"sigma=S,batch=B,seed=N"`` (keys in any order; B and seed optional)."""
        parts = [p.strip() for p in text.split(",")]
        if not parts or not parts[0] or len(parts) > 3:
            raise ValueError(f"noise takes SIGMA[,B[,SEED]] or sigma=S,batch=B,seed=N, got {text!r}")
        keyed = any("=" in p for p in parts)
        if keyed:
            aliases = {"sigma": "sigma", "batch": "batch_size", "batch_size": "batch_size", "b": "batch_size",
                       "seed": "seed"}
            found: dict[str, str] = {}
            for p in parts:
                key, sep, value = p.partition("=")
                name = aliases.get(key.strip().lower())
                if not sep or name is None:
                    raise ValueError(f"noise: unknown or malformed entry {p!r} (use sigma=, batch=, seed=)")
                if name in found:
                    raise ValueError(f"noise: {key.strip()} given twice in {text!r}")
                found[name] = value.strip()
            if "sigma" not in found:
                raise ValueError(f"noise: sigma= is missing in {text!r}")
        else:
            found = dict(zip(("sigma", "batch_size", "seed"), parts, strict=False))
        kwargs: dict[str, float | int] = {"sigma": _real(found["sigma"], "sigma")}
        for name in ("batch_size", "seed"):
            if name in found:
                kwargs[name] = _integer(found[name], name)
        return cls(**kwargs)  # type: ignore[arg-type]


class NoiseStream:
    """The noise of successive steps: ``next_step()`` is the scaled draw ``(σ/√B)·ξ_t`` of the next step."""

    def __init__(self, scale: float, rng: np.random.Generator, shape: tuple[int, ...]) -> None:
        self.scale, self.rng, self.shape = scale, rng, shape

    def next_step(self) -> np.ndarray:
        return self.scale * self.rng.standard_normal(self.shape)


class NoisyGradient(Objective):
    """``objective`` with ``noise`` (shape ``batch + (d,)``) added to every gradient it gives."""

    def __init__(self, objective: Objective, noise: np.ndarray) -> None:
        self.objective, self.noise = objective, noise
        self.has_hessian = objective.has_hessian
        self.has_value = objective.has_value

    def value(self, x: np.ndarray) -> np.ndarray:
        return self.objective.value(x)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return self.objective.grad(x) + self.noise

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        f, g = self.objective.value_and_grad(x)
        return f, g + self.noise

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return self.objective.hessian(x)


def _real(text: str, name: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"noise {name} must be a number, got {text!r}") from None
    return value


def _integer(text: str, name: str) -> int:
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"noise {name} must be an integer, got {text!r}") from None
    if not math.isfinite(value) or not value.is_integer():
        raise ValueError(f"noise {name} must be an integer, got {text!r}")
    return int(value)
