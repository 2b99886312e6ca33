"""The state of one tailed file, and the helpers that read blocks of it into lines or events.

A :class:`Tailed` is one *content* — what a file held from its first byte — followed wherever it
goes: renamed, held open after it was deleted, or continued in the copy copytruncate made of it.
It is what the checkpoint remembers (identity, delivered offset, a mark of the bytes just before
that offset) plus what only a running agent has: the open descriptor, the read offset, the chunks
in flight, and, with ``multiline``, the aggregator and the offsets of the lines it still holds.
"""

from __future__ import annotations

import hashlib
import os
import re
import time
from collections import deque
from dataclasses import dataclass
from typing import Any, BinaryIO

from logharbor.agent.checkpoint import Entry, fingerprint_of
from logharbor.agent.sources.compressed import codec_of, open_decompressed, rewound
from logharbor.agent.types import Ack
from logharbor.types import JsonObject

__all__ = ["MARK_BYTES", "Handle", "Tailed", "aggregate", "codec_of_fd", "content_size",
           "flush_multiline", "is_rotation_of", "is_sibling", "mark_of", "read_compressed", "split_lines",
           "utf8_prefix"]

#: how many bytes before an offset its mark covers (the checkpoint's proof that the file still
#: holds what was read: a truncated file rewritten past the offset is caught)
MARK_BYTES = 64
#: what logrotate appends: ``.1``, ``.gz``, ``-20261125`` (dateext), in any combination
_ROTATION_SUFFIX = re.compile(r"(?:\.\d+|\.gz|\.zst|\.bz2|\.xz|-\d{8}(?:[-_]?\d+)?)+$")


def mark_of(before: bytes) -> str:
    """The mark of the bytes just before an offset (empty at offset 0)."""
    return hashlib.blake2b(before, digest_size=8).hexdigest() if before else ""


@dataclass(slots=True)
class Handle:
    """A file opened by the watcher for a content it found: the copy copytruncate made of it."""

    fd: int
    path: str
    dev: int
    ino: int
    codec: str | None = None



class Tailed:
    """One content's state: where it is read to, where it is delivered to, and what is in flight."""

    __slots__ = ("acked_mark", "acked_off", "agg", "carry", "codec", "cut_len", "cut_prefix", "cut_tail",
                 "dec", "dev", "fd", "fp_hash", "fp_len", "frozen", "ghost", "held", "ino", "known_size",
                 "last_data", "lost_logged", "path", "pending", "read_off", "rotated_at", "safe_off", "scan",
                 "seek_until", "size", "stalled", "tail", "updated")

    def __init__(self, path: str, dev: int, ino: int, offset: int) -> None:
        self.path, self.dev, self.ino = path, dev, ino
        self.read_off = self.acked_off = offset
        #: (end offset, ack, mark of the bytes before the end), in read order
        self.pending: deque[tuple[int, Ack, str]] = deque()
        self.acked_mark = ""
        self.tail = b""  # the last bytes before read_off (up to MARK_BYTES), to mark offsets with
        self.fd: int | None = None
        self.dec: Any = None  # decompressing reader of a compressed file
        self.codec: str | None = None
        self.fp_len, self.fp_hash = 0, ""
        self.ghost = False
        self.rotated_at: float | None = None  # monotonic time it left its watched path
        self.seek_until = 0.0  # look for this content in the directory until then
        self.last_data = time.monotonic()
        self.size = 0
        self.known_size = 0  # how long the content was when last seen whole (before a truncation)
        self.carry = b""
        #: a line without its newline yet starts at ``read_off``: (read_off, how far it was read
        #: without finding one) — a long line is looked through once, and new bytes are told apart
        self.scan = (-1, 0)
        #: a compressed file's over-long line: its first ``max_line_bytes``, its length so far, and
        #: the last bytes read of it (the mark of its end)
        self.cut_prefix, self.cut_len, self.cut_tail = b"", 0, b""
        self.updated = time.time()
        self.agg: Any = None  # multiline aggregator, one per file
        self.held: deque[int] = deque()  # end offsets of lines the aggregator still holds
        self.safe_off = offset  # every line before this offset is in an emitted event
        #: the reader saw this file rewritten under it and waits for the watcher to find the copy
        self.stalled = False
        #: a copytruncate copy: nobody writes to it, and it may end before ``read_off`` (what was
        #: read past its end was read from the original)
        self.frozen = False
        self.lost_logged = False

    @property
    def compressed(self) -> bool:
        return self.codec is not None

    def set_fp(self, head: bytes) -> None:
        """Remember these first bytes as the file's fingerprint."""
        self.fp_len, self.fp_hash = len(head), fingerprint_of(head)

    def matches(self, head: bytes) -> bool:
        """Whether a file starting with ``head`` has this content (same fingerprint)."""
        n = self.fp_len
        return n > 0 and len(head) >= n and fingerprint_of(head[:n]) == self.fp_hash

    def mark_at(self, offset: int, body: bytes) -> str:
        """The mark of ``offset``, which lies in ``tail + body`` (what was read up to ``read_off``
        and the block just read after it); "" when those bytes are not at hand."""
        if offset <= 0:
            return ""
        window = self.tail + body
        rel = offset - (self.read_off - len(self.tail))
        if rel < 0 or rel > len(window):
            return ""
        before = window[max(0, rel - MARK_BYTES):rel]
        return mark_of(before) if len(before) == min(MARK_BYTES, offset) else ""

    def advance(self, end: int, body: bytes) -> None:
        """The read offset moves over ``body``."""
        self.read_off = end
        if body:
            self.tail = (self.tail + body)[-MARK_BYTES:]

    def jump(self, end: int, before: bytes) -> None:
        """The read offset moves to ``end`` over bytes not all at hand (an over-long line cut at
        ``max_line_bytes``); ``before`` holds the last bytes before ``end``."""
        self.read_off = end
        self.tail = before[-MARK_BYTES:]

    def entry(self) -> Entry:
        """The checkpoint entry: identity and *delivered* offset."""
        return Entry(self.dev, self.ino, self.fp_len, self.fp_hash, self.acked_off, self.path,
                     self.updated, self.ghost, self.compressed, self.acked_mark)

    @classmethod
    def from_entry(cls, e: Entry) -> Tailed:
        """A dormant state from a checkpoint entry (no file open yet)."""
        t = cls(e.path, e.dev, e.ino, e.offset)
        t.fp_len, t.fp_hash, t.ghost, t.updated = e.fp_len, e.fp_hash, e.ghost, e.updated
        t.acked_mark = e.mark
        return t


def _aggregator(t: Tailed, options: JsonObject) -> Any:
    if t.agg is None:
        from logharbor.formats.multiline import build_multiline

        t.agg = build_multiline(**options)
    return t.agg


def aggregate(t: Tailed, body: bytes, end: int, options: JsonObject) -> tuple[list[str], int]:
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
        if part[:1] == b"\x00":  # zero-filled bytes a crash left (see split_lines)
            part = part.lstrip(b"\x00")
            if not part:
                continue
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


def read_compressed(t: Tailed, block: int) -> bytes | None:
    """The next decompressed bytes (after the carried partial line); b"" at the end; None when
    the file cannot be read yet (still being compressed: a member or frame is cut short)."""
    assert t.fd is not None and t.codec is not None
    try:
        if t.dec is None:
            t.dec = open_decompressed(rewound(t.fd), t.codec)
            t.dec.seek(t.read_off)
            t.carry, t.cut_prefix, t.cut_len = b"", b"", 0
        more = t.dec.read(max(block - len(t.carry), len(t.carry), 4096))  # (a long line's carry doubles)
    except (EOFError, OSError, ValueError):
        if t.dec is not None:
            t.dec.close()
            t.dec = None
        return None
    if not more:
        return b""
    data, t.carry = t.carry + more, b""
    return data


def codec_of_fd(fd: int) -> str | None:
    """The compression of an open file, from its first bytes."""
    return codec_of(os.pread(fd, 6, 0))


def is_sibling(path: str, original: str) -> bool:
    """Whether ``path`` can be a rotation of ``original`` (``app.log.1``, ``app.log-20261125.gz``
    of ``app.log``): only then may equal first bytes mean equal content. Unrelated files that
    merely start alike (a fixed banner, a CSV header) are never taken for one another."""
    stem = _ROTATION_SUFFIX.sub("", os.path.basename(original))
    return os.path.dirname(path) == os.path.dirname(original) and os.path.basename(path).startswith(stem)


def is_rotation_of(path: str, original: str) -> bool:
    """Whether ``path`` is *named* like a rotation of ``original``: its stem plus rotation suffixes
    only (``app.log.1``, ``app.log.2.gz``, ``app.log-20261125``), in the same directory. A file of
    unknown content is read as a rotation missed while paused only when it is named so."""
    if os.path.dirname(path) != os.path.dirname(original):
        return False
    stem = _ROTATION_SUFFIX.sub("", os.path.basename(original))
    name = os.path.basename(path)
    return name != os.path.basename(original) and name.startswith(stem) and \
        _ROTATION_SUFFIX.fullmatch(name[len(stem):]) is not None


def split_lines(body: bytes) -> list[str]:
    """The lines of a block (cut after a newline), without empty lines, CRs, and NULs before a line."""
    text = body.decode("utf-8", "replace")
    if "\r" in text:
        text = text.replace("\r\n", "\n")
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if "\x00" in text:  # zero-filled bytes a crash left where lines start (truncate-extend): no data
        lines = [line.lstrip("\x00") for line in lines]
        return [line for line in lines if line]
    if "\n\n" in text or text.startswith("\n"):
        lines = [line for line in lines if line]
    return lines


def utf8_prefix(data: bytes, limit: int) -> bytes:
    """The first ``limit`` bytes of ``data``, fewer when that would cut a UTF-8 character in two
    (a cut line must not end in a replacement character that was never in the file)."""
    cut = data[:limit]
    i = len(cut) - 1
    while i > len(cut) - 4 and i > 0 and cut[i] & 0xC0 == 0x80:  # continuation bytes
        i -= 1
    if i < 0:
        return cut
    lead = cut[i]
    need = 1 if lead < 0xC0 else 2 if lead < 0xE0 else 3 if lead < 0xF0 else 4
    return cut[:i] if i + need > len(cut) else cut


def content_size(fd: int, codec: str | None) -> int:
    """The size of a file's content (decompressed when it is compressed)."""
    if codec is None:
        return os.fstat(fd).st_size
    total = 0
    dec: BinaryIO = open_decompressed(rewound(fd), codec)
    try:
        while chunk := dec.read(1 << 20):
            total += len(chunk)
    except (EOFError, OSError):
        pass
    finally:
        dec.close()
    return total
