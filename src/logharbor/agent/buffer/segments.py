"""A disk buffer's segment files: which exist, their format, and reading them with their damage.

A segment written since LHBUF02 is ``<first sequence number>.lhb``: the magic ``LHBUF02\\n``,
then entries in the self-checking framing of :mod:`logharbor.framing` (sync marker, header CRC,
sequence number, payload CRC; the key field holds the entry's record count). Older agents wrote
``<n>.seg`` (see ``legacy.py``); those are read, never written, and leave once delivered. The
new suffix keeps an older agent (a downgrade) from taking a new segment for its own format and
cutting it as a torn tail: it does not see it at all. A ``.lhb`` segment whose magic is a
well-formed ``LHBUFnn`` of a version not read here is a newer release's: refused
(:class:`~logharbor.formatversion.NewerFormat`), never scanned as damage.
"""

from __future__ import annotations

import os
import struct
from dataclasses import dataclass
from pathlib import Path

from logharbor.agent.buffer.legacy import LEGACY_SUFFIX, scan_legacy
from logharbor.formatversion import NewerFormat, magic_version
from logharbor.framing import MAGIC_SIZE, BadSpan, SegmentScan, Span, entry_header, scan
from logharbor.framing import entry_size as framing_entry_size

__all__ = ["ENTRY_MAX", "MAGIC", "SUFFIX", "Segment", "check_versions", "count_of", "encode_entry",
           "entry_size", "list_segments", "read_entry", "refuse_newer", "scan_range", "scan_segment",
           "segment_at", "split_records"]

MAGIC = b"LHBUF02\n"
SUFFIX = ".lhb"
_COUNT = struct.Struct("<I")
#: bytes read at once when an entry is read on its own (grown for a larger entry)
_READ = 64 * 1024
#: a chunk's records are written as entries of at most this many bytes (a line longer than it is
#: one entry of its own), so a damaged entry costs at most about this much of the data
ENTRY_MAX = 64 * 1024


@dataclass(frozen=True)
class Segment:
    """One segment file: its number (LHBUF02: its first sequence number) and format (1 or 2)."""

    number: int
    version: int
    path: Path

    @property
    def base(self) -> int:
        """Where its first entry starts."""
        return MAGIC_SIZE if self.version == 2 else 0

    @property
    def label(self) -> str:
        return "LHBUF02" if self.version == 2 else "LHBUF01 (before the self-checking framing)"


def segment_at(directory: Path, number: int, version: int = 2) -> Segment:
    return Segment(number, version, directory / f"{number:012d}{SUFFIX if version == 2 else LEGACY_SUFFIX}")


def list_segments(directory: Path) -> list[Segment]:
    """Every segment file in ``directory``, oldest first (old-format ones are numbered lower)."""
    found: dict[int, Segment] = {}
    for suffix, version in ((LEGACY_SUFFIX, 1), (SUFFIX, 2)):
        for p in directory.glob("*" + suffix):
            stem = p.name[: -len(suffix)]
            if stem.isdigit():
                found.setdefault(int(stem), Segment(int(stem), version, p))
    return [found[n] for n in sorted(found)]


def refuse_newer(seg: Segment, head: bytes) -> None:
    """Raise :class:`NewerFormat` when ``head`` is a well-formed magic of a version not read here."""
    version = magic_version(head, b"LHBUF")
    if seg.version == 2 and version is not None and version != 2:
        raise NewerFormat(seg.path, "disk buffer segment", f"LHBUF{version:02d}", ("LHBUF01", "LHBUF02"),
                          "what it holds is not delivered yet: the release that wrote it delivers it")


def check_versions(directory: Path) -> None:
    """Refuse a buffer directory holding a segment of a newer format (reads 8 bytes of each)."""
    for seg in list_segments(directory) if directory.is_dir() else []:
        with open(seg.path, "rb") as fh:
            refuse_newer(seg, fh.read(MAGIC_SIZE))


def encode_entry(seq: int, records: int, payload: bytes) -> bytes:
    """One LHBUF02 entry: header and payload."""
    key = _COUNT.pack(records)
    return entry_header(seq, key, payload) + payload


def entry_size(payload: bytes) -> int:
    """Bytes of the LHBUF02 entry of ``payload``."""
    return framing_entry_size(_COUNT.pack(0), payload)


def split_records(payload: bytes, count: int, limit: int = ENTRY_MAX) -> list[tuple[bytes, int]]:
    """``payload`` (``count`` NDJSON records) as pieces of whole lines of at most ``limit`` bytes,
    each with its record count; whole when it is small, or when its lines are not its records."""
    if len(payload) <= limit or payload.count(b"\n") != count or not payload.endswith(b"\n"):
        return [(payload, count)]
    out = []
    start = 0
    while start < len(payload):
        cut = payload.rfind(b"\n", start, start + limit)
        if cut < 0:  # one line longer than the limit: it is one entry
            cut = payload.find(b"\n", start)
        piece = payload[start:cut + 1]
        out.append((piece, piece.count(b"\n")))
        start = cut + 1
    return out


def count_of(span: Span) -> int:
    """The record count an entry carries in its key (0 for a key of another shape)."""
    return _COUNT.unpack(span.key)[0] if len(span.key) == _COUNT.size else 0


def _scan(seg: Segment, data: bytes, *, start: int, base: int, seq_hi: int | None, torn_ok: bool,
          final: bool) -> SegmentScan:
    if seg.version == 1:
        return scan_legacy(data, start=start, base=base, torn_ok=torn_ok, final=final)
    return scan(data, version=2, prev_seq=seg.number - 1, start=start, base=base, seq_hi=seq_hi,
                torn_ok=torn_ok, final=final)


def scan_segment(seg: Segment, *, limit: int | None = None, seq_hi: int | None = None,
                 torn_ok: bool = False) -> tuple[SegmentScan, bytes]:
    """Read a whole segment (up to ``limit`` bytes) and scan it; the scan and the bytes.

    A damaged magic is a bad span of its own (the entries after it are still read); a file
    shorter than the magic that is a prefix of it (a creation cut short) holds nothing.
    """
    with open(seg.path, "rb") as fh:
        data = fh.read() if limit is None else fh.read(limit)
    refuse_newer(seg, data)
    if seg.version == 2 and data[:MAGIC_SIZE] != MAGIC:
        if len(data) <= MAGIC_SIZE and MAGIC.startswith(data):
            return SegmentScan(2, len(data)), data
        result = _scan(seg, data, start=MAGIC_SIZE, base=0, seq_hi=seq_hi, torn_ok=torn_ok, final=True)
        result.bad.insert(0, BadSpan(0, min(MAGIC_SIZE, len(data)), "segment magic damaged"))
        return result, data
    return _scan(seg, data, start=seg.base, base=0, seq_hi=seq_hi, torn_ok=torn_ok, final=True), data


def scan_range(seg: Segment, data: bytes, base: int) -> SegmentScan:
    """Scan ``data``, the bytes of ``seg`` from offset ``base`` (an entry boundary) to another one."""
    return _scan(seg, data, start=base, base=base, seq_hi=None, torn_ok=False, final=True)


def read_entry(fd: int, seg: Segment, offset: int, limit: int, seq_hi: int | None
               ) -> tuple[Span, bytes] | None:
    """The entry starting at ``offset`` (below ``limit``) and its payload, or None when the bytes
    there are not a whole valid entry (damage: the caller scans the whole segment)."""
    want = min(limit - offset, _READ)
    while True:
        data = os.pread(fd, want, offset)
        final = offset + len(data) >= limit or len(data) < want
        part = _scan(seg, data, start=offset, base=offset, seq_hi=seq_hi, torn_ok=False, final=final)
        if part.entries and part.entries[0].start == offset:
            e = part.entries[0]
            return e, data[e.payload_start - offset:e.end - offset]
        if final or part.bad:
            return None
        want = min(limit - offset, want * 4)
