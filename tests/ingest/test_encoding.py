"""Compressed bodies (server/ingest/encoding.py): every member and frame, or a clear error.

Properties, not examples: any split of a body into gzip members or zstd frames decodes to the
whole body; any truncation or trailing garbage is an error, never a shorter body; the output
limit holds across members.
"""

from __future__ import annotations

import gzip
import os
import zlib

import pytest
import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.conftest import examples

from logharbor.server.ingest.encoding import (
    BadEncoding,
    BodyTooLarge,
    decode_content,
    gunzip_members,
    inflate,
    unzstd_frames,
)

LIMIT = 1 << 24


def _zstd(data: bytes, *, checksum: bool = False, size: bool = True, level: int = 3) -> bytes:
    return zstandard.ZstdCompressor(level=level, write_checksum=checksum,
                                    write_content_size=size).compress(data)


def _zstd_streamed(data: bytes) -> bytes:
    """A frame written by a streaming compressor (no content size, several blocks)."""
    cobj = zstandard.ZstdCompressor().compressobj()
    return cobj.compress(data) + cobj.flush()


def _skippable(payload: bytes) -> bytes:
    return (0x184D2A53).to_bytes(4, "little") + len(payload).to_bytes(4, "little") + payload


pieces = st.lists(st.binary(max_size=3000), min_size=1, max_size=6)


@settings(max_examples=examples(60), deadline=None)
@given(pieces, st.integers(min_value=1, max_value=9))
def test_every_gzip_member_is_read(parts: list[bytes], level: int) -> None:
    body = b"".join(gzip.compress(p, compresslevel=level) for p in parts)
    assert gunzip_members(body, LIMIT) == b"".join(parts)
    assert decode_content(body, "x-gzip", LIMIT) == b"".join(parts)


@settings(max_examples=examples(60), deadline=None)
@given(pieces, st.booleans(), st.booleans(), st.booleans())
def test_every_zstd_frame_is_read(parts: list[bytes], checksum: bool, size: bool, skip: bool) -> None:
    frames = [_zstd(p, checksum=checksum, size=size) for p in parts]
    if skip:
        frames.insert(1, _skippable(b"metadata"))
    assert unzstd_frames(b"".join(frames), LIMIT) == b"".join(parts)


def test_large_multi_block_frames() -> None:
    """Frames of many blocks (raw, RLE and compressed), streamed and one-shot."""
    random_part = os.urandom(300_000)  # raw blocks
    runs = b"a" * 700_000  # RLE blocks
    text = b"".join(b'{"i":%d,"m":"message"}\n' % i for i in range(30_000))
    body = _zstd(random_part, checksum=True) + _zstd_streamed(runs) + _zstd(text, level=19) \
        + _zstd_streamed(text)
    assert unzstd_frames(body, LIMIT) == random_part + runs + text + text
    gz = gzip.compress(random_part) + gzip.compress(runs) + gzip.compress(text)
    assert gunzip_members(gz, LIMIT) == random_part + runs + text


@settings(max_examples=examples(40), deadline=None)
@given(pieces, st.data())
def test_a_truncated_body_is_an_error_never_a_shorter_body(parts: list[bytes], data: st.DataObject) -> None:
    """A cut anywhere but between two members (where what is left is a whole, shorter body that
    no decoder can tell from a complete one) is an error."""
    for members, decode in (([gzip.compress(p) for p in parts], gunzip_members),
                            ([_zstd(p) for p in parts], unzstd_frames),
                            ([zlib.compress(b"".join(parts))], inflate)):
        body = b"".join(members)
        boundaries = {sum(len(m) for m in members[:i]) for i in range(len(members))}
        cut = data.draw(st.sampled_from([c for c in range(1, len(body)) if c not in boundaries]))
        with pytest.raises(BadEncoding):
            decode(body[:cut], LIMIT)


@pytest.mark.parametrize("garbage", [b"x", b"xyz", b"\x1f", b"PK\x03\x04", b"\x00\x00\x01"])
def test_trailing_garbage_is_an_error(garbage: bytes) -> None:
    with pytest.raises(BadEncoding, match="after gzip member 2"):
        gunzip_members(gzip.compress(b"a") + gzip.compress(b"b") + garbage, LIMIT)
    with pytest.raises(BadEncoding, match="zstd"):
        unzstd_frames(_zstd(b"a") + _zstd(b"b") + garbage, LIMIT)
    with pytest.raises(BadEncoding, match="after the deflate stream"):
        inflate(zlib.compress(b"ab") + garbage, LIMIT)


def test_zero_padding_after_gzip_is_ignored_as_gzip_does() -> None:
    assert gunzip_members(gzip.compress(b"a") + gzip.compress(b"b") + b"\0" * 512, LIMIT) == b"ab"
    with pytest.raises(BadEncoding):
        gunzip_members(b"\0" * 20, LIMIT)


def test_corrupt_member_is_named() -> None:
    second = bytearray(gzip.compress(b"hello world" * 100))
    second[-6] ^= 0xFF  # the CRC of the second member
    with pytest.raises(BadEncoding, match="gzip member 2 is corrupt"):
        gunzip_members(gzip.compress(b"a") + bytes(second), LIMIT)


def test_empty_bodies_and_unknown_codings() -> None:
    for decode in (gunzip_members, unzstd_frames, inflate):
        with pytest.raises(BadEncoding, match="empty"):
            decode(b"", LIMIT)
    with pytest.raises(LookupError):
        decode_content(b"x", "br", LIMIT)
    assert decode_content(b"x", "identity", LIMIT) == b"x"


def test_raw_deflate_and_stacked_codings() -> None:
    raw = zlib.compressobj(wbits=-15)
    assert inflate(raw.compress(b"raw deflate") + raw.flush(), LIMIT) == b"raw deflate"
    stacked = _zstd(gzip.compress(b"a") + gzip.compress(b"b"))  # gzip applied first, then zstd
    assert decode_content(stacked, "gzip, zstd", LIMIT) == b"ab"


def test_the_limit_holds_across_members() -> None:
    """A bomb split into many members is stopped as soon as the sum passes the limit."""
    member = gzip.compress(b"\0" * (1 << 20))
    with pytest.raises(BodyTooLarge):
        gunzip_members(member * 20, 10 << 20)
    assert len(gunzip_members(member * 10, 10 << 20)) == 10 << 20
    frame = _zstd(b"\0" * (1 << 20))
    with pytest.raises(BodyTooLarge):
        unzstd_frames(frame * 20, 10 << 20)
    with pytest.raises(BodyTooLarge):  # one frame claiming far more than the limit
        unzstd_frames(_zstd_streamed(b"\0" * (64 << 20)), 1 << 20)


def test_many_tiny_members_cost_linear_time() -> None:
    """100k empty members: unused_data is never copied member after member (that was quadratic)."""
    body = gzip.compress(b"") * 100_000 + gzip.compress(b"end")
    assert gunzip_members(body, LIMIT) == b"end"
