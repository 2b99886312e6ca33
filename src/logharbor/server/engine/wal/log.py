"""The write-ahead log: nothing is acknowledged before it is here and fsync'd.

Records are appended as *entries* to segment files under ``data/wal/`` (framing in
:mod:`framing`: every entry carries a sync marker, a header CRC and a payload CRC). The payload is
the batch of store rows as JSONEachRow bytes, so moving it to the store needs no re-encoding.
Many concurrent requests are written and fsync'd together by one writer thread (group commit): a
request waits for one fsync, not for its own.

Damage never costs more than the damaged entries: a reader that meets bad bytes copies them to
``quarantine/`` (:mod:`quarantine`), logs and counts them, resynchronises on the next valid entry
and goes on. A crash can leave a torn tail (an entry cut short, zero-filled sectors); it was never
acknowledged, because acknowledgement happens only after the fsync that covers it returned, and
recovery truncates it with a log line that says how many bytes.

Space follows what is not yet stored: when the batcher releases a position in the live segment
(its records are in the store), the segment is rolled and deleted (see :meth:`release`).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, InvalidStateError
from pathlib import Path

from logharbor.durable import fsync_dir
from logharbor.framing import MAGIC_SIZE, MAGIC_V2, MAX_KEY, entry_header, entry_size
from logharbor.sealing import Sealer
from logharbor.server.engine.wal.catalog import Catalog, WalEntry, WalPosition, WalRead
from logharbor.server.engine.wal.quarantine import Quarantine, segment_name
from logharbor.server.engine.wal.segments import (
    JOURNAL,
    WalLocked,
    check_versions,
    lock_directory,
    scan_segment,
)
from logharbor.threadnames import name_os_thread

__all__ = ["WalEntry", "WalFull", "WalNoSpace", "WalPosition", "WalRead", "WriteAheadLog"]

log = logging.getLogger("logharbor.server.engine.wal")



class WalFull(Exception):
    """The WAL holds more than its limit: the caller must answer 429 and not accept the data."""


class WalNoSpace(OSError):
    """The disk under the WAL is full (ENOSPC): nothing of the entry was kept.

    Ingest answers 507 with ``Retry-After`` (never a 500): the client keeps the data and sends it
    again once space returns; the WAL cut whatever it had half written.
    """


def _no_space(exc: OSError, what: str, path: Path) -> OSError:
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return WalNoSpace(exc.errno, f"no space left {what}: {exc.strerror}", str(path))
    return exc


class WriteAheadLog:
    """Segmented, self-checking, group-committed append-only log with a size limit."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        max_bytes: int = 1024 * 1024 * 1024,
        fsync: bool = True,
        sealer: Sealer | None = None,
        reclaim_bytes: int | None = 1024 * 1024,
        reclaim_interval_s: float = 1.0,
        before_remove: Callable[[list[tuple[int, bytes]]], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.sealer = sealer  # encryption at rest: entries are sealed on write, opened on read
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync = fsync
        #: roll the live segment on release once this much of it is stored (None: only at
        #: ``segment_bytes``); a live segment wholly stored is rolled whatever its size
        self.reclaim_bytes = reclaim_bytes
        #: ... but not more often than this (a roll costs a file and a directory fsync)
        self.reclaim_interval_s = reclaim_interval_s
        self._last_reclaim = 0.0
        #: where damaged entries are copied aside
        self.quarantine_dir = self.directory / "quarantine"
        self.quarantine = Quarantine(self.quarantine_dir)
        #: called with the (seq, key) pairs of the keyed entries of segments about to be deleted
        #: (only ever from release/roll, never from open: a hook may be given before its owner loads)
        self.before_remove = before_remove
        self.catalog = Catalog(self.directory, self.quarantine, sealer)
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._io = threading.Lock()  # the live segment's file: the writer's batches and roll()
        self._pending: list[tuple[bytes, bytes, Future[int]]] = []
        self._pending_bytes = 0
        self._closed = False
        self._fd = -1
        self._lock_fd = -1
        self._segment = 0
        self._offset = 0
        self._next_seq = 1
        self._durable = WalPosition(0, 0)
        self._released = WalPosition(0, 0)
        self._roll_wanted = False
        self._name_durable = True  # the live segment's directory entry is on disk
        self._writer: threading.Thread | None = None
        self.fsyncs = 0
        self.rolls = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, min_next_seq: int = 1) -> None:
        """Take the directory's lock, recover what the last process left, and start the writer.

        ``min_next_seq`` is a floor for the next sequence number (one past what the store has):
        store inserts are deduplicated by sequence range, so numbers must never be reused, even
        if the WAL directory was lost or emptied by hand. A segment of a newer format raises
        :class:`~logharbor.formatversion.NewerFormat` before anything is written (not even the lock).
        """
        check_versions(self.directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self._lock_fd = lock_directory(self.directory, wait_s=10.0)
        if (self.directory / JOURNAL).exists():
            os.close(self._lock_fd)
            self._lock_fd = -1
            raise WalLocked(f"a `logharbor wal repair` of {self.directory} was cut short; run it again "
                            "to finish before starting the server")
        self.catalog.load()
        with self._io:
            if self.catalog.segments:
                self._recover_last(self.catalog.segments[-1], min_next_seq)
            else:
                self._next_seq = max(1, min_next_seq)
                self._start_segment()
        self._writer = threading.Thread(target=self._write_loop, name="wal-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Write what is pending, then stop the writer and give up the directory's lock."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join()
        with self._io:
            if self._fd >= 0:
                os.close(self._fd)
                self._fd = -1
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1

    def _path(self, segment: int) -> Path:
        return self.directory / segment_name(segment)

    def _recover_last(self, last: int, min_next_seq: int) -> None:
        """Scan the last segment whole: quarantine damage, truncate a torn tail, go on writing."""
        cat = self.catalog
        result, data = scan_segment(self._path(last), last)
        cat.versions[last] = result.version
        cat.note_bad(last, result, data, truncating=True)
        next_seq = max(min_next_seq, last + (1 if len(data) > MAGIC_SIZE else 0))
        for entry in result.entries:
            next_seq = max(next_seq, entry.seq + 1)
        for bad in result.damage:  # numbers damaged entries may have had are never reused
            next_seq = max(next_seq, (bad.seq_last or 0) + 1)
        self._next_seq = next_seq
        tail = result.bad[-1] if result.bad and result.bad[-1].end == len(data) else None
        if tail is not None and (tail.torn or last not in cat.unkept):
            os.truncate(self._path(last), tail.start)  # torn, or damage already copied aside
            cat.ends[last] = tail.start
        self._segment, self._durable = last, WalPosition(last, cat.ends[last])
        if not result.entries and not result.damage:
            cat.drop(last)  # holds nothing: an interrupted creation or an emptied file
            self._durable = WalPosition(last, MAGIC_SIZE)
            self._start_segment()
        elif result.version != 2 or result.damage:
            self._start_segment()  # the damaged (or old-format) one stays as it is
        else:
            cat.keys[last] = [(e.seq, e.key) for e in result.entries if e.key]
            self._fd = os.open(self._path(last), os.O_WRONLY | os.O_APPEND)
            self._segment, self._offset = last, cat.ends[last]
            self._durable = WalPosition(last, self._offset)

    def _start_segment(self) -> None:
        """Start the live segment at start-up; on a full disk the first write tries again (and is
        refused with :class:`WalNoSpace` until there is room), so the server still starts."""
        try:
            self._create_segment(self._next_seq)
        except WalNoSpace as exc:
            log.error("WAL: no space to start a segment (%s); writes are refused until there is room", exc)

    def _create_segment(self, first_seq: int) -> None:
        """Start a new live segment (caller holds ``_io``); on failure nothing of it is left.

        Nothing is fsync'd here, so a roll never holds the writer up for a disk flush: the magic
        goes to disk with the first batch's fdatasync, and the writer makes the new name durable
        (the directory's fsync) before it acknowledges anything in it. A crash before that leaves
        an empty or magic-less file, which the next start removes (it held nothing).
        """
        if first_seq in self.catalog.segments:
            if self.catalog.ends.get(first_seq, 0) > MAGIC_SIZE:
                raise RuntimeError(f"WAL segment {segment_name(first_seq)} already holds entries")
            self.catalog.drop(first_seq)
        path = self._path(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        try:
            os.write(fd, MAGIC_V2)
        except OSError as exc:
            os.close(fd)
            try:
                path.unlink()
            except OSError:
                pass
            raise _no_space(exc, "to start a write-ahead log segment", path) from exc
        self.catalog.add(first_seq, MAGIC_SIZE)
        with self._cond:
            self._fd, self._segment, self._offset = fd, first_seq, MAGIC_SIZE
            self._durable = WalPosition(first_seq, MAGIC_SIZE)
            self._roll_wanted = False
            self._name_durable = False
            self._cond.notify_all()

    def _seal_live(self) -> None:
        """Stop appending to the live segment (caller holds ``_io``); it keeps its durable end."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
            self.rolls += 1

    # -- writing -----------------------------------------------------------------------------

    def backlog_bytes(self) -> int:
        """Bytes in the WAL not yet moved to the store, plus bytes waiting to be written."""
        with self._cond:
            return self._backlog()

    def _backlog(self) -> int:
        return self.catalog.total_bytes() - self.catalog.consumed_bytes(self._released) + self._pending_bytes

    def disk_bytes(self) -> int:
        """Bytes of the segment files (what the WAL holds on disk)."""
        return self.catalog.total_bytes()

    def submit(self, payload: bytes, *, key: bytes = b"") -> Future[int]:
        """Queue one entry; the future resolves to its sequence number once fsync'd.

        ``key`` (≤ 255 bytes) is stored in the entry, covered by its header CRC, and read back as
        :attr:`WalEntry.key`. Raises :class:`WalFull` when the backlog is over the limit (the data
        is not taken); the future fails with :class:`WalNoSpace` on a full disk.
        """
        if len(key) > MAX_KEY:
            raise ValueError(f"an entry key is at most {MAX_KEY} bytes (got {len(key)})")
        future: Future[int] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the write-ahead log is closed")
            backlog = self._backlog()
            # An entry larger than the whole limit could never fit under it: it waits instead
            # for the backlog to fall below half the limit (so the WAL ends at most one entry
            # and half the limit over it), then it is taken.
            oversized = len(payload) > self.max_bytes
            if (backlog >= self.max_bytes // 2) if oversized else (backlog + len(payload) > self.max_bytes):
                raise WalFull(f"write-ahead log backlog is over {self.max_bytes} bytes")
            self._pending.append((payload, key, future))
            self._pending_bytes += entry_size(key, payload)
            self._cond.notify_all()
        return future

    def _write_loop(self) -> None:
        name_os_thread("lh-wal-writer")  # its CPU apart from the loop's (bench/ingest.py)
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                batch, self._pending = self._pending, []
                self._pending_bytes = 0
            try:
                seqs = self._write_batch([(p, k) for p, k, _ in batch])
            except BaseException as exc:  # every waiter must hear of the failure
                for _, _, fut in batch:
                    _settle(fut, exc)
                continue
            for (_, _, fut), seq in zip(batch, seqs, strict=True):
                _settle(fut, seq)

    def _write_batch(self, items: list[tuple[bytes, bytes]]) -> list[int]:
        with self._io:
            if self._fd < 0 or self._roll_wanted or self.catalog.live_damage:
                self.catalog.live_damage = False
                self._seal_live()
                self._create_segment(self._next_seq)  # raises before anything is numbered
            parts: list[bytes] = []
            seqs: list[int] = []
            keyed: list[tuple[int, bytes]] = []
            for payload, key in items:
                if self.sealer is not None:
                    payload = self.sealer.seal(payload)
                seq = self._next_seq
                self._next_seq += 1
                parts.append(entry_header(seq, key, payload))
                parts.append(payload)
                seqs.append(seq)
                if key:
                    keyed.append((seq, key))
            blob = b"".join(parts)
            try:
                view = memoryview(blob)
                while view:
                    view = view[os.write(self._fd, view):]
                if self.fsync:
                    os.fdatasync(self._fd)
                    self.fsyncs += 1
                    if not self._name_durable:  # the first batch of a new segment: its name too
                        fsync_dir(self.directory)
                self._name_durable = True
            except OSError as exc:
                self._abandon_after_failure()
                raise _no_space(exc, "for the write-ahead log", self._path(self._segment)) from exc
            with self.catalog.lock:
                self.catalog.ends[self._segment] = self._offset + len(blob)
                self.catalog.keys.setdefault(self._segment, []).extend(keyed)
            with self._cond:
                self._offset += len(blob)
                self._durable = WalPosition(self._segment, self._offset)
                if self._offset >= self.segment_bytes:
                    self._roll_wanted = True
                self._cond.notify_all()
        return seqs

    def _abandon_after_failure(self) -> None:
        """A write or fsync failed: cut the failed bytes if possible and never append here again.

        After a failed fsync the page cache no longer tells what is on disk (fsyncgate), so the
        file is sealed at its last durable offset and the next batch starts a new segment. The
        sequence numbers handed to the failed batch are never reused: if the cut fails too, the
        entries left behind keep numbers no later entry has.
        """
        try:
            os.ftruncate(self._fd, self._offset)
        except OSError as exc:
            log.error("WAL: could not cut a failed write from %s at %d: %s (the segment is sealed there)",
                      segment_name(self._segment), self._offset, exc)
        self._seal_live()

    # -- rolling and reclaiming ---------------------------------------------------------------

    def roll(self) -> None:
        """Seal the live segment and start a new one, then delete every segment already released.

        Reclaims the space of records already in the store (and lets a delete-by-query scrub the
        WAL); a live segment holding no entry is left as it is. Raises :class:`WalNoSpace` when
        the new segment cannot be created (the next write tries again).
        """
        with self._io:
            if self._fd < 0 or self._offset > MAGIC_SIZE:
                self._seal_live()
                self._create_segment(self._next_seq)
        self._delete_released()

    def release(self, position: WalPosition) -> None:
        """Everything before ``position`` is in the store: delete the segments wholly before it.

        When ``position`` is in the live segment and at least ``reclaim_bytes`` of it (or all of
        it) is stored, the live segment is rolled first (at most once per ``reclaim_interval_s``),
        so it can go too.
        """
        with self._cond:
            if position > self._released:
                self._released = position
            live, durable = self._segment, self._durable
        consumed = position.offset - MAGIC_SIZE
        now = time.monotonic()
        if (self.reclaim_bytes is not None and position.segment == live and consumed > 0
                and (consumed >= self.reclaim_bytes or position >= durable)
                and now - self._last_reclaim >= self.reclaim_interval_s):
            self._last_reclaim = now
            try:
                self.roll()
                return
            except OSError as exc:
                log.warning("WAL: could not roll the live segment to reclaim space: %s", exc)
        self._delete_released()

    def _delete_released(self) -> None:
        cat = self.catalog
        with self._cond:
            released, live = self._released, self._segment
        with cat.lock:
            doomed = [s for s in cat.segments if s != live and WalPosition(s, cat.ends.get(s, 0)) <= released]
        doomed = [s for s in doomed if s not in cat.unkept or cat.retry_keep(s)]
        if not doomed:
            return
        if self.before_remove is not None:
            pairs = [pair for seg in doomed
                     for pair in cat.segment_keys(seg, limit=cat.ends[seg], live=False)]
            try:
                self.before_remove(pairs)
            except Exception:
                log.exception("WAL: the before_remove hook failed; segments %s are kept for now", doomed)
                return
        for seg in doomed:
            cat.drop(seg)

    # -- reading (the batcher) ---------------------------------------------------------------

    def iter_keys(self) -> Iterator[tuple[int, bytes]]:
        """(seq, key) of every entry on disk with a non-empty key, oldest first."""
        return self.catalog.iter_keys(lambda: self._durable)

    def iter_segments(self) -> Iterator[int]:
        with self.catalog.lock:
            yield from list(self.catalog.segments)

    @property
    def durable(self) -> WalPosition:
        return self._durable

    def start_position(self) -> WalPosition:
        """The first entry of the oldest segment still on disk."""
        with self.catalog.lock:
            first = self.catalog.segments[0] if self.catalog.segments else self._segment
        return WalPosition(first, MAGIC_SIZE)

    def wait_for_data(self, position: WalPosition, timeout: float) -> bool:
        """Block until something durable lies beyond ``position`` (or timeout); True if it does."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._durable <= position and not self._closed:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(remaining)
            return self._durable > position

    def read(self, position: WalPosition, max_bytes: int) -> WalRead:
        """Durable entries from ``position`` on, about ``max_bytes`` of payload at the most.

        Damaged bytes on the way are quarantined and skipped; the result's ``end`` is where the
        next read starts (see :class:`WalRead`).
        """
        return self.catalog.read(position, max_bytes, self._durable)


def _settle(future: Future[int], outcome: int | BaseException) -> None:
    """Give a writer its entry's seq (or the failure). A writer that stopped waiting (its task
    was cancelled, e.g. at a listener's shutdown deadline) cancelled its future: the entry is
    written all the same, and the writer thread must not die of the cancelled future."""
    with contextlib.suppress(InvalidStateError):
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)
