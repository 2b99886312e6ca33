"""Name the operating system's thread, so per-thread CPU (``/proc/<pid>/task/*/comm``, ``top -H``)
tells the server's own threads apart: Python 3.11 leaves every thread it starts named ``python``.

Used by the WAL writer, the batcher and the decode threads; ``bench/ingest.py`` sums CPU by these
names. Linux only (``prctl(PR_SET_NAME)``); elsewhere, or if it fails, nothing happens.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import sys

__all__ = ["name_os_thread"]

_PR_SET_NAME = 15
_prctl = None
if sys.platform.startswith("linux"):
    try:
        _prctl = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True).prctl
    except (OSError, AttributeError):
        _prctl = None


def name_os_thread(name: str) -> None:
    """Name the calling thread ``name`` (the kernel keeps its first 15 bytes)."""
    if _prctl is not None:
        _prctl(_PR_SET_NAME, ctypes.c_char_p(name.encode()[:15]), 0, 0, 0)
