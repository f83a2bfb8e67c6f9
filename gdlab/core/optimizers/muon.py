r"""Muon (Jordan et al. 2024) in PyTorch's form: momentum orthogonalised by a Newton–Schulz iteration."""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from gdlab.core.elementwise import lerp
from gdlab.core.hyper import Hyper
from gdlab.core.optimizers.blocks import WHOLE, BlockOptimizer, Layout, run_value
from gdlab.core.rules.adamw import AdamW

#: PyTorch's defaults (torch/optim/_muon.py).
NS_COEFFICIENTS = (3.4445, -4.7750, 2.0315)


def to_bfloat16(x: Any) -> np.ndarray:
    """``x`` rounded to bfloat16 (to nearest, ties to even; NaN kept), returned as float32."""
    f = np.ascontiguousarray(x, dtype=np.float32)
    bits = f.view(np.uint32).astype(np.uint64)
    rounded = (((bits + 0x7FFF + ((bits >> 16) & 1)) >> 16) << 16).astype(np.uint32).view(np.float32)
    return np.where(np.isnan(f), f, rounded)


def newton_schulz(g: np.ndarray, coefficients: tuple[float, float, float], steps: int, eps: float,
                  bfloat16: bool) -> np.ndarray:
    r"""PyTorch's ``_zeropower_via_newtonschulz`` on a batch of matrices ``(..., m, n)``.

    ``X = G/max(‖G‖_F, ε)`` (transposed when m > n), then ``steps`` times
    ``A = XXᵀ``, ``B = bA + cA²``, ``X = aX + BX``. With ``bfloat16`` (PyTorch's, on every device)
    each result is rounded to bfloat16, matrix products accumulate in float32 and ``addmm``'s sums are
    rounded once, as PyTorch's CPU kernels do: bit for bit on small matrices
    (``tests/test_matrix_optimizers.py``, 300 of them); on larger ones (the MLP's 64 × 32) the float32
    sums are now and then added in another order than PyTorch's kernel and a bfloat16 rounding flips
    (30 training steps agree to 1e-5). Otherwise everything is in ``g``'s dtype (float64: no rounding
    to 8 bits of mantissa).
    """
    a, b, c = coefficients
    tall = g.shape[-2] > g.shape[-1]
    if bfloat16:
        round_, dtype = to_bfloat16, np.float32
    else:
        def round_(v: Any) -> np.ndarray:
            return np.asarray(v, dtype=g.dtype)
        dtype = g.dtype
    x = round_(g)
    if tall:
        x = np.swapaxes(x, -1, -2)
    norm = round_(np.sqrt(np.sum(x * x, axis=(-2, -1), keepdims=True, dtype=dtype)))
    x = round_(x / np.maximum(norm, round_(eps)))
    a, b, c = (np.dtype(dtype).type(v) for v in (a, b, c))
    for _ in range(steps):
        gram = round_(x @ np.swapaxes(x, -1, -2))
        update = round_(combine(b, gram, c, gram @ gram, bfloat16))
        x = round_(combine(a, x, None, update @ x, bfloat16))
    if tall:
        x = np.swapaxes(x, -1, -2)
    return np.asarray(x, dtype=g.dtype)


def combine(beta: Any, c: np.ndarray, alpha: Any, product: np.ndarray, bfloat16: bool) -> np.ndarray:
    """``addmm``'s ``β·C + α·(product)``; in bfloat16, PyTorch's CPU kernel forms it with one rounding
    to float32 of the exact value (a fused multiply-add), which float64 arithmetic gives here."""
    if not bfloat16:
        return beta * c + (product if alpha is None else alpha * product)
    wide = np.float64(beta) * c.astype(np.float64)
    term = product.astype(np.float64) if alpha is None else np.float64(alpha) * product.astype(np.float64)
    return (wide + term).astype(np.float32)


def adjusted_ratio(shape: tuple[int, ...], adjust_lr_fn: str) -> float:
    """PyTorch's ``_adjust_lr``: √max(1, A/B) ("original") or 0.2·√max(A, B) ("match_rms_adamw")."""
    rows, cols = shape[:2]
    if adjust_lr_fn == "original":
        return math.sqrt(max(1, rows / cols))
    return 0.2 * math.sqrt(max(rows, cols))


class Muon(BlockOptimizer):
    r"""Muon, exactly as ``torch.optim.Muon``, for 2-D parameters (weight matrices).

    Per matrix θ (A × B) with gradient g at step t:

    .. math::
        B_t &\leftarrow \operatorname{lerp}(B_{t-1}, g, 1-\mu) = \mu B_{t-1} + (1-\mu) g\\
        \tilde B_t &\leftarrow \operatorname{lerp}(g, B_t, \mu)\ \text{(nesterov)}\ \text{else}\ B_t\\
        O_t &\leftarrow \mathrm{NS}^{(a,b,c)}_k(\tilde B_t;\ \varepsilon)\\
        \theta_t &\leftarrow \theta_{t-1}(1 - \eta\lambda) - \eta\, r\, O_t,\qquad
        r = \sqrt{\max(1, A/B)}\ \text{("original")}\ \text{or}\ 0.2\sqrt{\max(A, B)}\ \text{("match\_rms\_adamw")}

    where NS is :func:`newton_schulz` (k steps of the quintic iteration). PyTorch runs the iteration
    in bfloat16 whatever the params' dtype; ``ns_dtype="bfloat16"`` (the default) does the same
    (rounding emulated), ``ns_dtype="params"`` iterates in the params' dtype (float64: no rounding
    to 8 bits of mantissa).

    Like PyTorch, Muon refuses parameters that are not 2-D: a landscape point (one vector per run)
    is refused. A learning problem's layout has biases beside its weight matrices; PyTorch's advice is
    to give those to AdamW, and ``others="adamw"`` (the default) does exactly that, with Muon's lr
    and weight_decay and AdamW's other defaults; ``others="refuse"`` refuses them as PyTorch does.
    """

    name = "muon"
    family = "adaptive"
    hyperparams = (
        Hyper("lr", 1e-3, low=0.0, doc="learning rate η"),
        Hyper("weight_decay", 0.1, low=0.0, doc="decoupled weight decay λ: θ ← θ(1 − ηλ)"),
        Hyper("momentum", 0.95, low=0.0, doc="momentum factor μ"),
        Hyper("nesterov", True, kind="bool", doc="use Nesterov momentum: orthogonalise lerp(g, B, μ)"),
        Hyper("ns_coefficients", NS_COEFFICIENTS, kind="pair", size=3, batchable=False,
              doc="(a, b, c): coefficients of the Newton–Schulz polynomial aX + (bA + cA²)X"),
        Hyper("eps", 1e-7, low=0.0, batchable=False, doc="ε: the gradient's norm is at least ε before the iteration"),
        Hyper("ns_steps", 5, kind="int", low=0, high=99, doc="number of Newton–Schulz steps (below 100)"),
        Hyper("adjust_lr_fn", "original", kind="choice", choices=("original", "match_rms_adamw"),
              doc="the lr scale r: √max(1, A/B) (original) or 0.2·√max(A, B) (match AdamW's RMS)"),
        Hyper("ns_dtype", "bfloat16", kind="choice", choices=("bfloat16", "params"),
              doc="dtype of the Newton–Schulz iteration: bfloat16 as PyTorch, or the params' own"),
        Hyper("others", "adamw", kind="choice", choices=("adamw", "refuse"),
              doc="blocks that are not 2-D (biases): AdamW with Muon's lr and weight_decay, or refuse"),
    )

    def check_layout(self, layout: Layout) -> None:
        shapes = [shape for _, shape in layout]
        if not any(len(s) == 2 for s in shapes):
            what = ("a vector of coordinates per run (a landscape point)" if layout[0][0] == WHOLE
                    else f"blocks of shapes {shapes}")
            raise ValueError(f"muon: torch.optim.Muon takes only 2-D parameters (weight matrices), got {what}; "
                             "use it to train a learning problem with weight matrices")
        bad = [(n, s) for n, s in layout if len(s) != 2]
        if bad and self.others == "refuse":
            raise ValueError(f"muon: torch.optim.Muon takes only 2-D parameters, got block {bad[0][0]!r} of shape "
                             f"{bad[0][1]} (others='adamw' gives such blocks to AdamW)")

    def _adamw(self) -> AdamW:
        return AdamW(lr=self.lr, weight_decay=self.weight_decay)

    def block_buffers(self, name: str, shape: tuple[int, ...]) -> dict[str, tuple[int, ...]]:
        if self.layout is None:
            self.check_layout(((WHOLE, shape),))
        if len(shape) == 2:
            return {"momentum_buffer": shape}
        return {"exp_avg": shape, "exp_avg_sq": shape}

    def update_block(self, shape: tuple[int, ...], param: np.ndarray, grad: np.ndarray,
                     buffers: dict[str, np.ndarray], t: int, lr: Any) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        batch = param.shape[: param.ndim - len(shape)]
        if len(shape) != 2:
            flat = (-1,) if not batch else batch + (-1,)
            adamw = self._adamw()
            state = {"step": t - 1, **{k: v.reshape(flat) for k, v in buffers.items()}}
            new_p, new_state, _ = adamw.update_reference(grad.reshape(flat), state, param.reshape(flat), lr)
            return new_p.reshape(param.shape), {k: new_state[k].reshape(param.shape) for k in buffers}
        mu = run_value(self.momentum, batch, 2)
        w = 1.0 - np.asarray(mu)
        buf = lerp(buffers["momentum_buffer"], grad, w, 1.0 - w)
        update = lerp(grad, buf, mu, 1.0 - np.asarray(mu)) if self.nesterov else buf
        ortho = newton_schulz(update, self.ns_coefficients, self.ns_steps, self.eps, self.ns_dtype == "bfloat16")
        lr_r = run_value(lr, batch, 2)
        adjusted = lr_r * adjusted_ratio(shape, self.adjust_lr_fn)
        param = param * (1.0 - lr_r * run_value(self.weight_decay, batch, 2))
        return param - adjusted * ortho, {"momentum_buffer": buf}
