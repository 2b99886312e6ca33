"""Compressed bodies: every gzip member and every zstd frame is read, under one output limit.

A body may be several compressed pieces one after the other: ``cat a.gz b.gz`` is a valid gzip
file of two members (RFC 1952 §2.2), and zstd frames concatenate the same way (RFC 8878 §3).
Shippers that append a member per flushed chunk send exactly that. A decoder that stops at the
end of the first piece silently drops the rest while the client is told every record was
accepted, so here every piece is read, and anything that is *not* a complete piece is an error
that names it: a truncated member or frame, or trailing bytes that are not one (only zero padding
after a gzip member is ignored, as ``gzip -d`` and Python's ``gzip`` module ignore it).

The output limit counts every piece together, so a bomb split across members is stopped as early
as one in a single member. Input is fed to the decompressors in bounded chunks, so a body of
many tiny members costs time linear in its size.
"""

from __future__ import annotations

import zlib

import zstandard

__all__ = [
    "ENCODINGS",
    "BadEncoding",
    "BodyTooLarge",
    "decode_content",
    "gunzip_members",
    "inflate",
    "unzstd_frames",
]

#: the content codings :func:`decode_content` takes (``identity`` means none)
ENCODINGS = ("gzip", "x-gzip", "zstd", "deflate", "identity")
_CHUNK = 64 * 1024  # input fed to a decompressor at a time
_GZIP_MAGIC = b"\x1f\x8b"
_ZSTD_MAGIC = 0xFD2FB528
_ZSTD_SKIPPABLE = range(0x184D2A50, 0x184D2A60)


class BadEncoding(ValueError):
    """The body is not a complete, valid stream of the coding it claims (a 400)."""


class BodyTooLarge(ValueError):
    """The decompressed body is over the limit (a 413)."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"decompressed body is over {limit} bytes")
        self.limit = limit


def decode_content(body: bytes, encoding: str, limit: int) -> bytes:
    """Undo a ``Content-Encoding`` value; a list (``gzip, zstd``) is undone last coding first.

    Raises :class:`BadEncoding`, :class:`BodyTooLarge`, or LookupError naming a coding not taken.
    """
    codings = [c.strip().lower() for c in encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding in ("gzip", "x-gzip"):
            body = gunzip_members(body, limit)
        elif coding == "zstd":
            body = unzstd_frames(body, limit)
        elif coding == "deflate":
            body = inflate(body, limit)
        else:
            raise LookupError(coding)
    return body


def gunzip_members(data: bytes, limit: int) -> bytes:
    """Every gzip member of ``data`` joined, at most ``limit`` bytes of output in all."""
    view = memoryview(data)
    out: list[bytes] = []
    size = pos = members = 0
    while pos < len(view):
        if members and view[pos] == 0 and not any(view[pos:]):
            break  # zero padding after a member, as gzip -d and Python's gzip module allow
        if view[pos : pos + 2] != _GZIP_MAGIC:
            if not members:
                raise BadEncoding("body does not start with a gzip header")
            raise BadEncoding(f"{len(view) - pos} bytes after gzip member {members} (from byte {pos}) "
                              f"are not a gzip member")
        members += 1
        pos, size = _inflate_one(view, pos, zlib.decompressobj(16 + zlib.MAX_WBITS), out, size, limit,
                                 f"gzip member {members}")
    if not members:
        raise BadEncoding("body is empty but its encoding says gzip")
    return b"".join(out)


def inflate(data: bytes, limit: int) -> bytes:
    """``deflate``: one zlib stream (RFC 1950), or a raw deflate stream as some clients send."""
    view = memoryview(data)
    if not view:
        raise BadEncoding("body is empty but its encoding says deflate")
    zlib_header = len(view) >= 2 and view[0] & 0x0F == 8 and (view[0] * 256 + view[1]) % 31 == 0
    out: list[bytes] = []
    decompressor = zlib.decompressobj(zlib.MAX_WBITS if zlib_header else -zlib.MAX_WBITS)
    pos, _ = _inflate_one(view, 0, decompressor, out, 0, limit, "deflate stream")
    if pos < len(view):
        raise BadEncoding(f"{len(view) - pos} bytes after the deflate stream (from byte {pos}) "
                          f"are not part of it")
    return b"".join(out)


def _inflate_one(view: memoryview, pos: int, decompressor: zlib._Decompress, out: list[bytes],
                 size: int, limit: int, what: str) -> tuple[int, int]:
    """Run one zlib/gzip stream starting at ``pos`` to its end; (position after it, output size)."""
    while not decompressor.eof:
        if pos >= len(view):
            raise BadEncoding(f"{what} is truncated (the body ends at byte {len(view)})")
        chunk = view[pos : pos + _CHUNK]
        try:
            part = decompressor.decompress(chunk, limit + 1 - size)
        except zlib.error as exc:
            raise BadEncoding(f"{what} is corrupt: {exc}") from None
        size += len(part)
        if size > limit:
            raise BodyTooLarge(limit)
        out.append(part)
        rest = decompressor.unused_data if decompressor.eof else decompressor.unconsumed_tail
        pos += len(chunk) - len(rest)
    return pos, size


def unzstd_frames(data: bytes, limit: int) -> bytes:
    """Every zstd frame of ``data`` joined (skippable frames skipped), at most ``limit`` bytes.

    The frames are delimited first by their block headers (RFC 8878 §3.1), so a truncated frame
    is told from a complete one before anything is decompressed; each frame is then decoded with
    a bounded reader (a zstd decompressor has no output limit of its own).
    """
    view = memoryview(data)
    if not view:
        raise BadEncoding("body is empty but its encoding says zstd")
    frames: list[tuple[int, int]] = []
    pos = 0
    while pos < len(view):
        end, skippable = _zstd_frame_end(view, pos, len(frames) + 1)
        if not skippable:
            frames.append((pos, end))
        pos = end
    out: list[bytes] = []
    size = 0
    decompressor = zstandard.ZstdDecompressor()
    for number, (start, end) in enumerate(frames, start=1):
        try:
            reader = decompressor.stream_reader(view[start:end], read_across_frames=False)
            while size <= limit:
                chunk = reader.read(min(1 << 20, limit + 1 - size))
                if not chunk:
                    break
                out.append(chunk)
                size += len(chunk)
        except zstandard.ZstdError as exc:
            raise BadEncoding(f"zstd frame {number} is corrupt: {exc}") from None
        if size > limit:
            raise BodyTooLarge(limit)
    return b"".join(out)


def _zstd_frame_end(view: memoryview, pos: int, number: int) -> tuple[int, bool]:
    """Where the zstd frame at ``pos`` ends, and whether it is a skippable frame."""
    total = len(view)
    if total - pos < 4:
        raise BadEncoding(f"{total - pos} bytes at the end of the body (from byte {pos}) "
                          f"are not a zstd frame")
    magic = int.from_bytes(view[pos : pos + 4], "little")
    if magic in _ZSTD_SKIPPABLE:
        if total - pos < 8:
            raise BadEncoding(f"zstd skippable frame at byte {pos} is truncated")
        end = pos + 8 + int.from_bytes(view[pos + 4 : pos + 8], "little")
        if end > total:
            raise BadEncoding(f"zstd skippable frame at byte {pos} is truncated")
        return end, True
    if magic != _ZSTD_MAGIC:
        if number == 1:
            raise BadEncoding("body does not start with a zstd frame")
        raise BadEncoding(f"{total - pos} bytes after zstd frame {number - 1} (from byte {pos}) "
                          f"are not a zstd frame")
    if total - pos < 5:
        raise BadEncoding(f"zstd frame {number} is truncated (the body ends at byte {total})")
    descriptor = view[pos + 4]
    single_segment = descriptor >> 5 & 1
    header = 5 + (0 if single_segment else 1) + (0, 1, 2, 4)[descriptor & 3] \
        + ((1 if single_segment else 0), 2, 4, 8)[descriptor >> 6]
    i = pos + header
    while True:
        if i + 3 > total:
            raise BadEncoding(f"zstd frame {number} is truncated (the body ends at byte {total})")
        block = int.from_bytes(view[i : i + 3], "little")
        kind = block >> 1 & 3
        if kind == 3:
            raise BadEncoding(f"zstd frame {number} is corrupt: reserved block type at byte {i}")
        i += 3 + (1 if kind == 1 else block >> 3)  # an RLE block holds one byte
        if block & 1:  # the last block
            break
    i += 4 if descriptor >> 2 & 1 else 0  # content checksum
    if i > total:
        raise BadEncoding(f"zstd frame {number} is truncated (the body ends at byte {total})")
    return i, False
