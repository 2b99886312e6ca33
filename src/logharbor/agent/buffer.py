"""Per-sink buffers between the pipeline and a sink's delivery thread, bounded in bytes.

Both kinds hand items out in order (``get``) and forget them only when the sink reports them
delivered (``commit``), so a batch that fails stays owned by the sink until it succeeds.

- :class:`MemoryBuffer`: items keep their :class:`~logharbor.agent.types.Ack`; the sink
  acknowledges them after delivery, so the source checkpoint waits for the receiver.
- :class:`DiskBuffer`: an item is appended to a segment file and fsync'd, and *that* is its
  acknowledgement (the data is durable: a restart replays it), so a receiver that is down for a
  long time does not hold back the sources, and rotated-away files are not needed again. The
  delivered position is kept in ``ack.json`` (atomic rename); a torn tail after a crash is found
  by its CRC and cut off, it was never acknowledged.

``when_full: block`` makes ``put`` wait (backpressure up to the source, which stops reading);
``drop_newest`` refuses the item, and the caller counts and acknowledges it as dropped.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import struct
import threading
import zlib
from collections import deque
from pathlib import Path
from typing import Any, Protocol

import orjson

from logharbor.agent.identity import short_id
from logharbor.agent.types import Encoded
from logharbor.sealing import Sealer

__all__ = ["Buffer", "BufferClosed", "DiskBuffer", "MemoryBuffer", "open_buffer"]


class BufferClosed(Exception):
    """The buffer was closed (shutdown): the item was *not* taken and must stay unacknowledged."""

_HEADER = struct.Struct("<III")  # payload length, record count, crc32 of the payload


class Buffer(Protocol):
    """What a sink's delivery thread needs from its buffer."""

    def put(self, item: Encoded) -> bool:
        """Queue an item; False when full and ``drop_newest``; raises :class:`BufferClosed`."""
        ...

    def get(self, timeout: float) -> Encoded | None:
        """The next item not yet handed out, waiting up to ``timeout`` seconds."""
        ...

    def commit(self, items: list[Encoded]) -> None:
        """These handed-out items were delivered (in any order: positions move in order)."""
        ...

    def size(self) -> tuple[int, int]:
        """(bytes, records) held, delivered ones excluded."""
        ...

    def close(self) -> None:
        """Wake every waiter; further ``put`` calls are refused."""
        ...

    def rewind(self) -> None:
        """Forget what was handed out: every item not yet delivered is next to ``get`` again, in
        order (the delivery threads are stopped; their successor takes over this buffer)."""
        ...

    def reconfigure(self, max_bytes: int, when_full: str) -> None:
        """Apply a reloaded config's bound and full-buffer policy."""
        ...

    def take_all(self) -> list[Encoded]:
        """Remove and return every item not yet delivered (after ``close``, to settle their acks)."""
        ...

    def span(self, items: list[Encoded]) -> str | None:
        """A name for these handed-out items that a restart gives them again (their place in a
        disk buffer), or None when they have none (memory: they die with the process)."""
        ...

    def note_batch(self, items: list[Encoded]) -> None:
        """These items are about to be sent as one batch: remember it, so that after a crash the
        same batch is formed again (same items, same :meth:`span`, same idempotency key)."""
        ...

    def replay_end(self, first: Encoded) -> int | None:
        """If ``first`` began a batch noted before a crash, how many items that batch had."""
        ...


class MemoryBuffer:
    """A bounded in-memory queue; what it holds is lost on a crash but was never acknowledged."""

    def __init__(self, max_bytes: int, when_full: str) -> None:
        self.max_bytes = max_bytes
        self.block = when_full == "block"
        self._queue: deque[Encoded] = deque()
        self._out: deque[list[Any]] = deque()  # [item, delivered], in hand-out order
        self._index: dict[int, list[Any]] = {}
        self._bytes = 0
        self._events = 0
        self._closed = False
        self._cond = threading.Condition()

    def put(self, item: Encoded) -> bool:
        n = len(item.payload)
        with self._cond:
            while self._bytes and self._bytes + n > self.max_bytes:
                if self._closed:
                    raise BufferClosed
                if not self.block:
                    return False
                self._cond.wait(0.5)
            if self._closed:
                raise BufferClosed
            self._queue.append(item)
            self._bytes += n
            self._events += item.count
            self._cond.notify_all()
            return True

    def get(self, timeout: float) -> Encoded | None:
        with self._cond:
            if not self._queue and timeout > 0:
                self._cond.wait(timeout)
            if not self._queue:
                return None
            item = self._queue.popleft()
            entry = [item, False]
            self._out.append(entry)
            self._index[id(item)] = entry
            return item

    def commit(self, items: list[Encoded]) -> None:
        with self._cond:
            for item in items:
                self._index.pop(id(item))[1] = True
            while self._out and self._out[0][1]:
                done = self._out.popleft()[0]
                self._bytes -= len(done.payload)
                self._events -= done.count
            self._cond.notify_all()

    def size(self) -> tuple[int, int]:
        return self._bytes, self._events

    def close(self) -> None:
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def rewind(self) -> None:
        with self._cond:
            again = []
            for item, delivered in self._out:
                if delivered:
                    self._bytes -= len(item.payload)
                    self._events -= item.count
                else:
                    again.append(item)
            self._out.clear()
            self._index.clear()
            self._queue.extendleft(reversed(again))
            self._cond.notify_all()

    def reconfigure(self, max_bytes: int, when_full: str) -> None:
        with self._cond:
            self.max_bytes, self.block = max_bytes, when_full == "block"
            self._cond.notify_all()

    def take_all(self) -> list[Encoded]:
        with self._cond:
            items = [item for item, delivered in self._out if not delivered] + list(self._queue)
            self._out.clear()
            self._index.clear()
            self._queue.clear()
            self._bytes = self._events = 0
            self._cond.notify_all()
            return items


    def span(self, items: list[Encoded]) -> str | None:
        return None

    def note_batch(self, items: list[Encoded]) -> None:
        """Nothing to remember: a memory buffer does not outlive the process."""

    def replay_end(self, first: Encoded) -> int | None:
        return None


class DiskBuffer:
    """Segment files under ``directory``; durable once ``put`` returns (write + fsync)."""

    def __init__(self, directory: Path, max_bytes: int, when_full: str, sealer: Sealer | None = None) -> None:
        self.dir = directory
        self.sealer = sealer  # encryption at rest: entries sealed (AES-GCM) on put, opened on read
        self.dir.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.block = when_full == "block"
        self.segment_max = max(64 * 1024, min(max_bytes // 4, 16 * 1024 * 1024))
        self._cond = threading.Condition()
        self._closed = False
        self._ack_path = self.dir / "ack.json"
        segs = sorted(int(p.stem) for p in self.dir.glob("*.seg") if p.stem.isdigit())
        acked = self._load_ack()
        if acked is None or (segs and acked[0] < segs[0]):
            acked = (segs[0] if segs else 0, 0)
        for s in segs:
            if s < acked[0]:
                self._seg_path(s).unlink()
        self._segs = [s for s in segs if s >= acked[0]] or [acked[0]]
        self._repair_tail(self._segs[-1])
        self._acked = acked  # delivered up to here
        self._read = acked  # handed out up to here
        self.id = self._buffer_id()
        # batches noted (about to be sent) and not yet delivered: start position -> (end, items)
        self._batches: dict[tuple[int, int], tuple[tuple[int, int], int]] = {
            s: b for s, b in self._load_batches().items() if s >= acked}
        # [end position, bytes, records, delivered, start position], in hand-out order
        self._out: deque[list[Any]] = deque()
        self._index: dict[int, list[Any]] = {}
        self._skip: set[tuple[int, int]] = set()  # ends of entries delivered before a rewind
        self._events = self._count_events(acked)
        self._bytes = sum(self._seg_size(s) for s in self._segs) - acked[1]
        self._wseg = self._segs[-1]
        self._wfd = os.open(self._seg_path(self._wseg), os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        self._wsize = os.fstat(self._wfd).st_size

    # -- files ------------------------------------------------------------------------------

    def _seg_path(self, seg: int) -> Path:
        return self.dir / f"{seg:012d}.seg"

    def _seg_size(self, seg: int) -> int:
        try:
            return self._seg_path(seg).stat().st_size
        except FileNotFoundError:
            return 0

    def _load_ack(self) -> tuple[int, int] | None:
        try:
            doc = orjson.loads(self._ack_path.read_bytes())
            return int(doc["segment"]), int(doc["offset"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _load_batches(self) -> dict[tuple[int, int], tuple[tuple[int, int], int]]:
        try:
            doc = orjson.loads(self._ack_path.read_bytes())
            return {(int(b[0]), int(b[1])): ((int(b[2]), int(b[3])), int(b[4]))
                    for b in doc.get("batches", [])}
        except (OSError, ValueError, KeyError, TypeError, IndexError, AttributeError):
            return {}

    def _buffer_id(self) -> str:
        """This buffer's own id (in ``id``): positions restart only with a new buffer, so the id
        keeps a span from ever naming two different batches."""
        path = self.dir / "id"
        try:
            value = path.read_text().strip()
        except OSError:
            value = ""
        if not value.isalnum() or len(value) > 16:
            value = short_id()
            path.write_text(value + "\n")
        return value

    def _write_ack(self) -> None:
        """The delivered position and the batches in flight, replaced atomically (no fsync: a lost
        update only makes a restart send a delivered batch again, at-least-once)."""
        doc = {"segment": self._acked[0], "offset": self._acked[1],
               "batches": [[*s, *e, n] for s, (e, n) in sorted(self._batches.items())]}
        tmp = self._ack_path.with_suffix(".tmp")
        tmp.write_bytes(orjson.dumps(doc))
        os.replace(tmp, self._ack_path)

    def _scan(self, seg: int, start: int = 0):  # type: ignore[no-untyped-def]
        """Yield (end offset, records) of each complete, CRC-valid entry of a segment."""
        try:
            data = self._seg_path(seg).read_bytes()
        except FileNotFoundError:
            return
        pos = start
        while pos + _HEADER.size <= len(data):
            length, count, crc = _HEADER.unpack_from(data, pos)
            body = data[pos + _HEADER.size: pos + _HEADER.size + length]
            if len(body) < length or zlib.crc32(body) != crc:
                return
            pos += _HEADER.size + length
            yield pos, count

    def _repair_tail(self, seg: int) -> None:
        end = 0
        for entry_end, _ in self._scan(seg):
            end = entry_end
        path = self._seg_path(seg)
        if path.exists() and path.stat().st_size != end:
            with open(path, "r+b") as fh:
                fh.truncate(end)

    def _count_events(self, acked: tuple[int, int]) -> int:
        total = 0
        for s in self._segs:
            for _, count in self._scan(s, acked[1] if s == acked[0] else 0):
                total += count
        return total

    # -- writer -----------------------------------------------------------------------------

    def put(self, item: Encoded) -> bool:
        data = self.sealer.seal(item.payload) if self.sealer is not None else item.payload
        n = len(data) + _HEADER.size
        with self._cond:
            while self._bytes and self._bytes + n > self.max_bytes:
                if self._closed:
                    raise BufferClosed
                if not self.block:
                    return False
                self._cond.wait(0.5)
            if self._closed:
                raise BufferClosed
            if self._wsize >= self.segment_max:
                os.close(self._wfd)
                self._wseg += 1
                self._segs.append(self._wseg)
                self._wfd = os.open(self._seg_path(self._wseg),
                                    os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
                self._wsize = 0
            header = _HEADER.pack(len(data), item.count, zlib.crc32(data))
            os.write(self._wfd, header + data)
            os.fsync(self._wfd)
            self._wsize += n
            self._bytes += n
            self._events += item.count
            self._cond.notify_all()
        return True

    # -- reader -----------------------------------------------------------------------------

    def get(self, timeout: float) -> Encoded | None:
        with self._cond:
            item = self._next()
            if item is None and timeout > 0 and not self._closed:
                self._cond.wait(timeout)
                item = self._next()
            return item

    def _next(self) -> Encoded | None:
        while True:
            seg, off = self._read
            while True:
                size = self._wsize if seg == self._wseg else self._seg_size(seg)
                if off < size:
                    break
                if seg >= self._wseg:
                    return None
                seg, off = seg + 1, 0
            with open(self._seg_path(seg), "rb") as fh:
                fh.seek(off)
                length, count, crc = _HEADER.unpack(fh.read(_HEADER.size))
                payload = fh.read(length)
            if zlib.crc32(payload) != crc:  # cannot happen after _repair_tail, unless the disk lies
                raise OSError(f"disk buffer {self.dir}: corrupt entry in segment {seg} at {off}")
            start = (seg, off)
            end = (seg, off + _HEADER.size + length)
            self._read = end
            if end not in self._skip:
                break
            # delivered before a rewind (out of order): not again, but it still moves the position
            self._skip.discard(end)
            self._out.append([end, _HEADER.size + length, count, True, start])
        if self.sealer is not None:
            payload = self.sealer.open(payload)
        item = Encoded(payload, count, None)
        entry = [end, _HEADER.size + length, count, False, start]
        self._out.append(entry)
        self._index[id(item)] = entry
        return item

    def commit(self, items: list[Encoded]) -> None:
        with self._cond:
            noted = False
            for k, item in enumerate(items):
                entry = self._index.pop(id(item))
                entry[3] = True
                if k == 0 and self._batches.pop(entry[4], None) is not None:
                    noted = True
            if not (self._out and self._out[0][3]):
                if noted:
                    self._write_ack()
                return
            while self._out and self._out[0][3]:
                end, nbytes, count, _, _ = self._out.popleft()
                self._acked = end
                self._bytes -= nbytes
                self._events -= count
            self._write_ack()
            while self._segs and self._segs[0] < self._acked[0]:
                with contextlib.suppress(FileNotFoundError):
                    self._seg_path(self._segs.pop(0)).unlink()
            self._cond.notify_all()

    def size(self) -> tuple[int, int]:
        return self._bytes, self._events

    def close(self) -> None:
        with self._cond:
            if not self._closed:
                self._closed = True
                os.close(self._wfd)
            self._cond.notify_all()

    def rewind(self) -> None:
        with self._cond:
            self._skip = {tuple(e[0]) for e in self._out if e[3]}
            self._out.clear()
            self._index.clear()
            self._read = self._acked
            self._cond.notify_all()

    def reconfigure(self, max_bytes: int, when_full: str) -> None:
        with self._cond:
            self.max_bytes, self.block = max_bytes, when_full == "block"
            self._cond.notify_all()

    def take_all(self) -> list[Encoded]:
        return []  # acknowledged when written: they stay on disk, replayed by the next owner

    def span(self, items: list[Encoded]) -> str | None:
        with self._cond:
            entries = [self._index.get(id(item)) for item in items]
        if not entries or any(e is None for e in entries):
            return None
        for prev, cur in itertools.pairwise(entries):
            assert prev is not None and cur is not None
            if cur[4] != prev[0] and not (cur[4][0] > prev[0][0] and cur[4][1] == 0):
                return None  # not one contiguous run of the buffer
        first, last = entries[0], entries[-1]
        assert first is not None and last is not None
        return f"{self.id}-{first[4][0]}.{first[4][1]}-{last[0][0]}.{last[0][1]}"

    def note_batch(self, items: list[Encoded]) -> None:
        with self._cond:
            first, last = self._index.get(id(items[0])), self._index.get(id(items[-1]))
            if first is None or last is None or self._batches.get(first[4]) == (last[0], len(items)):
                return
            self._batches[first[4]] = (last[0], len(items))
            self._write_ack()

    def replay_end(self, first: Encoded) -> int | None:
        with self._cond:
            entry = self._index.get(id(first))
            found = self._batches.get(entry[4]) if entry is not None else None
        return found[1] if found is not None else None


def open_buffer(kind: str, directory: Path, max_bytes: int, when_full: str,
                encryption_key_file: Path | None = None) -> Buffer:
    """The buffer a sink's config asks for (a disk buffer sealed when a key file is given)."""
    if kind == "disk":
        sealer = Sealer.from_file(encryption_key_file) if encryption_key_file is not None else None
        return DiskBuffer(directory, max_bytes, when_full, sealer)
    return MemoryBuffer(max_bytes, when_full)
