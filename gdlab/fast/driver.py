"""The block driver of the fused trajectories, and the generic advance and close it calls (numba).

A batch of runs is cut into blocks of :data:`B` runs. A block lives in one float64 work array of
rows of ``B`` values (structure of arrays; :func:`layout` says which row holds what): a run is a
*lane*, the same index in every row. The driver moves a block through its steps in *chunks*:

1. it copies the lanes' positions, state, loss and squared gradient norm to checkpoint rows;
2. it calls an **advance** function, which runs up to ``K`` steps in place: each step evaluates the
   landscape at the current point, checks :func:`gdlab.core.stopping.may_stop` there (a test that
   is True whenever a stopping rule fires, and rarely otherwise), and applies the rule's update.
   It returns early at the first step where a lane is flagged;
3. it calls a **close** function, which evaluates the landscape at the chunk's last point (loss and
   squared gradient norm into their rows) and checks it the same way;
4. when nothing was flagged, the chunk stands (the common case). Otherwise the driver restores the
   checkpoint and replays those steps one at a time, each followed by close and, where a lane is
   flagged, the exact decision (:func:`gdlab.core.stopping.conditions`, :func:`~gdlab.core.stopping.outcome`):
   a lane that stops is written to the outputs and removed from the block (the last lane takes its
   place), so the lanes ``0 .. n`` are always the runs still going and no step is spent on the rest.

So every run stops at exactly the step, with the status, reason and final point, that the
reference engine gives it, while the common step does no more than evaluate, check and update.

Two pairs of advance and close exist, with one signature each (:data:`ADVANCE_SIGNATURE`,
:data:`CLOSE_SIGNATURE`) and the same results: the **combined** ones of a rule and a landscape
(:mod:`gdlab.fast.stepcode`, compiled per pair: one loop in which the rule's element body, the
landscape's point program and the check are inlined, so that it vectorises), and the **generic**
ones below, which call the rule's block update and the landscape's block function through their
addresses (nothing compiled per pair).
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple

import numpy as np
from numba import carray, cfunc, njit, types

from gdlab.core import elementwise, stopping
from gdlab.core.stopping import GOING, MAX_STEPS, R_MAX_STEPS
from gdlab.fast import primitives
from gdlab.fast._cache import configure_numba_cache
from gdlab.fast.calls import call_int64, call_void

configure_numba_cache()
primitives.register_helpers()  # the stopping rules' helpers

JIT: dict[str, Any] = {"cache": True, "error_model": "numpy", "fastmath": False}

#: Runs per block (the inner, vectorised dimension of the loops). The combined code has it as a literal.
B = 256
#: Steps of a chunk: the checkpoint is copied once per chunk, and a flagged chunk is replayed.
CHUNK = 64

_f64p = types.CPointer(types.float64)
_i64p = types.CPointer(types.int64)
#: ``advance(w, ip, fp, consts, tabs, uidx, t0, t1, n)``: steps ``t0 .. t1`` of the ``n`` lanes of the
#: work array ``w``, in place; returns the first step at which a lane was flagged, or ``t1``.
#: ``consts``: the rule's constants, ``(NC, U)``; ``tabs``: its per-step scalars, ``(NS, T, U)``;
#: ``uidx``: each lane's column in them; ``ip``/``fp``: the integer and float parameters below.
ADVANCE_SIGNATURE = types.int64(_f64p, _i64p, _f64p, _f64p, _f64p, _i64p, types.int64, types.int64, types.int64)
#: ``close(w, ip, fp, n)``: loss and squared gradient norm at the lanes' points into their rows;
#: nonzero when a lane is flagged. When recording, the driver calls an advance that also writes the
#: loss and squared gradient norm of the point each step starts from into their rows.
CLOSE_SIGNATURE = types.int64(_f64p, _i64p, _f64p, types.int64)

# Fields of the int64 parameter array ``ip``.
(I_D, I_R, I_STEPS, I_RECORD, I_ADVANCE, I_CLOSE, I_UPDATE, I_LOOK, I_FG, I_G, I_NB, I_NC, I_NS, I_U, I_CHUNK,
 I_VARYING, I_X, I_S, I_F, I_Q, I_LIM, I_BND, I_BND2, I_C, I_V, I_ZR, I_G0, I_LA, I_LG, I_RX, I_CX, I_CS, I_CF,
 I_CQ, I_LANE_ROWS, I_ROWS) = range(36)
N_IP = 36
#: ``ip[I_VARYING]``: :func:`gdlab.fast.stepcode.varying_mask` of the call (bit ``NC + k`` set when the
#: rule's scalar k differs between hyperparameter columns: else its row is filled without gathering).
# Fields of the float64 parameter array ``fp``: the stopping rules (``tol²`` is 0 and the target
# ``-inf`` when off, so that the flag needs no switches) and the blow-up threshold's factors.
F_TOL2, F_TARGET, F_USE_BOUND, F_USE_LIMIT, F_USE_TOL, F_USE_TARGET, F_BLOWUP, F_FLOOR = range(8)
N_FP = 8


class Layout(NamedTuple):
    """The first row of each part of a block's work array. The lane rows come first (a lane that
    stops is replaced by the last one in all of them), then scratch and checkpoint rows. ``X, S, F,
    Q`` are consecutive, and so are their checkpoints ``CX, CS, CF, CQ``: one copy saves or restores
    them all."""

    X: int  # positions, one row per coordinate
    S: int  # the rule's buffers: buffer k, coordinate j at row S + k·d + j
    F: int  # the loss at the lanes' points (valid after close)
    Q: int  # the squared gradient norm there
    LIM: int  # the blow-up threshold (inf when off)
    BND: int  # the box's bound (inf when off)
    BND2: int  # its square
    C: int  # the rule's constants, one row each
    lane_rows: int
    V: int  # the rule's scalars of the current step, one row each
    ZR: int  # 0, or NaN when the gradient at the look-ahead point is not finite (look-ahead rules)
    G: int  # scratch: gradients (generic path)
    LA: int  # scratch: look-ahead points (generic path)
    LG: int  # scratch: gradients there (generic path)
    RX: int  # the positions of the step being recorded
    CX: int  # checkpoint: positions, buffers, loss, squared gradient norm
    CS: int
    CF: int
    CQ: int
    rows: int


def layout(d: int, nb: int, nc: int, ns: int) -> Layout:
    """The :class:`Layout` for ``d`` coordinates, ``nb`` buffers, ``nc`` constants, ``ns`` scalars."""
    X = 0
    S = X + d
    F = S + nb * d
    Q, LIM, BND, BND2, C = F + 1, F + 2, F + 3, F + 4, F + 5
    lane_rows = C + nc
    V = lane_rows
    ZR = V + ns
    G = ZR + 1
    LA, LG, RX, CX = G + d, G + 2 * d, G + 3 * d, G + 4 * d
    CS = CX + d
    CF = CS + nb * d
    CQ = CF + 1
    return Layout(X, S, F, Q, LIM, BND, BND2, C, lane_rows, V, ZR, G, LA, LG, RX, CX, CS, CF, CQ, CQ + 1)


_conditions = njit(inline="always", **JIT)(stopping.conditions)
_stops = njit(inline="always", **JIT)(stopping.stops)
_may_stop = njit(inline="always", **JIT)(stopping.may_stop)
_outcome = njit(inline="always", **JIT)(stopping.outcome)
_start_outcome = njit(inline="always", **JIT)(stopping.start_outcome)
_status_of = njit(inline="always", **JIT)(stopping.status_of)
_is_recorded = njit(inline="always", **JIT)(stopping.is_recorded)
_blowup_limit = njit(inline="always", **JIT)(stopping.blowup_limit)


@njit(inline="always", **JIT)
def _maximum(a, b):
    return elementwise.maximum(a, b)


# ================================================================================================
# the generic advance and close
# ================================================================================================
@njit(inline="always", **JIT)
def _row(w, r):
    """Row ``r`` of a work array, as a view (indexed from 0: loops over it vectorise, where an index
    ``r·B + i`` computed at run time would need a check for negative indices)."""
    return w[r * B:r * B + B]


@njit(inline="always", **JIT)
def _squared_rows(w, first, count, n, out):
    """``out[i] = Σ_j w[first + j][i]²`` over ``count`` rows, summed row by row (the order of
    :func:`gdlab.core.batching.run_squared_norm`)."""
    x = _row(w, first)
    for i in range(n):
        out[i] = x[i] * x[i]
    for j in range(1, count):
        x = _row(w, first + j)
        for i in range(n):
            out[i] = out[i] + x[i] * x[i]


@njit(inline="always", **JIT)
def _sum_rows(w, first, count, n, out):
    """``out[i] += Σ_j w[first + j][i]`` over ``count`` rows."""
    for j in range(count):
        x = _row(w, first + j)
        for i in range(n):
            out[i] = out[i] + x[i]


@njit(inline="always", **JIT)
def _flag(w, ip, fp, n, other, pp, blowup):
    """Whether :func:`~gdlab.core.stopping.may_stop` holds for a lane, given the loss and squared
    gradient norm in their rows, ``other`` (the state's sum and more) and scratch ``pp``; with
    ``blowup`` False, without the blow-up rule (at the start)."""
    _squared_rows(w, ip[I_X], ip[I_D], n, pp)
    f, q, lim, bnd2 = _row(w, ip[I_F]), _row(w, ip[I_Q]), _row(w, ip[I_LIM]), _row(w, ip[I_BND2])
    tol2, target = fp[F_TOL2], fp[F_TARGET]
    flag = 0
    for i in range(n):
        limit = lim[i] if blowup else math.inf
        flag |= 1 if _may_stop(pp[i], other[i], f[i], q[i], bnd2[i], limit, tol2, target) else 0
    return flag


@njit(inline="always", **JIT)
def _evaluate(w, ip, n):
    """Loss and gradient at the lanes' points (rows F and G), squared gradient norm into row Q."""
    X, F, G = ip[I_X] * B, ip[I_F] * B, ip[I_G0] * B
    call_void(ip[I_FG], w[X:], w[F:], w[G:], n, B)
    _squared_rows(w, ip[I_G0], ip[I_D], n, _row(w, ip[I_Q]))


@cfunc(ADVANCE_SIGNATURE, **JIT)
def generic_advance(wp, ipp, fpp, cp, tp, up, t0, t1, n):
    """The advance of any rule on any landscape, through their block functions' addresses."""
    ip = carray(ipp, (N_IP,))
    fp = carray(fpp, (N_FP,))
    d, nb, ns, U, T = ip[I_D], ip[I_NB], ip[I_NS], ip[I_U], ip[I_STEPS]
    w = carray(wp, (ip[I_ROWS] * B,))
    tabs = carray(tp, (ns * T * U + 1,))
    uidx = carray(up, (B,))
    X, S, V, C, ZR = ip[I_X] * B, ip[I_S] * B, ip[I_V] * B, ip[I_C] * B, ip[I_ZR] * B
    G, LA, LG = ip[I_G0] * B, ip[I_LA] * B, ip[I_LG] * B
    look = ip[I_LOOK]
    uniform = 1 if U == 1 else 0
    other = np.empty(B)
    pp = np.empty(B)
    for t in range(t0, t1):
        for k in range(ns):
            values = _row(w, ip[I_V] + k)
            column = (k * T + t) * U
            if uniform:
                values[0] = tabs[column]
            elif (ip[I_VARYING] >> (ip[I_NC] + k)) & 1:
                for i in range(n):
                    values[i] = tabs[column + uidx[i]]
            else:
                values[:n] = tabs[column]
        _evaluate(w, ip, n)
        for i in range(n):
            other[i] = 0.0
        _sum_rows(w, ip[I_S], nb * d, n, other)
        source = G
        if look != 0:  # the gradient of the step is taken at the look-ahead point
            call_void(look, w[X:], w[S:], w[C:], w[LA:], d, n, B, uniform)
            call_void(ip[I_G], w[LA:], w[ZR:], w[LG:], n, B)
            refused = _row(w, ip[I_ZR])
            for i in range(n):
                refused[i] = 0.0
            for j in range(d):
                gradient = _row(w, ip[I_LG] + j)
                for i in range(n):
                    refused[i] = refused[i] + (gradient[i] - gradient[i])
            _sum_rows(w, ip[I_LG], d, n, other)
            source = LG
        flag = _flag(w, ip, fp, n, other, pp, True)
        call_void(ip[I_UPDATE], w[X:], w[source:], w[X:], w[S:], w[C:], w[V:], d, n, B, uniform)
        if flag != 0:
            return t
    return t1


@cfunc(CLOSE_SIGNATURE, **JIT)
def generic_close(wp, ipp, fpp, n):
    """The close of any landscape, through its block function's address."""
    ip = carray(ipp, (N_IP,))
    fp = carray(fpp, (N_FP,))
    w = carray(wp, (ip[I_ROWS] * B,))
    other = np.zeros(B)
    pp = np.empty(B)
    _evaluate(w, ip, n)
    _sum_rows(w, ip[I_S], ip[I_NB] * ip[I_D], n, other)
    return _flag(w, ip, fp, n, other, pp, True)


# ================================================================================================
# the block driver
# ================================================================================================
@njit(inline="always", **JIT)
def _copy_rows(w, source, target, count):
    for k in range(count):
        w[(target + k) * B:(target + k + 1) * B] = _row(w, source + k)


@njit(inline="always", **JIT)
def _absmax(w, X, d, i):
    """``max_j |x_j|`` of lane ``i`` (the order of :func:`gdlab.core.batching.run_absmax`)."""
    m = abs(w[X * B + i])
    for j in range(1, d):
        m = _maximum(m, abs(w[(X + j) * B + i]))
    return m


@njit(nogil=True, **JIT)
def _finish(w, ip, i, r, k, code, value, x_row, f_row, q_row, status, reason, rvalue, stopped, npoints, out_x, out_f,
            out_gn, pos, loss, gnr):
    """Write the outcome of the run ``r`` in lane ``i``, stopped at point ``k`` with ``code`` and
    ``value``, its final point (rows ``x_row``, ``f_row``, ``q_row``) and the record's rows from ``k``."""
    d = ip[I_D]
    status[r] = _status_of(code)
    reason[r] = code
    rvalue[r] = value
    stopped[r] = k
    npoints[r] = k + 1 if _is_recorded(code) else k
    for j in range(d):
        out_x[r, j] = w[(x_row + j) * B + i]
    out_f[r] = w[f_row * B + i]
    out_gn[r] = math.sqrt(w[q_row * B + i])
    if ip[I_RECORD] != 0:
        for kk in range(k, ip[I_STEPS] + 1):
            for j in range(d):
                pos[kk, r, j] = out_x[r, j]
            loss[kk, r] = out_f[r]
            gnr[kk, r] = out_gn[r]


@njit(inline="always", **JIT)
def _remove(w, ip, lanes, i, n):
    """Lane ``n - 1`` takes the place of lane ``i`` (in the lane rows, and in the rows of the step
    being decided: its look-ahead flag and the checkpoint)."""
    last = n - 1
    if i != last:
        for row in range(ip[I_LANE_ROWS]):
            w[row * B + i] = w[row * B + last]
        w[ip[I_ZR] * B + i] = w[ip[I_ZR] * B + last]
        for row in range(ip[I_CX], ip[I_ROWS]):
            w[row * B + i] = w[row * B + last]
        lanes[0, i] = lanes[0, last]
        lanes[1, i] = lanes[1, last]


@njit(nogil=True, **JIT)
def _settle(w, ip, fp, lanes, n, k, status, reason, rvalue, stopped, npoints, out_x, out_f, out_gn, pos, loss, gnr):
    """The exact decision at point ``k`` for every lane (the new point in the lane rows, the previous
    one in the checkpoint rows): lanes that stop are finished and removed. Returns the lanes left."""
    d, nb = ip[I_D], ip[I_NB]
    X, S, F, Q, LIM, BND, ZR = ip[I_X], ip[I_S], ip[I_F], ip[I_Q], ip[I_LIM], ip[I_BND], ip[I_ZR]
    CX, CF, CQ = ip[I_CX], ip[I_CF], ip[I_CQ]
    tol2, target = fp[F_TOL2], fp[F_TARGET]
    use_bound, use_limit = fp[F_USE_BOUND] != 0, fp[F_USE_LIMIT] != 0
    use_tol, use_target = fp[F_USE_TOL] != 0, fp[F_USE_TARGET] != 0
    look = ip[I_LOOK] != 0
    i = 0
    while i < n:
        zx = 0.0
        for j in range(d):
            value = w[(X + j) * B + i]
            zx = zx + (value - value)
        if look:
            zx = zx + w[ZR * B + i]
        zs = 0.0
        for row in range(S, S + nb * d):
            value = w[row * B + i]
            zs = zs + (value - value)
        f, q = w[F * B + i], w[Q * B + i]
        am = _absmax(w, X, d, i)
        c0, c1, c2, c3, c4, c5, c6, c7 = _conditions(zx != zx, zs != zs, f, q, use_bound & (am > w[BND * B + i]),
                                                     w[LIM * B + i], tol2, target, use_limit, use_tol, use_target)
        if _stops(c0, c1, c2, c3, c4, c5, c6, c7):
            code, value = _outcome(c0, c1, c2, c3, c4, c5, c6, c7, w[CF * B + i], f, math.sqrt(q), am)
            if _is_recorded(code):
                _finish(w, ip, i, lanes[0, i], k, code, value, X, F, Q, status, reason, rvalue, stopped, npoints,
                        out_x, out_f, out_gn, pos, loss, gnr)
            else:
                _finish(w, ip, i, lanes[0, i], k, code, value, CX, CF, CQ, status, reason, rvalue, stopped, npoints,
                        out_x, out_f, out_gn, pos, loss, gnr)
            _remove(w, ip, lanes, i, n)
            n -= 1
        else:
            i += 1
    return n


@njit(nogil=True, **JIT)
def _record(w, ip, lanes, n, k, x_row, ordered, pos, loss, gnr):
    """Point ``k`` of the lanes (positions from rows ``x_row``, loss and squared gradient norm from
    theirs) into the record; as slices while the lanes are ``ordered`` (lane ``i`` holds run
    ``lanes[0, 0] + i``: no lane was removed yet)."""
    f, q = _row(w, ip[I_F]), _row(w, ip[I_Q])
    first = lanes[0, 0]
    if ordered:
        for j in range(ip[I_D]):
            pos[k, first:first + n, j] = _row(w, x_row + j)[:n]
        loss[k, first:first + n] = f[:n]
        g = gnr[k, first:first + n]
        for i in range(n):
            g[i] = math.sqrt(q[i])
        return
    for j in range(ip[I_D]):
        x = _row(w, x_row + j)
        for i in range(n):
            pos[k, lanes[0, i], j] = x[i]
    for i in range(n):
        loss[k, lanes[0, i]] = f[i]
        gnr[k, lanes[0, i]] = math.sqrt(q[i])


@njit(inline="always", **JIT)
def _state_rows(ip):
    """The rows a step changes: positions, buffers, loss and squared gradient norm, consecutive from
    ``X`` in the layout, as their checkpoint is from ``CX``."""
    return ip[I_D] * (1 + ip[I_NB]) + 2


@njit(inline="always", **JIT)
def _checkpoint(w, ip):
    _copy_rows(w, ip[I_X], ip[I_CX], _state_rows(ip))


@njit(inline="always", **JIT)
def _restore(w, ip):
    _copy_rows(w, ip[I_CX], ip[I_X], _state_rows(ip))


@njit(nogil=True, **JIT)
def block(b, w, lanes, ip, fp, x0, consts, tabs, init, uidx, bounds, out_x, out_f, out_gn, status, reason, rvalue,
          stopped, npoints, pos, loss, gnr):
    """All the steps of block ``b`` (runs ``b·B .. b·B + n``) in the work array ``w`` and ``lanes`` (the
    run and the hyperparameter column of each lane); see :func:`gdlab.fast.trajectory.run_plan`.
    ``uidx`` (each run's hyperparameter column) is read only when there are several columns,
    ``bounds`` (each run's bound) only when it has more than one entry."""
    d, R, steps, record = ip[I_D], ip[I_R], ip[I_STEPS], ip[I_RECORD] != 0
    nb, nc = ip[I_NB], ip[I_NC]
    advance, close = ip[I_ADVANCE], ip[I_CLOSE]
    X, S, F, Q, LIM, BND, BND2, C = ip[I_X], ip[I_S], ip[I_F], ip[I_Q], ip[I_LIM], ip[I_BND], ip[I_BND2], ip[I_C]
    use_bound, use_limit = fp[F_USE_BOUND] != 0, fp[F_USE_LIMIT] != 0
    tol2, target = fp[F_TOL2], fp[F_TARGET]
    use_tol, use_target = fp[F_USE_TOL] != 0, fp[F_USE_TARGET] != 0
    chunk = ip[I_CHUNK]
    r0 = b * B
    n = min(B, R - r0)

    # row by row, so that the loops vectorise
    uniform = ip[I_U] == 1
    for i in range(n):
        lanes[0, i] = r0 + i
        lanes[1, i] = 0 if uniform else uidx[r0 + i]
    for j in range(d):
        x = _row(w, X + j)
        for i in range(n):
            x[i] = x0[r0 + i, j]
    for k in range(nb):
        for j in range(d):
            buffer = _row(w, S + k * d + j)
            if uniform:
                buffer[:n] = init[k, 0]
            else:
                for i in range(n):
                    buffer[i] = init[k, lanes[1, i]]
    for k in range(nc):
        constant = _row(w, C + k)
        if uniform:
            constant[:n] = consts[k, 0]
        else:
            for i in range(n):
                constant[i] = consts[k, lanes[1, i]]
    bnd, bnd2 = _row(w, BND), _row(w, BND2)
    if bounds.size == 1:
        bnd[:n] = bounds[0] if use_bound else math.inf
    else:
        for i in range(n):
            bnd[i] = bounds[r0 + i] if use_bound else math.inf
    for i in range(n):
        bnd2[i] = bnd[i] * bnd[i]
    _evaluate(w, ip, n)

    # -- the start: the exact decision only when the check flags a lane -------------------------------
    blowup, floor = fp[F_BLOWUP], fp[F_FLOOR]
    f_row, lim = _row(w, F), _row(w, LIM)
    for i in range(n):
        lim[i] = _blowup_limit(f_row[i], blowup, floor) if use_limit else math.inf
    other, pp = _row(w, ip[I_LA]), _row(w, ip[I_LG])  # scratch rows, free at the start
    other[:n] = 0.0
    i = n if _flag(w, ip, fp, n, other, pp, False) == 0 else 0
    while i < n:
        f, q = w[F * B + i], w[Q * B + i]
        am = _absmax(w, X, d, i)
        code, value = _start_outcome(f, q, math.sqrt(q), am, use_bound & (am > w[BND * B + i]), tol2, target,
                                     use_tol, use_target)
        if code != GOING:
            _finish(w, ip, i, lanes[0, i], 0, code, value, X, F, Q, status, reason, rvalue, stopped, npoints, out_x,
                    out_f, out_gn, pos, loss, gnr)
            _remove(w, ip, lanes, i, n)
            n -= 1
        else:
            i += 1
    ordered = n == min(B, R - r0)  # no lane removed: lane i holds run r0 + i
    if record:
        _record(w, ip, lanes, n, 0, X, ordered, pos, loss, gnr)

    # -- the steps, in chunks ------------------------------------------------------------------------
    t = 0
    exact_until = 0  # steps before this one are replayed one at a time, each decided exactly
    while t < steps and n > 0:
        size = 1 if t < exact_until else min(chunk, steps - t)
        _checkpoint(w, ip)
        if record and size > 1:  # step by step: each point into the record (the advance writes its loss)
            reached = t + size
            for step in range(t, t + size):
                _copy_rows(w, X, ip[I_RX], d)
                done = call_int64(advance, w, ip, fp, consts, tabs, lanes[1], step, step + 1, n)
                _record(w, ip, lanes, n, step, ip[I_RX], ordered, pos, loss, gnr)
                if done == step:
                    reached = step
                    break
        else:
            reached = call_int64(advance, w, ip, fp, consts, tabs, lanes[1], t, t + size, n)
        flagged = reached < t + size
        if not flagged or size == 1:
            flagged = call_int64(close, w, ip, fp, n) != 0 or flagged
        if flagged and size > 1:  # replay this chunk one step at a time, up to the flagged step
            _restore(w, ip)
            exact_until = min(reached, t + size - 1) + 1
            continue
        t += size
        if flagged:
            left = _settle(w, ip, fp, lanes, n, t, status, reason, rvalue, stopped, npoints, out_x, out_f, out_gn,
                           pos, loss, gnr)
            ordered = ordered and left == n
            n = left
        if record:
            _record(w, ip, lanes, n, t, X, ordered, pos, loss, gnr)

    for j in range(d):
        x = _row(w, X + j)
        for i in range(n):
            out_x[lanes[0, i], j] = x[i]
    f_row, q_row = _row(w, F), _row(w, Q)
    for i in range(n):  # the runs no rule stopped: max_steps after every step
        r = lanes[0, i]
        out_f[r] = f_row[i]
        out_gn[r] = math.sqrt(q_row[i])
        status[r] = MAX_STEPS
        reason[r] = R_MAX_STEPS
        rvalue[r] = math.nan
        stopped[r] = steps
        npoints[r] = steps + 1


@njit(nogil=True, **JIT)
def run_blocks(first, every, ip, fp, x0, consts, tabs, init, uidx, bounds, out_x, out_f, out_gn, status, reason,
               rvalue, stopped, npoints, pos, loss, gnr):
    """Blocks ``first, first + every, ...`` (one thread's share: threads take blocks in turn, so runs
    that finish early in one region of a grid are spread over the threads). Releases the GIL."""
    nblocks = (ip[I_R] + B - 1) // B
    w = np.zeros(ip[I_ROWS] * B + 1)  # every row a block reads is written first: no clearing between blocks
    lanes = np.empty((2, B), np.int64)
    for b in range(first, nblocks, every):
        block(b, w, lanes, ip, fp, x0, consts, tabs, init, uidx, bounds, out_x, out_f, out_gn, status, reason,
              rvalue, stopped, npoints, pos, loss, gnr)


def driver_arguments() -> tuple[np.ndarray, ...]:
    """Arrays of the kinds :func:`gdlab.fast.trajectory.run_plan` passes (to compile ahead of a call)."""
    f1, f2, f3 = np.zeros(1), np.zeros((1, 1)), np.zeros((1, 1, 1))
    i1, b1 = np.zeros(1, np.int64), np.zeros(1, np.int8)
    return (np.zeros(N_IP, np.int64), np.zeros(N_FP), f2, f2, f1, f2, i1, f1, f2, f1, f1, b1, b1, f1, i1, i1, f3,
            f2, f2)
