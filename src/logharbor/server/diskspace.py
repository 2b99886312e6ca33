"""A full disk, recognised wherever it surfaces: as an ``OSError``, from SQLite, from the engine.

ENOSPC reaches the server through many doors (the WAL's write, a state file, the metadata
database, the store's insert), each with its own exception type and wording. Every one of them
must become a 507 with ``Retry-After`` for a client and a "no space" reason in ``/readyz``, never
a 500 (issue #20); :func:`is_no_space` is the one place that knows their shapes.
"""

from __future__ import annotations

import errno
import shutil
from pathlib import Path

__all__ = ["NO_SPACE_ERRNOS", "free_bytes", "is_no_space"]

NO_SPACE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT})
#: how the engine (chDB / ClickHouse) and SQLite word a full disk
_TEXTS = ("no space left on device", "not_enough_space", "code: 243.", "cannot reserve",
          "database or disk is full", "disk quota exceeded")


def is_no_space(exc: BaseException | None) -> bool:
    """True when ``exc`` (or anything in its cause/context chain) means the disk is full."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        if isinstance(exc, OSError) and exc.errno in NO_SPACE_ERRNOS:
            return True
        text = str(exc).lower()
        if any(t in text for t in _TEXTS):
            return True
        orig = getattr(exc, "orig", None)  # SQLAlchemy wraps the driver's error
        if isinstance(orig, BaseException) and is_no_space(orig):
            return True
        exc = exc.__cause__ or exc.__context__
    return False


def free_bytes(path: Path) -> int | None:
    """Free bytes of the filesystem holding ``path`` (its nearest existing parent); None if unknown."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        return shutil.disk_usage(probe).free
    except OSError:
        return None
