"""Process-level tuning for CPU training, applied by the CLI (never on plain ``import semsim``)."""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import sys

_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc mallopt parameters (malloc.h)


def keep_freed_memory() -> bool:
    """Stop glibc from returning every large freed block to the OS.

    Each CPU training step allocates and frees several logits-sized buffers (batch × block ×
    50,257 floats, ~200 MB); by default glibc mmaps and unmaps each one, and refaulting those
    pages cost ~40% of the demo's wall time. Keeping them in the heap made 40 demo steps 1.78× faster
    on a 2-core machine (benchmarks/cpu_allocator.sh). ``SEMSIM_KEEP_FREED_MEMORY=0`` turns it off.
    """
    if not sys.platform.startswith("linux") or os.environ.get("SEMSIM_KEEP_FREED_MEMORY") == "0":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, 2**30))
    except (OSError, AttributeError):  # not glibc (e.g. musl): nothing to tune
        return False
