"""The disk-buffer format of agents before LHBUF02: read (after an upgrade), never written.

Segments named ``<n>.seg`` (``n`` counts segments from 0), no magic, each entry ``length,
records, crc32(payload)`` (three little-endian u32) then the payload: NDJSON (it starts with
``{`` and ends with a newline), or its sealed form (it starts with ``LHS1``). There is no sync
marker and no sequence number, and the one CRC covers only the payload, so a damaged header is
passed by trying the offsets after it for a whole entry that checks out: a header whose length
fits, whose payload has the right first and last bytes and whose CRC holds. Payloads are JSON
text, whose bytes read as a length are far larger than a segment, so almost every offset is
refused before any CRC is computed. A segment's entries are returned as
:class:`~logharbor.framing.Span` (``key``: the record count, 4 bytes, as LHBUF02 stores it).
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Iterator

from logharbor.framing import BadSpan, SegmentScan, Span

__all__ = ["HEADER", "LEGACY_SUFFIX", "scan_legacy"]

HEADER = struct.Struct("<III")  # payload length, record count, crc32 of the payload
LEGACY_SUFFIX = ".seg"
COUNT = struct.Struct("<I")
#: bytes of payload a resynchronisation may CRC in all before it gives up on the rest
RESYNC_BUDGET = 1 << 30


def _entry(data: bytes, i: int) -> Span | str:
    n = len(data)
    if n - i < HEADER.size:
        return "too short for an entry header"
    length, count, crc = HEADER.unpack_from(data, i)
    if length == 0 or count == 0:  # the agent never wrote an empty entry: zeros (CRC 0 holds for them)
        return "empty entry header (zeros)"
    end = i + HEADER.size + length
    if end > n:
        return f"entry runs past the end ({end - i} bytes, {n - i} there)"
    if zlib.crc32(memoryview(data)[i + HEADER.size:end]) != crc:
        return "entry fails its CRC (header or payload)"
    return Span(0, COUNT.pack(count), i, i + HEADER.size, end)


def _plausible(data: bytes, j: int, n: int) -> bool:
    """A cheap look at whether an entry could start at ``j`` (before its CRC is computed)."""
    length, count, _ = HEADER.unpack_from(data, j)
    start, end = j + HEADER.size, j + HEADER.size + length
    if end > n or length == 0 or count == 0:
        return False
    if data[start:start + 4] == b"LHS1":
        return True
    return data[start] == 0x7B and data[end - 1] == 0x0A and count <= length  # "{" ... "\n"


def _candidates(data: bytes, i: int) -> Iterator[int]:
    """Offsets from ``i`` whose payload would start with ``{`` or ``LHS1``, in order."""
    nxt = {b"{": data.find(b"{", i + HEADER.size), b"LHS1": data.find(b"LHS1", i + HEADER.size)}
    while True:
        live = [(p, m) for m, p in nxt.items() if p >= 0]
        if not live:
            return
        p, m = min(live)
        yield p - HEADER.size
        nxt[m] = data.find(m, p + 1)


def _resync(data: bytes, i: int) -> int | None:
    """The next offset from ``i`` holding a whole valid entry."""
    n = len(data)
    budget = RESYNC_BUDGET
    for j in _candidates(data, i):
        if not _plausible(data, j, n):
            continue
        budget -= HEADER.unpack_from(data, j)[0]
        if isinstance(_entry(data, j), Span):
            return j
        if budget <= 0:
            return None
    return None


def scan_legacy(data: bytes, *, start: int = 0, base: int = 0, torn_ok: bool = True,
                final: bool = True) -> SegmentScan:
    """Walk an old-format segment (``data``: its bytes from file offset ``base``) from ``start``.

    As :func:`logharbor.framing.scan`: ``torn_ok`` lets bad bytes at the end with no entry after
    them be a torn tail when they are zeros or shorter than a header (an entry whose length runs
    past the end may be a torn write or a damaged length: it is set aside, as for LHWAL01);
    ``final=False`` stops at the first entry that does not check out (``incomplete_at``).
    """
    out = SegmentScan(1, base + len(data))
    n = len(data)
    i = start - base
    while i < n:
        got = _entry(data, i)
        if isinstance(got, Span):
            out.entries.append(Span(0, got.key, base + got.start, base + got.payload_start, base + got.end))
            i = got.end
            continue
        if not final:
            out.incomplete_at, out.end = base + i, base + i
            return out
        j = _resync(data, i + 1)
        if j is None:
            stripped = len(data[i:].rstrip(b"\0"))
            if torn_ok and (stripped == 0 or stripped < HEADER.size):
                why = "zero-filled tail" if stripped == 0 else "entry header cut short"
                out.bad.append(BadSpan(base + i, base + n, why, torn=True))
            else:
                out.bad.append(BadSpan(base + i, base + n, f"{got}; no valid entry follows"))
            return out
        out.bad.append(BadSpan(base + i, base + j, got))
        i = j
    return out
