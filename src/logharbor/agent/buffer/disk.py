"""The disk buffer: segment files under ``<data_dir>/buffer/<sink>/``, durable once ``put`` returns.

An item is appended to the live segment and fsync'd, and *that* is its acknowledgement (a
restart replays it), so a receiver that is down for long does not hold back the sources. A large
item is written as several entries of whole records (at most ``ENTRY_MAX`` bytes each, one
write, one fsync), so damage costs at most that much of it; they are handed out one by one. Items
are handed out in order and forgotten only once delivered; the delivered position and the
batches about to be sent are in ``ack.json`` (``position.py``); the files, their framing and
their damage are ``segmentlog.py``'s.

Damage (``docs/reliability.md``, "A damaged agent buffer") costs the damaged entries and nothing
else: they are copied aside, logged and counted, and the reader passes over them as over a
delivered entry, so every valid entry before and after them is delivered and delivery never
stalls on them. A torn tail (never acknowledged) is cut at start and logged.
"""

from __future__ import annotations

import itertools
import logging
import os
import threading
import time
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from logharbor.agent import telemetry
from logharbor.agent.buffer.position import Pos, check_position_version, load_position, save_position
from logharbor.agent.buffer.segmentlog import SegmentLog
from logharbor.agent.buffer.segments import check_versions, count_of, entry_size, list_segments, split_records
from logharbor.agent.types import BufferClosed, Encoded
from logharbor.filemodes import private_dir
from logharbor.sealing import Sealer, SealError, looks_sealed

__all__ = ["DiskBuffer"]

#: how long delivery waits before trying again after a sealed entry would not open, or a
#: damaged span could not be copied aside
_STALL_SECS = 5.0


@dataclass(slots=True)
class _Handed:
    """An entry handed out (or a span passed over: ``real`` False), in hand-out order."""

    start: Pos
    end: Pos
    nbytes: int
    count: int
    delivered: bool
    real: bool = True


class DiskBuffer:
    """Segment files under ``directory``; see the module docstring."""

    def __init__(self, directory: Path, max_bytes: int, when_full: str, sealer: Sealer | None = None,
                 *, sink: str | None = None, segment_bytes: int | None = None) -> None:
        self.dir = directory
        self.sink = sink or directory.name
        self.sealer = sealer  # encryption at rest: entries sealed (AES-GCM) on put, opened on read
        self.check_version(directory)  # before anything is written: a newer release's buffer is refused
        private_dir(directory)
        self.max_bytes = max_bytes
        self.block = when_full == "block"
        self._cond = threading.Condition()
        self._closed = False
        state = load_position(directory, self.sink, holds_data=bool(list_segments(directory)))
        self.id = state.buffer_id
        segment_max = segment_bytes or max(64 * 1024, min(max_bytes // 4, 16 * 1024 * 1024))
        self.log = SegmentLog(directory, self.sink, segment_max)
        opened = self.log.open(state.acked)
        if state.lost and opened.records:
            telemetry.event(logging.ERROR, "disk buffer position lost: delivering again from the oldest "
                            "segment (what it holds may be sent twice)", sink=self.sink,
                            records=opened.records, bytes=opened.nbytes)
        self.quarantine = self.log.quarantine
        self._acked: Pos = opened.acked  # delivered up to here
        self._read: Pos = opened.acked  # handed out up to here
        self._events, self._bytes = opened.records, opened.nbytes
        self._batches = {s: b for s, b in state.batches.items() if s >= opened.acked}
        self._out: deque[_Handed] = deque()
        self._index: dict[int, _Handed] = {}
        self._skip: set[Pos] = set()  # ends of entries delivered before a rewind
        self._stall_until = 0.0
        self._save_failed = False  # the last position write failed (said once, until one succeeds)

    @staticmethod
    def check_version(directory: Path) -> None:
        """Refuse (:class:`~logharbor.formatversion.NewerFormat`) a buffer a newer release wrote:
        a segment's magic or ``ack.json``'s version; read-only."""
        check_versions(directory)
        check_position_version(directory)

    # -- writer ---------------------------------------------------------------------------------

    def put(self, item: Encoded) -> bool:
        entries = [(count, self.sealer.seal(piece) if self.sealer is not None else piece)
                   for piece, count in split_records(item.payload, item.count)]
        n = sum(entry_size(data) for _, data in entries)
        with self._cond:
            while self._bytes and self._bytes + n > self.max_bytes:
                if self._closed:
                    raise BufferClosed
                if not self.block:
                    return False
                self._cond.wait(0.5)
            while True:
                if self._closed:
                    raise BufferClosed
                try:
                    self.log.append(entries)
                    break
                except OSError as exc:  # a full disk, an I/O error: nothing of it stays, nothing taken
                    telemetry.event(logging.ERROR, "disk buffer write failed; " + (
                        "retrying in 1 s" if self.block else "records dropped"), sink=self.sink,
                        error=os.strerror(exc.errno) if exc.errno else str(exc))
                    if not self.block:
                        return False
                    self._cond.wait(1.0)
            self._bytes += n
            self._events += item.count
            self._cond.notify_all()
        return True

    # -- reader ---------------------------------------------------------------------------------

    def get(self, timeout: float) -> Encoded | None:
        with self._cond:
            item = self._next()
            if item is None and timeout > 0 and not self._closed:
                self._cond.wait(timeout)
                item = self._next()
            return item

    def _pass(self, start: Pos, end: Pos) -> None:
        """Move the read position over bytes that hold no entry to hand out (damage)."""
        self._out.append(_Handed(start, end, end[1] - start[1], 0, True, real=False))
        self._read = end
        self._advance()

    def _stall(self) -> None:
        self._stall_until = time.monotonic() + _STALL_SECS

    def _next(self) -> Encoded | None:
        log = self.log
        while time.monotonic() >= self._stall_until:
            seg = log.seg(self._read[0]) or log.after(self._read[0])
            if seg is None:
                return None
            off = max(self._read[1], seg.base) if seg.number == self._read[0] else seg.base
            self._read = (seg.number, off)
            bad = log.bad_at(self._read)
            if bad is not None:
                self._pass(self._read, (seg.number, bad.end))
                continue
            if off >= log.limit(seg):
                nxt = log.after(seg.number)
                if nxt is None:
                    return None
                self._read = (nxt.number, nxt.base)
                continue
            got = log.read(seg, off)
            if got is None:
                if not log.found_damage(seg, off):
                    self._stall()  # a copy could not be made: delivery waits, and tries again
                    return None
                self._events = sum(h.count for h in self._out) + log.records_from(self._read)
                continue
            span, payload = got
            start, end, count = self._read, (seg.number, span.end), count_of(span)
            if end in self._skip:  # delivered before a rewind (out of order): not again
                self._skip.discard(end)
                self._read = end
                self._out.append(_Handed(start, end, span.end - off, count, True))
                continue
            if self.sealer is not None:
                try:
                    payload = self.sealer.open(payload)
                except SealError as exc:  # not damage (its CRCs hold): a key is missing; wait for it
                    telemetry.event(logging.ERROR, "disk buffer entry cannot be opened; delivery waits "
                                    "(restore the key in the key file and restart)", sink=self.sink,
                                    segment=seg.path.name, offset=off, error=str(exc))
                    self._stall()
                    return None
            elif looks_sealed(payload):  # sent as records they would be refused and dropped
                telemetry.event(logging.ERROR, "disk buffer entry is sealed (encryption at rest) and the "
                                "buffer has no encryption_key_file; delivery waits (set the key file and "
                                "restart)", sink=self.sink, segment=seg.path.name, offset=off)
                self._stall()
                return None
            self._read = end
            item = Encoded(payload, count, None)
            handed = _Handed(start, end, span.end - off, count, False)
            self._out.append(handed)
            self._index[id(item)] = handed
            return item
        return None

    def commit(self, items: list[Encoded]) -> None:
        with self._cond:
            noted = False
            for k, item in enumerate(items):
                handed = self._index.pop(id(item))
                handed.delivered = True
                if k == 0 and self._batches.pop(handed.start, None) is not None:
                    noted = True
            if not self._advance() and noted:
                self._save()

    def _advance(self) -> bool:
        """Forget the delivered entries at the head; whether the delivered position moved."""
        if not (self._out and self._out[0].delivered):
            return False
        while self._out and self._out[0].delivered:
            done = self._out.popleft()
            self._acked = done.end
            self._bytes -= done.nbytes
            self._events -= done.count
        self._save()
        self.log.drop_before(self._acked[0])
        self._cond.notify_all()
        return True

    def _save(self) -> None:
        """Write the delivered position. A full disk (or an I/O error) is logged and delivery goes
        on: the position in memory is right, the one on disk older (a restart before the next
        save that succeeds sends what lies between again: at least once). Raising here ended the
        delivery thread, or stranded the batch being noted, until the agent was restarted."""
        try:
            save_position(self.dir, self._acked, self._batches, self.id)
        except OSError as exc:
            if not self._save_failed:
                telemetry.event(logging.ERROR, "disk buffer position could not be written; delivery goes "
                                "on, and a restart before it is written sends the batches since again",
                                sink=self.sink, error=os.strerror(exc.errno) if exc.errno else str(exc))
            self._save_failed = True
            return
        if self._save_failed:
            self._save_failed = False
            telemetry.event(logging.INFO, "disk buffer position written again", sink=self.sink)

    def size(self) -> tuple[int, int]:
        return self._bytes, max(0, self._events)

    def close(self) -> None:
        with self._cond:
            if not self._closed:
                self._closed = True
                self.log.close()
            self._cond.notify_all()

    def rewind(self) -> None:
        with self._cond:
            self._skip = {h.end for h in self._out if h.delivered and h.real}
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

    # -- batches and their names ----------------------------------------------------------------

    def span(self, items: list[Encoded]) -> str | None:
        with self._cond:
            handed = [self._index.get(id(item)) for item in items]
            if not handed or any(h is None for h in handed):
                return None
            for prev, cur in itertools.pairwise(handed):
                assert prev is not None and cur is not None
                if not self.log.adjacent(prev.end, cur.start):
                    return None  # not one contiguous run of the buffer
        first, last = handed[0], handed[-1]
        assert first is not None and last is not None
        return f"{self.id}-{first.start[0]}.{first.start[1]}-{last.end[0]}.{last.end[1]}"

    def note_batch(self, items: list[Encoded]) -> None:
        with self._cond:
            first, last = self._index.get(id(items[0])), self._index.get(id(items[-1]))
            if first is None or last is None or self._batches.get(first.start) == (last.end, len(items)):
                return
            self._batches[first.start] = (last.end, len(items))
            self._save()

    def replay_end(self, first: Encoded) -> int | None:
        with self._cond:
            handed = self._index.get(id(first))
            found = self._batches.get(handed.start) if handed is not None else None
            if handed is None or found is None:
                return None
            return 1 + self.log.entries_between(handed.end, found[0], self._skip)
