"""The limits of what one call may ask of gdlab: one table, read by the engine, the command line
and the browser lab (which serves it at ``/api/meta``)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any


@dataclass(frozen=True)
class Limits:
    """Every limit, with why it is where it is."""

    #: Steps of one run (the engine, the command line).
    max_steps: int = 1_000_000
    #: Memory the record arrays of one engine call may take, in bytes.
    max_record_bytes: float = 4e9
    #: Runs × steps of one command-line command (a sweep or basin map the machine finishes in minutes).
    max_work: int = 200_000_000
    #: Learning rates of one sweep.
    max_lrs: int = 1000
    #: Grid points per axis of a surface or a basin map.
    max_grid: int = 400
    #: Smallest grid per axis.
    min_grid: int = 2
    #: Steps of one run in the browser lab (the page draws every point of every run).
    max_lab_steps: int = 10_000
    #: Optimizers compared in one lab request.
    max_lab_optimizers: int = 12
    #: Characters of a custom expression.
    max_expr_chars: int = 200
    #: Characters of a run label.
    max_label_chars: int = 40
    #: Landscape programs one process compiles (compiled code is never freed: about 1.5 MB each); past
    #: this, landscapes not compiled yet take the reference path.
    max_compiled_programs: int = 128
    #: Combined trajectory steps (a rule and a landscape compiled as one loop) one process compiles;
    #: past this, other pairs run the generic step (the same results, slower).
    max_combined_steps: int = 128
    #: Generated modules kept in the disk cache (the least recently used are removed past either bound).
    max_cached_modules: int = 2000
    #: Bytes of the disk cache of generated modules and their compiled code.
    max_cache_bytes: int = 500_000_000
    #: Largest integer in a lab request (schedule lengths, history sizes): far beyond any lab run, and
    #: small enough that no layer below overflows.
    max_lab_int: int = 2**31 - 1
    #: L-BFGS curvature pairs kept, in a lab request: its state holds 2·history_size·d floats from the
    #: first step (torch's default is 100; a lab landscape has at most 16 dimensions).
    max_lab_history: int = 1000
    #: Values of one list-valued hyperparameter in a lab request (a schedule's milestones).
    max_lab_list: int = 100
    #: Bytes of one lab request body: the largest request the other lab limits allow (12 optimizers
    #: with every hyperparameter and a schedule of 100 milestones each, a 200-character formula, every
    #: text escaped) is about 30 KB of compact JSON; twice that leaves room for indentation.
    max_lab_body_bytes: int = 64 * 1024
    #: Work the lab server admits at once (computing or waiting), counted in requests at the limits
    #: (12 L-BFGS runs × max_lab_steps); a request past it is answered 503 at once.
    max_lab_queued_requests: int = 4
    #: Threads computing lab requests (at most the number of CPUs).
    max_lab_workers: int = 4
    #: Landscapes and parsed formulas the lab server keeps, and their estimated memory.
    max_lab_cached_objectives: int = 64
    max_lab_cached_objective_bytes: int = 32 * 2**20
    #: Surfaces (JSON) the lab server keeps, and their size.
    max_lab_cached_surfaces: int = 32
    max_lab_cached_surface_bytes: int = 64 * 2**20
    #: Runs (JSON) the lab server keeps, and their size.
    max_lab_cached_runs: int = 2048
    max_lab_cached_run_bytes: int = 64 * 2**20
    #: Size of the lab's meta answer (one entry) that the server keeps.
    max_lab_cached_meta_bytes: int = 4 * 2**20

    # -- stochastic gradients (gdlab.core.noise) --
    #: Standard deviation σ of one sample's gradient noise (far beyond any landscape's gradients).
    max_noise_sigma: float = 1000.0
    #: Batch size B of the noise model σ/√B.
    max_noise_batch: int = 1_000_000
    #: Seed of the noise (NumPy takes any non-negative integer; the lab's integers stop here).
    max_noise_seed: int = 2**31 - 1

    # -- convergence rates and the rate map (gdlab.engine.rates, the lab's /api/rates and /api/ratemap) --
    #: Largest learning rate of a rate query or a rate map's range.
    max_rate_lr: float = 1e6
    #: Largest momentum of a rate query or a rate map's range (momentum 1 never converges).
    max_rate_momentum: float = 0.9999
    #: Grid points per axis of a rate map (n × n heavy-ball runs).
    max_ratemap_n: int = 100
    #: Steps of every run of a rate map.
    max_ratemap_steps: int = 1000
    #: Fewest steps of a rate map's runs (the measured rate needs a tail of points).
    min_ratemap_steps: int = 10

    # -- saved optimizer states (gdlab.core.serialization.load_state) --
    #: Bytes of all the arrays of one saved optimizer state; a file declaring more is refused before
    #: any array is read. The engine's record budget: far beyond the state of any run it allows.
    max_state_bytes: int = 4_000_000_000
    #: Characters of a state file's JSON metadata (the hyperparameters and the state's layout; a
    #: chain of every transform takes a few kB).
    max_state_meta_chars: int = 1_000_000
    #: Nesting depth of that metadata (a chain of chains nests three levels per optimizer).
    max_state_depth: int = 64

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LIMITS = Limits()
