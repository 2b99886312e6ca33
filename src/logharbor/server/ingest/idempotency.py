"""Retried batches are stored once: ``Idempotency-Key`` on ingest requests, and ES ``_id``s.

A client that loses the answer to a batch (a crash between the WAL fsync and the answer, a dropped
connection) sends it again. Without help the batch is then stored twice. Two mechanisms stop it,
both within a window (``idempotency_window_s``, 24 h by default) and for at most
``idempotency_max_keys`` keys (the oldest are forgotten first):

- a request with ``Idempotency-Key`` is stored once per (scope, key): a retry with the same body is
  answered as the first one was (recomputed from the body, with ``Idempotent-Replayed: true``) and
  stores nothing; the same key with another body is a 422; a retry that arrives while the first
  attempt is still being written waits for its outcome;
- an Elasticsearch ``_bulk`` document with an ``_id`` is stored once per (tenant, index, ``_id``):
  ``create`` of a known ``_id`` is a 409 as in Elasticsearch; ``index`` of a known ``_id`` with the
  same source is answered ``updated`` and not stored again (see ``docs/protocols.md``).

**Durability.** What was stored is remembered exactly as durably as the records themselves: the
digests go *in the WAL entry* that holds the records (``WriteAheadLog.submit(payload, key=…)``),
so an entry that survived a kill -9 carries its keys and one that did not carries none. At start
the index is rebuilt from ``wal.iter_keys()`` plus a small file in the data directory, which
receives the keys of WAL segments just before they are deleted (``wal.before_remove``). So the
promise is exactly-once within the window, at-least-once beyond it.

An entry key (≤ 255 bytes, see :class:`EntryKey`) holds the time it was written, optionally the
request's digest and body fingerprint, and up to 14 document digests; a ``_bulk`` request with more
``_id``s is written as several entries, the request's own key in the *last* one, so a request is
never remembered as stored while part of it is not.

**Versions.** Each key starts with its format version, and each record of the file is checked by a
CRC over the whole key: a record whose CRC holds but whose version is not this release's was
written by a newer release, and the start is refused
(:class:`~logharbor.formatversion.NewerFormat`) before the file is compacted, which would drop it.
"""

from __future__ import annotations

import hashlib
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from logharbor.durable import fsync_dir, write_atomic
from logharbor.formatversion import NewerFormat

__all__ = ["DOCS_PER_ENTRY", "EntryKey", "KeyIndex", "content_digest", "doc_digest", "request_digest",
           "request_fingerprint", "valid_key"]

log = logging.getLogger("logharbor.server.ingest.idempotency")

_VERSION = 1
_HEAD = struct.Struct(">BIB")  # version, written at (unix seconds), flags (bit 7: request) | docs
_REQUEST = 0x80
_REQUEST_BYTES = 16 + 8  # digest of (scope, key), fingerprint of the body
_DOC_BYTES = 12 + 4  # digest of (tenant, index, _id), digest of the source
#: documents whose digests fit in one WAL entry key beside a request key (255 bytes at most)
DOCS_PER_ENTRY = 14
_RECORD = struct.Struct(">BI")  # file record: key length, CRC-32 of the key; then the key


def valid_key(key: str) -> bool:
    """An ``Idempotency-Key`` header we take: 1–255 printable ASCII characters."""
    return 0 < len(key) <= 255 and key.isascii() and key.isprintable()


def _blake(size: int, person: bytes, *parts: bytes) -> bytes:
    h = hashlib.blake2b(digest_size=size, person=person)
    for part in parts:
        h.update(len(part).to_bytes(4, "big"))
        h.update(part)
    return h.digest()


def request_digest(scope: str, key: str) -> bytes:
    """16 bytes naming one (scope, Idempotency-Key): the key itself never reaches the disk."""
    return _blake(16, b"lh-request", scope.encode(), key.encode())


def request_fingerprint(path: str, body: bytes) -> bytes:
    """8 bytes telling one request body (decompressed, so a recompressed retry matches) from another."""
    return _blake(8, b"lh-body", path.encode(), body)


def doc_digest(scope: str, index: str, doc_id: str) -> bytes:
    """12 bytes naming one Elasticsearch document id in an index of a tenant."""
    return _blake(12, b"lh-doc", scope.encode(), index.encode(), doc_id.encode("utf-8", "surrogatepass"))


def content_digest(source: bytes) -> bytes:
    """4 bytes telling one document source from another (``index`` of a known ``_id``)."""
    return _blake(4, b"lh-source", source)


@dataclass
class EntryKey:
    """What one WAL entry holds, as far as retries are concerned (encoded in its entry key)."""

    written_s: int
    request: tuple[bytes, bytes] | None = None  # (request digest, body fingerprint)
    docs: list[tuple[bytes, bytes]] = field(default_factory=list)  # (doc digest, content digest)

    def encode(self) -> bytes:
        if len(self.docs) > DOCS_PER_ENTRY:
            raise ValueError(f"at most {DOCS_PER_ENTRY} documents per entry key")
        flags = len(self.docs) | (_REQUEST if self.request else 0)
        parts = [_HEAD.pack(_VERSION, self.written_s, flags)]
        if self.request:
            parts.extend(self.request)
        for digest, content in self.docs:
            parts.append(digest)
            parts.append(content)
        return b"".join(parts)

    @classmethod
    def decode(cls, raw: bytes) -> EntryKey:
        """The key of a WAL entry; ValueError for one not written by this module."""
        if len(raw) < _HEAD.size:
            raise ValueError("entry key is too short")
        version, written, flags = _HEAD.unpack_from(raw)
        if version != _VERSION:
            raise ValueError(f"entry key version {version} is not known")
        count = flags & 0x7F
        pos = _HEAD.size
        request = None
        if flags & _REQUEST:
            request = (raw[pos : pos + 16], raw[pos + 16 : pos + 24])
            pos += _REQUEST_BYTES
        if len(raw) != pos + count * _DOC_BYTES:
            raise ValueError("entry key length does not match its contents")
        docs = [(raw[i : i + 12], raw[i + 12 : i + 16]) for i in range(pos, len(raw), _DOC_BYTES)]
        return cls(written, request, docs)


def _record_at(data: bytes, pos: int, path: Path) -> bytes | None:
    """The key of the file record at ``pos``, or None when its length, CRC or key do not hold.

    A record whose CRC holds over a key of another version is a newer release's: refused."""
    size, crc = _RECORD.unpack_from(data, pos)
    raw = data[pos + _RECORD.size : pos + _RECORD.size + size]
    if len(raw) < size or zlib.crc32(raw) != crc:
        return None
    if raw and raw[0] != _VERSION:
        raise NewerFormat(path, f"the idempotency key file (a record at byte {pos})", raw[0], (_VERSION,))
    try:
        EntryKey.decode(raw)
    except ValueError:
        return None
    return raw


class KeyIndex:
    """The digests of recently stored requests and documents, in memory, rebuilt at start.

    Each digest maps to ``written_s << 64 | fingerprint`` (about 140 bytes of memory a key). Keys
    older than the window are ignored and dropped when the map is rebuilt, which also drops the
    oldest beyond ``max_keys`` (amortised: the map is rebuilt when it grows by a quarter).
    Thread-safe: keys are noted from the WAL writer's thread as soon as an entry is durable.
    """

    def __init__(self, path: Path, *, window_s: float, max_keys: int,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = path
        self.window_s = window_s
        self.max_keys = max_keys
        self.clock = clock
        self._seen: dict[bytes, int] = {}
        self._lock = threading.Lock()
        self._file_bytes_after_compaction = 0
        self.replays = 0
        self.duplicate_docs = 0

    @property
    def enabled(self) -> bool:
        return self.window_s > 0 and self.max_keys > 0

    def __len__(self) -> int:
        return len(self._seen)

    # -- remembering ---------------------------------------------------------------------------

    def note(self, raw: bytes) -> None:
        """Remember the digests of a durable WAL entry's key (unknown keys are ignored)."""
        try:
            key = EntryKey.decode(raw)
        except ValueError:
            return
        with self._lock:
            self._add(key)
            if len(self._seen) > self.max_keys + max(self.max_keys // 4, 1000):
                self._trim()

    def _add(self, key: EntryKey) -> None:
        stamp = key.written_s << 64
        if key.request is not None:
            self._seen[key.request[0]] = stamp | int.from_bytes(key.request[1], "big")
        for digest, content in key.docs:
            self._seen.pop(digest, None)  # re-inserted at the end: the newest stay longest
            self._seen[digest] = stamp | int.from_bytes(content, "big")

    def _trim(self) -> None:
        oldest = int(self.clock() - self.window_s) << 64
        live = [(k, v) for k, v in self._seen.items() if v >= oldest]
        self._seen = dict(live[-self.max_keys :])

    def _lookup(self, digest: bytes, size: int) -> bytes | None:
        value = self._seen.get(digest)
        if value is None or (value >> 64) < self.clock() - self.window_s:
            return None
        return (value & ((1 << 64) - 1)).to_bytes(size, "big")

    def request(self, digest: bytes) -> bytes | None:
        """The body fingerprint of a request stored within the window, or None."""
        return self._lookup(digest, 8)

    def doc(self, digest: bytes) -> bytes | None:
        """The content digest of a document stored within the window, or None."""
        return self._lookup(digest, 4)

    # -- start-up and the persistent file --------------------------------------------------------

    def check_version(self) -> None:
        """Refuse a file holding keys of a newer format (read-only: see :meth:`load`)."""
        self._read_file(report=False)

    def load(self, wal_keys: Iterable[tuple[int, bytes]]) -> None:
        """Rebuild from the file (keys of deleted WAL segments) and the WAL's keyed entries."""
        raw_keys = self._read_file()
        kept = [raw for raw in raw_keys if self._live(raw)]
        if len(kept) != len(raw_keys) or self.path.exists():
            self._rewrite(kept)
        with self._lock:
            for raw in kept:
                self._add(EntryKey.decode(raw))
            for _seq, raw in wal_keys:
                try:
                    self._add(EntryKey.decode(raw))
                except ValueError:
                    continue
            self._trim()
        log.info("idempotency: %d recent keys (window %ss, %d from %s)", len(self._seen),
                 self.window_s, len(kept), self.path.name)

    def _live(self, raw: bytes) -> bool:
        try:
            return EntryKey.decode(raw).written_s >= self.clock() - self.window_s
        except ValueError:
            return False

    def persist(self, pairs: list[tuple[int, bytes]]) -> None:
        """``wal.before_remove``: keep the keys of WAL segments about to be deleted (fsync'd).

        Raising keeps the segments (the WAL tries again at the next release), so a key is never
        lost between the WAL and this file.
        """
        keys = [raw for _seq, raw in pairs if self._live(raw)]
        if not keys or not self.enabled:
            return
        blob = b"".join(_RECORD.pack(len(raw), zlib.crc32(raw)) + raw for raw in keys)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
            size = os.fstat(fd).st_size
        finally:
            os.close(fd)
        if created:
            fsync_dir(self.path.parent)
        if size > 2 * self._file_bytes_after_compaction + (1 << 20):
            self._rewrite([raw for raw in self._read_file() if self._live(raw)])

    def _read_file(self, *, report: bool = True) -> list[bytes]:
        """Every whole record of the file. A damaged record (a flipped bit) is skipped by finding
        the next place where a length, its CRC and a readable key agree, so one bad byte costs
        only the keys it touched, not every key after it; a torn tail is cut. Both are logged
        (when ``report``). A record of a newer format raises :class:`NewerFormat`."""
        try:
            data = self.path.read_bytes()
        except FileNotFoundError:
            return []
        out: list[bytes] = []
        pos = 0
        skipped = 0
        damaged_at: int | None = None
        while pos + _RECORD.size <= len(data):
            raw = _record_at(data, pos, self.path)
            if raw is None:
                damaged_at = pos if damaged_at is None else damaged_at
                pos += 1
                skipped += 1
                continue
            out.append(raw)
            pos += _RECORD.size + len(raw)
        tail = len(data) - pos
        if not report:
            return out
        if damaged_at is not None and skipped:
            log.warning("idempotency: %s: %d damaged bytes from byte %d were skipped; %d keys read "
                        "(a retry of a request whose key was lost may be stored twice)",
                        self.path, skipped, damaged_at, len(out))
        if tail:
            log.warning("idempotency: %s: %d bytes after record %d are not a whole record (a torn "
                        "write?); the keys before them are kept", self.path, tail, len(out))
        return out

    def _rewrite(self, keys: list[bytes]) -> None:
        """Write the file anew with ``keys`` only: the newest holding at most ``max_keys`` digests."""
        kept: list[bytes] = []
        digests = 0
        for raw in reversed(keys):
            key = EntryKey.decode(raw)
            digests += len(key.docs) + (1 if key.request else 0)
            if digests > self.max_keys:
                break
            kept.append(raw)
        kept.reverse()
        blob = b"".join(_RECORD.pack(len(raw), zlib.crc32(raw)) + raw for raw in kept)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(self.path, blob, mode=0o600)
        self._file_bytes_after_compaction = len(blob)
