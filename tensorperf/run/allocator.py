"""Opt-in: keep freed memory in the process during sweeps and long streamed runs (glibc only; a no-op
elsewhere). The library never calls it (it changes malloc for the whole process); the command line
does, and a program that runs large sweeps may call :func:`keep_freed_memory` once itself.

The engine allocates and frees grid-sized temporaries of the same few sizes, op after op (a sweep)
and chunk after chunk (a streamed sweep). glibc's defaults give large freed blocks back to the
kernel (``M_TRIM_THRESHOLD``, and ``mmap`` for blocks above a threshold that adapts), so every new
temporary faults its pages in again; on the project's 2-core machine that is a third of a float64
streamed search (benchmarks/README.md). Raising the trim threshold and pinning the mmap threshold at
its maximum (32 MiB: blocks above it, 4M+ float64 points, are still mapped per allocation) keeps
those pages mapped and reused. RSS then stays at the run's high-water mark, which the memory
budget (streaming) or the sweep's own size already bounds.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import sys

M_TRIM_THRESHOLD = -1  # mallopt parameters (malloc.h)
M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_MAX = 32 * 2**20  # glibc's upper limit on 64-bit (4 MiB · sizeof(long))
TRIM_THRESHOLD = 2**30  # give memory back only when 1 GiB lies free at the top of the heap


@functools.cache
def keep_freed_memory() -> bool:
    """Tune glibc malloc once per process; True when it took effect."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # not glibc (e.g. musl has no mallopt)
        return False
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return bool(mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)) and bool(mallopt(M_TRIM_THRESHOLD, TRIM_THRESHOLD))
