"""gdlab.torch.Adam vs torch.optim.Adam(fused=True) on one float32 CPU parameter tensor.

Same run for both (same parameter size, gradient and hyperparameters), paired rounds (the two
alternate, each round timing one step of each), gdlab in the non-atomic mode of
:mod:`gdlab.fast.config`. Prints the median time per step and the ratio gdlab / torch (goal ≤ 1.1).

    python3 bench/bench_torch_adapter.py [--size 10000000] [--rounds 30] [--quick]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=10_000_000)
    p.add_argument("--rounds", type=int, default=30)
    p.add_argument("--quick", action="store_true", help="1M params, 10 rounds")
    args = p.parse_args()
    size, rounds = (1_000_000, 10) if args.quick else (args.size, args.rounds)

    import torch

    import gdlab.torch as gt
    from gdlab.fast import config

    torch.manual_seed(0)
    grad = torch.randn(size, dtype=torch.float32)
    pa = torch.nn.Parameter(torch.randn(size, dtype=torch.float32))
    pb = torch.nn.Parameter(pa.detach().clone())
    pa.grad, pb.grad = grad.clone(), grad.clone()
    ours = gt.Adam([pa], lr=1e-3)
    theirs = torch.optim.Adam([pb], lr=1e-3, fused=True)
    times: dict[str, list[float]] = {"gdlab.torch.Adam": [], "torch.optim.Adam(fused=True)": []}
    with config.options(atomic=False):
        for _ in range(3):  # warm up (compile, allocate state)
            ours.step()
            theirs.step()
        for _ in range(rounds):
            for name, opt in (("gdlab.torch.Adam", ours), ("torch.optim.Adam(fused=True)", theirs)):
                t0 = time.perf_counter()
                opt.step()
                times[name].append(time.perf_counter() - t0)
    med = {k: statistics.median(v) for k, v in times.items()}
    base = med["torch.optim.Adam(fused=True)"]
    print(f"Adam step on {size:,} float32 CPU params, {rounds} paired rounds, torch threads {torch.get_num_threads()}")
    print(f"{'optimizer':32s} {'median ms':>10s} {'ratio':>7s}")
    for k, v in med.items():
        print(f"{k:32s} {v * 1e3:10.2f} {v / base:7.2f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
