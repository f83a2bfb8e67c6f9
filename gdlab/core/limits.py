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
    #: Generated modules kept in the disk cache (the least recently used are removed past either bound).
    max_cached_modules: int = 2000
    #: Bytes of the disk cache of generated modules and their compiled code.
    max_cache_bytes: int = 500_000_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


LIMITS = Limits()
