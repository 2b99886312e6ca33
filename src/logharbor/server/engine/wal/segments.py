"""Segment files on disk: which exist, who owns the directory, and one whole segment scanned.

Shared by the running WAL and by ``logharbor wal verify|repair`` (which must see a segment the
way the server does).
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

from logharbor.formatversion import NewerFormat, magic_version
from logharbor.framing import (
    MAGIC_SIZE,
    MAGIC_V1,
    MAGIC_V2,
    BadSpan,
    SegmentScan,
    detect_version,
    scan,
)
from logharbor.server.engine.wal.quarantine import SUFFIX, segment_name

__all__ = ["READABLE", "WalLocked", "WalSealed", "check_versions", "list_segments", "lock_directory",
           "lock_holder", "refuse_newer", "scan_segment"]

#: the segment formats this release reads (``LHWAL01``, ``LHWAL02``)
READABLE = (1, 2)

LOCK_NAME = "LOCK"
#: left by ``logharbor wal repair`` while it rewrites segments; a server does not start over it
JOURNAL = "repair-journal.json"


class WalLocked(RuntimeError):
    """Another process (a running server, a repair) owns the WAL directory."""


class WalSealed(RuntimeError):
    """An entry is sealed (encryption at rest) and this WAL was opened without a key: it is not
    handed on (its bytes are not records); the reader waits until the server starts with the key."""


def list_segments(directory: Path) -> list[int]:
    """First sequence numbers of the segment files in ``directory``, in order."""
    return sorted(int(p.name[: -len(SUFFIX)]) for p in directory.glob("*" + SUFFIX)
                  if p.name[: -len(SUFFIX)].isdigit())


def refuse_newer(path: Path, head: bytes) -> None:
    """Raise :class:`NewerFormat` when ``head`` is a well-formed magic of a version not read here."""
    version = magic_version(head, b"LHWAL")
    if version is not None and version not in READABLE:
        raise NewerFormat(path, "WAL segment", f"LHWAL{version:02d}", (f"LHWAL{v:02d}" for v in READABLE),
                          "its records may not be in the store yet: the release that wrote it stores them")


def check_versions(directory: Path) -> None:
    """Refuse a WAL directory holding a segment of a newer format (reads 8 bytes of each; writes
    nothing, takes no lock): called before anything of a start writes."""
    if not directory.is_dir():
        return
    for first in list_segments(directory):
        path = directory / segment_name(first)
        try:
            with open(path, "rb") as fh:
                refuse_newer(path, fh.read(MAGIC_SIZE))
        except FileNotFoundError:
            continue  # released by the server that owns the directory (its lock refuses this start)


def lock_holder(directory: Path) -> str:
    """What the lock file says about its owner (its pid), for messages."""
    try:
        pid = (directory / LOCK_NAME).read_text().strip()
    except OSError:
        return "another process"
    return f"process {pid}" if pid else "another process"


def lock_directory(directory: Path, *, wait_s: float = 0.0) -> int:
    """Take the WAL directory's exclusive lock (flock on ``LOCK``), waiting up to ``wait_s``.

    The lock lives as long as the returned descriptor (the kernel drops it when the process dies,
    so a kill -9 never leaves a stale lock). Raises :class:`WalLocked` naming the holder.
    """
    fd = os.open(directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            break
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES) or time.monotonic() >= deadline:
                os.close(fd)
                raise WalLocked(f"the write-ahead log in {directory} is in use by {lock_holder(directory)} "
                                "(a running server owns it; stop it first)") from None
            time.sleep(0.05)
    try:  # who holds it, for the messages of those refused (a full disk must not stop the start)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
    except OSError:
        pass
    return fd


def is_locked(directory: Path) -> bool:
    """True while some process holds the directory's lock (read-only check, never blocks)."""
    try:
        fd = os.open(directory / LOCK_NAME, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except OSError:
        return True
    finally:
        os.close(fd)  # closing drops the shared lock, if it was taken
    return False


def scan_segment(path: Path, first_seq: int, *, limit: int | None = None, seq_hi: int | None = None,
                 torn_ok: bool = True) -> tuple[SegmentScan, bytes]:
    """Read a whole segment (up to ``limit`` bytes) and scan it; returns the scan and the bytes.

    A segment whose magic is damaged is scanned in the format that finds more entries, and its
    first 8 bytes are reported as a bad span. A file shorter than the magic that is a prefix of
    one (an interrupted creation) scans as version 2 with no entries and no damage. A segment of a
    newer format raises :class:`NewerFormat` (it is not damage: see ``formatversion.py``).
    """
    with open(path, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit)
    refuse_newer(path, data)
    version = detect_version(data)
    if version is not None:
        return scan(data, version=version, prev_seq=first_seq - 1, seq_hi=seq_hi, torn_ok=torn_ok), data
    if len(data) <= MAGIC_SIZE and (MAGIC_V2.startswith(data) or MAGIC_V1.startswith(data)):
        return SegmentScan(2, len(data)), data
    tries = [scan(data, version=v, prev_seq=first_seq - 1, seq_hi=seq_hi, torn_ok=torn_ok) for v in (2, 1)]
    best = max(tries, key=lambda s: len(s.entries))
    best.bad.insert(0, BadSpan(0, min(MAGIC_SIZE, len(data)), "segment magic damaged"))
    return best, data
