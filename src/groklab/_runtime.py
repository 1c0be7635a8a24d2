"""Process-level tuning, applied once by the CLI and by ``train``.

glibc's malloc returns large freed blocks (> 128 KiB, rising adaptively) to the system and
trims the heap top eagerly; a training step that allocates and frees the same
few-megabyte activations every step then pays page faults for every one of them. Raising
the mmap and trim thresholds keeps that memory in the process (its effect on a toy
ensemble was measured once, on 2026-11-22, as LOG.md records; it is no current claim).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_done = False


def tune_malloc() -> bool:
    """Raise glibc's mmap/trim thresholds (Linux only; a no-op elsewhere). Idempotent."""
    global _done
    if _done or not sys.platform.startswith("linux"):
        return _done
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        ok = libc.mallopt(_M_MMAP_THRESHOLD, 32 * 1024 * 1024) and libc.mallopt(_M_TRIM_THRESHOLD, 1 << 30)
    except (OSError, AttributeError):  # not glibc
        return False
    _done = bool(ok)
    return _done
