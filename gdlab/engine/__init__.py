"""The run engine and what is built on it: batched runs, local analysis, sweeps.

- :mod:`gdlab.engine.run`: :func:`run_batch` (many runs, one vectorised call per step),
  :func:`run_single`, :func:`compare`, :class:`BatchRecord`, :class:`RunSpec`;
- :mod:`gdlab.engine.analysis`: gradient, Hessian spectrum, condition number, critical learning
  rates and the kind of a point (:func:`analyze`, :func:`analyze_point`);
- :mod:`gdlab.engine.sweeps`: :func:`lr_sweep` and :func:`basin_map`;
- :mod:`gdlab.engine.result`: :class:`RunResult`, the data contract of the CLI, plots and web lab.
"""

from gdlab.engine.analysis import Analysis, PointAnalysis, analyze, analyze_point, nearest_known_minimum
from gdlab.engine.result import STATUSES, RunResult, jsonable
from gdlab.engine.run import BatchRecord, RunSpec, compare, run_batch, run_single
from gdlab.engine.sweeps import BasinMap, LrSweep, basin_map, lr_sweep

__all__ = [
    "STATUSES",
    "Analysis",
    "BasinMap",
    "BatchRecord",
    "LrSweep",
    "PointAnalysis",
    "RunResult",
    "RunSpec",
    "analyze",
    "analyze_point",
    "basin_map",
    "compare",
    "jsonable",
    "lr_sweep",
    "nearest_known_minimum",
    "run_batch",
    "run_single",
]
