"""Small state files that survive a crash whole: the old version or the new one, never a torn one.

Every checkpoint, intent, journal snapshot and key file of the server and the agent is written
through here: the bytes go to a temporary file in the same directory, which is fsync'd, renamed
over the target (atomic on POSIX), and then the directory is fsync'd so the rename itself is on
disk before the caller acts on it (acknowledges, deletes what the state made redundant).
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["fsync_dir", "replace_durably", "write_atomic"]


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a create, rename or unlink in it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def temp_path(path: Path) -> Path:
    """The temporary file :func:`write_temp` writes ``path``'s next content to."""
    return path.with_name(path.name + ".tmp")


def write_temp(path: Path, data: bytes, *, mode: int = 0o600) -> Path:
    """Write ``data`` to :func:`temp_path` of ``path``, synced, with ``mode`` (whatever the umask:
    the state files written this way are their owner's alone, docs/security.md); the caller
    renames it over ``path``."""
    tmp = temp_path(path)
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.fchmod(fd, mode)  # a stale temp file from a crash may have had other bits
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_atomic(path: Path, data: bytes, *, mode: int = 0o600) -> None:
    """Replace ``path`` with ``data`` durably (see :func:`write_temp`)."""
    os.replace(write_temp(path, data, mode=mode), path)
    fsync_dir(path.parent)


def replace_durably(src: Path, dst: Path) -> None:
    """Move a file another writer finished (e.g. the engine) over ``dst``, contents and rename durable."""
    with open(src, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(src, dst)
    fsync_dir(dst.parent)
