"""How entries lie in logharbor's segment files, and how a segment is read back with its damage.

Two append-only logs share this framing: the server's write-ahead log (``server/engine/wal/``) and the
agent's disk buffer (``agent/buffer/``); neither imports the other, both import this module. A
segment starts with an 8-byte magic that names its format (``LHWAL02`` for the WAL, ``LHBUF02``
for the agent's buffer: the magic is the owner's, the framing of the entries after it is this
one). Every entry checks itself:

======== ===== ===============================================================================
field    bytes meaning
======== ===== ===============================================================================
sync     4     ``FF 4C 48 45`` ("\\xffLHE"): 0xFF never occurs in the UTF-8 JSON payloads, so a
               reader that lost its place finds the next entry by scanning for it
hcrc     4     CRC-32 of the 17 bytes below and the key: a damaged length or sequence number
               is seen before it is used
seq      8     sequence number (strictly increasing across the log; a segment is named by the
               number of its first entry)
length   4     payload length
pcrc     4     CRC-32 of the payload as stored (the sealed bytes when encryption is on)
keylen   1     length of the key (0..255)
key      0-255 a short tag, covered by the header CRC (the WAL: the idempotency key; the agent's
               buffer: the entry's record count, 4 bytes little-endian)
payload  ...   the data (the WAL: store rows as JSONEachRow; the buffer: NDJSON records), or
               its sealed form when encryption at rest is on
======== ===== ===============================================================================

``LHWAL01`` (the WAL of older servers; still read, never written) has only ``length,
crc32(seq + payload), seq`` before the payload: one CRC over header and payload together, and no
marker. (The agent's older buffer format is read by ``agent/buffer/legacy.py``.)

:func:`scan` walks a segment and returns its valid entries and its bad spans. A bad payload under
a good header costs exactly that entry. A bad header is passed by resynchronising: LHWAL02 looks
for the next sync marker whose header CRC holds and whose sequence number follows the last good
one; LHWAL01 looks for the next sequence numbers (up to :data:`V1_RESYNC_SEQS` of them) whose
whole entry CRC holds. Bad bytes followed by no valid entry are the *tail*: a torn tail (an
entry cut short, or zero-filled sectors: what a crash leaves of a write that was never
acknowledged) when the caller allows one there, otherwise damage.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass, field

__all__ = ["MAGIC_SIZE", "MAGIC_V1", "MAGIC_V2", "MAX_KEY", "BadSpan", "SegmentScan", "Span",
           "detect_version", "entry_header", "entry_size", "scan"]

MAGIC_V1 = b"LHWAL01\n"
MAGIC_V2 = b"LHWAL02\n"
MAGIC_SIZE = 8
MAX_KEY = 255
MAX_PAYLOAD = 1 << 31  # larger lengths are damage, not data
SYNC = b"\xffLHE"
SECTOR = 512

_V2 = struct.Struct("<4sIQIIB")  # sync, hcrc, seq, length, pcrc, keylen
_V2_COVERED = struct.Struct("<QIIB")  # what the header CRC covers (then the key)
_V1 = struct.Struct("<IIQ")  # length, crc32(seq + payload), seq
_SEQ = struct.Struct("<Q")
#: how many sequence numbers past the last good one an LHWAL01 resync tries
V1_RESYNC_SEQS = 1024
#: how many bytes an LHWAL01 resync may search in all before it gives up on a region
V1_RESYNC_BUDGET = 1 << 30


@dataclass(frozen=True)
class Span:
    """A valid entry: its sequence number, key, and where it and its payload lie in the file."""

    seq: int
    key: bytes
    start: int
    payload_start: int
    end: int


@dataclass(frozen=True)
class BadSpan:
    """Bytes that hold no valid entry. ``torn``: a cut-short tail (never acknowledged), not damage.

    ``seq_first``/``seq_last`` bound the sequence numbers that may have been in it (None: unknown).
    """

    start: int
    end: int
    reason: str
    torn: bool = False
    seq_first: int | None = None
    seq_last: int | None = None

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass
class SegmentScan:
    """What :func:`scan` found between its start and ``end``."""

    version: int
    end: int
    entries: list[Span] = field(default_factory=list)
    bad: list[BadSpan] = field(default_factory=list)
    #: the scan stopped early here (the buffer was not the whole segment and an entry ran past it)
    incomplete_at: int | None = None

    @property
    def damage(self) -> list[BadSpan]:
        return [b for b in self.bad if not b.torn]

    @property
    def torn(self) -> BadSpan | None:
        return next((b for b in self.bad if b.torn), None)


def detect_version(head: bytes) -> int | None:
    """1 or 2 from a segment's first bytes; None when the magic is missing or damaged."""
    if head[:MAGIC_SIZE] == MAGIC_V2:
        return 2
    if head[:MAGIC_SIZE] == MAGIC_V1:
        return 1
    return None


def entry_header(seq: int, key: bytes, payload: bytes) -> bytes:
    """The LHWAL02 header of an entry (the payload follows it)."""
    covered = _V2_COVERED.pack(seq, len(payload), zlib.crc32(payload), len(key)) + key
    return SYNC + struct.pack("<I", zlib.crc32(covered)) + covered


def entry_size(key: bytes, payload: bytes) -> int:
    return _V2.size + len(key) + len(payload)


# -- LHWAL02 ---------------------------------------------------------------------------------------

def _v2_header(data: bytes, i: int, prev_seq: int, seq_hi: int | None) -> tuple[Span | None, str]:
    """The entry whose header starts at ``i`` if the header is sound (its payload is not checked)."""
    if len(data) - i < _V2.size:
        return None, "too short for an entry header"
    sync, hcrc, seq, length, _pcrc, keylen = _V2.unpack_from(data, i)
    if sync != SYNC:
        return None, "no sync marker where an entry should start"
    covered_end = i + _V2.size + keylen
    if covered_end > len(data) or zlib.crc32(data[i + 8:covered_end]) != hcrc:
        return None, "entry header fails its CRC"
    if seq <= prev_seq or (seq_hi is not None and seq > seq_hi) or length > MAX_PAYLOAD:
        return None, f"entry header names sequence number {seq} out of order (after {prev_seq})"
    key = bytes(data[i + _V2.size:covered_end])
    return Span(seq, key, i, covered_end, covered_end + length), ""


def _v2_entry(data: bytes, i: int, prev_seq: int, seq_hi: int | None) -> Span | BadSpan | str:
    span, why = _v2_header(data, i, prev_seq, seq_hi)
    if span is None:
        return why
    if span.end > len(data):
        return f"entry runs past the end ({span.end - i} bytes, {len(data) - i} there)"
    pcrc = _V2.unpack_from(data, i)[4]
    if zlib.crc32(memoryview(data)[span.payload_start:span.end]) != pcrc:
        return BadSpan(i, span.end, "payload fails its CRC (header sound)",
                       seq_first=span.seq, seq_last=span.seq)
    return span


def _v2_resync(data: bytes, i: int, prev_seq: int, seq_hi: int | None) -> int | None:
    """The next offset from ``i`` where a sound header starts (its entry may run past the end)."""
    while True:
        j = data.find(SYNC, i)
        if j < 0:
            return None
        if _v2_header(data, j, prev_seq, seq_hi)[0] is not None:
            return j
        i = j + 1


# -- LHWAL01 ---------------------------------------------------------------------------------------

def _v1_entry(data: bytes, i: int, prev_seq: int, seq_hi: int | None) -> Span | str:
    if len(data) - i < _V1.size:
        return "too short for an entry header"
    length, crc, seq = _V1.unpack_from(data, i)
    end = i + _V1.size + length
    if end > len(data):
        return f"entry runs past the end ({end - i} bytes, {len(data) - i} there)"
    if zlib.crc32(memoryview(data)[i + _V1.size:end], zlib.crc32(_SEQ.pack(seq))) != crc:
        return "entry fails its CRC (LHWAL01: header or payload)"
    if seq <= prev_seq or (seq_hi is not None and seq > seq_hi):
        return f"entry names sequence number {seq} out of order (after {prev_seq})"
    return Span(seq, b"", i, i + _V1.size, end)


def _v1_resync(data: bytes, i: int, prev_seq: int, seq_hi: int | None) -> int | None:
    """The next offset from ``i`` holding a whole valid entry with one of the next sequence numbers.

    LHWAL01 has no marker, so the search is for the sequence number's bytes: entries follow one
    another by number, so the smallest number found valid is also the nearest entry.
    """
    last = prev_seq + V1_RESYNC_SEQS if seq_hi is None else min(seq_hi, prev_seq + V1_RESYNC_SEQS)
    budget = V1_RESYNC_BUDGET
    for seq in range(prev_seq + 1, last + 1):
        needle = _SEQ.pack(seq)
        k = data.find(needle, i + 8)
        while k >= 0:
            j = k - 8
            if isinstance(_v1_entry(data, j, prev_seq, seq_hi), Span):
                return j
            k = data.find(needle, k + 1)
        budget -= len(data) - i
        if budget <= 0:
            return None
    return None


# -- both ------------------------------------------------------------------------------------------

def _zero_sector_tail(data: bytes, start: int, end: int) -> bool:
    """True when ``data[start:end]`` ends in at least one whole zero-filled sector (unwritten)."""
    body = data[start:end].rstrip(b"\0")
    zeros_from = start + len(body)
    first_sector = -(-zeros_from // SECTOR) * SECTOR
    return first_sector < end


def _tail(version: int, data: bytes, i: int, prev_seq: int, seq_hi: int | None, base: int,
          torn_ok: bool) -> BadSpan:
    """Classify bad bytes from ``i`` to the end that no valid entry follows."""
    n = len(data)
    header = _V2.size if version == 2 else _V1.size
    # the numbers the bytes may have held: up to the next segment's, or as many as could fit
    fit = prev_seq + -(-(n - i) // header)
    seqs = {"seq_first": prev_seq + 1, "seq_last": seq_hi if seq_hi is not None else fit}
    if torn_ok:
        stripped = len(data[i:].rstrip(b"\0"))
        if stripped == 0:
            return BadSpan(base + i, base + n, "zero-filled tail", torn=True)
        if stripped < header:
            return BadSpan(base + i, base + n, "entry header cut short", torn=True)
        if version == 2:
            span, _ = _v2_header(data, i, prev_seq, seq_hi)
            if span is not None and span.end > n:
                return BadSpan(base + i, base + n, f"entry cut short ({n - i} of {span.end - i} bytes)",
                               torn=True)
    why = "bytes at the end hold no valid entry and none follows"
    if version == 1 and n - i >= _V1.size and i + _V1.size + _V1.unpack_from(data, i)[0] > n:
        why = ("entry runs past the end of the segment "
               "(LHWAL01 cannot tell a torn write from a damaged length)")
    return BadSpan(base + i, base + n, why, **seqs)


def scan(data: bytes, *, version: int, prev_seq: int, start: int = MAGIC_SIZE, base: int = 0,
         seq_hi: int | None = None, torn_ok: bool = True, final: bool = True) -> SegmentScan:
    """Walk ``data`` (the bytes of a segment from file offset ``base``) from offset ``start``.

    ``prev_seq``: the sequence number before the first entry (the segment's name minus one at its
    start). ``seq_hi``: the highest number this segment may hold (the next segment's name minus
    one), when known. ``torn_ok``: bad bytes at the end with no valid entry after them may be a
    torn tail (True for the end of a file a crash may have cut; False below the durable end of
    the live segment, where everything was fsync'd and acknowledged). ``final``: ``data`` reaches
    the end of the segment; when False, the scan stops at the first entry that runs past the end
    of ``data`` or at the first damage (``incomplete_at``), and the caller reads more.
    """
    entry_at = _v2_entry if version == 2 else _v1_entry
    resync = _v2_resync if version == 2 else _v1_resync
    out = SegmentScan(version, base + len(data))
    n = len(data)
    i = start - base
    while i < n:
        got = entry_at(data, i, prev_seq, seq_hi)
        if isinstance(got, Span):
            out.entries.append(Span(got.seq, got.key, base + got.start, base + got.payload_start,
                                    base + got.end))
            prev_seq, i = got.seq, got.end
            continue
        if not final:
            out.incomplete_at, out.end = base + i, base + i
            return out
        if isinstance(got, BadSpan):  # a sound header over a bad payload: exactly that entry
            torn = torn_ok and got.end == n and _zero_sector_tail(data, got.start, got.end)
            out.bad.append(BadSpan(base + got.start, base + got.end,
                                   "entry ends in zero-filled sectors" if torn else got.reason,
                                   torn=torn, seq_first=got.seq_first, seq_last=got.seq_last))
            prev_seq, i = got.seq_last or prev_seq, got.end
            continue
        j = resync(data, i + 1, prev_seq, seq_hi)
        if j is None:
            out.bad.append(_tail(version, data, i, prev_seq, seq_hi, base, torn_ok))
            return out
        nxt = _SEQ.unpack_from(data, j + 8)[0]  # both formats keep the number at +8
        out.bad.append(BadSpan(base + i, base + j, got, seq_first=prev_seq + 1, seq_last=nxt - 1))
        i = j
    return out
