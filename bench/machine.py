"""The machine a benchmark runs on, as the results describe it: CPU model, SIMD extensions, the CPU
numba compiles for. Shared by run_all.py (RESULTS.md's header) and the benchmarks that print it."""

from __future__ import annotations

import os
import platform
from pathlib import Path

#: The x86 vector extensions worth naming, widest first.
SIMD = ("avx512f", "avx2", "fma", "avx", "sse4_2")


def _cpuinfo_value(key: str) -> str | None:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith(key):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return None


def cpu_model() -> str:
    """The CPU's model name (``/proc/cpuinfo``, else the platform's processor string)."""
    return _cpuinfo_value("model name") or platform.processor() or "unknown CPU"


def simd_flags() -> list[str]:
    """The extensions of :data:`SIMD` the CPU reports (empty when it reports none or cannot say)."""
    flags = (_cpuinfo_value("flags") or "").split()
    return [name for name in SIMD if name in flags]


def numba_target() -> str:
    """The CPU numba compiles for: ``NUMBA_CPU_NAME`` when set, else the host's (LLVM's name)."""
    try:
        import llvmlite.binding as llvm

        return os.environ.get("NUMBA_CPU_NAME") or llvm.get_host_cpu_name()
    except Exception:  # llvmlite missing or broken: the description goes on without it
        return "unknown"
