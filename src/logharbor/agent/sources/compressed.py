"""Reading compressed log files (rotated and compressed by logrotate, or shipped that way).

A file is recognised by its first bytes, not its name: gzip (``1f 8b``), zstd (``28 b5 2f fd``),
bzip2 (``BZh``) and xz (``fd 37 7a 58 5a 00``), which is what logrotate's ``compresscmd`` gives.
Every reader here reads *all* members or frames: ``cat a.gz b.gz`` is one valid gzip file, a zstd
file may hold several frames, and a reader that stops after the first would drop the rest
silently (Python's ``zstandard`` stream reader does, unless told ``read_across_frames``).
"""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import os
from typing import Any, BinaryIO

import zstandard

__all__ = ["codec_of", "open_decompressed", "read_head", "rewound"]

_MAGIC = ((b"\x1f\x8b", "gzip"), (b"\x28\xb5\x2f\xfd", "zstd"), (b"BZh", "bzip2"),
          (b"\xfd7zXZ\x00", "xz"))


def codec_of(start: bytes) -> str | None:
    """The compression a file starting with ``start`` (≥ 6 bytes when available) uses, or None."""
    for magic, name in _MAGIC:
        if start.startswith(magic):
            return name
    return None


def rewound(fd: int) -> BinaryIO:
    """A file object on a duplicate of ``fd`` at offset 0 (duplicates share the offset)."""
    fh = os.fdopen(os.dup(fd), "rb")
    fh.seek(0)
    return fh


def open_decompressed(fh: BinaryIO, codec: str) -> BinaryIO:
    """A reader of the whole decompressed content of ``fh`` (every member or frame); it can seek
    forward (by reading), which is how a checkpointed offset is resumed."""
    if codec == "gzip":
        return gzip.GzipFile(fileobj=fh, mode="rb")
    if codec == "zstd":
        return _ZstdFrames(fh)  # type: ignore[return-value]
    if codec == "bzip2":
        return bz2.BZ2File(fh, mode="rb")
    if codec == "xz":
        return lzma.LZMAFile(fh, mode="rb")
    raise ValueError(f"unknown codec {codec!r}")


class _ZstdFrames:
    """Every frame of a zstd file, one after the other; a frame cut short raises ``EOFError`` (as
    gzip does for a cut member) instead of ending quietly — the file may still be being written.
    ``seek`` goes forward only (by reading), which is all a tail resumed at an offset needs."""

    def __init__(self, fh: BinaryIO) -> None:
        self.fh = fh
        self.dctx = zstandard.ZstdDecompressor()
        self.frame: Any = None
        self.out = b""
        self.pos = 0
        self.done = False

    def _fill(self, want: int) -> None:
        while len(self.out) < want and not self.done:
            raw = self.fh.read(1 << 16)
            if not raw:
                if self.frame is not None:
                    raise EOFError("zstd: the last frame is cut short")
                self.done = True
                break
            while raw:
                if self.frame is None:
                    self.frame = self.dctx.decompressobj()
                self.out += self.frame.decompress(raw)
                if not self.frame.eof:
                    break
                raw, self.frame = self.frame.unused_data, None

    def read(self, n: int = -1) -> bytes:
        self._fill(n if n >= 0 else 1 << 62)
        data = self.out if n < 0 else self.out[:n]
        self.out = self.out[len(data):]
        self.pos += len(data)
        return data

    def seek(self, offset: int, whence: int = 0) -> int:
        if whence != 0 or offset < self.pos:
            raise io.UnsupportedOperation("zstd: seek forward from the start only")
        while self.pos < offset and self.read(min(offset - self.pos, 1 << 20)):
            pass
        return self.pos

    def close(self) -> None:
        self.fh.close()


def read_head(fh: BinaryIO, n: int) -> bytes:
    """The first ``n`` bytes of an open file's content (decompressed when it is compressed), without
    moving a tail; b"" when a compressed file cannot be read yet (still being written)."""
    fh.seek(0)
    codec = codec_of(fh.read(6))
    fh.seek(0)
    if codec is None:
        return fh.read(n)
    dec = open_decompressed(fh, codec)
    try:
        return dec.read(n)
    except (OSError, EOFError, zstandard.ZstdError, lzma.LZMAError):
        return b""
