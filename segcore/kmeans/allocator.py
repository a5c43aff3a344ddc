"""glibc's allocator on Dask workers, for the length of a fit.

Dask's nanny starts its workers with ``MALLOC_TRIM_THRESHOLD_=65536`` (its config
``distributed.nanny.pre-spawn-environ``), so that freed memory goes back to the system at once.
Setting it also fixes glibc's mmap threshold at 128 KiB: every temporary of the kernels above that
(a chunk's (rows, k) scores are 256 KiB at k=8) becomes a fresh ``mmap`` and its page faults, and
a Lloyd step took twice as long as in a plain process. :func:`keep_freed_memory` lets such a
worker reuse its freed memory, as a process started without the variable does;
:func:`trim_again` returns to the settings it was started with and gives the memory back. Elsewhere
(no variable, or not glibc) both do nothing. Two fits on one cluster at once share the setting:
the first to end restores it, and the other runs on at the slower pace.
"""

from __future__ import annotations

import ctypes
import os
import platform

M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # mallopt's parameters (malloc.h)
GLIBC_MMAP_THRESHOLD = 128 * 1024  # glibc's default; fixed once any threshold variable is set
MMAP_THRESHOLD_MAX = 32 * 1024 * 1024  # the most glibc's own adjustment ever reaches (64-bit)


def _glibc():
    """The C library, where it is glibc and the process was started with a trim threshold."""
    if platform.libc_ver()[0] != "glibc" or "MALLOC_TRIM_THRESHOLD_" not in os.environ:
        return None
    return ctypes.CDLL(None)


def keep_freed_memory() -> None:
    """Let the allocator reuse freed blocks of up to 32 MiB instead of mapping and trimming them."""
    libc = _glibc()
    if libc is not None:
        libc.mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_MAX)
        libc.mallopt(M_TRIM_THRESHOLD, 2 * MMAP_THRESHOLD_MAX)


def trim_again() -> None:
    """The thresholds the process was started with, and the freed memory given back now."""
    libc = _glibc()
    if libc is not None:
        mmap = int(os.environ.get("MALLOC_MMAP_THRESHOLD_", GLIBC_MMAP_THRESHOLD))
        libc.mallopt(M_MMAP_THRESHOLD, mmap)
        libc.mallopt(M_TRIM_THRESHOLD, int(os.environ["MALLOC_TRIM_THRESHOLD_"]))
        libc.malloc_trim(0)
