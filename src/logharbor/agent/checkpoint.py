"""Where each file source remembers how far every file was *delivered* (not merely read).

One JSON document per source, versioned, written atomically: a temp file is written and fsync'd,
renamed over the old one, and the directory fsync'd, so a crash leaves either the old or the new
checkpoint, never half of one. On start the temp file is tried first (a crash between its fsync
and the rename leaves the newest complete state there) and ignored when it does not parse.

An entry identifies a file by device + inode *and* a fingerprint of its first bytes, so an inode
the filesystem reused for a new file is not mistaken for the old one, and a copy (copytruncate)
or a compressed rotation of a file is recognised by its content. It also holds a *mark*, a hash
of the bytes just before the delivered offset, so a file truncated and rewritten past that offset
while the agent was away is not resumed in the middle of other lines.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from logharbor.durable import fsync_dir

__all__ = ["FORMAT_VERSION", "CheckpointStore", "Entry", "fingerprint_of"]

#: version 2 added ``mark``; a version 1 document is read as having no marks
FORMAT_VERSION = 2
_READABLE = (1, 2)


@dataclass(slots=True)
class Entry:
    """The delivered position of one file, as stored.

    ``ghost`` marks the old content of a truncated file: its inode now holds new data, so only the
    fingerprint can find where that content went (the copy made by copytruncate).
    """

    dev: int
    ino: int
    fp_len: int
    fp_hash: str
    offset: int
    path: str
    updated: float
    ghost: bool = False
    #: the content is compressed (gzip, zstd, bzip2 or xz: the name is the first format's)
    gzip: bool = False
    #: a hash of the bytes just before ``offset`` (see ``sources/tailed.mark_of``): on resume, a
    #: file whose bytes there differ is not the content that was read (truncated and rewritten)
    mark: str = ""


def fingerprint_of(head: bytes) -> str:
    """A short hash of the first bytes of a file (the bytes given, all of them)."""
    return hashlib.blake2b(head, digest_size=12).hexdigest()


class CheckpointStore:
    """Loads and atomically writes one source's checkpoint document; writes only on change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")
        self._last: bytes | None = None
        self.writes = 0
        #: when the look whose findings the loaded checkpoint holds began (wall clock), if stored
        self.looked_at: float | None = None

    def load(self) -> list[Entry]:
        """Entries from the newest complete checkpoint (temp file first), or none."""
        for candidate in (self.tmp, self.path):
            try:
                doc = orjson.loads(candidate.read_bytes())
            except (OSError, orjson.JSONDecodeError):
                continue
            if not isinstance(doc, dict) or doc.get("version") not in _READABLE:
                continue
            entries = [self._entry(e) for e in doc.get("files", [])]
            looked = doc.get("looked_at")
            self.looked_at = float(looked) if isinstance(looked, (int, float)) else None
            return [e for e in entries if e is not None]
        return []

    @staticmethod
    def _entry(raw: Any) -> Entry | None:
        try:
            return Entry(**raw)
        except TypeError:
            return None

    def saved_at(self) -> float | None:
        """When the checkpoint was last written (wall clock), or None if there is none."""
        times = []
        for candidate in (self.tmp, self.path):
            try:
                times.append(candidate.stat().st_mtime)
            except OSError:
                continue
        return max(times) if times else None

    def write(self, entries: list[Entry], looked_at: float | None = None) -> bool:
        """Write ``entries`` atomically if they differ from the last write; True when written.
        ``looked_at`` is when the look they come from began: a file of unknown content written
        after it may hold lines no entry covers (it is stored only with a change of entries, so
        the stored time is never later than the entries' look)."""
        doc: dict[str, Any] = {"version": FORMAT_VERSION, "files": [asdict(e) for e in entries]}
        if looked_at is not None:
            doc["looked_at"] = looked_at
        body = orjson.dumps(doc, option=orjson.OPT_INDENT_2)
        # the timestamps change on every write; compare what matters
        key = orjson.dumps([(e.dev, e.ino, e.fp_hash, e.offset, e.ghost, e.path, e.mark) for e in entries])
        if key == self._last:
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(self.tmp, self.path)
        with contextlib.suppress(OSError):  # a filesystem that cannot sync a directory: rename stands
            fsync_dir(self.path.parent)
        self._last = key
        self.writes += 1
        return True
