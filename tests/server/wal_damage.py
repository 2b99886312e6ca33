"""Helpers for the WAL damage tests: build a WAL of numbered entries, find their bytes, damage them."""

from __future__ import annotations

import struct
import zlib
from pathlib import Path

import orjson

from logharbor.framing import MAGIC_V1, detect_version, scan
from logharbor.server.engine.wal import WalEntry, WriteAheadLog
from logharbor.server.engine.wal.quarantine import quarantine_contents


def payload(i: int, size: int = 60) -> bytes:
    """A store-row-like payload that names its entry (JSON, as the server writes)."""
    body = orjson.dumps({"id": f"e{i:05d}", "message": "x" * size})
    return body


def entry_id(entry: WalEntry) -> int:
    return int(orjson.loads(entry.payload)["id"][1:])


def build(directory: Path, n: int, *, segment_bytes: int = 64 * 1024 * 1024, keys: bool = False,
          size: int = 60) -> list[int]:
    """A closed WAL holding entries 0..n-1 (their payloads name them); returns their seqs."""
    wal = WriteAheadLog(directory, segment_bytes=segment_bytes, reclaim_bytes=None)
    wal.open()
    seqs = [wal.submit(payload(i, size), key=f"k{i}".encode() if keys else b"").result(timeout=10)
            for i in range(n)]
    wal.close()
    return seqs


def build_v1(directory: Path, n: int, *, first_seq: int = 1, size: int = 60) -> Path:
    """A segment in the old LHWAL01 format (as servers before the damage work wrote it)."""
    directory.mkdir(parents=True, exist_ok=True)
    parts = [MAGIC_V1]
    for k in range(n):
        seq = first_seq + k
        body = payload(k, size)
        crc = zlib.crc32(body, zlib.crc32(struct.pack("<Q", seq)))
        parts += [struct.pack("<IIQ", len(body), crc, seq), body]
    path = directory / f"{first_seq:020d}.wal"
    path.write_bytes(b"".join(parts))
    return path


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def spans(path: Path) -> list[tuple[int, int, int]]:
    """(entry id, start, end) of every entry of an undamaged segment."""
    data = path.read_bytes()
    version = detect_version(data)
    assert version is not None
    first = int(path.name[:-4])
    result = scan(data, version=version, prev_seq=first - 1)
    assert not result.bad, result.bad
    return [(int(orjson.loads(data[s.payload_start:s.end])["id"][1:]), s.start, s.end) for s in result.entries]


def edit(path: Path, offset: int, new: bytes) -> None:
    data = bytearray(path.read_bytes())
    data[offset:offset + len(new)] = new
    path.write_bytes(bytes(data))


def flip(path: Path, offset: int, bit: int = 0) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 1 << bit
    path.write_bytes(bytes(data))


def read_everything(wal: WriteAheadLog) -> list[WalEntry]:
    """Every entry the WAL hands out, following ``end`` as the batcher does (bounded)."""
    out: list[WalEntry] = []
    pos = wal.start_position()
    for _ in range(10_000):
        got = wal.read(pos, 1 << 16)
        out.extend(got)
        if got.end == pos:
            return out
        pos = got.end
    raise AssertionError("the reader did not reach the end")


def quarantined(directory: Path) -> list[dict]:  # type: ignore[type-arg]
    return quarantine_contents(directory / "quarantine")
