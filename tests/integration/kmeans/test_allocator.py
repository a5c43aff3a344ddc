"""The dask engine's allocator settings, in a fresh interpreter started as Dask's nanny starts its
workers (with MALLOC_TRIM_THRESHOLD_, which fixes glibc's mmap threshold at 128 KiB)."""

import os
import platform
import subprocess
import sys

import pytest

# Each step asks for a block larger than any before it, so that no freed block can serve it:
# glibc maps it with mmap (1) or carves it from the heap (0), read from the IS_MMAPPED bit (0x2)
# of its chunk header.
PROBE = """
import ctypes
import numpy as np
from segcore.kmeans import allocator

def mapped(kib):
    block = np.ones(kib * 1024 // 8)
    header = ctypes.c_size_t.from_address(block.ctypes.data - ctypes.sizeof(ctypes.c_size_t))
    return int(bool(header.value & 0x2))

started = mapped(256)
allocator.keep_freed_memory()
kept = mapped(512)
allocator.trim_again()
print(started, kept, mapped(1024))
"""


def probe(**env: str) -> str:
    environment = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, env={**environment, **env}, timeout=60
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split()


@pytest.mark.skipif(platform.libc_ver()[0] != "glibc", reason="glibc's allocator only")
def test_a_worker_started_with_a_trim_threshold_keeps_freed_memory_while_fitting_then_trims_again():
    assert probe(MALLOC_TRIM_THRESHOLD_="65536") == ["1", "0", "1"]
