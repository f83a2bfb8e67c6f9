"""PyTorch CPU as a test-only oracle: run torch.optim on the same gradients as gdlab, in float64."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

torch.set_default_dtype(torch.float64)


def torch_on_stream(
    cls: type, kwargs: dict[str, Any], x0: np.ndarray, grads: np.ndarray, lrs: np.ndarray | None = None
) -> np.ndarray:
    """Trajectory (steps+1, d) of ``cls(**kwargs)`` fed the gradient stream ``grads`` (steps, d).

    ``lrs`` sets the learning rate before each step (what a scheduler does).
    """
    p = torch.tensor(x0.copy(), dtype=torch.float64, requires_grad=True)
    opt = cls([p], **kwargs)
    out = [p.detach().numpy().copy()]
    for i, g in enumerate(grads):
        if lrs is not None:
            for group in opt.param_groups:
                group["lr"] = float(lrs[i])
        p.grad = torch.tensor(g, dtype=torch.float64)
        opt.step()
        out.append(p.detach().numpy().copy())
    return np.array(out)


def torch_on_function(
    cls: type, kwargs: dict[str, Any], x0: np.ndarray, fun: Callable[[torch.Tensor], torch.Tensor], steps: int
) -> np.ndarray:
    """Trajectory of ``cls(**kwargs)`` minimising ``fun`` (autograd gradients) for ``steps`` steps."""
    p = torch.tensor(x0.copy(), dtype=torch.float64, requires_grad=True)
    opt = cls([p], **kwargs)
    out = [p.detach().numpy().copy()]

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = fun(p)
        loss.backward()
        return loss

    for _ in range(steps):
        opt.step(closure)
        out.append(p.detach().numpy().copy())
    return np.array(out)


def torch_rosenbrock(p: torch.Tensor) -> torch.Tensor:
    return torch.sum(100.0 * (p[1:] - p[:-1] ** 2) ** 2 + (1.0 - p[:-1]) ** 2)


def rel_err(ours: np.ndarray, ref: np.ndarray) -> float:
    """Largest relative error over a trajectory: max over steps of ‖ours_t − ref_t‖ / ‖ref_t‖."""
    ours, ref = np.atleast_2d(ours), np.atleast_2d(ref)
    diff = np.linalg.norm(ours - ref, axis=-1)
    scale = np.maximum(np.linalg.norm(ref, axis=-1), np.finfo(np.float64).tiny)
    return float(np.max(diff / scale))


def mlp(seed: int = 0) -> torch.nn.Module:
    """A small float64 MLP (5 → 16 → 1, tanh), the same weights for the same seed."""
    torch.manual_seed(seed)
    return torch.nn.Sequential(torch.nn.Linear(5, 16), torch.nn.Tanh(), torch.nn.Linear(16, 1)).double()


def train_mlp(model: torch.nn.Module, opt: Any, steps: int = 100, sched: Any = None) -> list[torch.Tensor]:
    """``steps`` full-batch steps of mean squared error on fixed random data; the final weights."""
    torch.manual_seed(1)
    x, y = torch.randn(64, 5, dtype=torch.float64), torch.randn(64, 1, dtype=torch.float64)
    for _ in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        opt.step()
        if sched is not None:
            sched.step()
    return [p.detach().clone() for p in model.parameters()]
