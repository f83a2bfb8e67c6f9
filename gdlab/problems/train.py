"""The training loop: epochs of full-batch, stochastic or mini-batch descent on a :class:`Problem`.

Each optimizer step evaluates the mini-batch objective once (loss and gradient at the current
params), asks the schedule (if any) for the learning rate, and calls
``optimizer.step(objective, params, state, lr=..., grad=...)``, so optimizers that need more than the
gradient (look-ahead Nesterov, Newton, ...) get it from the objective themselves. Matrix optimizers
(:class:`~gdlab.core.optimizers.blocks.BlockOptimizer`: Adafactor, Muon) are given the problem's
:attr:`~gdlab.problems.base.Problem.layout`, so each weight matrix is a 2-D parameter to them. Schedules follow
the protocol ``state = schedule.init()``; ``lr = schedule.lr(step, base_lr, state)`` before step
``step`` (0-based: the number of updates applied so far); ``state = schedule.observe(state, loss)``
after it, with that step's mini-batch loss (and ``base_lr`` as a third argument when ``observe``
accepts one, as :mod:`gdlab.core.schedules` does for ``plateau``'s absolute ``min_lr``). Only those
three methods are used.

Batched runs: ``params`` of shape ``batch + (n_params,)`` trains every run on the same mini-batches
(e.g. one run per learning rate when the optimizer's ``lr`` is an array). A run **diverges** when
its loss is not finite or the optimizer reports a non-finite gradient or update; it is then frozen
at its last finite parameters (NaN never reaches them), its later records are NaN, and the other
runs go on. Training stops early when every run has diverged.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from gdlab.core.cycling import momentum_field, with_momentum
from gdlab.core.objective import Objective
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers import make_optimizer
from gdlab.core.optimizers.blocks import BlockOptimizer
from gdlab.engine.result import jsonable
from gdlab.problems.base import Problem, ProblemObjective
from gdlab.problems.batches import check_batch_size, epoch_batches, group_batches, steps_per_epoch

EpochCallback = Callable[[int, dict[str, Any]], None]


class MeanObjective(Objective):
    """The mean of several objectives (gradient accumulation over micro-batches).

    ``value = (1/k) Σ_j f_j``, ``grad = (1/k) Σ_j ∇f_j`` (and the Hessian likewise when all have one).
    """

    def __init__(self, objectives: Sequence[Objective]) -> None:
        if not objectives:
            raise ValueError("MeanObjective needs at least one objective")
        self.objectives = list(objectives)
        self.has_value = all(o.has_value for o in self.objectives)
        self.has_hessian = all(o.has_hessian for o in self.objectives)

    def value(self, x: np.ndarray) -> np.ndarray:
        return sum(o.value(x) for o in self.objectives) / len(self.objectives)

    def grad(self, x: np.ndarray) -> np.ndarray:
        return sum(o.grad(x) for o in self.objectives) / len(self.objectives)

    def value_and_grad(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pairs = [o.value_and_grad(x) for o in self.objectives]
        k = len(pairs)
        return sum(v for v, _ in pairs) / k, sum(g for _, g in pairs) / k

    def hessian(self, x: np.ndarray) -> np.ndarray:
        return sum(o.hessian(x) for o in self.objectives) / len(self.objectives)


def _scalar_or_array(value: np.ndarray) -> Any:
    value = np.asarray(value)
    if value.ndim == 0:
        item = value.item()
        return float(item) if value.dtype.kind == "f" else item
    return value


@dataclass
class TrainResult:
    """What :func:`train` returns.

    Epoch records have ``epochs_run + 1`` entries: entry ``e`` is measured after ``e`` epochs (entry 0
    at the start). Step records have one entry per optimizer step: ``step_loss[t]`` is the mini-batch
    loss at the params *before* step t and ``lr[t]`` its learning rate. With batched runs every record
    has the batch shape as trailing axes. Accuracies are None for regression problems.
    ``status`` is "max_steps" (all epochs done) or "diverged"; ``stopped_at`` is the number of updates
    applied to the run when it stopped; ``reason`` says why. For batched runs these three are arrays
    of the batch shape.
    """

    problem: str
    problem_params: dict[str, Any]
    optimizer: str
    hyperparams: dict[str, Any]
    schedule: str | None
    batch_size: int | None
    accumulate: int
    seed: int
    epochs: int
    steps_per_epoch: int
    train_loss: np.ndarray
    val_loss: np.ndarray
    train_accuracy: np.ndarray | None
    val_accuracy: np.ndarray | None
    step_loss: np.ndarray
    lr: np.ndarray
    params: np.ndarray
    status: Any
    stopped_at: Any
    reason: Any

    @property
    def epochs_run(self) -> int:
        """Completed epochs."""
        return len(self.train_loss) - 1

    @property
    def n_steps(self) -> int:
        """Optimizer steps taken."""
        return len(self.step_loss)

    @property
    def diverged(self) -> bool | np.ndarray:
        """Whether the run (each run) diverged."""
        return _scalar_or_array(np.asarray(self.status) == "diverged")

    def to_json(self) -> dict[str, Any]:
        """JSON-ready dict (lists of numbers; NaN and ±inf become None)."""
        return jsonable({
            "problem": self.problem,
            "problem_params": self.problem_params,
            "optimizer": self.optimizer,
            "hyperparams": self.hyperparams,
            "schedule": self.schedule,
            "batch_size": self.batch_size,
            "accumulate": self.accumulate,
            "seed": self.seed,
            "epochs": self.epochs,
            "epochs_run": self.epochs_run,
            "steps_per_epoch": self.steps_per_epoch,
            "n_steps": self.n_steps,
            "train_loss": self.train_loss,
            "val_loss": self.val_loss,
            "train_accuracy": self.train_accuracy,
            "val_accuracy": self.val_accuracy,
            "step_loss": self.step_loss,
            "lr": self.lr,
            "params": self.params,
            "status": self.status,
            "stopped_at": self.stopped_at,
            "reason": self.reason,
        })


def _check_count(value: Any, name: str, low: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < low:
        raise ValueError(f"{name}={value!r} must be an integer ≥ {low}")
    return int(value)


def _hyper_batch_shape(optimizer: Optimizer) -> tuple[int, ...]:
    """The broadcast shape of the optimizer's array-valued hyperparameters (() if none)."""
    shapes = []
    for value in optimizer.get_params().values():
        for part in value if isinstance(value, tuple) else (value,):
            if isinstance(part, np.ndarray):
                shapes.append(part.shape)
    return np.broadcast_shapes(*shapes) if shapes else ()


def _observe_takes_base_lr(schedule: Any) -> bool:
    """Whether ``schedule.observe`` accepts a third (``base_lr``) argument."""
    try:
        sig = inspect.signature(schedule.observe)
    except (TypeError, ValueError):
        return False
    params = list(sig.parameters.values())
    if any(p.kind is p.VAR_POSITIONAL for p in params):
        return True
    positional = [p for p in params if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    return len(positional) >= 3


def _objective_for(problem: Problem, group: list[np.ndarray], full: Objective) -> Objective:
    X, y = problem.X_train, problem.y_train
    parts = [full if len(idx) == len(X) else ProblemObjective(problem, X[idx], y[idx]) for idx in group]
    return parts[0] if len(parts) == 1 else MeanObjective(parts)


def train(
    problem: Problem | str,
    optimizer: Optimizer | str,
    *,
    batch_size: int | None = None,
    epochs: int = 10,
    schedule: Any = None,
    accumulate: int = 1,
    seed: int = 0,
    params: Any = None,
    on_epoch: EpochCallback | None = None,
) -> TrainResult:
    """Train ``problem`` with ``optimizer`` for ``epochs`` epochs; see the module docstring.

    ``batch_size``: None (full batch), 1 (SGD) or B (mini-batches reshuffled every epoch with
    ``seed``); ``accumulate``: micro-batches averaged per step; ``params``: start (default
    ``problem.init_params(seed)``, broadcast to the batch shape of the optimizer's array-valued
    hyperparameters); ``on_epoch(epoch, metrics)`` is called after every completed epoch (1-based)
    with ``epoch``, ``step``, ``train_loss``, ``val_loss``, ``train_accuracy``, ``val_accuracy``
    and ``lr`` (floats for one run, arrays for a batch).
    """
    if isinstance(problem, str):
        from gdlab.problems import make_problem

        problem = make_problem(problem)
    if isinstance(optimizer, str):
        optimizer = make_optimizer(optimizer)
    if not isinstance(problem, Problem):
        raise TypeError(f"problem must be a Problem or a problem name, got {problem!r}")
    if not isinstance(optimizer, Optimizer):
        raise TypeError(f"optimizer must be an Optimizer or an optimizer name, got {optimizer!r}")
    if isinstance(optimizer, BlockOptimizer) and optimizer.layout is None:
        # matrix optimizers (Adafactor, Muon) update each of the problem's blocks (weight matrices,
        # biases) as PyTorch updates one tensor per block
        optimizer = optimizer.with_layout(problem.layout)
    epochs = _check_count(epochs, "epochs", 1)
    accumulate = _check_count(accumulate, "accumulate", 1)
    seed = _check_count(seed, "seed", 0)
    if batch_size is not None:
        batch_size = _check_count(batch_size, "batch_size", 1)
    n = problem.n_train
    check_batch_size(batch_size, n)

    if params is None:
        start = problem.init_params(seed)
        p = np.array(np.broadcast_to(start, _hyper_batch_shape(optimizer) + start.shape))
    else:
        p = np.array(problem.check_params(params), dtype=np.float64)
    batch = p.shape[:-1]
    state = optimizer.init(p)
    base_lr = getattr(optimizer, "lr", None)
    if schedule is not None and base_lr is None:
        raise ValueError(f"optimizer {optimizer.name!r} has no learning rate for a schedule to drive")
    sched_state = schedule.init() if schedule is not None else None
    momenta = getattr(schedule, "cycled_momentum", None) if schedule is not None else None
    if momenta is not None and momenta(0) is None:
        momenta = None
    if momenta is not None:
        momentum_field(optimizer)  # refuses an optimizer without momentum or betas before any step
    observe_extra = (base_lr,) if schedule is not None and _observe_takes_base_lr(schedule) else ()
    full = problem.objective()

    alive = np.ones(batch, dtype=bool)
    stopped_at = np.zeros(batch, dtype=np.int64)
    reason = np.full(batch, "", dtype=object)

    def kill(mask: np.ndarray, at: int, why: str) -> None:
        mask = mask & alive
        stopped_at[mask] = at
        reason[mask] = why
        alive[mask] = False

    def measure(params: np.ndarray) -> dict[str, Any]:
        m = problem.metrics(params)
        return {k: None if v is None else np.where(alive, v, np.nan) for k, v in m.items()}

    history: dict[str, list[Any]] = {k: [v] for k, v in measure(p).items()}
    step_loss: list[np.ndarray] = []
    lrs: list[tuple[Any, np.ndarray | None]] = []
    step = 0
    last_lr: Any = base_lr

    with np.errstate(over="ignore", invalid="ignore"):  # divergence is reported, not warned
        for epoch in range(epochs):
            for group in group_batches(epoch_batches(n, batch_size, epoch, seed), accumulate):
                objective = _objective_for(problem, group, full)
                lr_now = None if schedule is None else schedule.lr(step, base_lr, sched_state)
                last_lr = base_lr if lr_now is None else lr_now
                loss, grad = objective.value_and_grad(p)
                loss = np.asarray(loss, dtype=np.float64)
                if loss.shape != batch:
                    loss = np.broadcast_to(loss, batch)
                if not np.isfinite(loss).all():
                    kill(~np.isfinite(loss), step, f"the mini-batch loss became non-finite after {step} steps")
                    if not alive.any():
                        break
                running = None if alive.all() else alive.copy()  # the runs that attempt this step
                stepper = optimizer if momenta is None else with_momentum(optimizer, momenta(step))
                new_p, state, nonfinite = stepper.step(objective, p, state, lr=lr_now, grad=grad)
                if np.any(nonfinite):
                    kill(np.broadcast_to(nonfinite, batch), step, f"non-finite gradient or update at step {step + 1}")
                p = new_p if alive.all() else np.where(alive[..., np.newaxis], new_p, p)
                step_loss.append(loss if running is None else np.where(running, loss, np.nan))
                lrs.append((last_lr, running))
                step += 1
                if schedule is not None:
                    sched_state = schedule.observe(sched_state, _scalar_or_array(loss), *observe_extra)
                if not alive.any():
                    break
            if not alive.any():
                break
            metrics = measure(p)
            bad = ~np.isfinite(np.asarray(metrics["train_loss"]))
            if (bad & alive).any():
                kill(bad, step, f"the training loss became non-finite after {step} steps")
                metrics = measure(p)
            for key, value in metrics.items():
                history[key].append(value)
            if on_epoch is not None:
                shown = {k: None if v is None else _scalar_or_array(v) for k, v in metrics.items()}
                lr_show = None if last_lr is None else _scalar_or_array(np.broadcast_to(last_lr, batch))
                on_epoch(epoch + 1, {"epoch": epoch + 1, "step": step, **shown, "lr": lr_show})
            if not alive.any():
                break

    stopped_at[alive] = step
    reason[alive] = f"completed {epochs} epochs"
    status = np.where(alive, "max_steps", "diverged").astype(object)

    def stack(values: list[Any]) -> np.ndarray:
        return np.array(values, dtype=np.float64).reshape((len(values),) + batch)

    def lr_record(value: Any, running: np.ndarray | None) -> Any:
        arr = np.broadcast_to(np.nan if value is None else np.asarray(value, dtype=np.float64), batch)
        return arr if running is None else np.where(running, arr, np.nan)

    classify = history["train_accuracy"][0] is not None
    return TrainResult(
        problem=problem.name,
        problem_params=problem.get_params(),
        optimizer=optimizer.name,
        hyperparams=optimizer.get_params(),
        schedule=None if schedule is None else getattr(schedule, "name", type(schedule).__name__),
        batch_size=batch_size,
        accumulate=accumulate,
        seed=seed,
        epochs=epochs,
        steps_per_epoch=steps_per_epoch(n, batch_size, accumulate),
        train_loss=stack(history["train_loss"]),
        val_loss=stack(history["val_loss"]),
        train_accuracy=stack(history["train_accuracy"]) if classify else None,
        val_accuracy=stack(history["val_accuracy"]) if classify else None,
        step_loss=stack(step_loss),
        lr=stack([lr_record(v, r) for v, r in lrs]),
        params=p,
        status=_scalar_or_array(status),
        stopped_at=_scalar_or_array(stopped_at),
        reason=_scalar_or_array(reason),
    )
