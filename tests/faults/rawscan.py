"""Find a value anywhere in a directory's raw files, including inside what the engine compressed.

``grep -r`` misses a value the engine stored compressed (a ZSTD or LZ4 column file, a zstd page
of a Parquet file). :func:`scan` therefore reads every regular file under a directory and looks
for the needle

1. in the raw bytes (anything stored in the clear: text files, SQLite pages, WAL segments,
   mutation files, journals, uncompressed blocks);
2. inside ClickHouse compressed blocks: a file that parses from its start as a chain of blocks
   (16-byte checksum, method, compressed size, uncompressed size, data) has each block
   decompressed (None, LZ4, ZSTD, and a ``Multiple`` codec chain ending in one of these);
3. inside every zstd frame found anywhere in a file by its magic number (Parquet pages, zstd
   inside a format we do not parse).

What it cannot see, it lists instead of silently passing: blocks it cannot decompress (a codec
chain with Delta, DoubleDelta, T64, Gorilla, FPC or GCD, or an encrypted codec) are in
``ScanResult.undecoded`` with their codec chain; a test that needs a proof of absence checks that
every chain there holds a :data:`NUMERIC` transform (such codecs only take numbers and dates). Values stored in a transformed form
(a hash, a dictionary index, an encrypted disk) are out of reach of any byte scan by design.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import cramjam
import zstandard

__all__ = ["NUMERIC", "ScanResult", "scan"]

_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"
_HEADER = struct.Struct("<BII")  # method, compressed size (with this 9-byte header), uncompressed size
_CHECKSUM = 16
_NONE, _LZ4, _ZSTD, _MULTIPLE = 0x02, 0x82, 0x90, 0x91
#: codecs that transform numbers (Delta, T64, DoubleDelta, Gorilla, FPC, GCD): no text inside
NUMERIC = frozenset({0x92, 0x93, 0x94, 0x95, 0x98, 0x9A})
_MAX_UNCOMPRESSED = 1 << 30


@dataclass
class ScanResult:
    """Where each needle was found (path → how), and what could not be looked into."""

    found: dict[str, list[str]] = field(default_factory=dict)  # needle → ["path (how)", …]
    files: int = 0
    blocks: int = 0  # ClickHouse blocks decompressed
    frames: int = 0  # zstd frames decompressed
    undecoded: list[tuple[str, tuple[int, ...]]] = field(default_factory=list)  # (path, codec chain)

    def hit(self, needle: bytes, path: Path, how: str) -> None:
        self.found.setdefault(needle.decode(errors="replace"), []).append(f"{path} ({how})")


def _decompress_block(method: int, data: bytes, size: int) -> bytes | None:
    """The plain bytes of one block's payload, or None for a method we do not decode."""
    if method == _NONE:
        return data
    if method == _LZ4:
        return bytes(cramjam.lz4.decompress_block(data, output_len=size))
    if method == _ZSTD:
        return zstandard.ZstdDecompressor().decompress(data, max_output_size=size)
    if method == _MULTIPLE and data:
        # a codec chain: the count, the methods (first applied first), then the block of the
        # last one applied, whose plain bytes are the block of the one before, and so on
        count = data[0]
        current = data[1 + count:]
        for _ in range(count):
            if len(current) < _HEADER.size:
                return None
            inner, csize, usize = _HEADER.unpack_from(current, 0)
            if inner == _MULTIPLE:
                return None
            plain = _decompress_block(inner, current[_HEADER.size:csize], usize)
            if plain is None:
                return None  # a transform (Delta, T64, …): numbers, not text
            current = plain
        return current
    return None


def _clickhouse_blocks(data: bytes) -> Iterable[tuple[int, bytes, int]] | None:
    """(method, payload, uncompressed size) of each block when ``data`` is a whole block chain."""
    blocks = []
    i = 0
    n = len(data)
    while i < n:
        if i + _CHECKSUM + _HEADER.size > n:
            return None
        method, csize, usize = _HEADER.unpack_from(data, i + _CHECKSUM)
        if csize < _HEADER.size or i + _CHECKSUM + csize > n or usize > _MAX_UNCOMPRESSED:
            return None
        start = i + _CHECKSUM + _HEADER.size
        blocks.append((method, data[start:i + _CHECKSUM + csize], usize))
        i += _CHECKSUM + csize
    return blocks if blocks else None


def _zstd_frames(data: bytes) -> Iterable[bytes]:
    start = data.find(_ZSTD_MAGIC)
    while start >= 0:
        try:
            reader = zstandard.ZstdDecompressor().decompressobj()
            out = reader.decompress(data[start:start + (64 << 20)])
            if out:
                yield out
        except zstandard.ZstdError:
            pass
        start = data.find(_ZSTD_MAGIC, start + 4)


def scan(root: Path, needles: Iterable[bytes], *, skip: Iterable[Path] = ()) -> ScanResult:
    """Look for every needle in every file under ``root`` (see the module doc for how)."""
    needles = [n for n in needles if n]
    skipped = [p.resolve() for p in skip]
    result = ScanResult()
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            path = Path(dirpath) / name
            if any(path.resolve().is_relative_to(s) for s in skipped) or not path.is_file():
                continue
            try:
                data = path.read_bytes()
            except OSError:
                continue  # removed while we walked (a part the engine just cleaned up)
            result.files += 1
            _scan_bytes(path, data, needles, result)
    return result


def _scan_bytes(path: Path, data: bytes, needles: list[bytes], result: ScanResult) -> None:
    for needle in needles:
        if needle in data:
            result.hit(needle, path, "raw")
    blocks = _clickhouse_blocks(data)
    if blocks is not None:
        for method, payload, size in blocks:
            try:
                plain = _decompress_block(method, payload, size)
            except (zstandard.ZstdError, cramjam.DecompressionError, ValueError):
                plain = None
            if plain is None:
                chain = tuple(payload[1:1 + payload[0]]) if method == _MULTIPLE and payload else (method,)
                result.undecoded.append((str(path), chain))
                continue
            result.blocks += 1
            for needle in needles:
                if needle in plain:
                    result.hit(needle, path, "clickhouse block")
    for plain in _zstd_frames(data):
        result.frames += 1
        for needle in needles:
            if needle in plain:
                result.hit(needle, path, "zstd frame")
