"""The write-ahead log: nothing is acknowledged before it is here and fsync'd.

Records are appended as *entries* to segment files under ``data/wal/``. An entry is a header
(payload length, CRC-32 of sequence number + payload, sequence number) followed by the payload,
which is the batch of store rows as JSONEachRow bytes, so moving it to the store needs no
re-encoding. Many concurrent requests are written and fsync'd together by one writer thread
(group commit): a request waits for one fsync, not for its own.

A crash can leave a torn tail: the last entry partly written. Its CRC (or its length running
past the end of the file) shows it; recovery truncates it. Such an entry was never
acknowledged, because acknowledgement happens only after the fsync that covers it returned.
"""

from __future__ import annotations

import errno
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterator
from concurrent.futures import Future
from dataclasses import dataclass
from pathlib import Path

from logharbor.durable import fsync_dir
from logharbor.sealing import Sealer

__all__ = ["WalCorruption", "WalFull", "WalNoSpace", "WalPosition", "WriteAheadLog"]

_MAGIC = b"LHWAL01\n"
_HEADER = struct.Struct("<IIQ")  # payload length, crc32(seq + payload), seq
_SEQ = struct.Struct("<Q")
_SUFFIX = ".wal"


class WalFull(Exception):
    """The WAL holds more than its limit: the caller must answer 429 and not accept the data."""


class WalNoSpace(OSError):
    """The disk under the WAL is full (ENOSPC): nothing of the entry was kept.

    Ingest answers 507 with ``Retry-After`` (never a 500): the client keeps the data and sends it
    again once space returns; the WAL cut whatever it had half written.
    """


class WalCorruption(Exception):
    """An entry in a sealed (not last) segment fails its checks: data on disk was damaged."""


@dataclass(frozen=True, order=True)
class WalPosition:
    """Where an entry starts: the segment (named by its first sequence number) and the offset."""

    segment: int
    offset: int

    def as_list(self) -> list[int]:
        return [self.segment, self.offset]


@dataclass(frozen=True)
class WalEntry:
    seq: int
    payload: bytes
    start: WalPosition
    end: WalPosition  # position right after this entry


def _segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{_SUFFIX}"


class WriteAheadLog:
    """Segmented, CRC-checked, group-committed append-only log with a size limit."""

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        segment_bytes: int = 64 * 1024 * 1024,
        max_bytes: int = 1024 * 1024 * 1024,
        fsync: bool = True,
        sealer: Sealer | None = None,
    ) -> None:
        self.directory = Path(directory)
        self.sealer = sealer  # encryption at rest: entries are sealed on write, opened on read
        self.segment_bytes = segment_bytes
        self.max_bytes = max_bytes
        self.fsync = fsync
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)
        self._pending: list[tuple[bytes, Future[int]]] = []
        self._pending_bytes = 0
        self._closed = False
        self._fd = -1
        self._segment = 0
        self._offset = 0
        self._next_seq = 1
        self._durable = WalPosition(0, 0)
        self._disk_bytes = 0
        self._consumed_bytes = 0  # bytes of live segments that the reader has moved past
        self._segments: list[int] = []
        self._writer: threading.Thread | None = None
        self.fsyncs = 0

    # -- lifecycle ---------------------------------------------------------------------------

    def open(self, *, min_next_seq: int = 1) -> None:
        """Recover from whatever the last process left (truncating a torn tail) and start.

        ``min_next_seq`` is a floor for the next sequence number (one past what the store has):
        store inserts are deduplicated by sequence range, so numbers must never be reused, even
        if the WAL directory was lost or emptied by hand.
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        self._segments = sorted(
            int(p.name[: -len(_SUFFIX)]) for p in self.directory.glob("*" + _SUFFIX)
            if p.name[: -len(_SUFFIX)].isdigit()
        )
        self._disk_bytes = sum(self._path(s).stat().st_size for s in self._segments)
        if self._segments:
            last = self._segments[-1]
            end, next_seq = self._scan_tail(last)
            self._segment, self._offset = last, end
            self._next_seq = max(next_seq, min_next_seq)
            self._fd = os.open(self._path(last), os.O_WRONLY | os.O_APPEND)
        else:
            self._next_seq = max(1, min_next_seq)
            self._new_segment(self._next_seq)
        self._durable = WalPosition(self._segment, self._offset)
        self._writer = threading.Thread(target=self._write_loop, name="wal-writer", daemon=True)
        self._writer.start()

    def close(self) -> None:
        """Write what is pending, then stop the writer."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        if self._writer is not None:
            self._writer.join()
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _path(self, segment: int) -> Path:
        return self.directory / _segment_name(segment)

    def _scan_tail(self, segment: int) -> tuple[int, int]:
        """Validate the last segment; truncate a torn tail; return (end offset, next seq)."""
        path = self._path(segment)
        data = path.read_bytes()
        if len(data) < len(_MAGIC) or data[: len(_MAGIC)] != _MAGIC:
            # the process died while creating the segment: nothing in it was acknowledged
            with open(path, "wb") as fh:
                fh.write(_MAGIC)
                fh.flush()
                os.fsync(fh.fileno())
            self._disk_bytes += len(_MAGIC) - len(data)
            return len(_MAGIC), segment
        offset = len(_MAGIC)
        next_seq = segment
        for entry in _iter_entries(data, segment, offset):
            offset = entry.end.offset
            next_seq = entry.seq + 1
        if offset < len(data):
            os.truncate(path, offset)
            self._disk_bytes -= len(data) - offset
        return offset, next_seq

    def _new_segment(self, first_seq: int) -> None:
        if self._fd >= 0:
            os.close(self._fd)
        path = self._path(first_seq)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_APPEND, 0o600)
        os.write(fd, _MAGIC)
        if self.fsync:
            os.fsync(fd)
            fsync_dir(self.directory)
        self._fd = fd
        self._segment = first_seq
        self._offset = len(_MAGIC)
        self._segments.append(first_seq)
        self._disk_bytes += len(_MAGIC)

    # -- writing -----------------------------------------------------------------------------

    def backlog_bytes(self) -> int:
        """Bytes in the WAL not yet moved to the store, plus bytes waiting to be written."""
        return self._disk_bytes - self._consumed_bytes + self._pending_bytes

    def submit(self, payload: bytes) -> Future[int]:
        """Queue one entry; the future resolves to its sequence number once fsync'd.

        Raises :class:`WalFull` when the backlog is over the limit (the data is not taken).
        """
        future: Future[int] = Future()
        with self._cond:
            if self._closed:
                raise RuntimeError("the write-ahead log is closed")
            if self.backlog_bytes() + len(payload) > self.max_bytes:
                raise WalFull(f"write-ahead log backlog is over {self.max_bytes} bytes")
            self._pending.append((payload, future))
            self._pending_bytes += len(payload) + _HEADER.size
            self._cond.notify_all()
        return future

    def _write_loop(self) -> None:
        while True:
            with self._cond:
                while not self._pending and not self._closed:
                    self._cond.wait()
                if not self._pending and self._closed:
                    return
                batch, self._pending = self._pending, []
                self._pending_bytes = 0
            try:
                seqs = self._write_batch([p for p, _ in batch])
            except BaseException as exc:  # every waiter must hear of the failure
                for _, fut in batch:
                    fut.set_exception(exc)
                continue
            for (_, fut), seq in zip(batch, seqs, strict=True):
                fut.set_result(seq)

    def _write_batch(self, payloads: list[bytes]) -> list[int]:
        parts: list[bytes] = []
        seqs: list[int] = []
        size = 0
        if self.sealer is not None:
            payloads = [self.sealer.seal(p) for p in payloads]
        for payload in payloads:
            seq = self._next_seq
            self._next_seq += 1
            crc = zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq)))
            parts.append(_HEADER.pack(len(payload), crc, seq))
            parts.append(payload)
            size += _HEADER.size + len(payload)
            seqs.append(seq)
        blob = b"".join(parts)
        view = memoryview(blob)
        try:
            while view:
                written = os.write(self._fd, view)
                view = view[written:]
            if self.fsync:
                os.fdatasync(self._fd)
                self.fsyncs += 1
        except OSError as exc:
            # disk full or I/O error: cut what was half written so the next batch starts clean
            os.ftruncate(self._fd, self._offset)
            self._next_seq = seqs[0]
            if exc.errno in (errno.ENOSPC, errno.EDQUOT):
                raise WalNoSpace(exc.errno, f"no space left for the write-ahead log: {exc.strerror}",
                                 str(self._path(self._segment))) from exc
            raise
        with self._cond:
            self._offset += size
            self._disk_bytes += size
            self._durable = WalPosition(self._segment, self._offset)
            self._cond.notify_all()
        if self._offset >= self.segment_bytes:
            with self._cond:
                self._new_segment(self._next_seq)
                self._durable = WalPosition(self._segment, self._offset)
        return seqs

    # -- reading (the batcher) ---------------------------------------------------------------

    @property
    def durable(self) -> WalPosition:
        return self._durable

    def start_position(self) -> WalPosition:
        """The first entry of the oldest segment still on disk."""
        first = self._segments[0] if self._segments else self._segment
        return WalPosition(first, len(_MAGIC))

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

    def read(self, position: WalPosition, max_bytes: int) -> list[WalEntry]:
        """Durable entries from ``position`` on, about ``max_bytes`` of payload at the most."""
        out: list[WalEntry] = []
        total = 0
        durable = self._durable
        pos = position
        while pos < durable and total < max_bytes:
            limit = durable.offset if pos.segment == durable.segment else None
            with open(self._path(pos.segment), "rb") as fh:
                fh.seek(pos.offset)
                while total < max_bytes and (limit is None or pos.offset < limit):
                    header = fh.read(_HEADER.size)
                    if not header and limit is None:
                        break  # the end of a sealed segment
                    if len(header) < _HEADER.size:
                        raise WalCorruption(f"truncated entry header at {pos.segment}:{pos.offset}")
                    length, crc, seq = _HEADER.unpack(header)
                    payload = fh.read(length)
                    if len(payload) < length:
                        raise WalCorruption(f"truncated entry at {pos.segment}:{pos.offset}")
                    if zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq))) != crc:
                        raise WalCorruption(f"entry at {pos.segment}:{pos.offset} fails its CRC")
                    end = WalPosition(pos.segment, pos.offset + _HEADER.size + length)
                    if self.sealer is not None:
                        payload = self.sealer.open(payload)
                    out.append(WalEntry(seq, payload, pos, end))
                    total += length
                    pos = end
            if limit is not None or total >= max_bytes:
                break
            with self._cond:
                following = [s for s in self._segments if s > pos.segment]
            if not following:
                break
            pos = WalPosition(following[0], len(_MAGIC))
        return out

    def release(self, position: WalPosition) -> None:
        """Everything before ``position`` is in the store: delete the segments wholly before it."""
        with self._cond:
            doomed = [s for s in self._segments if s < position.segment]
            live = self._segments[-1] if self._segments else None
            doomed = [s for s in doomed if s != live]
        for seg in doomed:
            path = self._path(seg)
            try:
                size = path.stat().st_size
                path.unlink()
            except FileNotFoundError:
                size = 0
            with self._cond:
                self._segments.remove(seg)
                self._disk_bytes -= size
        with self._cond:
            if self._segments and position.segment == self._segments[0]:
                self._consumed_bytes = position.offset
            else:
                self._consumed_bytes = 0

    def iter_segments(self) -> Iterator[int]:
        yield from list(self._segments)


def _iter_entries(data: bytes, segment: int, offset: int) -> Iterator[WalEntry]:
    """Valid entries of a whole segment file from ``offset``; stops at the first bad one."""
    i = offset
    n = len(data)
    while i + _HEADER.size <= n:
        length, crc, seq = _HEADER.unpack_from(data, i)
        end = i + _HEADER.size + length
        if end > n:
            return
        payload = data[i + _HEADER.size : end]
        if zlib.crc32(payload, zlib.crc32(_SEQ.pack(seq))) != crc:
            return
        yield WalEntry(seq, payload, WalPosition(segment, i), WalPosition(segment, end))
        i = end
