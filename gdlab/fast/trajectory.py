"""Fused batched trajectories: landscape gradient and optimizer update in one compiled loop.

:func:`gdlab.engine.run.run_batch` advances a batch of runs with a Python loop over the steps and a
handful of NumPy calls per step (~70 µs a step whatever the batch size). For a landscape with a
compiled form (:mod:`gdlab.fast.landscape_codegen`: every built-in landscape and typed expression)
and an elementwise optimizer, this module runs the whole trajectory in compiled code instead:

- the runs are cut into blocks of :data:`BLOCK` runs; threads take blocks in turn (the compiled
  loop releases the GIL, so a small pool of Python threads runs it in parallel);
- for each block, a loop over the steps evaluates the landscape on the block (one C call of the
  generated function), applies the optimizer's update (loops over the runs of the block, so that
  LLVM vectorises ``sqrt`` and divisions across runs), and applies the engine's stopping rules;
- optimizer state lives in per-block arrays; learning rates and every per-step scalar (bias
  corrections, NAdam's μ products, RAdam's rectification) come from tables computed beforehand with
  the reference's own expressions; every numeric hyperparameter may differ from run to run;
- positions, losses and gradient norms are written to the time-major record arrays when recording,
  otherwise only the final values are kept.

**Same results.** The update of each optimizer follows its reference ``_update`` operation by
operation (no fast-math, no FMA contraction), the landscape code is bit-identical to the NumPy
evaluation (checked when compiled), and the stopping rules, their order, the statuses, reasons,
``stopped_at`` and the freezing of finished runs are those of :func:`run_batch`. A fused run returns
the :class:`~gdlab.engine.run.BatchRecord` the reference engine returns, equal to the last bit.

**Choosing.** ``run_batch(..., backend="auto")`` (the default) uses this path when :func:`plan`
accepts the call and silently the reference otherwise; ``backend="fused"`` raises ``ValueError``
with the reason instead; :func:`explain` tells which. Not fused: optimizers that are not elementwise
(Newton, L-BFGS, SAM) or are subclasses, the loss-driven ``plateau`` schedule (and schedule objects
that are not gdlab's closed forms), objectives without a compiled form, landscapes of more than
:data:`~gdlab.fast.landscape_codegen.MAX_DIM` dimensions.

**Compilation** never lands on a request: the kernels are cached on disk by numba; :func:`warmup`
compiles (or loads) the driver and the built-in landscapes, and servers call it at start. In
``"auto"`` mode a kernel that would have to be compiled first is compiled synchronously only when
the reference would take longer than that (big sweeps and basin maps); otherwise the call takes the
reference path and the compilation happens in a background thread, for the next call.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

from gdlab.core.optimizers.adadelta import Adadelta
from gdlab.core.optimizers.adagrad import Adagrad
from gdlab.core.optimizers.adam import Adam, AdamW
from gdlab.core.optimizers.adamax import Adamax
from gdlab.core.optimizers.nadam import NAdam
from gdlab.core.optimizers.radam import RHO_THRESHOLD, RAdam
from gdlab.core.optimizers.rmsprop import RMSprop
from gdlab.core.optimizers.sgd import SGD, Momentum, Nesterov
from gdlab.fast import landscape_codegen as lc

_JIT: dict[str, Any] = {"cache": True, "error_model": "numpy", "fastmath": False}

#: Runs per block (the inner, vectorised dimension of the kernels).
BLOCK = 256
#: Largest per-step tables (steps × distinct hyperparameter values × tables), in float64 entries.
MAX_TABLE_ENTRIES = 2**25
#: In "auto" mode, compile synchronously when the reference is estimated to take longer than this.
SYNC_COMPILE_SECONDS = 1.0

# Optimizer kinds.
SGD_K, MOMENTUM_K, NESTEROV_K, ADAM_K, RMSPROP_K, ADAGRAD_K, ADADELTA_K, ADAMAX_K, NADAM_K, RADAM_K = range(10)
KINDS: dict[type, int] = {
    SGD: SGD_K, Momentum: MOMENTUM_K, Nesterov: NESTEROV_K, Adam: ADAM_K, AdamW: ADAM_K, RMSprop: RMSPROP_K,
    Adagrad: ADAGRAD_K, Adadelta: ADADELTA_K, Adamax: ADAMAX_K, NAdam: NADAM_K, RAdam: RADAM_K,
}

# Fields of the int64 parameter array ``ip`` and the float64 array ``fp``.
(I_KIND, I_D, I_R, I_STEPS, I_B, I_NT, I_RECORD, I_BOUND, I_LIMIT, I_TOL, I_TARGET, I_MODE, I_FG, I_G,
 I_F1, I_F2, I_F3, I_U, I_NS, I_NH, I_NEEDGN) = range(21)
N_IP = 21
F_SGN, F_TOL, F_TARGET, F_BLOWUP, F_FLOOR = range(5)
N_FP = 5

# Status and reason codes (the engine's, repeated so the kernels need no import).
CONVERGED, DIVERGED, MAX_STEPS = 0, 1, 2
R_MAX_STEPS, R_GRAD_TOL, R_TARGET, R_NONFINITE_UPDATE, R_NONFINITE_LOSS, R_NONFINITE_GRAD = 0, 1, 2, 3, 4, 5
R_BOUND, R_BLOWUP, R_BAD_START = 6, 7, 8


# ================================================================================================
# the kernels
# ================================================================================================
@intrinsic
def _call_landscape(typingctx, addr, x, f, g, n, stride, mode):
    """Call the generated landscape function at ``addr`` on the data of ``x``, ``f``, ``g``."""
    sig = types.void(addr, x, f, g, n, stride, mode)

    def codegen(context, builder, signature, args):
        ptrs = [context.make_array(ty)(context, builder, v).data for ty, v in zip(signature.args[1:4], args[1:4],
                                                                                 strict=True)]
        i64 = ir.IntType(64)
        fnty = ir.FunctionType(ir.VoidType(), [p.type for p in ptrs] + [i64, i64, i64])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        builder.call(fn, [*ptrs, args[4], args[5], args[6]])
        return context.get_dummy_value()

    return sig, codegen


@njit(inline="always", **_JIT)
def _maximum(a, b):
    """``np.maximum`` of two floats (NaN if either is NaN)."""
    return a if (a >= b) | (a != a) else b


@njit(inline="always", **_JIT)
def _lerp(start, end, w, omw):
    """``adam.lerp`` with weight ``w`` and ``omw = 1 - w`` (torch.lerp's two formulas)."""
    if w < 0.5:
        return start + w * (end - start)
    return end - (end - start) * omw


@njit(nogil=True, **_JIT)
def _update(kind, t, d, n, B, sgn, f1, f2, f3, x, g, xn, s0, s1, s2, H, S, zf, ga, gw, fw, mode, uniform):
    """One optimizer step for the ``n`` runs of a block: new params into ``xn``, state in place.

    Arrays hold ``d`` coordinate rows of ``B`` runs. Each coordinate is a loop over the runs on
    views (so that LLVM sees unit-stride, non-negative indexing and vectorises across runs).
    ``zf[i]`` ends NaN when the gradient the update used is not finite (only possible for the
    look-ahead gradient of textbook Nesterov; the engine's gradient is finite for active runs).
    """
    for i in range(n):
        zf[i] = 0.0
    gsrc = g
    if kind == NESTEROV_K:
        mu = H[1]
        for j in range(d):
            o = j * B
            xj, aj, xnj = x[o:o + n], s0[o:o + n], xn[o:o + n]
            for i in range(n):
                xnj[i] = xj[i] - mu[i] * aj[i]
        _call_landscape(ga, xn, fw, gw, n, B, mode)
        for j in range(d):
            o = j * B
            gj = gw[o:o + n]
            for i in range(n):
                v = gj[i]
                zf[i] = zf[i] + (v - v)
        gsrc = gw
    first = t == 0
    for j in range(d):
        o = j * B
        xj, gj, xnj = x[o:o + n], gsrc[o:o + n], xn[o:o + n]
        aj, bj, cj = s0[o:o + n], s1[o:o + n], s2[o:o + n]
        if kind == SGD_K:
            wd, mu, omd, lr = H[0], H[1], H[2], S[0]
            if f1 == 0:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wd[i] * p
                    xnj[i] = p - lr[i] * gi
            elif first:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wd[i] * p
                    aj[i] = gi
                    if f2 != 0:
                        gi = gi + mu[i] * gi
                    xnj[i] = p - lr[i] * gi
            else:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wd[i] * p
                    buf = aj[i] * mu[i] + omd[i] * gi
                    aj[i] = buf
                    if f2 != 0:
                        gi = gi + mu[i] * buf
                    else:
                        gi = buf
                    xnj[i] = p - lr[i] * gi
        elif kind == MOMENTUM_K or kind == NESTEROV_K:  # noqa: SIM109 (numba: integer compares)
            wd, mu, lr = H[0], H[1], S[0]
            for i in range(n):
                p = xj[i]
                gi = sgn * gj[i] + wd[i] * p
                v = mu[i] * aj[i] + lr[i] * gi
                aj[i] = v
                xnj[i] = p - v
        elif kind == ADAM_K:
            wdc, w, omw, b2, omb2, eps = H[0], H[1], H[2], H[3], H[4], H[5]
            ss, bias2, sb2, fac = S[0], S[1], S[2], S[3]
            if f1 == 0 and f2 == 0 and uniform:  # one set of hyperparameters for the block: scalars
                wdc0, w0, omw0, b20, omb20, eps0 = wdc[0], w[0], omw[0], b2[0], omb2[0], eps[0]
                ss0, sb20, fac0 = ss[0], sb2[0], fac[0]
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wdc0 * p
                    p = p * fac0
                    m = _lerp(aj[i], gi, w0, omw0)
                    v = bj[i] * b20 + omb20 * gi * gi
                    aj[i] = m
                    bj[i] = v
                    den = math.sqrt(v) / sb20 + eps0
                    xnj[i] = p - ss0 * (m / den)
            elif f1 == 0 and f2 == 0:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wdc[i] * p
                    p = p * fac[i]
                    m = _lerp(aj[i], gi, w[i], omw[i])
                    v = bj[i] * b2[i] + omb2[i] * gi * gi
                    aj[i] = m
                    bj[i] = v
                    den = math.sqrt(v) / sb2[i] + eps[i]
                    xnj[i] = p - ss[i] * (m / den)
            else:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wdc[i] * p
                    p = p * fac[i]
                    m = _lerp(aj[i], gi, w[i], omw[i])
                    v = bj[i] * b2[i] + omb2[i] * gi * gi
                    aj[i] = m
                    bj[i] = v
                    if f1 != 0:
                        v = _maximum(cj[i], v)
                        cj[i] = v
                    if f2 != 0:
                        den = math.sqrt(v / bias2[i] + eps[i])
                    else:
                        den = math.sqrt(v) / sb2[i] + eps[i]
                    xnj[i] = p - ss[i] * (m / den)
        elif kind == RMSPROP_K:
            wd, alpha, oma, eps, mu, w, omw, lr = H[0], H[1], H[2], H[3], H[4], H[5], H[6], S[0]
            if f1 == 0 and f2 == 0 and f3 == 0:  # plain RMSprop: a branch-free loop that vectorises
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wd[i] * p
                    sq = aj[i] * alpha[i] + oma[i] * gi * gi
                    aj[i] = sq
                    avg = math.sqrt(sq) + eps[i]
                    xnj[i] = p - lr[i] * gi / avg
                continue
            for i in range(n):
                p = xj[i]
                gi = sgn * gj[i] + wd[i] * p
                sq = aj[i] * alpha[i] + oma[i] * gi * gi
                aj[i] = sq
                var = sq
                if f1 != 0:
                    gav = _lerp(bj[i], gi, w[i], omw[i])
                    bj[i] = gav
                    var = sq - gav * gav
                if f3 != 0:
                    avg = math.sqrt(var + eps[i])
                else:
                    avg = math.sqrt(var) + eps[i]
                if f2 != 0:
                    buf = cj[i] * mu[i] + gi / avg
                    cj[i] = buf
                    xnj[i] = p - lr[i] * buf
                else:
                    xnj[i] = p - lr[i] * gi / avg
        elif kind == ADAGRAD_K:
            wd, eps, clr = H[0], H[1], S[0]
            if f1 != 0:  # ε inside the root (loops unswitched by hand so that each vectorises)
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wd[i] * p
                    total = aj[i] + gi * gi
                    aj[i] = total
                    std = math.sqrt(total + eps[i])
                    xnj[i] = p - clr[i] * gi / std
            else:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wd[i] * p
                    total = aj[i] + gi * gi
                    aj[i] = total
                    std = math.sqrt(total) + eps[i]
                    xnj[i] = p - clr[i] * gi / std
        elif kind == ADADELTA_K:
            wd, rho, omr, eps, lr = H[0], H[1], H[2], H[3], S[0]
            for i in range(n):
                p = xj[i]
                gi = sgn * gj[i] + wd[i] * p
                sq = aj[i] * rho[i] + omr[i] * gi * gi
                std = math.sqrt(sq + eps[i])
                acc = bj[i]
                delta = math.sqrt(acc + eps[i]) / std * gi
                aj[i] = sq
                bj[i] = acc * rho[i] + omr[i] * delta * delta
                xnj[i] = p - lr[i] * delta
        elif kind == ADAMAX_K:
            wd, w, omw, b2, eps, clr = H[0], H[1], H[2], H[3], H[4], S[0]
            for i in range(n):
                p = xj[i]
                gi = sgn * gj[i] + wd[i] * p
                m = _lerp(aj[i], gi, w[i], omw[i])
                u = _maximum(bj[i] * b2[i], abs(gi) + eps[i])
                aj[i] = m
                bj[i] = u
                xnj[i] = p - clr[i] * m / u
        elif kind == NADAM_K:
            wdc, w, omw, b2, omb2, eps = H[0], H[1], H[2], H[3], H[4], H[5]
            bias2, c1, c2, fac = S[0], S[1], S[2], S[3]
            if f1 != 0:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wdc[i] * p
                    p = p * fac[i]
                    m = _lerp(aj[i], gi, w[i], omw[i])
                    v = bj[i] * b2[i] + omb2[i] * gi * gi
                    aj[i] = m
                    bj[i] = v
                    den = math.sqrt(v / bias2[i] + eps[i])
                    p = p - c1[i] * gi / den
                    xnj[i] = p - c2[i] * m / den
            else:
                for i in range(n):
                    p = xj[i]
                    gi = sgn * gj[i] + wdc[i] * p
                    p = p * fac[i]
                    m = _lerp(aj[i], gi, w[i], omw[i])
                    v = bj[i] * b2[i] + omb2[i] * gi * gi
                    aj[i] = m
                    bj[i] = v
                    den = math.sqrt(v / bias2[i]) + eps[i]
                    p = p - c1[i] * gi / den
                    xnj[i] = p - c2[i] * m / den
        else:  # RADAM_K
            wdc, w, omw, b2, omb2, eps = H[0], H[1], H[2], H[3], H[4], H[5]
            lr, bias1, bias2, sb2, rect, rectify, fac = S[0], S[1], S[2], S[3], S[4], S[5], S[6]
            for i in range(n):
                p = xj[i]
                gi = sgn * gj[i] + wdc[i] * p
                p = p * fac[i]
                m = _lerp(aj[i], gi, w[i], omw[i])
                v = bj[i] * b2[i] + omb2[i] * gi * gi
                aj[i] = m
                bj[i] = v
                m_hat = m / bias1[i]
                if rectify[i] != 0.0:
                    if f1 != 0:
                        adaptive = 1.0 / math.sqrt(v / bias2[i] + eps[i])
                    else:
                        adaptive = sb2[i] / (math.sqrt(v) + eps[i])
                    xnj[i] = p - m_hat * lr[i] * adaptive * rect[i]
                else:
                    xnj[i] = p - m_hat * lr[i]


@njit(nogil=True, **_JIT)
def _record(k, r0, n, d, B, x, f, gn, pos, loss, gnr):
    for i in range(n):
        r = r0 + i
        for j in range(d):
            pos[k, r, j] = x[j * B + i]
        loss[k, r] = f[i]
        gnr[k, r] = gn[i]


@njit(nogil=True, **_JIT)
def _block(b, ip, fp, x0, hp, uidx, tabs, bound, out_x, out_f, out_gn, status, reason, rvalue, stopped, npoints,
           pos, loss, gnr):
    """All the steps of block ``b`` (runs ``b*B .. b*B + n``); see :func:`run_plan` for the arrays."""
    kind, d, R, steps, B = ip[I_KIND], ip[I_D], ip[I_R], ip[I_STEPS], ip[I_B]
    record, use_bound, use_limit = ip[I_RECORD] != 0, ip[I_BOUND] != 0, ip[I_LIMIT] != 0
    use_tol, use_target, mode, fg, ga = ip[I_TOL] != 0, ip[I_TARGET] != 0, ip[I_MODE], ip[I_FG], ip[I_G]
    f1, f2, f3, U, NS, NH = ip[I_F1], ip[I_F2], ip[I_F3], ip[I_U], ip[I_NS], ip[I_NH]
    need_gn = ip[I_NEEDGN] != 0
    sgn, tol, target, blowup, floor = fp[F_SGN], fp[F_TOL], fp[F_TARGET], fp[F_BLOWUP], fp[F_FLOOR]
    r0 = b * B
    n = min(B, R - r0)

    x = np.empty(d * B)
    xn = np.empty(d * B)
    g = np.empty(d * B)
    gw = np.empty(d * B)
    s0 = np.zeros(d * B)
    s1 = np.zeros(d * B)
    s2 = np.zeros(d * B)
    f = np.empty(B)
    fw = np.empty(B)
    gq = np.empty(B)
    gqw = np.empty(B)
    gn = np.empty(B)
    gnw = np.empty(B)
    lim = np.empty(B)
    bnd = np.empty(B)
    xm = np.zeros(B)
    zf = np.zeros(B)
    act = np.zeros(B, np.bool_)
    stop = np.zeros(B, np.bool_)
    mv = np.zeros(B, np.bool_)
    unrec = np.zeros(B, np.bool_)
    H = np.empty((max(NH, 1), B))
    S = np.empty((max(NS, 1), B))

    for i in range(n):
        r = r0 + i
        u = uidx[r]
        for k in range(NH):
            H[k, i] = hp[k, u]
        bnd[i] = bound[r]
        for j in range(d):
            x[j * B + i] = x0[r, j]
            if kind == ADAGRAD_K:
                s0[j * B + i] = 0.0 + H[2, i]  # np.zeros_like(params) + initial_accumulator_value
    _call_landscape(fg, x, f, g, n, B, mode)

    # -- the start -------------------------------------------------------------------------
    nact = 0
    for i in range(n):
        r = r0 + i
        acc = g[i] * g[i]
        for j in range(1, d):
            acc = acc + g[j * B + i] * g[j * B + i]
        gq[i] = acc
        gni = math.sqrt(acc)
        gn[i] = gni
        fi = f[i]
        lim[i] = blowup * (abs(fi) + floor)
        s = fi + gni
        bad = s - s != 0.0  # NaN or inf
        xmax = 0.0
        out = False
        if use_bound:
            xmax = abs(x[i])
            for j in range(1, d):
                xmax = _maximum(xmax, abs(x[j * B + i]))
            out = xmax > bnd[i]
        done0 = bad or out
        conv_tol = use_tol and gni < tol
        conv0 = (conv_tol or (use_target and fi < target)) and not done0
        if done0 or conv0:
            if bad:
                code = R_BAD_START
            elif out:
                code = R_BOUND
            elif conv_tol:
                code = R_GRAD_TOL
            else:
                code = R_TARGET
            if out:
                val = xmax
            elif code == R_GRAD_TOL:
                val = gni
            else:
                val = fi
            status[r] = DIVERGED if done0 else CONVERGED
            reason[r] = code
            rvalue[r] = val
            stopped[r] = 0
            npoints[r] = 1
            act[i] = False
        else:
            act[i] = True
            nact += 1
    if record:
        _record(0, r0, n, d, B, x, f, gn, pos, loss, gnr)

    # -- the steps -------------------------------------------------------------------------
    t = 0
    while t < steps and nact > 0:
        for q in range(NS):
            if U == 1:
                v = tabs[q, t, 0]
                for i in range(n):
                    S[q, i] = v
            else:
                for i in range(n):
                    S[q, i] = tabs[q, t, uidx[r0 + i]]
        _update(kind, t, d, n, B, sgn, f1, f2, f3, x, g, xn, s0, s1, s2, H, S, zf, ga, gw, fw, mode, U == 1)
        _call_landscape(fg, xn, fw, gw, n, B, mode)
        gj = gw[0:n]
        for i in range(n):
            gqw[i] = gj[i] * gj[i]
        for j in range(1, d):
            gj = gw[j * B:j * B + n]
            for i in range(n):
                gqw[i] = gqw[i] + gj[i] * gj[i]
        for j in range(d):
            xj = xn[j * B:j * B + n]
            for i in range(n):
                v = xj[i]
                zf[i] = zf[i] + (v - v)
        if use_bound:
            xj = xn[0:n]
            for i in range(n):
                xm[i] = abs(xj[i])
            for j in range(1, d):
                xj = xn[j * B:j * B + n]
                for i in range(n):
                    xm[i] = _maximum(xm[i], abs(xj[i]))
        if need_gn:
            for i in range(n):
                gnw[i] = math.sqrt(gqw[i])
        # Common case first: every run of the block active and none stopping at this step. One
        # branch-free pass decides it; then the new arrays simply become the current ones.
        nbad = 0
        if nact == n:
            for i in range(n):
                fv = fw[i]
                qv = gqw[i]
                s = (zf[i] != zf[i]) | (fv - fv != 0.0) | (qv - qv != 0.0)
                if use_bound:
                    s = s | (xm[i] > bnd[i])
                if use_limit:
                    s = s | (fv > lim[i])
                if use_tol:
                    s = s | (gnw[i] < tol)
                if use_target:
                    s = s | (fv < target)
                nbad += s
        if nact == n and nbad == 0:
            k = t + 1
            x, xn = xn, x
            f, fw = fw, f
            gq, gqw = gqw, gq
            gn, gnw = gnw, gn
        else:
            nstop = 0
            for i in range(n):
                fv = fw[i]
                qv = gqw[i]
                refused = zf[i] != zf[i]
                unf = not ((fv - fv == 0.0) & (qv - qv == 0.0))
                s = refused | unf
                unrec[i] = s
                if use_bound:
                    s = s | (xm[i] > bnd[i])
                if use_limit:
                    s = s | (fv > lim[i])
                if use_tol:
                    s = s | (gnw[i] < tol)
                if use_target:
                    s = s | (fv < target)
                s = s & act[i]
                stop[i] = s
                mv[i] = act[i] & ~(s & unrec[i])
                nstop += s
            k = t + 1
            if nstop > 0:
                for i in range(n):
                    if not stop[i]:
                        continue
                    r = r0 + i
                    fv = fw[i]
                    gv = math.sqrt(gqw[i])
                    if zf[i] != zf[i]:
                        code = R_NONFINITE_UPDATE
                        val = f[i]  # the loss at the params kept (the refused update left them as they were)
                    elif fv - fv != 0.0:
                        code = R_NONFINITE_LOSS
                        val = fv
                    elif unrec[i]:
                        code = R_NONFINITE_GRAD
                        val = gv
                    elif use_bound and xm[i] > bnd[i]:
                        code = R_BOUND
                        val = xm[i]
                    elif use_limit and fv > lim[i]:
                        code = R_BLOWUP
                        val = fv
                    elif use_tol and gv < tol:
                        code = R_GRAD_TOL
                        val = gv
                    else:
                        code = R_TARGET
                        val = fv
                    status[r] = CONVERGED if (code == R_GRAD_TOL) | (code == R_TARGET) else DIVERGED
                    reason[r] = code
                    rvalue[r] = val
                    stopped[r] = k
                    npoints[r] = k if unrec[i] else k + 1
                    act[i] = False
                    nact -= 1
            for j in range(d):
                xj = x[j * B:j * B + n]
                xnj = xn[j * B:j * B + n]
                for i in range(n):
                    xj[i] = xnj[i] if mv[i] else xj[i]
            for i in range(n):
                f[i] = fw[i] if mv[i] else f[i]
                gq[i] = gqw[i] if mv[i] else gq[i]
                gn[i] = gnw[i] if mv[i] else gn[i]
        g, gw = gw, g  # the new gradient (what frozen runs hold does not matter: they never move)
        if record:
            _record(k, r0, n, d, B, x, f, gn, pos, loss, gnr)
        t = k

    if record:
        for k in range(t + 1, steps + 1):
            _record(k, r0, n, d, B, x, f, gn, pos, loss, gnr)
    for i in range(n):
        r = r0 + i
        for j in range(d):
            out_x[r, j] = x[j * B + i]
        out_f[r] = f[i]
        out_gn[r] = math.sqrt(gq[i])


@njit(nogil=True, **_JIT)
def _run_blocks(first, every, ip, fp, x0, hp, uidx, tabs, bound, out_x, out_f, out_gn, status, reason, rvalue,
                stopped, npoints, pos, loss, gnr):
    """Blocks ``first, first + every, ...`` (one thread's share: threads take blocks in turn, so runs
    that finish early in one region of a grid are spread over the threads). Releases the GIL."""
    B = ip[I_B]
    nblocks = (ip[I_R] + B - 1) // B
    for b in range(first, nblocks, every):
        _block(b, ip, fp, x0, hp, uidx, tabs, bound, out_x, out_f, out_gn, status, reason, rvalue, stopped,
               npoints, pos, loss, gnr)


# ================================================================================================
# planning: from run_batch's arguments to the kernel's arrays
# ================================================================================================
@dataclass
class Plan:
    """Everything one fused call needs (built by :func:`plan`)."""

    kind: int
    flags: tuple[int, int, int]
    sgn: float
    hp: np.ndarray  # (NH, U)
    tabs: np.ndarray  # (NS, T, U)
    lr_tab: np.ndarray  # (T, U): the learning rate of every step (what the record shows)
    uidx: np.ndarray  # (R,) int64
    batch: tuple[int, ...]
    landscape: Any  # CompiledLandscape
    mode: int


def _hyper_values(obj: Any) -> list[Any]:
    out: list[Any] = []
    if obj is None or not hasattr(obj, "get_params"):
        return out
    for value in obj.get_params().values():
        if isinstance(value, tuple):
            out.extend(value)
        else:
            out.append(value)
    return out


def _array_shapes(*objs: Any) -> list[tuple[int, ...]]:
    return [np.shape(v) for obj in objs for v in _hyper_values(obj) if isinstance(v, np.ndarray) and v.ndim > 0]


class _Tables:
    """Per-run values of the hyperparameters and per-step tables, computed as the reference does."""

    def __init__(self, hshape: tuple[int, ...], steps: int) -> None:
        self.hshape = hshape
        self.U = math.prod(hshape)
        self.T = steps
        self.t = np.arange(1, steps + 1, dtype=np.int64)[:, None]  # the 1-based step of each update

    def u(self, value: Any) -> np.ndarray:
        """A hyperparameter as one value per distinct combination, shape (U,)."""
        return np.broadcast_to(np.asarray(value, dtype=np.float64), self.hshape).reshape(self.U).copy()

    def power_t(self, base: Any) -> np.ndarray:
        """``base ** t`` for t = 1..T as the reference computes it: C ``pow`` for a Python float; for an
        array, NumPy's ``ndarray ** int`` (its fast path squares for t = 2)."""
        b = self.u(base)[None, :]
        out = np.power(b, self.t.astype(np.float64))
        if isinstance(base, np.ndarray) and self.T >= 2:
            out[1] = b[0] * b[0]
        if isinstance(base, np.ndarray) and self.T >= 1:
            out[0] = b[0]
        return out


def _is_zero_scalar(value: Any) -> bool:
    return isinstance(value, float) and value == 0.0


def _uses(value: Any) -> bool:
    """SGD's and RMSprop's ``_uses_momentum``: anything but the scalar 0.0."""
    return not _is_zero_scalar(value)


def _lr_table(opt: Any, schedule: Any, tb: _Tables) -> np.ndarray | str:
    """The learning rate of every step, shape (T, U); a reason string when it cannot be fused."""
    base = opt.lr
    if schedule is None:
        return np.broadcast_to(tb.u(base), (tb.T, tb.U))
    tsteps = np.arange(tb.T, dtype=np.int64).reshape((tb.T,) + (1,) * len(tb.hshape))
    with np.errstate(all="ignore"):
        table = np.asarray(schedule(tsteps, base), dtype=np.float64)
    table = np.broadcast_to(table, (tb.T,) + tb.hshape).reshape(tb.T, tb.U)
    if not (np.isfinite(table).all() and (table >= 0).all()):
        return "the schedule gives a learning rate that is negative or not finite (the reference refuses it)"
    return table


def _decay_factor(lr_tab: np.ndarray, wd: Any, tb: _Tables) -> np.ndarray:
    """``1 - η_t λ`` (decoupled decay), or ones when λ is the scalar 0 (no decay)."""
    if _is_zero_scalar(wd):
        return np.ones((tb.T, tb.U))
    return 1.0 - lr_tab * tb.u(wd)[None, :]


def _optimizer_tables(opt: Any, kind: int, lr_tab: np.ndarray, tb: _Tables) -> tuple[list[np.ndarray],
                                                                                      list[np.ndarray],
                                                                                      tuple[int, int, int]]:
    """(per-run rows H, per-step tables S, flags) of ``opt``, each computed as its ``_update`` does."""
    u = tb.u
    with np.errstate(all="ignore"):
        if kind == SGD_K:
            mom = _uses(opt.momentum)
            return [u(opt.weight_decay), u(opt.momentum), 1.0 - u(opt.dampening)], [lr_tab], \
                (int(mom), int(bool(opt.nesterov)), 0)
        if kind in (MOMENTUM_K, NESTEROV_K):
            return [u(opt.weight_decay), u(opt.momentum)], [lr_tab], (0, 0, 0)
        if kind == RMSPROP_K:
            alpha = u(opt.alpha)
            w = 1.0 - alpha
            return [u(opt.weight_decay), alpha, 1.0 - alpha, u(opt.eps), u(opt.momentum), w, 1.0 - w], [lr_tab], \
                (int(bool(opt.centered)), int(_uses(opt.momentum)), int(bool(opt.eps_inside_sqrt)))
        if kind == ADAGRAD_K:
            clr = lr_tab / (1.0 + (tb.t - 1) * u(opt.lr_decay)[None, :])
            return [u(opt.weight_decay), u(opt.eps), u(opt.initial_accumulator_value)], [clr], \
                (int(bool(opt.eps_inside_sqrt)), 0, 0)
        if kind == ADADELTA_K:
            rho = u(opt.rho)
            return [u(opt.weight_decay), rho, 1.0 - rho, u(opt.eps)], [lr_tab], (0, 0, 0)
        beta1, beta2 = opt.betas
        w = 1.0 - u(beta1)
        b2 = u(beta2)
        if kind == ADAMAX_K:
            clr = lr_tab / (1.0 - tb.power_t(beta1))
            return [u(opt.weight_decay), w, 1.0 - w, b2, u(opt.eps)], [clr], (0, 0, 0)
        rows = [u(0.0), w, 1.0 - w, b2, 1.0 - b2, u(opt.eps)]
        inside = int(bool(opt.eps_inside_sqrt))
        if kind == ADAM_K:
            if isinstance(opt, AdamW):
                wd = opt.weight_decay
                if _is_zero_scalar(wd):
                    factor = np.ones((tb.T, tb.U))
                elif opt.weight_decay_form == "torch":
                    factor = 1.0 - lr_tab * u(wd)[None, :]
                else:
                    base = u(opt.lr)[None, :]
                    ratio = np.divide(lr_tab, base, out=np.ones(np.broadcast(lr_tab, base).shape), where=base != 0)
                    factor = 1.0 - ratio * u(wd)[None, :]
            else:
                rows[0] = u(opt.weight_decay)
                factor = np.ones((tb.T, tb.U))
            bias1 = 1.0 - tb.power_t(beta1)
            bias2 = 1.0 - tb.power_t(beta2)
            return rows, [lr_tab / bias1, bias2, np.sqrt(bias2), factor], (int(bool(opt.amsgrad)), inside, 0)
        decoupled = bool(opt.decoupled_weight_decay)
        if decoupled:
            factor = _decay_factor(lr_tab, opt.weight_decay, tb)
        else:
            rows[0] = u(opt.weight_decay)
            factor = np.ones((tb.T, tb.U))
        bias2 = 1.0 - tb.power_t(beta2)
        if kind == NADAM_K:
            b1 = u(beta1)[None, :]
            psi = u(opt.momentum_decay)[None, :]
            mu = b1 * (1.0 - 0.5 * np.power(0.96, tb.t * psi))
            mu_next = b1 * (1.0 - 0.5 * np.power(0.96, (tb.t + 1) * psi))
            mu_product = np.multiply.accumulate(mu, axis=0)
            c1 = lr_tab * (1.0 - mu) / (1.0 - mu_product)
            c2 = lr_tab * mu_next / (1.0 - mu_product * mu_next)
            return rows, [bias2, c1, c2, factor], (inside, 0, 0)
        # RAdam
        bias1 = 1.0 - tb.power_t(beta1)
        rho_inf = (2.0 / (1.0 - b2) - 1.0)[None, :]
        rho_t = rho_inf - 2 * tb.t * tb.power_t(beta2) / bias2
        rectify = rho_t > RHO_THRESHOLD
        ratio = (rho_t - 4.0) * (rho_t - 2.0) * rho_inf / ((rho_inf - 4.0) * (rho_inf - 2.0) * rho_t)
        rect = np.sqrt(np.where(rectify, ratio, 1.0))
        return rows, [lr_tab, bias1, bias2, np.sqrt(bias2), rect, rectify.astype(np.float64), factor], \
            (inside, 0, 0)


def _schedule_reason(schedule: Any) -> str | None:
    if schedule is None:
        return None
    from gdlab.core.schedules import Schedule

    if not isinstance(schedule, Schedule):
        return f"the schedule {type(schedule).__name__} is not one of gdlab's schedules"
    if getattr(schedule, "needs_loss", False):
        return f"the {schedule.name!r} schedule reacts to the loss (it is not a closed form)"
    cls = type(schedule)
    if cls.lr is not Schedule.lr or cls.__call__ is not Schedule.__call__ or cls.init is not Schedule.init:
        return f"the schedule {cls.__name__} overrides the closed-form interface"
    return None


def landscape_reason(objective: Any, allow_close: bool = False, compile_now: bool = True) -> Any:
    """The compiled landscape of ``objective``, or a reason string why it has none.

    With ``compile_now=False`` an uncompiled landscape gives ``None`` (not ready yet).
    """
    code = lc.code_for(objective)
    if isinstance(code, str):
        return f"the objective has no compiled form: {code}"
    if not compile_now and not _landscape_ready(code):
        return None
    try:
        compiled = lc.compile_landscape(objective)
    except lc.CodegenError as exc:
        return f"the objective could not be compiled: {exc}"
    if compiled.verdict == "exact" or (allow_close and compiled.verdict == "close"):
        return compiled
    if compiled.verdict == "close":
        return ("its compiled form agrees with the reference to rounding only (not bit for bit); "
                "backend='fused' uses it anyway")
    return f"the objective's compiled form is not usable: {compiled.verdict}"


def plan(objective: Any, optimizer: Any, batch: tuple[int, ...], steps: int, schedule: Any, d: int | None = None,
         allow_close: bool = False, compile_now: bool = True) -> Plan | str | None:
    """A :class:`Plan` for these arguments, a reason string when they cannot be fused, or ``None``
    when they could be but the kernels are not compiled yet (only with ``compile_now=False``).

    ``d`` is the number of coordinates of the starts (checked against the landscape's)."""
    kind = KINDS.get(type(optimizer))
    if kind is None:
        name = getattr(optimizer, "name", type(optimizer).__name__)
        if not getattr(optimizer, "elementwise", False):
            return f"optimizer {name!r} is not elementwise (it needs more than the gradient of each run)"
        return f"optimizer {type(optimizer).__name__} has no fused trajectory kernel (only gdlab's own classes do)"
    reason = _schedule_reason(schedule)
    if reason is not None:
        return reason
    dim = int(getattr(objective, "dim", 0) or 0)
    if dim > lc.MAX_DIM:
        return f"the landscape has {dim} dimensions (the fused path takes at most {lc.MAX_DIM})"
    if d is not None and dim and d != dim:  # no ``dim``: not a landscape, landscape_reason says so
        return f"the starts have {d} coordinates, the objective {dim}"
    try:
        hshape = np.broadcast_shapes(*_array_shapes(optimizer, schedule))
    except ValueError:
        return "the array hyperparameters do not broadcast together"
    tb = _Tables(hshape, steps)
    n_tabs = 7
    if steps * tb.U * n_tabs > MAX_TABLE_ENTRIES:
        return (f"{tb.U} distinct hyperparameter values x {steps} steps need per-step tables larger than "
                f"{MAX_TABLE_ENTRIES} entries")
    compiled = landscape_reason(objective, allow_close, compile_now)
    if compiled is None or isinstance(compiled, str):
        return compiled
    if compile_now:
        ensure_driver()
    elif not driver_ready():
        return None
    lr_tab = _lr_table(optimizer, schedule, tb)
    if isinstance(lr_tab, str):
        return lr_tab
    rows, tables, flags = _optimizer_tables(optimizer, kind, lr_tab, tb)
    hp = np.ascontiguousarray(np.stack([np.asarray(r, dtype=np.float64) for r in rows]))
    tabs = np.empty((len(tables), steps, tb.U))
    for q, table in enumerate(tables):
        tabs[q] = table
    uidx = np.broadcast_to(np.arange(tb.U, dtype=np.int64).reshape(hshape), batch).ravel()
    sgn = -1.0 if getattr(optimizer, "maximize", False) else 1.0
    return Plan(kind=kind, flags=flags, sgn=sgn, hp=hp, tabs=tabs, lr_tab=np.asarray(lr_tab), uidx=uidx,
                batch=batch, landscape=compiled, mode=compiled.mode(batch))


# ================================================================================================
# running a plan
# ================================================================================================
def run_plan(p: Plan, objective: Any, optimizer: Any, x0: np.ndarray, *, steps: int, schedule: Any,
             tol: float | None, target: float | None, bound: Any, blowup: float | None, blowup_floor: float,
             record: bool, label: str) -> Any:
    """Run a plan; returns the :class:`~gdlab.engine.run.BatchRecord` of :func:`run_batch`."""
    from gdlab.engine.run import assemble_record

    batch = p.batch
    d = x0.shape[-1]
    R = math.prod(batch)
    xs = np.ascontiguousarray(x0.reshape(R, d), dtype=np.float64)
    check_bound = not (np.ndim(bound) == 0 and math.isinf(float(bound)))
    bounds = np.ascontiguousarray(np.broadcast_to(np.asarray(bound, dtype=np.float64), batch).reshape(R))
    need_gn = record or tol is not None
    nthreads = _thread_count(R, steps)
    ip = np.zeros(N_IP, dtype=np.int64)
    ip[I_KIND], ip[I_D], ip[I_R], ip[I_STEPS], ip[I_B], ip[I_NT] = p.kind, d, R, steps, BLOCK, nthreads
    ip[I_RECORD], ip[I_BOUND], ip[I_LIMIT] = int(record), int(check_bound), int(blowup is not None)
    ip[I_TOL], ip[I_TARGET], ip[I_MODE] = int(tol is not None), int(target is not None), p.mode
    ip[I_FG], ip[I_G] = p.landscape.value_grad_address, p.landscape.grad_address
    ip[I_F1], ip[I_F2], ip[I_F3] = p.flags
    ip[I_U], ip[I_NS], ip[I_NH], ip[I_NEEDGN] = p.hp.shape[1], p.tabs.shape[0], p.hp.shape[0], int(need_gn)
    fp = np.array([p.sgn, 0.0 if tol is None else float(tol), 0.0 if target is None else float(target),
                   0.0 if blowup is None else float(blowup), float(blowup_floor)])
    out_x = np.empty((R, d))
    out_f = np.empty(R)
    out_gn = np.empty(R)
    status = np.full(R, MAX_STEPS, dtype=np.int8)
    reason = np.full(R, R_MAX_STEPS, dtype=np.int8)
    rvalue = np.full(R, np.nan)
    stopped = np.full(R, steps, dtype=np.int64)
    npoints = np.full(R, steps + 1, dtype=np.int64)
    if record:
        pos = np.empty((steps + 1, R, d))
        loss = np.empty((steps + 1, R))
        gnr = np.empty((steps + 1, R))
    else:
        pos, loss, gnr = np.empty((1, 1, 1)), np.empty((1, 1)), np.empty((1, 1))
    args = (ip, fp, xs, p.hp, p.uidx, p.tabs, bounds, out_x, out_f, out_gn, status, reason, rvalue, stopped,
            npoints, pos, loss, gnr)
    if nthreads > 1:
        _run_threads(nthreads, args)
    else:
        _run_blocks(0, 1, *args)

    last = int(stopped.max()) if R else 0
    records = None
    if record:
        lr_rec = np.empty((steps,) + batch)
        if steps:
            lr_rec.reshape(steps, R)[:] = p.lr_tab[:, p.uidx] if p.lr_tab.shape[1] > 1 else p.lr_tab[:, :1]
        records = (pos.reshape((steps + 1,) + batch + (d,)), loss.reshape((steps + 1,) + batch),
                   gnr.reshape((steps + 1,) + batch), lr_rec)
    return assemble_record(
        optimizer, schedule, x0, batch, records, last,
        status_code=status.reshape(batch), stopped_at=stopped.reshape(batch), n_points=npoints.reshape(batch),
        reason_code=reason.reshape(batch), reason_value=rvalue.reshape(batch),
        final_params=out_x.reshape(batch + (d,)), final_loss=out_f.reshape(batch),
        final_grad_norm=out_gn.reshape(batch), steps=steps, tol=tol, target=target, bound=bound, blowup=blowup,
        label=label,
    )


def _thread_count(R: int, steps: int) -> int:
    """Threads for a call: one for small work (starting a thread costs more), else up to the CPUs."""
    blocks = -(-R // BLOCK)
    if blocks < 2 or R * max(steps, 1) < 50_000:
        return 1
    return max(1, min(threads(), blocks))


def threads() -> int:
    """How many threads the fused trajectories use: ``numba.get_num_threads()``."""
    import numba

    return int(numba.get_num_threads())


_workers: ThreadPoolExecutor | None = None
_workers_lock = threading.Lock()


def _run_threads(nthreads: int, args: tuple[Any, ...]) -> None:
    """Run the blocks on ``nthreads`` threads (the kernel releases the GIL)."""
    global _workers
    with _workers_lock:
        if _workers is None or _workers._max_workers < nthreads:  # type: ignore[attr-defined]
            _workers = ThreadPoolExecutor(max_workers=nthreads, thread_name_prefix="gdlab-fast-traj")
        pool = _workers
    futures = [pool.submit(_run_blocks, tid, nthreads, *args) for tid in range(1, nthreads)]
    _run_blocks(0, nthreads, *args)
    for fut in futures:
        fut.result()


# ================================================================================================
# readiness, compilation in the background, warm-up
# ================================================================================================
_driver_state = {"ready": False}
_driver_lock = threading.Lock()
_executor: ThreadPoolExecutor | None = None
_pending: dict[Any, Future[Any]] = {}
_pending_lock = threading.Lock()


def _stamp() -> str:
    try:
        return hashlib.sha256(Path(__file__).read_bytes()).hexdigest()[:16]
    except OSError:
        return "unknown"


def _driver_marker() -> Path | None:
    try:
        return lc.generated_dir() / f"driver_{_stamp()}.ok"
    except lc.CodegenError:
        return None


def driver_ready() -> bool:
    """Whether the driver kernels are compiled (or loaded) in this process."""
    return _driver_state["ready"]


def _driver_cached() -> bool:
    marker = _driver_marker()
    return marker is not None and marker.exists()


def _landscape_ready(code: Any) -> bool:
    key, _ = lc.source_key(code)
    return key in lc._modules


def ensure_driver() -> float:
    """Compile (or load from numba's disk cache) the driver kernels; returns seconds spent."""
    if _driver_state["ready"]:
        return 0.0
    with _driver_lock:
        if _driver_state["ready"]:
            return 0.0
        start = time.perf_counter()
        from gdlab.landscapes import make_landscape

        land = lc.compile_landscape(make_landscape("sphere", dim=1))
        x0 = np.zeros((3 * BLOCK, 1)) + 0.5
        ip = np.zeros(N_IP, dtype=np.int64)
        ip[I_KIND], ip[I_D], ip[I_R], ip[I_STEPS], ip[I_B], ip[I_NT] = SGD_K, 1, 3 * BLOCK, 1, BLOCK, 1
        ip[I_FG], ip[I_G], ip[I_U], ip[I_NS], ip[I_NH] = land.value_grad_address, land.grad_address, 1, 1, 3
        fp = np.array([1.0, 0.0, 0.0, 0.0, 1e-3])
        hp = np.zeros((3, 1))
        tabs = np.full((1, 1, 1), 0.1)
        uidx = np.zeros(3 * BLOCK, dtype=np.int64)
        R = 3 * BLOCK
        args = (ip, fp, x0, hp, uidx, tabs, np.full(R, np.inf), np.empty((R, 1)), np.empty(R), np.empty(R),
                np.zeros(R, np.int8), np.zeros(R, np.int8), np.zeros(R), np.zeros(R, np.int64),
                np.zeros(R, np.int64), np.empty((1, 1, 1)), np.empty((1, 1)), np.empty((1, 1)))
        _run_blocks(0, 1, *args)
        _driver_state["ready"] = True
        marker = _driver_marker()
        if marker is not None:
            with contextlib.suppress(OSError):
                marker.touch()
        return time.perf_counter() - start


def _background(key: Any, fn: Any) -> None:
    """Run ``fn`` once in the background compile thread (later calls with ``key`` join it)."""
    global _executor
    with _pending_lock:
        if key in _pending:
            return
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="gdlab-fast-compile")
        _pending[key] = _executor.submit(_quiet, fn)


def _quiet(fn: Any) -> None:
    with contextlib.suppress(Exception):  # compilation is an optimisation: a failure means the reference path
        fn()


def prepare(objective: Any, wait: bool = False) -> bool:
    """Compile the driver and ``objective``'s landscape (in the background unless ``wait``).

    Returns True when both are ready now. Servers call it when a custom expression is parsed so
    that its first run finds it compiled.
    """
    code = lc.code_for(objective)
    if isinstance(code, str):
        return False

    def work() -> None:
        ensure_driver()
        lc.compile_landscape(objective)

    if wait:
        work()
        return True
    if driver_ready() and _landscape_ready(code):
        return True
    _background(("land", lc.source_key(code)[0]), work)
    return False


def _estimated_reference_seconds(R: int, d: int, steps: int) -> float:
    """A rough cost of the reference engine: ~60 µs a step plus ~15 ns per coordinate and step."""
    return steps * (60e-6 + 15e-9 * R * d)


def _cheap_to_load(objective: Any) -> bool:
    code = lc.code_for(objective)
    if isinstance(code, str):
        return False
    return (driver_ready() or _driver_cached()) and (_landscape_ready(code) or lc.is_cached(code))


def try_run(objective: Any, optimizer: Any, x0: np.ndarray, batch: tuple[int, ...], *, backend: str, steps: int,
            schedule: Any, tol: float | None, target: float | None, bound: Any, blowup: float | None,
            blowup_floor: float, record: bool, label: str) -> Any:
    """The fused :func:`run_batch`, or ``None`` when the reference should run (``backend="auto"``).

    With ``backend="fused"`` an unsupported call raises ``ValueError`` with the reason.
    """
    fused = backend == "fused"
    compile_now = fused or _cheap_to_load(objective) or (
        _estimated_reference_seconds(math.prod(batch), x0.shape[-1], steps) >= SYNC_COMPILE_SECONDS)
    p = plan(objective, optimizer, batch, steps, schedule, d=x0.shape[-1], allow_close=fused,
             compile_now=compile_now)
    if p is None:  # supported, but not compiled yet: compile for next time, run the reference now
        prepare(objective)
        return None
    if isinstance(p, str):
        if fused:
            raise ValueError(f"backend='fused' cannot run this: {p}")
        return None
    return run_plan(p, objective, optimizer, x0, steps=steps, schedule=schedule, tol=tol, target=target,
                    bound=bound, blowup=blowup, blowup_floor=blowup_floor, record=record, label=label)


def explain(objective: Any, optimizer: Any, starts: Any, steps: int = 1, schedule: Any = None) -> str:
    """``"fused"`` when :func:`run_batch` would take the fused path for these arguments, else why not
    (compiling the kernels if needed)."""
    from gdlab.engine.run import hyper_shapes

    x0 = np.asarray(starts, dtype=np.float64)
    try:
        batch = np.broadcast_shapes(x0.shape[:-1], *hyper_shapes(optimizer), *hyper_shapes(schedule))
    except ValueError:
        return "the starts do not broadcast against the hyperparameters"
    p = plan(objective, optimizer, batch, steps, schedule, d=x0.shape[-1])
    return p if isinstance(p, str) else "fused"


#: Landscapes compiled by :func:`warmup`: every registered one with its default parameters (what the
#: lab draws), plus the N-dimensional ones in a few common dimensions.
WARM_EXTRA = (("rosenbrock", {"dim": 3}), ("rosenbrock", {"dim": 10}), ("rastrigin", {"dim": 10}),
              ("sphere", {"dim": 1}))


def warmup(extra: bool = True) -> float:
    """Compile (or load from the disk cache) the driver and the built-in landscapes; returns seconds."""
    from gdlab.landscapes import LANDSCAPES, make_landscape

    start = time.perf_counter()
    ensure_driver()
    specs: list[tuple[str, dict[str, Any]]] = [(name, {}) for name in LANDSCAPES]
    if extra:
        specs += list(WARM_EXTRA)
    for name, params in specs:
        try:
            land = make_landscape(name, **params)
        except (ValueError, TypeError):
            continue
        code = lc.code_for(land)
        if isinstance(code, str):
            continue
        try:
            lc.compile_landscape(land)
        except lc.CodegenError:
            continue
    return time.perf_counter() - start


__all__ = [
    "BLOCK",
    "KINDS",
    "Plan",
    "driver_ready",
    "ensure_driver",
    "explain",
    "plan",
    "prepare",
    "run_plan",
    "try_run",
    "warmup",
]
