"""The fused, in-place, multithreaded step kernels (numba): any rule's element body, one pass over memory.

One parallel driver, :func:`drive`, runs every rule. It walks params, gradient and state buffers
once, in *units* of a few thousand elements (:data:`~gdlab.fast.config.SEGMENT`), each thread a
contiguous chunk of units, and the rule's kernel updates each unit in place, checking that the
gradient and the new params are finite:

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

**The kernels** are generated per rule class and set of options (:func:`kernel_module`): a loop
over the unit's elements that calls the rule's own :meth:`~gdlab.core.rule.Rule.element` body,
compiled by numba with the options as constants, in the params' dtype (float32 stays float32: the
values arrive rounded to it, as NumPy rounds a Python float against a float32 array). Nothing here
names an optimizer, and the arithmetic is the body's: no fast-math (no reassociation, no FMA
contraction), ``error_model="numpy"`` so that a division by zero gives inf/NaN (then caught by the
check) instead of raising. Each kernel is a ``cfunc`` with one C signature; the driver calls it
through its address and sees every array as raw bytes, so one compilation of the driver serves
every rule and both dtypes, and LLVM never re-optimises the kernels inside it.

**Threads.** The caller passes the thread count (``numba.get_num_threads()`` at call time, so
``numba.set_num_threads`` is respected; fewer threads for small steps, see
:data:`~gdlab.fast.config.MIN_PER_THREAD`) and the driver splits the units into that many
contiguous chunks. The kernels hold the GIL: concurrent calls from several Python threads are
serialised, which keeps every numba threading layer safe.
"""

from __future__ import annotations

import sys
import threading
from typing import Any

import numpy as np
from numba import carray, cfunc, njit, prange, types

from gdlab.core import elementwise
from gdlab.core.rule import Rule, value_names
from gdlab.fast import generated, primitives
from gdlab.fast._cache import configure_numba_cache
from gdlab.fast.calls import call_int64

CACHE_DIR = configure_numba_cache()

JIT = {"cache": True, "error_model": "numpy", "fastmath": False}
_JIT = JIT
_NUMBA_DTYPES = {np.dtype(np.float32): types.float32, np.dtype(np.float64): types.float64}


def signature(dtype: Any) -> Any:
    """The C signature of every kernel: pointers to the unit's params p, gradient g, buffers
    b0..b2, backups sp, s0..s2 (the per-thread scratch) and values c, then the unit's length n;
    returns 1 when the gradient or a new param of some element is not finite, else 0."""
    ptr = types.CPointer(_NUMBA_DTYPES[np.dtype(dtype)])
    return types.int64(*([ptr] * 10), types.int64)


SIGNATURES = {"float32": signature(np.float32), "float64": signature(np.float64)}


@njit(inline="always", **_JIT)
def good(gr, pn):
    """The gradient entry ``gr`` and the new param ``pn`` are finite (branch-free, vectorisable):
    x − x is 0 for a finite x and NaN otherwise, and 0 + 0 cannot overflow."""
    z = (gr - gr) + (pn - pn)
    return z == z


@njit(inline="always", **_JIT)
def put(a, backup, i, new, old, ok, one, select):
    """Store element ``i`` of one updated array (``select`` is a compile-time constant).

    Backup mode: ``a[i] = new``, saving ``old`` in ``backup[i]``. Select mode: ``a[i] = new`` if
    ``ok`` else ``old``. The old value is written as ``old·one`` with ``one`` = 1 read from the
    values at run time: equal (x·1 = x), but LLVM cannot tell it is what ``a[i]`` holds, so it
    does not turn the store into a masked store (microcoded, several times slower, on AMD CPUs).
    """
    if select:
        a[i] = new if ok else old * one
    else:
        backup[i] = old
        a[i] = new


# --------------------------------------------------------------------------------------------
# Generated kernels: one module per rule class and options, four kernels in it (two dtypes, two
# modes). The values array holds the body's constants and scalars in the order of its signature,
# then 1 (``one``, see :func:`put`).
# --------------------------------------------------------------------------------------------
_MODULE_HEAD = '''"""Step kernels of {qualname} with options {options}; generated by gdlab.fast.kernels, do not edit."""
# sources: {stamp}
from numba import carray, cfunc, njit

import gdlab.fast.primitives  # noqa: F401 (the element primitives, compiled)
from gdlab.fast.kernels import JIT, SIGNATURES, good, put
from gdlab.fast.generated import OBJECTS

_Rule = OBJECTS[{key!r}]

_body = njit(inline="always", **JIT)(_Rule.element)
'''

_KERNEL = """

@cfunc(SIGNATURES["{dtype}"], **JIT)
def {fname}(pp, gp, b0p, b1p, b2p, spp, s0p, s1p, s2p, cp, n):
    p = carray(pp, n)
    g = carray(gp, n)
    sp = carray(spp, n)
{buffers}    c = carray(cp, {count})
{values}    one = c[{last}]
    zero = one - one
    ok = True
    for i in range(n):
        gi = g[i]
        pi = p[i]
{loads}        new = _body({args})
        fine = good(gi, new[0])
{stores}        put(p, sp, i, new[0], pi, fine, one, {select})
        ok = ok & fine
    return 0 if ok else 1
"""


def kernel_source(rule: Rule) -> str:
    """The generated module of ``rule``'s class and options (four kernels: f32/f64 × backup/select)."""
    cls = type(rule)
    options = rule.options()
    active = [b.name for b in rule.active_buffers()]
    slot = {name: k for k, name in enumerate(active)}
    names = [n for n in value_names(cls.element, cls) if n not in options]
    args = ["pi", "gi"] + [f"o{slot[b.name]}" if b.name in slot else "zero" for b in cls.buffers]
    args += [repr(bool(options[n])) if n in options else f"v{names.index(n)}" for n in value_names(cls.element, cls)]
    sources = generated.stamp(cls, elementwise, primitives, Rule, sys.modules[__name__])
    sources += " " + generated.code_stamp(cls.element)
    text = _MODULE_HEAD.format(qualname=cls.__qualname__, options=sorted(options.items()),
                               key=generated.provide(cls, cls.element, cls.lookahead), stamp=sources)
    for dtype in ("float32", "float64"):
        for select in (False, True):
            buffers = "".join(f"    b{k} = carray(b{k}p, n)\n    s{k} = carray(s{k}p, n)\n" for k in slot.values())
            values = "".join(f"    v{q} = c[{q}]\n" for q in range(len(names)))
            loads = "".join(f"        o{k} = b{k}[i]\n" for k in slot.values())
            stores = ""
            for b_index, b in enumerate(cls.buffers):
                if b.name in slot:
                    k = slot[b.name]
                    stores += f"        put(b{k}, s{k}, i, new[{b_index + 1}], o{k}, fine, one, {select})\n"
            text += _KERNEL.format(
                dtype=dtype, fname=kernel_name(dtype, select), buffers=buffers, count=len(names) + 1, values=values,
                last=len(names), loads=loads, args=", ".join(args), stores=stores, select=select,
            )
    return text


def kernel_name(dtype: Any, select: bool) -> str:
    return f"{np.dtype(dtype).name}_{'select' if select else 'backup'}"


def value_order(rule: Rule) -> list[str]:
    """The names of the values a kernel of ``rule`` reads, in order (then 1)."""
    cls = type(rule)
    options = rule.options()
    return [n for n in value_names(cls.element, cls) if n not in options]


#: Kernel addresses by (rule class, options): {(dtype name, select): address}.
_compiled: dict[tuple[type, tuple[tuple[str, bool], ...]], dict[tuple[str, bool], int]] = {}
_lock = threading.Lock()


def rule_key(rule: Rule) -> tuple[type, tuple[tuple[str, bool], ...]]:
    """What the generated code of ``rule`` depends on: its class and its options."""
    return type(rule), tuple(sorted(rule.options().items()))


def kernel_address(rule: Rule, dtype: Any, select: bool = False) -> int:
    """Address of ``rule``'s kernel for ``dtype`` in backup or select mode (generated, compiled or
    loaded on first use)."""
    key = rule_key(rule)
    addresses = _compiled.get(key)
    if addresses is None:
        primitives.register_helpers()
        module = generated.load(kernel_source(rule), "kernels")
        addresses = {(dt, sel): int(getattr(module, kernel_name(dt, sel)).address)
                     for dt in ("float32", "float64") for sel in (False, True)}
        with _lock:
            _compiled[key] = addresses
    return addresses[(np.dtype(dtype).name, bool(select))]


def active_slots(rule: Rule) -> list[str]:
    """The names of ``rule``'s buffers in kernel slots b0, b1, b2 (its active buffers, in order)."""
    return [b.name for b in rule.active_buffers()]


def _scan(pp, gp, b0p, b1p, b2p, opp, o0p, o1p, o2p, cp, n):
    """Not a rule: 1 when the gradient ``g`` has a non-finite entry (the scan of long runs)."""
    g = carray(gp, n)
    ok = True
    for i in range(n):
        z = g[i] - g[i]
        ok = ok & (z == z)
    return 0 if ok else 1


_scans: dict[str, Any] = {}


def scan_address(dtype: Any) -> int:
    """Address of the gradient scan for ``dtype`` (compiled or loaded on first use)."""
    name = np.dtype(dtype).name
    fn = _scans.get(name)
    if fn is None:
        with _lock:
            fn = _scans.get(name)
            if fn is None:
                fn = _scans[name] = cfunc(SIGNATURES[name], **_JIT)(_scan)
    return int(fn.address)


# --------------------------------------------------------------------------------------------
# The driver. It sees every array as raw bytes (uint8) and element positions times the item size,
# so a single compilation serves float32 and float64; only the kernels know the dtype.
# --------------------------------------------------------------------------------------------


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
def _scan_chunk(addr, g, c, isz, d, segment, per_row, u0, u1, unitbad):
    """Flag the units [u0, u1) (segments of long runs) whose gradient is not all finite."""
    for u in range(u0, u1):
        lo, hi, _, _ = _unit_bounds(u, d, segment, per_row, 1, 0, True)
        gs = g[lo * isz : hi * isz]
        if call_int64(addr, gs, gs, gs, gs, gs, gs, gs, gs, gs, c, hi - lo):
            unitbad[u] = 1


@njit(**_JIT)
def _run_kernel(addr, p, g, b0, b1, b2, scr, w, c, isz, a, b):
    """The kernel on elements [a, b), in place (in backup mode the old values go to the scratch);
    1 when something is not finite."""
    x, y, n = a * isz, b * isz, (b - a) * isz
    return call_int64(
        addr, p[x:y], g[x:y], b0[x:y], b1[x:y], b2[x:y],
        scr[0:n], scr[w : w + n], scr[2 * w : 2 * w + n], scr[3 * w : 3 * w + n], c, b - a,
    )


@njit(**_JIT)
def _step_chunk(addr, p, g, b0, b1, b2, c, isz, wmask, d, segment, per_row, rows_per_unit, width, long_rows,
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
        if _run_kernel(addr, p, g, b0, b1, b2, scr, w, c, isz, lo, hi) == 0:
            continue
        if long_rows:
            unitbad[u] = 1
            continue
        _restore(p, b0, b1, b2, scr, w, lo * isz, hi * isz, wmask)
        for r in range(r0, r1):
            if _run_kernel(addr, p, g, b0, b1, b2, scr, w, c, isz, r * d, (r + 1) * d) != 0:
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
def drive(meta, p, g, b0, b1, b2, c, unitbad, rowbad):
    """One phase of a fused in-place step over runs of ``d`` elements (see :func:`layout`).

    ``meta`` holds :data:`META_FIELDS`. Arrays are raw bytes (uint8 views) of the flat params,
    gradient, buffers ``b0..b2`` (empty for unused slots) and values ``c`` (params' dtype).
    Phase 0 scans the gradient of long runs (kernel ``scan_addr``); phase 1
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
            _scan_chunk(scan_addr, g, c, isz, d, segment, per_row, u0, u1, unitbad)
        else:
            _step_chunk(
                addr, p, g, b0, b1, b2, c, isz, wmask, d, segment, per_row, rows_per_unit, width, long_rows,
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
