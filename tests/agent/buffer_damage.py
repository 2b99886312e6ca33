"""Helpers for the disk-buffer damage tests: a buffer of numbered entries, their bytes, damage."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path
from typing import Any

import orjson

from logharbor.agent.buffer import DiskBuffer
from logharbor.agent.buffer.segments import list_segments, scan_segment
from logharbor.agent.types import Encoded
from logharbor.sealing import Sealer


def payload(i: int, size: int = 60, records: int = 2) -> bytes:
    """NDJSON records that name their entry, as the agent's encoder writes them."""
    return b"".join(orjson.dumps({"id": f"e{i:05d}", "n": k, "message": "x" * size}) + b"\n"
                    for k in range(records))


def item(i: int, size: int = 60, records: int = 2) -> Encoded:
    return Encoded(payload(i, size, records), records, None)


def entry_id(data: bytes) -> int:
    return int(orjson.loads(data.split(b"\n", 1)[0])["id"][1:])


def build(directory: Path, n: int, *, segment_bytes: int | None = None, size: int = 60,
          sealer: Sealer | None = None, first: int = 0) -> None:
    """A closed disk buffer holding entries ``first``..n-1 (two records each), nothing delivered."""
    buf = DiskBuffer(directory, 1 << 30, "block", sealer, segment_bytes=segment_bytes)
    for i in range(first, n):
        assert buf.put(item(i, size + i % 7))
    buf.close()


def build_legacy(directory: Path, n: int, *, size: int = 60, number: int = 0) -> Path:
    """A segment in the format of agents before LHBUF02 (``length, records, crc32``, no magic)."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = []
    for i in range(n):
        body = payload(i, size + i % 7)
        parts += [struct.pack("<III", len(body), 2, zlib.crc32(body)), body]
    path = directory / f"{number:012d}.seg"
    path.write_bytes(b"".join(parts))
    return path


def segments(directory: Path) -> list[Path]:
    return [s.path for s in list_segments(directory)]


def spans(path: Path, sealer: Sealer | None = None) -> list[tuple[int, int, int]]:
    """(entry id, start, end) of every entry of an undamaged segment."""
    (seg,) = [s for s in list_segments(path.parent) if s.path == path]
    result, data = scan_segment(seg)
    assert not result.bad, result.bad
    out = []
    for s in result.entries:
        body = data[s.payload_start:s.end]
        out.append((entry_id(sealer.open(body) if sealer is not None else body), s.start, s.end))
    return out


def read_all(buf: DiskBuffer) -> list[int]:
    """Every entry the buffer hands out, delivered (committed) as a sink would, in batches of 3."""
    got: list[int] = []
    while True:
        batch = [x for x in (buf.get(0) for _ in range(3)) if x is not None]
        if not batch:
            return got
        got += [entry_id(x.payload) for x in batch]
        buf.commit(batch)


def quarantined(directory: Path) -> list[dict[str, Any]]:
    """The sidecars of a buffer's quarantine, each with ``file_bytes`` (the size of its copy)."""
    out = []
    for bad in sorted((directory / "quarantine").glob("*.bad")):
        info = orjson.loads(bad.with_suffix(".json").read_bytes())
        info["file_bytes"] = bad.stat().st_size
        out.append(info)
    return out


def edit(path: Path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + len(new)] = new
    path.write_bytes(bytes(data))


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))
