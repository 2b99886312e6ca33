"""What the WAL holds on disk, segment by segment, and how entries are read back from it.

The catalog knows every segment's size, format, keyed entries and (for a damaged sealed one) its
whole scan. Reading goes through here so that every reader (the batcher, an intent replay,
``iter_keys``) sees the same entries: damage is found by the same scan, copied aside once
(:class:`Quarantine`) and skipped the same way each time.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from logharbor.framing import MAGIC_SIZE, SegmentScan, Span, detect_version, scan
from logharbor.sealing import Sealer, SealError, looks_sealed
from logharbor.server.engine.wal.quarantine import Quarantine, segment_name
from logharbor.server.engine.wal.segments import WalSealed, list_segments, refuse_newer, scan_segment

__all__ = ["Catalog", "WalEntry", "WalPosition", "WalRead"]


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
    key: bytes = b""  # the idempotency key it was submitted with (b"" when none)


class WalRead(list[WalEntry]):
    """Entries from one :meth:`WriteAheadLog.read`, and ``end``: where the next read starts.

    ``end`` is past any damaged bytes the read skipped (they are quarantined), so a reader that
    moves to ``end`` never meets the same damage twice and never stalls on it, even when no
    valid entry follows the damage yet.
    """

    def __init__(self, end: WalPosition) -> None:
        super().__init__()
        self.end = end


class Catalog:
    """The segments of one WAL directory: sizes, formats, keys, damage; reading entries."""

    def __init__(self, directory: Path, quarantine: Quarantine, sealer: Sealer | None) -> None:
        self.directory = directory
        self.quarantine = quarantine
        self.sealer = sealer
        self.lock = threading.Lock()
        self.segments: list[int] = []
        self.ends: dict[int, int] = {}  # bytes of each segment (the live one: its durable end)
        self.versions: dict[int, int | None] = {}  # None: magic damaged (always scanned whole)
        self.keys: dict[int, list[tuple[int, bytes]]] = {}  # segments whose keyed entries are all known
        self.scans: dict[int, SegmentScan] = {}  # damaged sealed segments, scanned whole
        self.unkept: set[int] = set()  # segments with damage not yet copied aside: never deleted
        self.live_damage = False  # damage was found in the live segment: it should be rolled
        self._last_read: tuple[WalPosition, int] = (WalPosition(0, 0), 0)  # (end, seq) of the last entry read

    def load(self) -> None:
        """Learn the segments on disk (their size and format from the magic)."""
        self.segments = list_segments(self.directory)
        for seg in self.segments:
            with open(self.path(seg), "rb") as fh:
                head = fh.read(MAGIC_SIZE)
                refuse_newer(self.path(seg), head)
                self.versions[seg] = detect_version(head)
                self.ends[seg] = os.fstat(fh.fileno()).st_size

    def path(self, segment: int) -> Path:
        return self.directory / segment_name(segment)

    def add(self, segment: int, size: int) -> None:
        with self.lock:
            self.segments.append(segment)
            self.ends[segment] = size
            self.versions[segment] = 2
            self.keys[segment] = []

    def drop(self, segment: int) -> None:
        """Delete a segment file and forget it."""
        self.path(segment).unlink(missing_ok=True)
        with self.lock:
            if segment in self.segments:
                self.segments.remove(segment)
            for table in (self.ends, self.versions, self.keys, self.scans):
                table.pop(segment, None)
            self.unkept.discard(segment)
        self.quarantine.forget(segment)

    def total_bytes(self) -> int:
        with self.lock:
            return sum(self.ends.values())

    def consumed_bytes(self, released: WalPosition) -> int:
        with self.lock:
            return sum(size if seg < released.segment else min(size, released.offset)
                       for seg, size in self.ends.items() if seg <= released.segment)

    def seq_hi(self, seg: int) -> int | None:
        """The highest sequence number ``seg`` may hold (the next segment's name minus one)."""
        with self.lock:
            later = [s for s in self.segments if s > seg]
        return later[0] - 1 if later else None

    def note_bad(self, segment: int, result: SegmentScan, data: bytes, *, truncating: bool = False) -> None:
        """Copy each damaged span aside (remembering failures) and count torn tails."""
        for bad in result.bad:
            if bad.torn:
                self.quarantine.torn(segment, bad, truncated=truncating)
            elif not self.quarantine.keep(segment, bad, data[bad.start:bad.end], version=result.version):
                with self.lock:
                    self.unkept.add(segment)

    def retry_keep(self, segment: int) -> bool:
        """Try again to copy a segment's damage aside; True once it is."""
        result, data = scan_segment(self.path(segment), segment, limit=self.ends.get(segment),
                                    seq_hi=self.seq_hi(segment), torn_ok=False)
        with self.lock:
            self.unkept.discard(segment)
        self.note_bad(segment, result, data)
        return segment not in self.unkept

    def full_scan(self, seg: int, *, limit: int, live: bool) -> SegmentScan:
        """Scan a whole segment up to ``limit``, quarantining its damage; a sealed one's scan is kept.

        Only the last segment at start-up may end in a torn tail (:meth:`WriteAheadLog.open`);
        everything read here was fsync'd, so every bad byte is damage.
        """
        cached = self.scans.get(seg)
        if cached is not None and not live:
            return cached
        result, data = scan_segment(self.path(seg), seg, limit=limit, seq_hi=self.seq_hi(seg),
                                    torn_ok=False)
        self.note_bad(seg, result, data)
        if result.damage or self.versions.get(seg) is None:
            if live:
                self.live_damage = True  # the WAL seals it, so its damage is scanned once
            else:
                self.scans[seg] = result
        return result

    def segment_keys(self, seg: int, *, limit: int, live: bool) -> list[tuple[int, bytes]]:
        """(seq, key) of the keyed entries of one segment."""
        with self.lock:
            known = self.keys.get(seg)
            if known is not None:
                return list(known)
        pairs = [(e.seq, e.key) for e in self.full_scan(seg, limit=limit, live=live).entries if e.key]
        if not live:
            with self.lock:
                self.keys[seg] = pairs
        return pairs

    def iter_keys(self, durable: Callable[[], WalPosition]) -> Iterator[tuple[int, bytes]]:
        """(seq, key) of every keyed entry on disk, oldest first (``durable``: the live end)."""
        with self.lock:
            segments = list(self.segments)
        for seg in segments:
            end = durable()
            live = seg == end.segment
            limit = end.offset if live else self.ends.get(seg, 0)
            try:
                yield from self.segment_keys(seg, limit=limit, live=live)
            except FileNotFoundError:
                continue  # released meanwhile

    def read(self, position: WalPosition, max_bytes: int, durable: WalPosition) -> WalRead:
        """Entries from ``position`` up to ``durable`` (see :meth:`WriteAheadLog.read`)."""
        out = WalRead(position)
        total = 0
        pos = position
        while pos < durable and total < max_bytes:
            live = pos.segment == durable.segment
            with self.lock:
                limit = durable.offset if live else self.ends.get(pos.segment, 0)
                following = [s for s in self.segments if s > pos.segment]
            if pos.offset < limit:
                got, stop = self.read_segment(pos.segment, pos.offset, limit, max_bytes - total, live=live)
                out.extend(got)
                total += sum(len(e.payload) for e in got)
                pos = out.end = WalPosition(pos.segment, stop)
                if stop < limit:
                    break
            if live or not following:
                break
            pos = out.end = WalPosition(following[0], MAGIC_SIZE)
        return out

    def read_segment(self, seg: int, offset: int, limit: int, budget: int, *, live: bool
                     ) -> tuple[list[WalEntry], int]:
        """Entries of one segment from ``offset`` (below ``limit``) and the offset to go on from.

        The usual path reads about ``budget`` bytes and scans them; at the first sign of damage
        the whole segment is scanned from its start (so resynchronisation knows the sequence
        numbers before the damage), and a sealed segment's scan is kept for the next reads.
        """
        version = self.versions.get(seg)
        result = self.scans.get(seg)
        if result is None and version is not None:
            prev = self._last_read[1] if self._last_read[0] == WalPosition(seg, offset) else seg - 1
            want = min(limit - offset, max(budget, 1 << 20))
            with open(self.path(seg), "rb") as fh:
                while True:
                    data = os.pread(fh.fileno(), want, offset)
                    final = offset + len(data) >= limit or len(data) < want
                    part = scan(data, version=version, prev_seq=prev, start=offset, base=offset,
                                seq_hi=self.seq_hi(seg), torn_ok=False, final=final)
                    if part.bad or part.entries or final:
                        break
                    want = min(limit - offset, want * 4)
            if not part.bad and part.entries:
                return self._entries(seg, part, offset, budget, limit, data=data, base=offset)
        if result is None:
            result = self.full_scan(seg, limit=limit, live=live)
        return self._entries(seg, result, offset, budget, limit)

    def _entries(self, seg: int, result: SegmentScan, offset: int, budget: int, limit: int, *,
                 data: bytes | None = None, base: int = 0) -> tuple[list[WalEntry], int]:
        """The entries of ``result`` from ``offset`` on, up to ``budget`` bytes, passing bad spans.

        Payloads come from ``data`` (file bytes from ``base``) or are read from the file.
        """
        out: list[WalEntry] = []
        total = 0
        pos = offset
        spans = sorted([*result.entries, *result.bad], key=lambda s: s.start)
        with _opened(None if data is not None else self.path(seg)) as fh:
            for span in spans:
                if span.end <= pos:
                    continue
                if span.start < pos:  # a span the reader was already inside of: pass it whole
                    pos = span.end
                    continue
                if isinstance(span, Span):
                    if out and total >= budget:
                        return out, pos
                    if fh is None:
                        payload = data[span.payload_start - base:span.end - base]  # type: ignore[index]
                    else:
                        payload = os.pread(fh.fileno(), span.end - span.payload_start, span.payload_start)
                    if self.sealer is not None:
                        try:
                            payload = self.sealer.open(payload)
                        except SealError as exc:  # a key gone, or a newer seal: kept, named, retried
                            raise SealError(f"{self.path(seg)}: entry {span.seq}: {exc}") from None
                    elif looks_sealed(payload):  # sealed bytes are not rows: never hand them on
                        raise WalSealed(f"{self.path(seg)}: entry {span.seq} is sealed (encryption at rest) "
                                        "and no key file is given: start the server with its "
                                        "--encryption-key-file; the entries are kept as they are")
                    entry = WalEntry(span.seq, payload, WalPosition(seg, span.start),
                                     WalPosition(seg, span.end), span.key)
                    out.append(entry)
                    total += len(payload)
                    self._last_read = (entry.end, entry.seq)
                pos = span.end
        if result.incomplete_at is not None:
            return out, max(offset, min(pos, result.incomplete_at))
        return out, max(pos, limit if data is None else result.end)


@contextmanager
def _opened(path: Path | None) -> Iterator[BinaryIO | None]:
    if path is None:
        yield None
        return
    with open(path, "rb") as fh:
        yield fh
