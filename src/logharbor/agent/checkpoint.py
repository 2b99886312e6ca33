"""Where each file source remembers how far every file was *delivered* (not merely read).

One JSON document per source, versioned, written as a checked state document (``statefile.py``:
temp file fsync'd and renamed, the previous copy kept as ``<name>.prev``, a CRC over the whole),
so a crash leaves a whole checkpoint, never half of one, and damage on disk is seen, never
believed. On start the newest sound copy is used; if the current one is damaged, the previous
one (one write older: what was acknowledged since is read again, at least once). If no copy is
sound, that is logged as an ERROR and counted, and the files are read as on a first start
(``start_at``): everything again from the beginning, or — with ``start_at: end`` — from their
end, which loses what was written while the agent was down; both are said in the log line.

An entry identifies a file by device + inode *and* a fingerprint of its first bytes, so an inode
the filesystem reused for a new file is not mistaken for the old one, and a copy (copytruncate)
or a compressed rotation of a file is recognised by its content. It also holds a *mark*, a hash
of the bytes just before the delivered offset, so a file truncated and rewritten past that offset
while the agent was away is not resumed in the middle of other lines.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import orjson

from logharbor.agent import statefile
from logharbor.types import JsonObject

__all__ = ["FORMAT_VERSION", "CheckpointStore", "Entry", "fingerprint_of"]

#: version 2 added ``mark``; a version 1 document is read as having no marks
FORMAT_VERSION = 2
_VERSIONS = statefile.Versions("file source checkpoint", (1, 2))


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


def _stored(e: Entry) -> JsonObject:
    """An entry as JSON: a path that is not UTF-8 (a file name of other bytes) is kept exactly in
    ``path_bytes`` (hex), and shown escaped in ``path``."""
    out = asdict(e)
    try:
        e.path.encode("utf-8")
    except UnicodeEncodeError:
        raw = os.fsencode(e.path)
        out["path"], out["path_bytes"] = raw.decode("utf-8", "backslashreplace"), raw.hex()
    return out


def _valid(doc: JsonObject) -> None:
    if not isinstance(doc.get("files", []), list):
        raise ValueError("'files' is not a list")


def fingerprint_of(head: bytes) -> str:
    """A short hash of the first bytes of a file (the bytes given, all of them)."""
    return hashlib.blake2b(head, digest_size=12).hexdigest()


class CheckpointStore:
    """Loads and atomically writes one source's checkpoint document; writes only on change."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.tmp = path.with_name(path.name + ".tmp")  # the newest copy, after a crash in a write
        self._loaded: Path | None = None  # the copy load() used
        self._last: bytes | None = None
        self.writes = 0
        #: when the look whose findings the loaded checkpoint holds began (wall clock), if stored
        self.looked_at: float | None = None

    def load(self, start_at: str = "beginning") -> list[Entry]:
        """Entries from the newest sound copy of the checkpoint, or none (reported when damaged)."""
        loaded = statefile.read(self.path, _valid, _VERSIONS)
        statefile.report(
            "checkpoint", loaded,
            "no sound copy: every file is read as on a first start (start_at: beginning: all of it "
            "again, may be stored twice)" if start_at == "beginning" else
            "no sound copy: every file is read as on a first start (start_at: end: from its end; "
            "lines written while the agent was down are NOT read)")
        doc = loaded.doc
        if doc is None:
            return []
        self._loaded = {"tmp": self.tmp, "previous": self.path.with_name(self.path.name + ".prev")
                        }.get(loaded.source or "", self.path)
        entries = [self._entry(e) for e in doc.get("files", [])]
        looked = doc.get("looked_at")
        self.looked_at = float(looked) if isinstance(looked, (int, float)) else None
        return [e for e in entries if e is not None]

    def check_version(self) -> None:
        """Refuse (:class:`~logharbor.formatversion.NewerFormat`) a checkpoint of a newer release;
        read-only, so a source is built (and the agent stops) before anything is written."""
        statefile.read(self.path, _valid, _VERSIONS)

    @staticmethod
    def _entry(raw: Any) -> Entry | None:
        try:
            raw = dict(raw)
            if "path_bytes" in raw:  # a file name that is not UTF-8, kept exactly
                raw["path"] = os.fsdecode(bytes.fromhex(raw.pop("path_bytes")))
            return Entry(**raw)
        except (TypeError, ValueError):
            return None

    def saved_at(self) -> float | None:
        """When the copy :meth:`load` used was written (wall clock), or None if there is none."""
        if self._loaded is None:
            return None
        try:
            return self._loaded.stat().st_mtime
        except OSError:
            return None

    def write(self, entries: list[Entry], looked_at: float | None = None) -> bool:
        """Write ``entries`` atomically if they differ from the last write; True when written.
        ``looked_at`` is when the look they come from began: a file of unknown content written
        after it may hold lines no entry covers (it is stored only with a change of entries, so
        the stored time is never later than the entries' look)."""
        doc: JsonObject = {"version": FORMAT_VERSION, "files": [_stored(e) for e in entries]}
        if looked_at is not None:
            doc["looked_at"] = looked_at
        # the timestamps change on every write; compare what matters
        key = orjson.dumps([(e.dev, e.ino, e.fp_hash, e.offset, e.ghost, os.fsencode(e.path).hex(), e.mark)
                            for e in entries])
        if key == self._last:
            return False
        self.path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        statefile.write(self.path, doc)
        self._last = key
        self.writes += 1
        return True
