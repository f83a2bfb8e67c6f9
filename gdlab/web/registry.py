"""The optimizers and schedules the lab offers: the registries', less those a lab request cannot hold.

A lab run is a batch of landscape points (one vector per run) driven by flat JSON values, so:

- ``asgd`` is left out: the request schema has a branch per optimizer (and per SAM base), and with
  one more the schema tools that check the server against it give up on the whole request.
- ``muon`` is left out: PyTorch's Muon takes only 2-D parameters (weight matrices) and refuses a
  landscape point; it trains the learning problems from Python and the command line (``gdlab train``).
- ``sequential`` and ``chained`` are left out: their ``schedulers`` are schedules themselves, which
  the lab's flat parameter values cannot spell; the command line spells them
  (``schedulers=linear(total_iters=10)|cosine(T_max=90)``) and Python passes the objects.

``lambda`` and ``multiplicative`` are offered: their ``lr_lambda`` is a formula in ``t`` given as a
string, read by the landscapes' safe parser (:mod:`gdlab.landscapes.formula`).
"""

from __future__ import annotations

from gdlab.core.hyper import lookup
from gdlab.core.optimizer import Optimizer
from gdlab.core.optimizers import OPTIMIZERS
from gdlab.core.schedules import SCHEDULES, Schedule

#: Left out of the lab, with the reason given to a request that names them.
NOT_IN_LAB: dict[str, str] = {
    "asgd": "the lab's request schema holds one branch per optimizer, and past this many the tools that check "
            "it against the server (schemathesis) give up; asgd runs from the command line and Python",
    "muon": "muon takes only 2-D parameters (weight matrices) and the lab's runs are landscape points; "
            "train a learning problem with it (gdlab train)",
    "sequential": "sequential's schedulers are schedules, which the lab's parameter values cannot spell; "
                  "use the command line or Python",
    "chained": "chained's schedulers are schedules, which the lab's parameter values cannot spell; "
               "use the command line or Python",
}

#: Optimizers the lab offers alone but not inside SAM: the lab's schema lists SAM's hyperparameters once
#: per base, and past these bases the schema tools (schemathesis, which checks that the schema says
#: what the server enforces) give up on the whole request schema. From Python and the command line
#: SAM wraps them.
SAM_BASES_NOT_IN_LAB: dict[str, str] = {
    "rprop": "the lab's SAM wraps the optimizers it offered before rprop and asgd; use the command line or Python",
    "asgd": "the lab's SAM wraps the optimizers it offered before rprop and asgd; use the command line or Python",
}

LAB_OPTIMIZERS: dict[str, type[Optimizer]] = {n: c for n, c in OPTIMIZERS.items() if n not in NOT_IN_LAB}
LAB_SCHEDULES: dict[str, type[Schedule]] = {n: c for n, c in SCHEDULES.items() if n not in NOT_IN_LAB}


def lab_optimizer_class(name: str) -> type[Optimizer]:
    """The optimizer called ``name`` if the lab offers it; ``ValueError`` saying why not otherwise."""
    if name in NOT_IN_LAB and name in OPTIMIZERS:
        raise ValueError(f"optimizer {name!r} is not offered by the lab: {NOT_IN_LAB[name]}")
    return lookup(LAB_OPTIMIZERS, name, "optimizer")


def lab_schedule_class(name: str) -> type[Schedule]:
    """The schedule called ``name`` if the lab offers it; ``ValueError`` saying why not otherwise."""
    if name in NOT_IN_LAB and name in SCHEDULES:
        raise ValueError(f"schedule {name!r} is not offered by the lab: {NOT_IN_LAB[name]}")
    return lookup(LAB_SCHEDULES, name, "schedule")
