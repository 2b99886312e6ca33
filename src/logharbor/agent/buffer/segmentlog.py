"""The segment files of one disk buffer: appending, reading entries back, and their damage.

Positions are ``(segment number, offset)``. At :meth:`SegmentLog.open` every segment is scanned
(``logharbor.framing``): a torn tail of the last one (a write a crash cut short, never
acknowledged) is truncated and logged with its size; damaged bytes anywhere are copied to
``quarantine/``, logged with their place and size, counted, and remembered as *bad spans*, which
the reader passes over. An entry is checked again each time it is read, so damage that appears
later is found then (:meth:`found_damage`) and handled the same way.
"""

from __future__ import annotations

import contextlib
import errno
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from logharbor.agent import telemetry
from logharbor.agent.buffer.position import Pos
from logharbor.agent.buffer.quarantine import Quarantine
from logharbor.agent.buffer.segments import (
    MAGIC,
    Segment,
    count_of,
    encode_entry,
    list_segments,
    read_entry,
    scan_range,
    scan_segment,
    segment_at,
)
from logharbor.durable import fsync_dir
from logharbor.framing import MAGIC_SIZE, BadSpan, SegmentScan, Span

__all__ = ["Opened", "SegmentLog"]


@dataclass
class Opened:
    """What :meth:`SegmentLog.open` found: the delivered position and what is held after it."""

    acked: Pos
    records: int
    nbytes: int


class SegmentLog:
    """The segments of one buffer directory (see the module docstring)."""

    def __init__(self, directory: Path, sink: str, segment_max: int) -> None:
        self.dir = directory
        self.sink = sink
        self.segment_max = segment_max
        self.quarantine = Quarantine(directory / "quarantine", sink)
        self.segs = list_segments(directory)
        self.bad: dict[int, list[BadSpan]] = {}  # damaged spans found, per segment
        self.sizes: dict[int, int] = {}  # bytes of each segment but the live one
        self.next_seq = 1
        self.wseg: Segment | None = None
        self.wfd = -1
        self.wsize = 0
        self._rfd: tuple[Segment, int] | None = None

    # -- start ----------------------------------------------------------------------------------

    def open(self, acked: Pos | None) -> Opened:
        """Drop delivered segments, scan the rest, and open the live segment for appending."""
        first = self.segs[0] if self.segs else None
        if first is not None and (acked is None or acked[0] < first.number):
            acked = (first.number, first.base)
        for seg in [s for s in self.segs if acked is not None and s.number < acked[0]]:
            seg.path.unlink()
            self.segs.remove(seg)
        records = nbytes = 0
        for k, seg in enumerate(self.segs):
            result, data = scan_segment(seg, seq_hi=self.seq_hi(seg), torn_ok=k == len(self.segs) - 1)
            size = len(data)
            torn = result.torn
            if torn is not None:
                with open(seg.path, "r+b") as fh:
                    fh.truncate(torn.start)
                    os.fsync(fh.fileno())
                self.quarantine.torn(seg, torn)
                size = torn.start
            self._keep(seg, result, data)
            self.sizes[seg.number] = size
            if acked is not None and seg.number == acked[0]:
                acked = self._on_boundary(seg, result, size, acked)
            from_off = acked[1] if acked is not None and seg.number == acked[0] else 0
            records += sum(count_of(e) for e in result.entries if e.start >= from_off)
            nbytes += max(0, size - max(seg.base, from_off))
            seqs = [e.seq for e in result.entries] + [b.seq_last or 0 for b in result.bad]
            self.next_seq = max(self.next_seq, seg.number + 1, *(s + 1 for s in seqs))
        self._open_writer()
        if acked is None or acked[0] < self.segs[0].number:
            acked = (self.segs[0].number, self.segs[0].base)
        return Opened(acked, records, nbytes)

    def _on_boundary(self, seg: Segment, result: SegmentScan, size: int, acked: Pos) -> Pos:
        """The delivered position lies between entries; if not (an old or hand-edited ``ack.json``),
        it moves back to the boundary before it: at least once, never past an entry."""
        spans = (*result.entries, *result.bad)
        bounds = {seg.base, size, *(s.start for s in spans), *(s.end for s in spans)}
        if acked[1] in bounds:
            return acked
        back = max((b for b in bounds if b <= acked[1]), default=seg.base)
        telemetry.event(logging.WARNING, "disk buffer position is not between two entries: moved back "
                        "(the entry it pointed into is sent again)", sink=self.sink,
                        segment=seg.path.name, offset=acked[1], moved_to=back)
        return (seg.number, back)

    def _open_writer(self) -> None:
        """Append to the last segment when it is new-format and sound, else start a new one."""
        last = self.segs[-1] if self.segs else None
        if (last is None or last.version != 2 or last.number in self.bad
                or self.sizes[last.number] >= self.segment_max):
            self._roll()
            return
        self.wseg = last
        self.wfd = os.open(last.path, os.O_WRONLY | os.O_APPEND, 0o600)
        self.wsize = self.sizes.pop(last.number)
        if self.wsize < MAGIC_SIZE:  # its creation was cut short: the magic again
            os.ftruncate(self.wfd, 0)
            os.write(self.wfd, MAGIC)
            os.fsync(self.wfd)
            self.wsize = MAGIC_SIZE

    # -- segments -------------------------------------------------------------------------------

    def seg(self, number: int) -> Segment | None:
        return next((s for s in self.segs if s.number == number), None)

    def after(self, number: int) -> Segment | None:
        return next((s for s in self.segs if s.number > number), None)

    def seq_hi(self, seg: Segment) -> int | None:
        """The highest sequence number ``seg`` may hold (the next segment's number minus one)."""
        nxt = self.after(seg.number)
        return nxt.number - 1 if nxt is not None and nxt.version == 2 and seg.version == 2 else None

    def limit(self, seg: Segment) -> int:
        """Where ``seg``'s readable bytes end (the live one: what was fsync'd)."""
        return self.wsize if seg is self.wseg else self.sizes.get(seg.number, 0)

    def bad_at(self, pos: Pos) -> BadSpan | None:
        return next((b for b in self.bad.get(pos[0], ()) if b.start <= pos[1] < b.end), None)

    def drop_before(self, number: int) -> None:
        """Delete the segments wholly delivered (numbered below ``number``; never the live one)."""
        while len(self.segs) > 1 and self.segs[0].number < number:
            gone = self.segs.pop(0)
            if self._rfd is not None and self._rfd[0] is gone:
                self._drop_reader()
            gone.path.unlink(missing_ok=True)
            self.sizes.pop(gone.number, None)
            self.bad.pop(gone.number, None)

    # -- writing --------------------------------------------------------------------------------

    def append(self, entries: list[tuple[int, bytes]]) -> None:
        """Append entries (record count, payload) in one write and fsync them; on failure nothing
        of them stays, and a new segment follows."""
        if self.wsize >= self.segment_max or self.wfd < 0:
            self._roll()
        parts = []
        for count, data in entries:
            parts.append(encode_entry(self.next_seq, count, data))
            self.next_seq += 1  # never given twice, even when this write fails
        blob = b"".join(parts)
        try:
            view = memoryview(blob)
            while view:
                view = view[os.write(self.wfd, view):]
            os.fsync(self.wfd)
        except OSError:
            with contextlib.suppress(OSError):
                os.ftruncate(self.wfd, self.wsize)  # the half-written bytes go
            with contextlib.suppress(OSError):
                os.close(self.wfd)
            self.wfd = -1  # after a failed write the page cache cannot be trusted: a new segment
            raise
        self.wsize += len(blob)

    def _roll(self) -> None:
        """Start a new segment holding only the magic, its name durable in the directory."""
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1
        if self.wseg is not None:
            self.sizes[self.wseg.number] = self.wsize
        seg = segment_at(self.dir, self.next_seq)
        fd = os.open(seg.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_APPEND, 0o600)
        try:
            os.write(fd, MAGIC)
            os.fsync(fd)
            fsync_dir(self.dir)
        except OSError:
            os.close(fd)
            seg.path.unlink(missing_ok=True)
            raise
        self.wfd, self.wseg, self.wsize = fd, seg, MAGIC_SIZE
        self.segs.append(seg)

    # -- reading --------------------------------------------------------------------------------

    def read(self, seg: Segment, offset: int) -> tuple[Span, bytes] | None:
        """The entry at ``offset`` and its payload (as stored), or None when it does not check out."""
        if self._rfd is None or self._rfd[0] is not seg:
            self._drop_reader()
            self._rfd = (seg, os.open(seg.path, os.O_RDONLY))
        return read_entry(self._rfd[1], seg, offset, self.limit(seg), self.seq_hi(seg))

    def _drop_reader(self) -> None:
        if self._rfd is not None:
            os.close(self._rfd[1])
            self._rfd = None

    def _keep(self, seg: Segment, result: SegmentScan, data: bytes) -> bool:
        """Copy each damaged span aside and remember it; False when a copy failed (retried)."""
        damage = result.damage
        if not damage:
            return True
        kept = all([self.quarantine.keep(seg, b, data[b.start:b.end]) for b in damage])
        known = {b.start: b for b in self.bad.get(seg.number, [])}
        known.update({b.start: b for b in damage})
        self.bad[seg.number] = sorted(known.values(), key=lambda b: b.start)
        return kept

    def found_damage(self, seg: Segment, offset: int) -> bool:
        """The entry at ``offset`` did not check out: scan its segment and set the damage aside.
        False while a copy cannot be made (the caller waits and tries again)."""
        result, data = scan_segment(seg, limit=self.limit(seg), seq_hi=self.seq_hi(seg))
        if not self._keep(seg, result, data):
            return False
        if self.bad_at((seg.number, offset)) is None:  # whole, it checks out: the bytes changed between reads
            raise OSError(errno.EIO, f"disk buffer {self.dir}: {seg.path.name} offset {offset} reads "
                          "differently each time")
        return True

    def records_from(self, pos: Pos) -> int:
        """Records in the valid entries from ``pos`` on."""
        total = 0
        for seg in self.segs:
            if seg.number < pos[0]:
                continue
            result, _ = scan_segment(seg, limit=self.limit(seg), seq_hi=self.seq_hi(seg))
            from_off = pos[1] if seg.number == pos[0] else 0
            total += sum(count_of(e) for e in result.entries if e.start >= from_off)
        return total

    def entries_between(self, start: Pos, end: Pos, skip: set[Pos]) -> int:
        """Valid entries from ``start`` up to ``end`` whose ends are not in ``skip``."""
        n = 0
        for seg in self.segs:
            if not start[0] <= seg.number <= end[0]:
                continue
            lo = start[1] if seg.number == start[0] else seg.base
            hi = end[1] if seg.number == end[0] else self.limit(seg)
            if hi <= lo:
                continue
            with open(seg.path, "rb") as fh:
                data = os.pread(fh.fileno(), hi - lo, lo)
            n += sum(1 for e in scan_range(seg, data, lo).entries if (seg.number, e.end) not in skip)
        return n

    def adjacent(self, end: Pos, start: Pos) -> bool:
        """Nothing to hand out lies between ``end`` and ``start`` (only damage, segment ends)."""
        pos = end
        while pos != start:
            seg = self.seg(pos[0])
            if pos > start or seg is None:
                return False
            bad = self.bad_at(pos)
            if bad is not None:
                pos = (pos[0], bad.end)
            elif pos[1] < seg.base:
                pos = (pos[0], seg.base)
            elif pos[1] >= self.limit(seg) and (nxt := self.after(pos[0])) is not None:
                pos = (nxt.number, nxt.base)
            else:
                return False
        return True

    def close(self) -> None:
        if self.wfd >= 0:
            os.close(self.wfd)
            self.wfd = -1
        self._drop_reader()
