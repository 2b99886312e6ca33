"""The state of one tailed file, and the helpers that read blocks of it into lines or events.

A :class:`Tailed` is what the checkpoint remembers of a file (identity, delivered offset), plus
what only a running agent has: the open descriptor, the read offset, the chunks in flight, and,
with ``multiline``, the aggregator and the offsets of the lines it still holds.
"""

from __future__ import annotations

import gzip
import os
import re
import time
from collections import deque
from typing import Any, BinaryIO

from logharbor.agent.checkpoint import Entry, fingerprint_of
from logharbor.agent.types import Ack

__all__ = ["Tailed", "aggregate", "content_size", "flush_multiline", "is_gzip", "is_sibling", "read_gzip",
           "rewound", "split_lines"]

_GZIP_MAGIC = b"\x1f\x8b"
#: what logrotate appends: ``.1``, ``.gz``, ``-20261125`` (dateext), in any combination
_ROTATION_SUFFIX = re.compile(r"(?:\.\d+|\.gz|-\d{8}(?:\d{2})?)+$")


class Tailed:
    """One file's state: where it is read to, where it is delivered to, and what is in flight."""

    __slots__ = ("acked_off", "agg", "carry", "dev", "fd", "fp_hash", "fp_len", "ghost", "gz", "held",
                 "ino", "is_gzip", "last_data", "path", "pending", "read_off", "rotated_at", "safe_off",
                 "seek_until", "size", "updated")

    def __init__(self, path: str, dev: int, ino: int, offset: int) -> None:
        self.path, self.dev, self.ino = path, dev, ino
        self.read_off = self.acked_off = offset
        self.pending: deque[tuple[int, Ack]] = deque()
        self.fd: int | None = None
        self.gz: gzip.GzipFile | None = None
        self.is_gzip = False
        self.fp_len, self.fp_hash = 0, ""
        self.ghost = False
        self.rotated_at: float | None = None
        self.seek_until = 0.0  # look for this content in the directory until then
        self.last_data = time.monotonic()
        self.size = 0
        self.carry = b""
        self.updated = time.time()
        self.agg: Any = None  # multiline aggregator, one per file
        self.held: deque[int] = deque()  # end offsets of lines the aggregator still holds
        self.safe_off = offset  # every line before this offset is in an emitted event

    def set_fp(self, head: bytes) -> None:
        """Remember these first bytes as the file's fingerprint."""
        self.fp_len, self.fp_hash = len(head), fingerprint_of(head)

    def matches(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` has this content (same fingerprint)."""
        n = self.fp_len
        return n > 0 and len(head) >= n and fingerprint_of(head[:n]) == self.fp_hash

    def entry(self) -> Entry:
        """The checkpoint entry: identity and *delivered* offset."""
        return Entry(self.dev, self.ino, self.fp_len, self.fp_hash, self.acked_off, self.path,
                     self.updated, self.ghost, self.is_gzip)

    @classmethod
    def from_entry(cls, e: Entry) -> Tailed:
        """A dormant state from a checkpoint entry (no file open yet)."""
        t = cls(e.path, e.dev, e.ino, e.offset)
        t.fp_len, t.fp_hash, t.ghost, t.is_gzip, t.updated = e.fp_len, e.fp_hash, e.ghost, e.gzip, e.updated
        return t


def _aggregator(t: Tailed, options: dict[str, Any]) -> Any:
    if t.agg is None:
        from logharbor.formats.multiline import build_multiline

        t.agg = build_multiline(**options)
    return t.agg


def aggregate(t: Tailed, body: bytes, end: int, options: dict[str, Any]) -> tuple[list[str], int]:
    """Feed a block's lines to the file's multiline aggregator; the events it completed, and the
    offset up to which every line is in one of them (lines still held are read again after a crash)."""
    agg = _aggregator(t, options)
    now = time.monotonic()
    if not t.held:
        t.safe_off = t.read_off
    pos = t.read_off
    out: list[str] = []
    parts = body.split(b"\n")
    if parts and parts[-1] == b"":
        parts.pop()
    for part in parts:
        pos = min(pos + len(part) + 1, end)
        t.held.append(pos)
        _release(t, agg.feed(part.decode("utf-8", "replace").rstrip("\r"), now), out)
    if not agg.pending():
        t.held.clear()
        t.safe_off = end
    return out, t.safe_off


def _release(t: Tailed, events: list[str], out: list[str]) -> None:
    for event in events:
        out.append(event)
        # an event of n lines releases the n oldest held lines (joined CRI partials count as
        # one: the offset then stays behind, never ahead — a duplicate after a crash, no loss)
        for _ in range(min(event.count("\n") + 1, len(t.held))):
            t.safe_off = t.held.popleft()


def flush_multiline(t: Tailed, final: bool) -> list[str] | None:
    """Events the aggregator lets go on a quiet file (timeout) or at its end (``final``)."""
    if t.agg is None or not t.agg.pending():
        return None
    events = t.agg.close() if final else t.agg.flush(time.monotonic())
    if not events:
        return None
    out: list[str] = []
    _release(t, events, out)
    if not t.agg.pending():
        t.held.clear()
        t.safe_off = t.read_off
    return out


def is_gzip(fd: int) -> bool:
    """Whether a file starts with the gzip magic bytes."""
    return os.pread(fd, 2, 0) == _GZIP_MAGIC


def read_gzip(t: Tailed, block: int) -> bytes | None:
    """The next decompressed bytes (after the carried partial line); b"" at the end."""
    assert t.fd is not None
    try:
        if t.gz is None:
            t.gz = gzip.GzipFile(fileobj=rewound(t.fd), mode="rb")
            t.gz.seek(t.read_off)
            t.carry = b""
        more = t.gz.read(max(block - len(t.carry), 4096))
    except (EOFError, OSError):  # still being compressed: come back later
        if t.gz is not None:
            t.gz.close()
            t.gz = None
        return None
    if not more:
        return b""
    data, t.carry = t.carry + more, b""
    return data


def is_sibling(path: str, original: str) -> bool:
    """Whether ``path`` can be a rotation of ``original`` (``app.log.1``, ``app.log-20261125.gz``
    of ``app.log``): only then may equal first bytes mean equal content. Unrelated files that
    merely start alike (a fixed banner, a CSV header) are never taken for one another."""
    stem = _ROTATION_SUFFIX.sub("", os.path.basename(original))
    return os.path.dirname(path) == os.path.dirname(original) and os.path.basename(path).startswith(stem)


def split_lines(body: bytes) -> list[str]:
    """The lines of a block (cut after a newline), without empty lines and CRs."""
    text = body.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\n\n" in text or text.startswith("\n"):
        lines = [line for line in lines if line]
    return lines


def rewound(fd: int) -> BinaryIO:
    """A file object on a duplicate of ``fd`` at offset 0 (duplicates share the offset)."""
    fh = os.fdopen(os.dup(fd), "rb")
    fh.seek(0)
    return fh


def content_size(fd: int, is_gzip: bool) -> int:
    """The size of a file's content (decompressed when it is gzip)."""
    if not is_gzip:
        return os.fstat(fd).st_size
    total = 0
    with gzip.GzipFile(fileobj=rewound(fd), mode="rb") as gz:
        while chunk := gz.read(1 << 20):
            total += len(chunk)
    return total
