"""The fused, in-place, multithreaded update kernels (numba).

One parallel driver, :func:`drive`, runs every elementwise optimizer. It walks params, gradient and
state buffers once, in *units* of a few thousand elements (:data:`~gdlab.fast.config.SEGMENT`),
each thread a contiguous chunk of units, and the optimizer's kernel updates each unit in place,
checking that the gradient and the new params are finite:

- A run (the last axis) of at most :data:`~gdlab.fast.config.ROW_MAX` elements lives in a single
  unit (short runs are grouped several to a unit) and is updated all-or-nothing. The kernel runs in
  *backup* mode: it saves every old value it overwrites in a per-thread backup (cache resident),
  and when the check fails the driver copies the backup back and retries the unit run by run, so
  that only the bad runs are refused. Saving the old values while they are in registers costs one
  store each; computing into a scratch and copying it over the params afterwards (the first design)
  costs a load and a store more per value and was about 8% slower on 10M float32 Adam.
- Longer runs span several units (segments). With ``atomic`` their gradient is scanned first (a
  read-only pass) and a run with a non-finite gradient is skipped entirely (see
  :mod:`gdlab.fast.config` for the trade-off). The kernel runs in *select* mode: an element whose
  gradient or new param is not finite keeps its old values, the other elements are updated, no
  backup is written, and a bad segment flags its run.

**Arithmetic** follows the reference ``_update`` of each optimizer operation by operation, in the
params' dtype (float32 stays float32): every scalar is computed by the caller in double precision
(as Python floats are) and handed over rounded to that dtype, which is what NumPy does with a Python
float scalar. No fast-math (no reassociation, no FMA contraction); ``error_model="numpy"`` so that a
division by zero gives inf/NaN (then caught by the check) instead of raising, and loops vectorise.
Coupled weight decay is added as ``g + λθ`` with λ = 0 when off (equal to g up to the sign of a
zero) and AdamW-style decay multiplies θ by a factor that is 1 when off (exact), so these options
cost no loop versions.

**Compilation.** Each optimizer kernel is a ``cfunc`` (a C function, compiled once per dtype on
first use and cached on disk); the driver calls it through its address and sees every array as raw
bytes, so one compilation of the driver serves both dtypes and contains no optimizer code: LLVM
never re-optimises the kernels inside it (calling them directly made every caller re-optimise all
of them, and a cold compile took minutes instead of seconds).

**Threads.** The caller passes the thread count (``numba.get_num_threads()`` at call time, so
``numba.set_num_threads`` is respected; fewer threads for small steps, see
:data:`~gdlab.fast.config.MIN_PER_THREAD`) and the driver splits the units into that many
contiguous chunks. The kernels hold the GIL: concurrent calls from several Python threads are
serialised, which keeps every numba threading layer safe.
"""

from __future__ import annotations

import threading
import types as pytypes
from typing import Any

import numpy as np
from llvmlite import ir
from numba import carray, cfunc, njit, prange, types
from numba.extending import intrinsic

from gdlab.fast._cache import configure_numba_cache

CACHE_DIR = configure_numba_cache()

_JIT = {"cache": True, "error_model": "numpy", "fastmath": False}

# Optimizer kinds (the same numbers as gdlab.fast.dispatch uses).
SGD, MOMENTUM, ADAM, RMSPROP, ADAGRAD, ADADELTA, ADAMAX, NADAM, RADAM = range(9)
KIND_NAMES = ("sgd", "momentum", "adam", "rmsprop", "adagrad", "adadelta", "adamax", "nadam", "radam")
#: Lengths of the constant and flag arrays every kernel receives; the last constant is always 1.
N_CONSTS = 16
N_FLAGS = 8


@njit(**_JIT)
def _maximum(a, b):
    """``np.maximum`` on scalars: NaN if either is NaN."""
    return a if (a >= b) | (a != a) else b


# --------------------------------------------------------------------------------------------
# Kernels, one per optimizer kind, with one C signature: pointers to the unit's params p, gradient
# g and buffers b0..b2, which they update in place; backups sp, s0..s2 (the per-thread scratch);
# constants c (params' dtype; the last one is always 1) and flags f (int64); the unit's length n.
# They return 1 when the gradient or a new param of some element is not finite, else 0. A kernel
# only touches the buffers its options use; unused pointers are never dereferenced.
#
# Each body is compiled in two modes (:data:`_SELECT`, a compile-time constant, see :func:`_put`):
#
# - backup (units of whole runs): every element is written, and its old values are saved in the
#   backups, from which the driver restores the unit when the kernel reports a failure. Saving
#   them costs a store each to cache and no load (they were loaded for the update anyway), which is
#   why this beats computing into a scratch and copying it over afterwards.
# - select (segments of long runs, which are not all-or-nothing anyway): an element whose gradient
#   or new param is not finite keeps its old values, the others are updated; no backups.
#
# Each loop iteration loads every old value it needs before it stores anything, so the updates
# are correct in place.
#
# Inner loops have no data-independent branches: options that change which arrays are touched or
# the order of the costly operations get a loop each (LLVM does not reliably unswitch several flags
# by itself, and a loop it leaves branchy does not vectorise: 2x slower); cheap formula choices are
# selects between values computed in both cases (Nesterov, the first momentum step, RAdam's
# rectification) or exact identities (ε inside or outside the root: √(v + e₁) + e₂ with (e₁, e₂) =
# (ε, 0) or (0, ε), since x + 0 = x and x/1 = x exactly; :func:`_lerp`).
# --------------------------------------------------------------------------------------------

#: The mode the kernel bodies are compiled in: False here (backup); :func:`_select_variant` makes
#: a copy of a body that sees True.
_SELECT = False


@njit(**_JIT)
def _lerp(start, end, w, omw, low):
    """torch.lerp's two formulas (``omw`` = 1 − w, ``low`` = w < 0.5): ``start + w·diff`` or
    ``end − diff·(1 − w)``, written as one, ``base + k·diff``, with (base, k) = (start, w) or
    (end, −(1 − w)): exact, since a − b is a + (−b) in IEEE arithmetic, and cheaper than computing
    both and selecting (``low`` is the same for every element)."""
    diff = end - start
    base = start if low else end
    k = w if low else -omw
    return base + k * diff


@njit(**_JIT)
def _good(gr, pn):
    """The gradient entry ``gr`` and the new param ``pn`` are finite (branch-free, vectorisable):
    x − x is 0 for a finite x and NaN otherwise, and 0 + 0 cannot overflow."""
    z = (gr - gr) + (pn - pn)
    return z == z


@njit(**_JIT)
def _put(a, backup, i, new, old, good, one, select):
    """Store element ``i`` of one updated array (``select`` is a compile-time constant).

    Backup mode: ``a[i] = new``, saving ``old`` in ``backup[i]``. Select mode: ``a[i] = new`` if
    ``good`` else ``old``. The old value is written as ``old·one`` with ``one`` = 1 read from the
    constants at run time: equal (x·1 = x), but LLVM cannot tell it is what ``a[i]`` holds, so it
    does not turn the store into a masked store (microcoded, several times slower, on AMD CPUs).
    """
    if select:
        a[i] = new if good else old * one
    else:
        backup[i] = old
        a[i] = new


def _sgd(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, sp, s0 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(spp, n), carray(s0p, n)
    c, f = carray(cp, N_CONSTS), carray(fp, N_FLAGS)
    sgn, wd, lr, mu, omd, one = c[0], c[1], c[2], c[3], c[4], c[N_CONSTS - 1]
    momentum, first, nesterov = f[1] != 0, f[2] != 0, f[3] != 0
    ok = True
    if not momentum:
        for i in range(n):
            gr = g[i]
            pi = p[i]
            pn = pi - lr * (sgn * gr + wd * pi)
            good = _good(gr, pn)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
        return 0 if ok else 1
    for i in range(n):
        gr = g[i]
        pi = p[i]
        bi = b0[i]
        gi = sgn * gr + wd * pi
        later = bi * mu + omd * gi
        buf = gi if first else later
        ahead = gi + mu * buf
        pn = pi - lr * (ahead if nesterov else buf)
        good = _good(gr, pn)
        _put(b0, s0, i, buf, bi, good, one, _SELECT)
        _put(p, sp, i, pn, pi, good, one, _SELECT)
        ok = ok & good
    return 0 if ok else 1


def _momentum(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, sp, s0 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(spp, n), carray(s0p, n)
    c = carray(cp, N_CONSTS)
    sgn, wd, lr, mu, one = c[0], c[1], c[2], c[3], c[N_CONSTS - 1]
    ok = True
    for i in range(n):
        gr = g[i]
        pi = p[i]
        bi = b0[i]
        v = mu * bi + lr * (sgn * gr + wd * pi)
        pn = pi - v
        good = _good(gr, pn)
        _put(b0, s0, i, v, bi, good, one, _SELECT)
        _put(p, sp, i, pn, pi, good, one, _SELECT)
        ok = ok & good
    return 0 if ok else 1


def _adam(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, b1, b2 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(b1p, n), carray(b2p, n)
    sp, s0, s1, s2 = carray(spp, n), carray(s0p, n), carray(s1p, n), carray(s2p, n)
    c, f = carray(cp, N_CONSTS), carray(fp, N_FLAGS)
    sgn, wd, factor, w, omw, beta2, omb2, step_size = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7]
    bias2, sqrt_bias2, eps, d1, e1, d2, e2 = c[8], c[9], c[10], c[11], c[12], c[13], c[14]
    one = c[N_CONSTS - 1]
    low, amsgrad, inside = f[2] != 0, f[3] != 0, f[4] != 0
    ok = True
    if amsgrad:  # the running maximum of v is a third buffer; ε placement by the identity (d₁, e₁, d₂, e₂)
        for i in range(n):
            gr = g[i]
            pi = p[i]
            m0 = b0[i]
            v0 = b1[i]
            x0 = b2[i]
            gi = sgn * gr + wd * pi
            m = _lerp(m0, gi, w, omw, low)
            v = v0 * beta2 + omb2 * gi * gi
            vmax = _maximum(x0, v)
            pn = pi * factor - step_size * (m / (np.sqrt(vmax / d1 + e1) / d2 + e2))
            good = _good(gr, pn)
            _put(b0, s0, i, m, m0, good, one, _SELECT)
            _put(b1, s1, i, v, v0, good, one, _SELECT)
            _put(b2, s2, i, vmax, x0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    elif inside:  # √(v/(1 − β₂ᵗ) + ε)
        for i in range(n):
            gr = g[i]
            pi = p[i]
            m0 = b0[i]
            v0 = b1[i]
            gi = sgn * gr + wd * pi
            m = _lerp(m0, gi, w, omw, low)
            v = v0 * beta2 + omb2 * gi * gi
            pn = pi * factor - step_size * (m / np.sqrt(v / bias2 + eps))
            good = _good(gr, pn)
            _put(b0, s0, i, m, m0, good, one, _SELECT)
            _put(b1, s1, i, v, v0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    else:  # PyTorch: √v/√(1 − β₂ᵗ) + ε
        for i in range(n):
            gr = g[i]
            pi = p[i]
            m0 = b0[i]
            v0 = b1[i]
            gi = sgn * gr + wd * pi
            m = _lerp(m0, gi, w, omw, low)
            v = v0 * beta2 + omb2 * gi * gi
            pn = pi * factor - step_size * (m / (np.sqrt(v) / sqrt_bias2 + eps))
            good = _good(gr, pn)
            _put(b0, s0, i, m, m0, good, one, _SELECT)
            _put(b1, s1, i, v, v0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    return 0 if ok else 1


def _rmsprop(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, b1, b2 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(b1p, n), carray(b2p, n)
    sp, s0, s1, s2 = carray(spp, n), carray(s0p, n), carray(s1p, n), carray(s2p, n)
    c, f = carray(cp, N_CONSTS), carray(fp, N_FLAGS)
    sgn, wd, alpha, oma, w, omw, e1, e2, mu, lr = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[7], c[8], c[9]
    one = c[N_CONSTS - 1]
    centered, low, momentum = f[1] != 0, f[2] != 0, f[3] != 0
    ok = True
    if centered and momentum:
        for i in range(n):
            gr = g[i]
            pi = p[i]
            q0 = b0[i]
            a0 = b1[i]
            u0 = b2[i]
            gi = sgn * gr + wd * pi
            sq = q0 * alpha + oma * gi * gi
            ga = _lerp(a0, gi, w, omw, low)
            buf = u0 * mu + gi / (np.sqrt(sq - ga * ga + e1) + e2)
            pn = pi - lr * buf
            good = _good(gr, pn)
            _put(b0, s0, i, sq, q0, good, one, _SELECT)
            _put(b1, s1, i, ga, a0, good, one, _SELECT)
            _put(b2, s2, i, buf, u0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    elif centered:
        for i in range(n):
            gr = g[i]
            pi = p[i]
            q0 = b0[i]
            a0 = b1[i]
            gi = sgn * gr + wd * pi
            sq = q0 * alpha + oma * gi * gi
            ga = _lerp(a0, gi, w, omw, low)
            pn = pi - lr * gi / (np.sqrt(sq - ga * ga + e1) + e2)
            good = _good(gr, pn)
            _put(b0, s0, i, sq, q0, good, one, _SELECT)
            _put(b1, s1, i, ga, a0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    elif momentum:
        for i in range(n):
            gr = g[i]
            pi = p[i]
            q0 = b0[i]
            u0 = b2[i]
            gi = sgn * gr + wd * pi
            sq = q0 * alpha + oma * gi * gi
            buf = u0 * mu + gi / (np.sqrt(sq + e1) + e2)
            pn = pi - lr * buf
            good = _good(gr, pn)
            _put(b0, s0, i, sq, q0, good, one, _SELECT)
            _put(b2, s2, i, buf, u0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    else:
        for i in range(n):
            gr = g[i]
            pi = p[i]
            q0 = b0[i]
            gi = sgn * gr + wd * pi
            sq = q0 * alpha + oma * gi * gi
            pn = pi - lr * gi / (np.sqrt(sq + e1) + e2)
            good = _good(gr, pn)
            _put(b0, s0, i, sq, q0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    return 0 if ok else 1


def _adagrad(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, sp, s0 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(spp, n), carray(s0p, n)
    c = carray(cp, N_CONSTS)
    sgn, wd, clr, e1, e2, one = c[0], c[1], c[2], c[3], c[4], c[N_CONSTS - 1]
    ok = True
    for i in range(n):
        gr = g[i]
        pi = p[i]
        t0 = b0[i]
        gi = sgn * gr + wd * pi
        total = t0 + gi * gi
        pn = pi - clr * gi / (np.sqrt(total + e1) + e2)
        good = _good(gr, pn)
        _put(b0, s0, i, total, t0, good, one, _SELECT)
        _put(p, sp, i, pn, pi, good, one, _SELECT)
        ok = ok & good
    return 0 if ok else 1


def _adadelta(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, b1 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(b1p, n)
    sp, s0, s1 = carray(spp, n), carray(s0p, n), carray(s1p, n)
    c = carray(cp, N_CONSTS)
    sgn, wd, rho, omr, eps, lr, one = c[0], c[1], c[2], c[3], c[4], c[5], c[N_CONSTS - 1]
    ok = True
    for i in range(n):
        gr = g[i]
        pi = p[i]
        q0 = b0[i]
        acc = b1[i]
        gi = sgn * gr + wd * pi
        sq = q0 * rho + omr * gi * gi
        delta = np.sqrt(acc + eps) / np.sqrt(sq + eps) * gi
        acc_new = acc * rho + omr * delta * delta
        pn = pi - lr * delta
        good = _good(gr, pn)
        _put(b0, s0, i, sq, q0, good, one, _SELECT)
        _put(b1, s1, i, acc_new, acc, good, one, _SELECT)
        _put(p, sp, i, pn, pi, good, one, _SELECT)
        ok = ok & good
    return 0 if ok else 1


def _adamax(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, b1 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(b1p, n)
    sp, s0, s1 = carray(spp, n), carray(s0p, n), carray(s1p, n)
    c, f = carray(cp, N_CONSTS), carray(fp, N_FLAGS)
    sgn, wd, w, omw, beta2, eps, clr, one = c[0], c[1], c[2], c[3], c[4], c[5], c[6], c[N_CONSTS - 1]
    low = f[1] != 0
    ok = True
    for i in range(n):
        gr = g[i]
        pi = p[i]
        m0 = b0[i]
        u0 = b1[i]
        gi = sgn * gr + wd * pi
        m = _lerp(m0, gi, w, omw, low)
        u = _maximum(u0 * beta2, np.abs(gi) + eps)
        pn = pi - clr * m / u
        good = _good(gr, pn)
        _put(b0, s0, i, m, m0, good, one, _SELECT)
        _put(b1, s1, i, u, u0, good, one, _SELECT)
        _put(p, sp, i, pn, pi, good, one, _SELECT)
        ok = ok & good
    return 0 if ok else 1


def _nadam(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, b1 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(b1p, n)
    sp, s0, s1 = carray(spp, n), carray(s0p, n), carray(s1p, n)
    c, f = carray(cp, N_CONSTS), carray(fp, N_FLAGS)
    sgn, wd, factor, w, omw, beta2, omb2 = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    bias2, e1, e2, c1, c2, one = c[7], c[8], c[9], c[10], c[11], c[N_CONSTS - 1]
    low = f[2] != 0
    ok = True
    for i in range(n):
        gr = g[i]
        pi = p[i]
        m0 = b0[i]
        v0 = b1[i]
        gi = sgn * gr + wd * pi
        m = _lerp(m0, gi, w, omw, low)
        v = v0 * beta2 + omb2 * gi * gi
        denom = np.sqrt(v / bias2 + e1) + e2
        pn = pi * factor - c1 * gi / denom
        pn = pn - c2 * m / denom
        good = _good(gr, pn)
        _put(b0, s0, i, m, m0, good, one, _SELECT)
        _put(b1, s1, i, v, v0, good, one, _SELECT)
        _put(p, sp, i, pn, pi, good, one, _SELECT)
        ok = ok & good
    return 0 if ok else 1


def _radam(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, fp, n):
    p, g, b0, b1 = carray(pp, n), carray(gp, n), carray(b0p, n), carray(b1p, n)
    sp, s0, s1 = carray(spp, n), carray(s0p, n), carray(s1p, n)
    c, f = carray(cp, N_CONSTS), carray(fp, N_FLAGS)
    sgn, wd, factor, w, omw, beta2, omb2 = c[0], c[1], c[2], c[3], c[4], c[5], c[6]
    bias1, lr, bias2, sqrt_bias2, eps, rect, one = c[7], c[8], c[9], c[10], c[11], c[12], c[N_CONSTS - 1]
    low, rectify, inside = f[2] != 0, f[3] != 0, f[4] != 0
    ok = True
    if inside:  # 1/√(v/(1 − β₂ᵗ) + ε)
        for i in range(n):
            gr = g[i]
            pi = p[i]
            m0 = b0[i]
            v0 = b1[i]
            gi = sgn * gr + wd * pi
            m = _lerp(m0, gi, w, omw, low)
            v = v0 * beta2 + omb2 * gi * gi
            step = m / bias1 * lr
            rectified = step * (one / np.sqrt(v / bias2 + eps)) * rect
            pn = pi * factor - (rectified if rectify else step)
            good = _good(gr, pn)
            _put(b0, s0, i, m, m0, good, one, _SELECT)
            _put(b1, s1, i, v, v0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    else:  # √(1 − β₂ᵗ)/(√v + ε)
        for i in range(n):
            gr = g[i]
            pi = p[i]
            m0 = b0[i]
            v0 = b1[i]
            gi = sgn * gr + wd * pi
            m = _lerp(m0, gi, w, omw, low)
            v = v0 * beta2 + omb2 * gi * gi
            step = m / bias1 * lr
            rectified = step * (sqrt_bias2 / (np.sqrt(v) + eps)) * rect
            pn = pi * factor - (rectified if rectify else step)
            good = _good(gr, pn)
            _put(b0, s0, i, m, m0, good, one, _SELECT)
            _put(b1, s1, i, v, v0, good, one, _SELECT)
            _put(p, sp, i, pn, pi, good, one, _SELECT)
            ok = ok & good
    return 0 if ok else 1


def _scan(pp, gp, b0p, b1p, b2p, opp, o0p, o1p, o2p, cp, fp, n):
    """Not an optimizer: 1 when the gradient ``g`` has a non-finite entry (the scan of long runs)."""
    g = carray(gp, n)
    ok = True
    for i in range(n):
        z = g[i] - g[i]
        ok = ok & (z == z)
    return 0 if ok else 1


def _select_variant(body: Any) -> Any:
    """A copy of a kernel body that sees ``_SELECT = True`` (select mode). numba reads globals as
    constants when it compiles, so the unused branch of :func:`_put` disappears; the copy has its own
    qualified name, hence its own entry in numba's disk cache."""
    namespace = {**body.__globals__, "_SELECT": True}
    copy = pytypes.FunctionType(body.__code__, namespace, body.__name__ + "_select", body.__defaults__,
                                body.__closure__)
    copy.__qualname__ = body.__qualname__ + "_select"
    copy.__module__ = body.__module__
    copy.__doc__ = body.__doc__
    return copy


SCAN = 9
_BODIES = (_sgd, _momentum, _adam, _rmsprop, _adagrad, _adadelta, _adamax, _nadam, _radam, _scan)
#: The select-mode bodies (the scan has no modes).
_SELECT_BODIES = (*(_select_variant(body) for body in _BODIES[:SCAN]), _scan)
_NUMBA_DTYPES = {np.dtype(np.float32): types.float32, np.dtype(np.float64): types.float64}
_compiled: dict[tuple[int, np.dtype, bool], Any] = {}
_lock = threading.Lock()


def _signature(dtype: Any) -> Any:
    ptr = types.CPointer(dtype)
    return types.int64(*([ptr] * 10), types.CPointer(types.int64), types.int64)


def kernel_address(kind: int, dtype: Any, select: bool = False) -> int:
    """Address of the compiled kernel of ``kind`` for ``dtype``, in backup or select mode (compiled
    or loaded on first use)."""
    key = (kind, np.dtype(dtype), bool(select))
    fn = _compiled.get(key)
    if fn is None:
        with _lock:
            fn = _compiled.get(key)
            if fn is None:
                body = (_SELECT_BODIES if select else _BODIES)[kind]
                fn = cfunc(_signature(_NUMBA_DTYPES[key[1]]), **_JIT)(body)
                _compiled[key] = fn
    return fn.address


# --------------------------------------------------------------------------------------------
# The driver. It sees every array as raw bytes (uint8) and element positions times the item size,
# so a single compilation serves float32 and float64; only the kernels know the dtype.
# --------------------------------------------------------------------------------------------


@intrinsic
def _call_kernel(typingctx, addr, p, g, b0, b1, b2, op, o0, o1, o2, c, f, n):
    """Call the kernel at address ``addr`` with the data pointers of these arrays and ``n`` elements."""
    sig = types.int64(addr, p, g, b0, b1, b2, op, o0, o1, o2, c, f, n)

    def codegen(context, builder, signature, args):
        pointers = []
        for ty, value in zip(signature.args[1:-1], args[1:-1], strict=True):
            pointers.append(context.make_array(ty)(context, builder, value).data)
        fnty = ir.FunctionType(ir.IntType(64), [ptr.type for ptr in pointers] + [ir.IntType(64)])
        fn = builder.inttoptr(args[0], fnty.as_pointer())
        return builder.call(fn, [*pointers, args[-1]])

    return sig, codegen


@njit(**_JIT)
def _store(dst, src):
    for i in range(dst.size):
        dst[i] = src[i]


@njit(**_JIT)
def _restore(p, b0, b1, b2, scr, width, lo, hi, wmask):
    """Copy the backups (the first hi − lo bytes of each scratch slot) back into params and the
    written buffers at bytes [lo, hi)."""
    n = hi - lo
    _store(p[lo:hi], scr[0:n])
    if wmask & 1:
        _store(b0[lo:hi], scr[width : width + n])
    if wmask & 2:
        _store(b1[lo:hi], scr[2 * width : 2 * width + n])
    if wmask & 4:
        _store(b2[lo:hi], scr[3 * width : 3 * width + n])


@njit(**_JIT)
def _unit_bounds(u, d, segment, per_row, rows_per_unit, rows, long_rows):
    """Element range [lo, hi) of unit ``u`` and its runs [r0, r1)."""
    if long_rows:
        r0 = u // per_row
        s = u - r0 * per_row
        return r0 * d + s * segment, r0 * d + min(d, (s + 1) * segment), r0, r0 + 1
    r0 = u * rows_per_unit
    r1 = min(rows, r0 + rows_per_unit)
    return r0 * d, r1 * d, r0, r1


@njit(**_JIT)
def _scan_chunk(addr, g, f, isz, d, segment, per_row, u0, u1, unitbad):
    """Flag the units [u0, u1) (segments of long runs) whose gradient is not all finite."""
    for u in range(u0, u1):
        lo, hi, _, _ = _unit_bounds(u, d, segment, per_row, 1, 0, True)
        gs = g[lo * isz : hi * isz]
        if _call_kernel(addr, gs, gs, gs, gs, gs, gs, gs, gs, gs, gs, f, hi - lo):
            unitbad[u] = 1


@njit(**_JIT)
def _run_kernel(addr, p, g, b0, b1, b2, scr, w, c, f, isz, a, b):
    """The kernel on elements [a, b), in place (in backup mode the old values go to the scratch);
    1 when something is not finite."""
    x, y, n = a * isz, b * isz, (b - a) * isz
    return _call_kernel(
        addr, p[x:y], g[x:y], b0[x:y], b1[x:y], b2[x:y],
        scr[0:n], scr[w : w + n], scr[2 * w : 2 * w + n], scr[3 * w : 3 * w + n], c, f, b - a,
    )


@njit(**_JIT)
def _step_chunk(addr, p, g, b0, b1, b2, c, f, isz, wmask, d, segment, per_row, rows_per_unit, width, long_rows,
                u0, u1, unitbad, rowbad):
    """Update the units [u0, u1) of one thread in place.

    Units of short runs (kernel in backup mode): a failed unit is restored from the backups and
    retried run by run, so that only the bad runs are refused (and restored). Segments of long runs
    (kernel in select mode): the bad elements were left as they were; the segment flags its run.
    """
    rows = p.size // (d * isz)
    w = width * isz
    scr = np.empty(0 if long_rows else 4 * w, np.uint8)
    for u in range(u0, u1):
        lo, hi, r0, r1 = _unit_bounds(u, d, segment, per_row, rows_per_unit, rows, long_rows)
        if long_rows and rowbad[r0]:
            continue
        if _run_kernel(addr, p, g, b0, b1, b2, scr, w, c, f, isz, lo, hi) == 0:
            continue
        if long_rows:
            unitbad[u] = 1
            continue
        _restore(p, b0, b1, b2, scr, w, lo * isz, hi * isz, wmask)
        for r in range(r0, r1):
            if _run_kernel(addr, p, g, b0, b1, b2, scr, w, c, f, isz, r * d, (r + 1) * d) != 0:
                _restore(p, b0, b1, b2, scr, w, r * d * isz, (r + 1) * d * isz, wmask)
                rowbad[r] = 1


@njit(**_JIT)
def _flag_rows(unitbad, per_row, rowbad):
    for r in range(rowbad.size):
        for s in range(per_row):
            if unitbad[r * per_row + s]:
                rowbad[r] = 1


def layout(size: int, d: int, segment: int, row_max: int) -> tuple[bool, int, int, int, int]:
    """How ``size`` elements in runs of ``d`` are cut into units: (long_rows, per_row, rows_per_unit,
    width, units). Runs longer than ``row_max`` take ``per_row`` units of ``segment`` elements;
    shorter runs are grouped ``rows_per_unit`` to a unit of at most ``width`` elements."""
    rows = size // d
    if d > row_max:
        per_row = -(-d // segment)
        return True, per_row, 1, segment, rows * per_row
    width = max(segment, d)
    rows_per_unit = width // d
    return False, 1, rows_per_unit, width, -(-rows // rows_per_unit)


#: Layout of the ``meta`` array handed to :func:`drive` (one int64 array instead of many arguments
#: keeps the per-call dispatch cheap).
META_FIELDS = ("phase", "addr", "scan_addr", "itemsize", "wmask", "d", "segment", "long_rows", "per_row",
               "rows_per_unit", "width", "units", "tasks")


@njit(parallel=True, **_JIT)
def drive(meta, p, g, b0, b1, b2, c, f, unitbad, rowbad):
    """One phase of a fused in-place step over runs of ``d`` elements (see :func:`layout`).

    ``meta`` holds :data:`META_FIELDS`. Arrays are raw bytes (uint8 views) of the flat params,
    gradient, buffers ``b0..b2`` (empty for unused slots) and constants ``c`` (params' dtype);
    ``f``: int64 flags. Phase 0 scans the gradient of long runs (kernel ``scan_addr``); phase 1
    computes, checks and stores (kernel ``addr``; bit k of ``wmask`` set when ``bk`` is written).
    ``unitbad``: one byte per unit of long runs; ``rowbad`` (one byte per run, zero on entry) is set
    to 1 for every refused run.
    """
    phase, addr, scan_addr, isz, wmask, d, segment = meta[0], meta[1], meta[2], meta[3], meta[4], meta[5], meta[6]
    long_rows, per_row, rows_per_unit, width = meta[7] != 0, meta[8], meta[9], meta[10]
    units, tasks = meta[11], meta[12]
    for t in prange(tasks):
        u0 = t * units // tasks
        u1 = (t + 1) * units // tasks
        if phase == 0:
            _scan_chunk(scan_addr, g, f, isz, d, segment, per_row, u0, u1, unitbad)
        else:
            _step_chunk(
                addr, p, g, b0, b1, b2, c, f, isz, wmask, d, segment, per_row, rows_per_unit, width, long_rows,
                u0, u1, unitbad, rowbad,
            )
    if long_rows:
        _flag_rows(unitbad, per_row, rowbad)


def num_threads() -> int:
    """``numba.get_num_threads()`` of the calling thread, without re-taking numba's init locks."""
    return int(_get_num_threads())


def run_drive(nthreads: int, meta: np.ndarray, *arrays: np.ndarray) -> None:
    """Call :func:`drive` with a team of ``nthreads`` threads (fewer than numba's setting for small
    steps, so that idle threads are not woken), restoring the calling thread's setting after."""
    current = _get_num_threads()
    if nthreads < current:
        _set_num_threads(nthreads)
        try:
            drive(meta, *arrays)
        finally:
            _set_num_threads(current)
    else:
        drive(meta, *arrays)


def _thread_functions() -> tuple[Any, Any]:
    import numba
    from numba.np.ufunc import parallel

    numba.get_num_threads()  # launches the threading layer once; the raw getters below need it
    get = getattr(parallel, "_get_num_threads", None)
    set_ = getattr(parallel, "_set_num_threads", None)
    if callable(get) and callable(set_):
        return get, set_
    return numba.get_num_threads, numba.set_num_threads


_get_num_threads, _set_num_threads = _thread_functions()
