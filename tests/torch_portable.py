"""The torch parity cases run bit for bit: a program that the tests start in a fresh process.

PyTorch's own float64 results on a CPU depend on two choices that are not IEEE arithmetic, so no
implementation can match them bit for bit on every machine:

- its vectorised kernels (``ATEN_CPU_CAPABILITY`` ``avx2``/``avx512``, chosen from the CPU) contract
  ``a + α·b`` (``add`` with ``alpha``, ``lerp``, ``addcmul``) into one fused multiply-add, while its
  portable kernels (``default``) round the product first, as gdlab's rules do on every path;
- ``Tensor.sqrt`` of a float64 tensor comes from a vector math library whose roots are sometimes an
  ulp away from the correctly rounded one (IEEE's ``√``, which gdlab uses).

The powers in both (bias corrections, NAdam's 0.96^{tψ}, ASGD's η) are Python-side scalars that
torch computes with Python's ``**`` and gdlab with ``math.pow``: the C library's ``pow`` in this one
process for both, the same code, not two implementations that happen to agree.

This program takes torch's portable kernels (the variable is read when torch loads, so it must be set
before this process starts) and a correctly rounded ``sqrt``, and reports, as JSON on stdout, for
each case of ``test_parity_torch.CASES`` fed a random gradient stream and for a small MLP trained
100 steps with ``gdlab.torch`` beside ``torch.optim``, how many numbers differ (``mlp_torch_sqrt``:
the optimizers without a square root, before ``sqrt`` is replaced).
"""

from __future__ import annotations

import json
import os
import sys

import numpy as np


def use_correctly_rounded_sqrt(torch) -> None:
    """Replace torch's float64 ``sqrt``/``sqrt_`` by IEEE's correctly rounded root (NumPy's)."""
    original, original_fn = torch.Tensor.sqrt, torch.sqrt

    def sqrt(self):
        if self.dtype != torch.float64:
            return original(self)
        return torch.from_numpy(np.sqrt(self.detach().numpy()))

    def sqrt_(self):
        if self.dtype != torch.float64:
            return original(self)
        values = self.detach().numpy()
        np.sqrt(values, out=values)
        return self

    torch.Tensor.sqrt, torch.Tensor.sqrt_ = sqrt, sqrt_
    torch.sqrt = lambda t, *args, **kwargs: sqrt(t) if not (args or kwargs) else original_fn(t, *args, **kwargs)


def case_key(name: str, kwargs: dict) -> str:
    """How a case is named in the report (and in the tests' ids)."""
    return f"{name} {sorted(kwargs.items())}"


def stream_cases(cases) -> dict[str, int]:
    from helpers import run_stream
    from torch_oracle import torch_on_stream

    from gdlab.core.optimizers import make_optimizer

    rng = np.random.default_rng(20261203)
    x0 = rng.normal(size=300)
    grads = rng.normal(size=(100, 300)) * rng.choice([1e-3, 1.0, 30.0], size=(100, 1))
    grads[::17, 2] = 0.0
    out = {}
    for name, torch_cls, kwargs, _ in cases:
        ours = run_stream(make_optimizer(name, lr=0.01, **kwargs), x0, grads)
        ref = torch_on_stream(torch_cls, {"lr": 0.01, "foreach": False, **kwargs}, x0, grads)
        out[case_key(name, kwargs)] = int(np.sum(ours != ref))
    return out


#: The torch optimizers whose float64 steps use no square root: equal to gdlab bit for bit under the
#: portable kernels with torch's own ``sqrt`` untouched.
NO_SQRT = ("SGD", "Adamax", "Rprop", "ASGD")

#: (class name in both gdlab.torch and torch.optim, keyword arguments)
MLP_CASES = [
    ("Adam", {"lr": 1e-2, "weight_decay": 0.01}),
    ("Adam", {"lr": 1e-2, "amsgrad": True}),
    ("AdamW", {"lr": 1e-2}),
    ("SGD", {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
    ("SGD", {"lr": 1e-2, "momentum": 0.9, "dampening": 0.5, "weight_decay": 1e-3}),
    ("RMSprop", {"lr": 1e-3, "centered": True, "momentum": 0.5}),
    ("Adagrad", {"lr": 1e-2, "lr_decay": 1e-3}),
    ("Adadelta", {"lr": 1.0}),
    ("Adamax", {"lr": 1e-2}),
    ("NAdam", {"lr": 1e-2}),
    ("RAdam", {"lr": 1e-2}),
    ("Rprop", {"lr": 1e-2}),
    ("ASGD", {"lr": 1e-2, "t0": 10.0}),
]


def mlp_cases(torch, only: tuple[str, ...] | None = None) -> dict[str, int]:
    from torch_oracle import mlp, train_mlp

    import gdlab.torch as gt

    out = {}
    for name, kwargs in MLP_CASES:
        if only is not None and name not in only:
            continue
        a, b = mlp(), mlp()
        wa = train_mlp(a, getattr(gt, name)(a.parameters(), **kwargs))
        wb = train_mlp(b, getattr(torch.optim, name)(b.parameters(), foreach=False, **kwargs))
        out[case_key(name, kwargs)] = sum(int((x != y).sum()) for x, y in zip(wa, wb, strict=True))
    return out


def main() -> None:
    if os.environ.get("ATEN_CPU_CAPABILITY") != "default":
        sys.exit("run with ATEN_CPU_CAPABILITY=default (torch's portable kernels)")
    import torch
    from test_parity_torch import CASES

    untouched = mlp_cases(torch, NO_SQRT)
    use_correctly_rounded_sqrt(torch)
    result = {"capability": torch.backends.cpu.get_cpu_capability(), "streams": stream_cases(CASES),
              "mlp": mlp_cases(torch), "mlp_torch_sqrt": untouched}
    print(json.dumps(result))


if __name__ == "__main__":
    main()
