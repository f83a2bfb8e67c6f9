"""``gdlab train``: train a learning problem with one optimizer, epoch by epoch.

``gdlab train --problem NAME [--problem-set k=v ...] --optimizer NAME [--set k=v ...]
[--batch-size B|full] [--epochs E] [--schedule NAME [--schedule-set k=v ...]] [--accumulate K]
[--seed S] [--json] [--plot FILE [--plot-size WxH]]``

Prints the training/validation loss (and accuracy for classifiers) after every epoch. A progress
bar goes to stderr, only when stderr is a terminal. ``--json`` prints
:meth:`~gdlab.problems.TrainResult.to_json` as one object. ``--plot`` draws the training (solid)
and validation (dashed) loss per epoch (see :mod:`gdlab.cli.plotting`).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from gdlab.cli import options as o
from gdlab.cli import plotting
from gdlab.cli.compare import build_problem, check_epochs, parse_batch_size
from gdlab.cli.run import add_optimizer_arguments, add_schedule_arguments


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--problem", metavar="NAME", required=True, help="learning problem (see `gdlab list problems`)")
    p.add_argument("--problem-set", action="append", metavar="K=V", default=[],
                   help="a problem parameter, e.g. --problem-set alpha=0.01 (repeatable)")
    add_optimizer_arguments(p)
    p.add_argument("--batch-size", metavar="B", help="full (default), 1 (stochastic) or a mini-batch size")
    p.add_argument("--epochs", type=int, default=10, help="number of epochs, 1..10000 (default 10)")
    add_schedule_arguments(p)
    p.add_argument("--accumulate", type=int, default=1, help="micro-batches averaged per step (default 1)")
    p.add_argument("--seed", type=int, default=0, help="seed of the shuffling and initialisation (default 0)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    plotting.add_plot_arguments(p)


class Progress:
    """A one-line progress bar on stderr (only used when stderr is a terminal)."""

    def __init__(self, epochs: int, width: int = 30) -> None:
        self.epochs, self.width = epochs, width

    def __call__(self, epoch: int, metrics: dict[str, Any]) -> None:
        filled = round(self.width * epoch / self.epochs)
        bar = "#" * filled + "-" * (self.width - filled)
        loss = o.fmt_num(metrics.get("train_loss"), 5)
        sys.stderr.write(f"\r[{bar}] epoch {epoch}/{self.epochs}  train loss {loss}")
        if epoch == self.epochs:
            sys.stderr.write("\n")
        sys.stderr.flush()


def run(args: argparse.Namespace) -> int:
    from gdlab.problems import train

    epochs = check_epochs(args.epochs)
    if args.accumulate < 1:
        raise o.usage(f"--accumulate must be >= 1, got {args.accumulate}")
    if args.seed < 0:
        raise o.usage(f"--seed must be >= 0, got {args.seed}")
    pictures = plotting.plot_request(args)
    batch_size = parse_batch_size(args.batch_size, "--batch-size")
    problem = build_problem(args.problem, args.problem_set)
    optimizer, _ = o.build_optimizer(args.optimizer, args.set)
    schedule = o.build_schedule(args.schedule, args.schedule_set)
    on_epoch = Progress(epochs) if sys.stderr.isatty() else None
    res = train(problem, optimizer, batch_size=batch_size, epochs=epochs, schedule=schedule,
                accumulate=args.accumulate, seed=args.seed, on_epoch=on_epoch)
    label = plotting.optimizer_label(optimizer.name, optimizer.get_params())
    pictures.figure(lambda size: plotting.epoch_loss_figure(
        {label: (res.train_loss, res.val_loss)}, size=size,
        title=f"problem {problem.name}, {optimizer.name}: loss per epoch"), "loss per epoch (train and validation)")
    if args.json:
        o.emit_json(res.to_json())
        pictures.report()
        return 0
    regime = "full batch" if batch_size is None else "stochastic (1 row)" if batch_size == 1 else f"batch {batch_size}"
    print(f"problem {problem.name}: {problem.description}")
    print(f"optimizer {optimizer.name} {o.fmt_hyper(optimizer.get_params())}")
    if schedule is not None:
        print(f"schedule {schedule.name} {o.fmt_hyper(schedule.get_params())}")
    print(f"{regime}, accumulate {args.accumulate}, {res.steps_per_epoch} steps/epoch, seed {args.seed}")
    classify = res.train_accuracy is not None
    head = ["epoch", "train loss", "val loss"] + (["train acc", "val acc"] if classify else [])
    rows = []
    for e in range(res.epochs_run + 1):
        cells = [str(e), o.fmt_num(res.train_loss[e], 8), o.fmt_num(res.val_loss[e], 8)]
        if classify:
            assert res.train_accuracy is not None and res.val_accuracy is not None
            cells += [o.fmt_num(res.train_accuracy[e], 4), o.fmt_num(res.val_accuracy[e], 4)]
        rows.append(cells)
    print(o.table(head, rows))
    print(f"status {res.status} after {res.stopped_at} steps: {res.reason}")
    pictures.report()
    return 0


COMMAND = ("train", "train a learning problem with an optimizer (loss and accuracy per epoch)", add_arguments, run)
