"""Keep the node's large transient buffers in the heap instead of fresh mappings.

Every C-STORE passes a 0.5 MiB CT slice through several buffers (the PDU as
read, the reassembled dataset, the Part 10 bytes). glibc serves allocations
above its ``mmap`` threshold with a new mapping and unmaps it on free, so each
buffer costs ~128 page faults to fault in zeroed pages again: measured at
~250 faults and ~1 ms of CPU per instance on the 2-core machine. Raising the
threshold (and the trim threshold, so freed heap is not handed straight back)
lets these buffers reuse the same heap pages: 2 faults per instance.

Larger objects (multi-frame instances above :data:`MMAP_THRESHOLD`) are still
mapped, and at most :data:`TRIM_THRESHOLD` of free heap is kept per arena.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys

log = logging.getLogger(__name__)

#: Allocations at or above this size get their own mapping.
MMAP_THRESHOLD = 16 << 20
#: Free memory at the top of a heap beyond this is returned to the system.
TRIM_THRESHOLD = 64 << 20
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3  # <malloc.h>
_tuned: bool | None = None


def tune_malloc() -> bool:
    """Apply the thresholds once per process; ``False`` where there is no glibc ``mallopt``."""
    global _tuned
    if _tuned is not None:
        return _tuned
    _tuned = False
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):  # musl and others: keep their defaults
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    _tuned = bool(mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD)) and bool(
        mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
    if not _tuned:
        log.info("mallopt refused the node's thresholds; keeping the defaults")
    return _tuned
