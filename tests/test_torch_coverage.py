"""gdlab covers torch.optim and torch.optim.lr_scheduler of the pinned PyTorch, checked against torch's
own lists: every optimizer and scheduler class torch exports has a gdlab counterpart with a float64
parity test, or is in an exclusion list that says why (the README's tables say the same)."""

from __future__ import annotations

import inspect

import torch
from test_parity_torch import CASES as OPTIMIZER_CASES
from test_schedules import TORCH_CASES as SCHEDULE_CASES

from gdlab.core.optimizers import OPTIMIZERS
from gdlab.core.schedules import SCHEDULES

#: torch.optim class → gdlab optimizer.
OPTIMIZER_MAP = {
    "SGD": "sgd", "Adam": "adam", "AdamW": "adamw", "Adagrad": "adagrad", "RMSprop": "rmsprop",
    "Adadelta": "adadelta", "Adamax": "adamax", "NAdam": "nadam", "RAdam": "radam", "Rprop": "rprop",
    "ASGD": "asgd", "LBFGS": "lbfgs", "Adafactor": "adafactor", "Muon": "muon",
}
#: torch.optim classes gdlab leaves out, and why.
OPTIMIZER_EXCLUDED = {
    "SparseAdam": "needs sparse gradients (torch.sparse tensors); gdlab's gradients are dense arrays",
}
#: torch.optim.lr_scheduler class → gdlab schedule.
SCHEDULER_MAP = {
    "ConstantLR": "constant_lr", "StepLR": "step", "MultiStepLR": "multistep", "ExponentialLR": "exponential",
    "CosineAnnealingLR": "cosine", "CosineAnnealingWarmRestarts": "cosine_warm_restarts", "LinearLR": "linear",
    "OneCycleLR": "onecycle", "PolynomialLR": "polynomial", "CyclicLR": "cyclic", "ReduceLROnPlateau": "plateau",
    "LambdaLR": "lambda", "MultiplicativeLR": "multiplicative", "SequentialLR": "sequential",
    "ChainedScheduler": "chained",
}
#: torch.optim.lr_scheduler classes that are not schedules: the base classes.
SCHEDULER_EXCLUDED = {
    "LRScheduler": "the base class of the schedulers",
    "_LRScheduler": "the deprecated alias of LRScheduler",
}
#: gdlab optimizers whose torch parity lives in their own test files.
PARITY_ELSEWHERE = {"lbfgs": "tests/test_lbfgs.py", "adafactor": "tests/test_matrix_optimizers.py",
                    "muon": "tests/test_matrix_optimizers.py"}


def torch_optimizers() -> set[str]:
    return {n for n, c in vars(torch.optim).items()
            if inspect.isclass(c) and issubclass(c, torch.optim.Optimizer) and c is not torch.optim.Optimizer}


def torch_schedulers() -> set[str]:
    s = torch.optim.lr_scheduler
    return {n for n, c in vars(s).items() if inspect.isclass(c) and c.__module__ == s.__name__
            and (issubclass(c, s.LRScheduler) or c is s.ReduceLROnPlateau)}


def test_torch_version_is_the_pinned_one():
    assert torch.__version__.split("+")[0] == "2.13.0"


def test_every_torch_optimizer_is_mapped_or_excluded():
    assert set(OPTIMIZER_MAP) | set(OPTIMIZER_EXCLUDED) == torch_optimizers()
    assert not set(OPTIMIZER_MAP) & set(OPTIMIZER_EXCLUDED)
    for torch_name, name in OPTIMIZER_MAP.items():
        assert name in OPTIMIZERS, torch_name


def test_every_mapped_optimizer_has_a_parity_test():
    tested = {name for name, *_ in OPTIMIZER_CASES} | set(PARITY_ELSEWHERE)
    assert set(OPTIMIZER_MAP.values()) <= tested


def test_every_torch_scheduler_is_mapped_or_excluded():
    assert set(SCHEDULER_MAP) | set(SCHEDULER_EXCLUDED) == torch_schedulers()
    for torch_name, name in SCHEDULER_MAP.items():
        assert name in SCHEDULES, torch_name
    assert set(SCHEDULER_MAP.values()) <= {name for name, *_ in SCHEDULE_CASES}


def test_gdlab_extras_are_the_documented_ones():
    """What gdlab has beyond torch: the seeds' forms, Lion, Newton, SAM; two schedules."""
    assert set(OPTIMIZERS) - set(OPTIMIZER_MAP.values()) == {"momentum", "nesterov", "lion", "newton", "sam"}
    assert set(SCHEDULES) - set(SCHEDULER_MAP.values()) == {"constant", "warmup_cosine"}
