"""Tail files matched by globs through every kind of rotation, without losing or repeating lines,
however long reading is paused by backpressure.

Two threads per source. The *reader* reads blocks of the open files and hands their lines on;
when a sink's buffer is full it waits there (backpressure), for as long as the server is down.
The *watcher* (``file_watch.py``) never waits on it: it finds new files and opens them at once,
sees renames and copytruncates, finds each truncated content's copy by fingerprint, and writes
the checkpoints (acknowledgements go on arriving while the reader waits).

How a content is recognised (see ``checkpoint.py``): device + inode *and* a fingerprint (hash of
the first ``fingerprint_bytes`` bytes, read through gzip/zstd/bzip2/xz), and a *mark* of the bytes
just before the delivered offset. That covers:

- **rename + create**: the renamed file's descriptor was opened when it appeared and is held; it
  is read to its end, every chunk of it acknowledged, and let go ``rotated_idle_secs`` after its
  last new data. However many renames happen while reading is paused, each file was opened when
  the watcher saw it at the path; one that lived shorter than a look is read whole from its
  rotated name (a rotation-named sibling of unknown content written since the look before).
- **copytruncate**: the watcher (or the reader, finding its file shorter, or rewritten under its
  offset) sees the content replaced; the copy (``app.log.1``, even compressed) is found among the
  siblings by fingerprint, opened, and the content's reader goes on in it from its offset. The
  truncated file is a new content, read from 0. Lines written after logrotate's copy and before
  its truncation exist nowhere: that window is copytruncate's own (see docs/agent.md).
- **rotated file compressed later** (``app.log.1`` → ``app.log.1.gz``): its decompressed first
  bytes match a known content: not read again (only an unread tail, if any).
- **agent down during rotations**: checkpoint entries are looked for by inode and fingerprint in
  their directory; siblings of unknown content written after the last checkpoint are read whole.
- **deleted while open**: read to the end through the open descriptor, then let go.
- **inode reuse, or a file truncated and rewritten while the agent was down**: the fingerprint or
  the mark differs: a new content, read from its start.

``rotate_wait_secs`` bounds how long a rotated file is held (unlimited by default): if it ever
fires with bytes unread they are counted (``dropped_bytes{reason="rotate_wait"}``) and logged.

Each chunk (one read block cut at its last newline) carries an :class:`Ack`; a content's
delivered offset moves only over acknowledged chunks, in order, and that is what the checkpoint
stores, atomically.

Lines are never split, merged or cut without a mark: a line longer than a read block is looked
through to its end (``_long_line``) and shipped whole up to ``max_line_bytes``, or cut there with
``truncated``/``original_bytes``; the offsets never stop inside a line, so a line cut by a crash is
read again whole. The last line of a rotated file that never got its newline is shipped once,
``partial``, when the file goes quiet; NUL bytes before a line (a crash's zeros) are skipped.
"""

from __future__ import annotations

import fnmatch
import glob
import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import Field

from logharbor.agent import telemetry
from logharbor.agent.checkpoint import CheckpointStore
from logharbor.agent.sources.common import SourceConfig
from logharbor.agent.sources.file_watch import Watcher
from logharbor.agent.sources.siblings import unread_bytes
from logharbor.agent.sources.tailed import (
    MARK_BYTES,
    Handle,
    Tailed,
    aggregate,
    flush_multiline,
    mark_of,
    read_compressed,
    split_lines,
    utf8_prefix,
)
from logharbor.agent.types import Ack, Chunk
from logharbor.formats.multiline import fields_of, utf8_len
from logharbor.types import JsonObject, RawRecord

__all__ = ["Config", "FileSource", "Tailed"]


class Config(SourceConfig):
    """Options of the ``file`` source."""

    type: Literal["file"]
    include: list[str] = Field(min_length=1)
    exclude: list[str] = Field(default_factory=list)
    start_at: Literal["beginning", "end"] = "beginning"
    fingerprint_bytes: int = Field(default=256, ge=16, le=65536)
    read_block_bytes: int = Field(default=256 * 1024, ge=4096)
    poll_interval_secs: float = Field(default=0.25, gt=0)
    glob_interval_secs: float = Field(default=1.0, gt=0)
    #: a rotated (renamed, deleted, copied) file read to its end is let go after this long without
    #: new data, once every chunk of it was acknowledged
    rotated_idle_secs: float = Field(default=5.0, ge=0)
    #: the longest a rotated file is held open; null: until it is read and acknowledged. Bytes left
    #: unread when it fires are counted (dropped_bytes{reason="rotate_wait"}) and logged
    rotate_wait_secs: float | None = Field(default=None, gt=0)
    checkpoint_interval_secs: float = Field(default=1.0, gt=0)
    forget_after_secs: float = Field(default=7 * 86400, gt=0)
    read_gzip: bool = True
    multiline: JsonObject | None = None
    #: the longest line shipped whole: a line is joined across reads up to this many bytes; a
    #: longer one ships its first max_line_bytes with ``truncated: true`` and ``original_bytes``
    #: (logged, counted in logharbor_agent_lines_truncated). The default is the server's
    #: max_field_bytes: a longer message would be refused there
    max_line_bytes: int = Field(default=256 * 1024, ge=1024, le=256 * 1024 * 1024)


class FileSource:
    """The ``file`` source (see the module docstring for the rotation rules)."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int) -> None:
        self.name = name
        self.cfg = cfg
        self.sinks = sinks
        self.store = CheckpointStore(data_dir / "checkpoints" / f"{name}.json")
        self.store.check_version()  # a newer release's checkpoint: refused here, before any write
        self.live: dict[tuple[int, int], Tailed] = {}
        self.dormant: list[Tailed] = []
        #: guards the structure (live, dormant) and every content's offsets
        self.lock = threading.RLock()
        #: held by the reader while it reads descriptors (never while it waits in emit): the
        #: watcher takes it to swap a content's descriptor (copytruncate) or close one (rotate_wait)
        self.io = threading.Lock()
        self.watcher = Watcher(self)
        self._halt = threading.Event()
        self.meta_base: RawRecord = {"source": "file", "host": socket.gethostname(), **cfg.fields}
        #: the longest line shipped whole, and the read size (never above it: a line within a block
        #: that ends in a newline is then never over-long, with no look at each line)
        self.line_limit = cfg.max_line_bytes
        self.block = min(cfg.read_block_bytes, self.line_limit)
        m = telemetry.METRICS
        self._lines, self._bytes = m.lines_read.labels(name), m.bytes_read.labels(name)

    # -- acknowledgements -------------------------------------------------------------------------

    def _acked(self, t: Tailed, _ack: Ack) -> None:
        with self.lock:
            while t.pending and t.pending[0][1].finished:
                t.acked_off, _, t.acked_mark = t.pending.popleft()
                t.updated = time.time()

    def pending(self) -> int:
        with self.lock:
            return sum(len(t.pending) for t in (*self.live.values(), *self.dormant))

    # -- checkpoints ------------------------------------------------------------------------------

    def write_checkpoint(self) -> None:
        """Persist every content's delivered offset (atomically, only when changed)."""
        now = time.time()
        with self.lock:
            self.dormant = [t for t in self.dormant
                            if t.pending or now - t.updated < self.cfg.forget_after_secs][-1000:]
            entries = [t.entry() for t in (*self.live.values(), *self.dormant)]
            looked = self.watcher.last_look
        if self.store.write(entries, looked):
            telemetry.checkpoint_written(self.name, len(entries))

    def close(self) -> None:
        self._halt.set()
        self.write_checkpoint()
        with self.io, self.lock:
            for t in list(self.live.values()):
                self._detach(t)

    # -- the two loops ----------------------------------------------------------------------------

    def start(self) -> None:
        """Load the checkpoint and take the first look (files present, rotations while down)."""
        self.dormant = [Tailed.from_entry(e) for e in self.store.load(self.cfg.start_at)]
        now = time.monotonic()
        for t in self.dormant:
            t.seek_until = now + max(self.cfg.rotated_idle_secs, 2.0)
        since = (self.store.looked_at or self.store.saved_at()) if self.dormant else None
        self.watcher.start(since, sorted({*self._paths(), *(t.path for t in self.dormant)}))
        self.watcher.step(first=True)
        # at once: a crash before the first interval still leaves what was found, and when
        self.write_checkpoint()

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        self.start()
        watch = threading.Thread(target=self._watch, args=(stop,), name=f"watch-{self.name}", daemon=True)
        watch.start()
        try:
            while not stop.is_set() and not self._halt.is_set():
                if not self.read_round(emit, stop):
                    stop.wait(self.cfg.poll_interval_secs)
        finally:
            self._halt.set()
            watch.join(10)

    def _watch(self, stop: threading.Event) -> None:
        """The watcher's loop: look every ``glob_interval_secs``, checkpoint every
        ``checkpoint_interval_secs``, whatever the reader is doing."""
        next_look = next_ckpt = 0.0
        while not stop.is_set() and not self._halt.is_set():
            now = time.monotonic()
            try:
                if now >= next_look:
                    self.watcher.step()
                    next_look = now + self.cfg.glob_interval_secs
                if now >= next_ckpt:
                    self.write_checkpoint()
                    self._lag()
                    next_ckpt = now + self.cfg.checkpoint_interval_secs
            except Exception:  # the watcher must go on: log it loudly and look again
                telemetry.log.exception("file watcher failed", extra={"fields": {"source": self.name}})
            wait = min(next_look, next_ckpt) - time.monotonic()
            self._halt.wait(max(0.01, min(wait, 0.5)))

    def read_round(self, emit: Callable[[Chunk], None], stop: threading.Event | None = None) -> bool:
        """A few blocks of every open file (fair to every file); whether anything was read.

        Blocks are read under ``io`` and the chunks handed on (``emit``, which may wait: that is
        backpressure) after it is released, so the watcher is never held up by a waiting reader."""
        busy = False
        out: list[Chunk] = []
        for t in list(self.live.values()):
            for _ in range(4):
                if stop is not None and stop.is_set():
                    return busy
                with self.io:
                    with self.lock:
                        current = self.live.get((t.dev, t.ino)) is t
                    more = current and self._read(t, out.append)
                for chunk in out:
                    emit(chunk)
                out.clear()
                if not more:
                    break
                busy = True
        return busy

    def _lag(self) -> None:
        gauge = telemetry.METRICS.file_lag
        with self.lock:
            for t in self.live.values():
                gauge.labels(self.name, telemetry.shown(t.path)).set(max(0, t.size - t.acked_off))
            telemetry.METRICS.files_open.labels(self.name).set(len(self.live))

    def _paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.cfg.include:
            found.update(glob.glob(pattern, recursive=True))
        return sorted(p for p in found if not any(fnmatch.fnmatch(p, x) for x in self.cfg.exclude)
                      and (self.cfg.read_gzip or not p.endswith((".gz", ".zst", ".bz2", ".xz"))))

    # -- reading ----------------------------------------------------------------------------------

    def _read(self, t: Tailed, emit: Callable[[Chunk], None]) -> bool:
        """Read one block of ``t`` and emit its complete lines; False when there was nothing."""
        if t.fd is None:
            return False
        block = self.block
        if t.compressed:
            return self._read_compressed(t, emit)
        if t.frozen:  # a copytruncate copy: nobody writes to it any more
            data = os.pread(t.fd, block, t.read_off)
        else:
            # a renamed file is checked too: it may have been truncated before it was renamed
            if t.stalled or self.rewritten(t):
                t.stalled = True  # the watcher looks for the copy on its next look
                return False
            data = os.pread(t.fd, block, t.read_off)
            if t.fp_len and not t.matches(os.pread(t.fd, t.fp_len, 0)):
                t.stalled = True  # truncated while we read: what was read may be the new content
                return False
        if not data:
            self._at_eof(t, emit)
            return False
        if data[0] == 0:
            return self._skip_zeros(t, data, emit)
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) == block:
                return self._long_line(t, emit)  # a line longer than a block
            self._partial(t, t.read_off + len(data), emit)
            return False
        t.last_data = time.monotonic()
        self._emit(t, data[:cut], emit)
        return True

    def _partial(self, t: Tailed, end: int, emit: Callable[[Chunk], None]) -> None:
        """The file ends at ``end`` inside a line: wait for its newline; once the file was rotated
        away and no byte came for ``rotated_idle_secs``, the line is shipped as it is (``_at_eof``)."""
        if t.scan != (t.read_off, end):
            t.scan = (t.read_off, end)
            t.last_data = time.monotonic()  # new bytes (of the same line)
            return
        self._at_eof(t, emit)

    def _skip_zeros(self, t: Tailed, data: bytes, emit: Callable[[Chunk], None]) -> bool:
        """NUL bytes where a line starts: what a crash leaves in a file extended but never written
        (truncate-extend, a writer going on at its offset after a copytruncate). Not log data, and
        not the start of the next line: skipped once data follows them (counted, logged); up to
        the file's end they are waited on (a writer may still fill preallocated space)."""
        assert t.fd is not None
        start, pos = t.scan
        more = data if start != t.read_off else os.pread(t.fd, self.block, pos)
        if start != t.read_off:
            pos = t.read_off
        for _ in range(16):
            rest = more.lstrip(b"\x00")
            if rest:
                t.last_data = time.monotonic()
                self._skip(t, pos + len(more) - len(rest), emit)
                return True
            pos += len(more)
            if len(more) < self.block:
                self._partial(t, pos, emit)
                return False
            more = os.pread(t.fd, self.block, pos)
        t.scan = (t.read_off, pos)
        return True

    def _skip(self, t: Tailed, end: int, emit: Callable[[Chunk], None]) -> None:
        """Move over NUL bytes up to ``end`` (an empty chunk: the offset moves once it is
        acknowledged, in order); counted in dropped_bytes{reason="nul_bytes"} and logged."""
        assert t.fd is not None
        telemetry.bytes_dropped(self.name, t.path, end - t.read_off, "nul_bytes", offset=t.read_off,
                                hint="zero-filled bytes where a line starts (a crash, or a writer "
                                     "going on past a truncation): not log data, skipped")
        n = min(MARK_BYTES, end)
        self._send(t, [], b"", end, end, emit, before=os.pread(t.fd, n, end - n))

    def _long_line(self, t: Tailed, emit: Callable[[Chunk], None]) -> bool:
        """A block with no newline: look for the line's end (16 blocks a call at most, so that the
        watcher is not kept waiting for ``io``; what was looked through is remembered), then ship
        the line whole up to ``max_line_bytes``, or cut there and marked (``_cut``)."""
        assert t.fd is not None
        block = self.block
        start, pos = t.scan
        if start != t.read_off:
            pos = t.read_off + block
        for _ in range(16):
            more = os.pread(t.fd, block, pos)
            nl = more.find(b"\n")
            if nl >= 0:
                t.last_data = time.monotonic()
                end = pos + nl + 1
                if end - 1 - t.read_off > self.line_limit:
                    self._cut(t, end, emit)
                    return True
                body = os.pread(t.fd, end - t.read_off, t.read_off)
                if not body.endswith(b"\n"):  # rewritten under us: the next round sees it
                    return False
                self._emit(t, body, emit)
                return True
            if len(more) < block:
                self._partial(t, pos + len(more), emit)
                return False
            pos += len(more)
        t.scan = (t.read_off, pos)
        t.last_data = time.monotonic()
        return True

    def _cut(self, t: Tailed, end: int, emit: Callable[[Chunk], None]) -> None:
        """Ship the line from ``read_off`` to ``end`` (an uncompressed file's) cut at ``max_line_bytes``."""
        assert t.fd is not None
        n = min(MARK_BYTES, end)
        self._emit_cut(t, os.pread(t.fd, self.line_limit, t.read_off), end,
                       os.pread(t.fd, n, end - n), emit)

    def _read_compressed(self, t: Tailed, emit: Callable[[Chunk], None]) -> bool:
        """The next block of a compressed file: no random access, so a long line is gathered in
        ``carry`` (up to ``max_line_bytes``; beyond, only its first bytes and its length are kept)."""
        data = read_compressed(t, self.block)
        if data is None:
            return False
        if not data:
            self._at_eof(t, emit)
            return False
        t.last_data = time.monotonic()
        limit = self.line_limit
        if t.cut_len:  # in an over-long line: look for its end
            nl = data.find(b"\n")
            if nl < 0:
                t.cut_len += len(data)
                t.cut_tail = (t.cut_tail + data)[-MARK_BYTES:]
                return True
            end = t.read_off + t.cut_len + nl + 1
            before = (t.cut_tail + data[:nl + 1])[-MARK_BYTES:]
            prefix, t.cut_prefix, t.cut_len, t.cut_tail = t.cut_prefix, b"", 0, b""
            self._emit_cut(t, prefix, end, before, emit)
            t.carry = data[nl + 1:]
            return True
        if len(data) > limit and data.find(b"\n", 0, limit + 1) < 0:  # (only a carry gets so long)
            nl = data.find(b"\n")
            if nl < 0:
                t.cut_prefix, t.cut_len, t.cut_tail = data[:limit], len(data), data[-MARK_BYTES:]
                return True
            before = data[max(0, nl + 1 - MARK_BYTES):nl + 1]
            self._emit_cut(t, data[:limit], t.read_off + nl + 1, before, emit)
            t.carry = data[nl + 1:]
            return True
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            t.carry = data  # a partial line: more of it next time (or the file's end, in _at_eof)
            return True
        self._emit(t, data[:cut], emit)
        t.carry = data[cut:]
        return True

    def rewritten(self, t: Tailed) -> bool:
        """Whether the file under ``t`` no longer holds what was read (copytruncate, seen by the
        reader before the watcher): other first bytes, a size below the offset, or other bytes
        just before the offset."""
        assert t.fd is not None
        head = os.pread(t.fd, self.cfg.fingerprint_bytes, 0)
        if t.fp_len and not t.matches(head):
            return True
        size = os.fstat(t.fd).st_size
        t.size = size
        if size < t.read_off:
            return True
        if t.tail and os.pread(t.fd, len(t.tail), t.read_off - len(t.tail)) != t.tail:
            return True
        if len(head) > t.fp_len:
            t.set_fp(head)
        return False

    def split(self, t: Tailed, copy: Handle | None, known_size: int) -> None:
        """copytruncate: content ``t`` goes on in ``copy`` (from its offset) and the truncated file
        is a new content, read from 0; without a copy ``t`` is a ghost, looked for a while longer.
        Called by the watcher, holding ``io`` (the reader is not in a descriptor)."""
        assert t.fd is not None
        head = os.pread(t.fd, self.cfg.fingerprint_bytes, 0)
        fresh = Tailed(t.path, t.dev, t.ino, 0)
        fresh.fd = t.fd
        if head:
            fresh.set_fp(head)
        now = time.monotonic()
        with self.lock:
            self.live[(t.dev, t.ino)] = fresh
            t.stalled, t.size, t.known_size = False, 0, max(t.known_size, known_size)
            if copy is None:
                t.fd, t.ghost, t.seek_until = None, True, now + max(self.cfg.rotated_idle_secs, 2.0)
                self.dormant.append(t)
            else:
                t.fd, t.codec, t.path, t.dev, t.ino = copy.fd, copy.codec, copy.path, copy.dev, copy.ino
                t.dec, t.carry, t.frozen = None, b"", True
                t.rotated_at = t.last_data = now
                self.live[(copy.dev, copy.ino)] = t
        telemetry.file_opened(self.name, fresh.path, 0, "truncated-new-content")
        if copy is None:
            telemetry.event(logging.WARNING, "copytruncate: the copy of the content was not found yet",
                            source=self.name, path=fresh.path, offset=t.read_off)
        else:
            telemetry.file_opened(self.name, copy.path, t.read_off, "copytruncate-copy")

    def _emit(self, t: Tailed, body: bytes, emit: Callable[[Chunk], None]) -> None:
        end = t.read_off + len(body)
        if self.cfg.multiline is not None:
            lines, ack_end = aggregate(t, body, end, self.cfg.multiline)
            self._send_events(t, lines, body, end, ack_end, emit)
        else:
            self._send(t, split_lines(body), body, end, end, emit)

    def _emit_cut(self, t: Tailed, prefix: bytes, end: int, before: bytes,
                  emit: Callable[[Chunk], None]) -> None:
        """Ship the line from ``read_off`` to ``end``, longer than ``max_line_bytes``, as its first
        ``prefix`` bytes (cut at a character boundary) marked ``truncated`` with its
        ``original_bytes``; logged and counted. ``before``: the bytes just before ``end``."""
        length = end - t.read_off
        if before.endswith(b"\n"):
            length -= 2 if before.endswith(b"\r\n") else 1
        kept = utf8_prefix(prefix, self.line_limit)
        self._flush_multiline(t, emit, final=True)  # an open event ends before the cut line
        telemetry.line_truncated(self.name, t.path, t.read_off, length, len(kept))
        self._send_cut(t, kept.decode("utf-8", "replace"), length, end, before, emit)

    def _send_cut(self, t: Tailed, text: str, length: int, end: int, before: bytes,
                  emit: Callable[[Chunk], None]) -> None:
        self._send(t, [text], b"", end, end, emit, {"truncated": True, "original_bytes": length},
                   before=before)

    def _track(self, t: Tailed, body: bytes, end: int, ack_end: int, before: bytes | None = None) -> Ack:
        """A chunk in flight: its acknowledgement moves ``t``'s delivered offset to ``ack_end``.
        ``before``: the bytes before ``end`` when ``body`` is not all that was read (a cut line)."""
        ack = Ack(self.sinks, partial(self._acked, t))
        mark = t.mark_at(ack_end, body) if before is None else mark_of(before[-MARK_BYTES:])
        with self.lock:
            t.pending.append((ack_end, ack, mark))
            if before is None:
                t.advance(end, body)
            else:
                t.jump(end, before)
        return ack

    def _send(self, t: Tailed, lines: list[str], body: bytes, end: int, ack_end: int,
              emit: Callable[[Chunk], None], fields: RawRecord | None = None, hold: bool = False,
              before: bytes | None = None) -> None:
        """One chunk; ``fields``: added to each of its records; ``hold``: its acknowledgement moves
        no offset (a chunk before the last of one read, see ``_send_events``); ``before``: see
        ``_track``."""
        ack = self._hold(t) if hold else self._track(t, body, end, ack_end, before)
        self._lines.inc(len(lines))
        self._bytes.inc(len(body))
        meta = dict(self.meta_base)
        meta["file"] = telemetry.shown(t.path)
        if fields:
            meta.update(fields)
        emit(Chunk(lines, ack, len(body), meta, None, time.time_ns()))

    def _send_events(self, t: Tailed, events: list[str], body: bytes, end: int, ack_end: int,
                     emit: Callable[[Chunk], None]) -> None:
        """Multiline events: an event the aggregator cut or ended early (``fields_of``) goes in a
        chunk of its own with those fields; only the last chunk moves the offsets, so they still
        move in order and only over delivered chunks."""
        if all(type(e) is str for e in events):
            self._send(t, events, body, end, ack_end, emit)
            return
        runs: list[tuple[list[str], RawRecord | None]] = []
        for event in events:
            fields = fields_of(event)
            if fields is None and runs and runs[-1][1] is None:
                runs[-1][0].append(event)
                continue
            runs.append(([str(event)], fields))
            length = fields.get("original_bytes") if fields is not None else None
            if isinstance(length, int):
                telemetry.line_truncated(self.name, t.path, None, length, utf8_len(event),
                                         why="multiline max_bytes")
        for i, (lines, fields) in enumerate(runs):
            if i < len(runs) - 1:
                self._send(t, lines, b"", t.read_off, t.read_off, emit, fields, hold=True)
            else:
                self._send(t, lines, body, end, ack_end, emit, fields)

    def _hold(self, t: Tailed) -> Ack:
        """An acknowledgement that moves nothing: its place in ``pending`` keeps the order."""
        ack = Ack(self.sinks, partial(self._acked, t))
        with self.lock:
            off, mark = (t.pending[-1][0], t.pending[-1][2]) if t.pending else (t.acked_off, t.acked_mark)
            t.pending.append((off, ack, mark))
        return ack

    def _flush_multiline(self, t: Tailed, emit: Callable[[Chunk], None], final: bool) -> None:
        released = flush_multiline(t, final)
        if released is not None:
            self._send_events(t, released, b"", t.read_off, t.safe_off, emit)

    def _at_eof(self, t: Tailed, emit: Callable[[Chunk], None]) -> None:
        assert t.fd is not None
        st = os.fstat(t.fd)
        idle = time.monotonic() - t.last_data >= self.cfg.rotated_idle_secs
        gone = st.st_nlink == 0 or t.rotated_at is not None
        self._flush_multiline(t, emit, final=False)
        if t.compressed:
            if t.cut_len and idle:  # the last line of a compressed file has no newline, nor an end
                prefix, before, end = t.cut_prefix, t.cut_tail, t.read_off + t.cut_len
                t.cut_prefix, t.cut_len, t.cut_tail = b"", 0, b""
                self._emit_cut(t, prefix, end, before, emit)
            if t.carry and idle:  # the last line of a compressed file has no newline
                body, t.carry = t.carry, b""
                self._emit(t, body, emit)
            if gone and idle:
                self._flush_multiline(t, emit, final=True)
                self._retire(t, deleted=st.st_nlink == 0)
            return
        t.size = st.st_size
        if gone and idle:
            rest = st.st_size - t.read_off
            if rest > 0 and os.pread(t.fd, 1, t.read_off) == b"\x00":  # NULs up to the end
                self._skip(t, st.st_size, emit)
            elif rest > self.line_limit:  # the last line never got its newline, and is over-long
                self._cut(t, st.st_size, emit)
            elif rest > 0:  # the last line never got its newline
                self._last_line(t, os.pread(t.fd, rest, t.read_off), emit)
            self._flush_multiline(t, emit, final=True)
            self._retire(t, deleted=st.st_nlink == 0)

    def _last_line(self, t: Tailed, body: bytes, emit: Callable[[Chunk], None]) -> None:
        """The end of a file rotated away: its last line never got its newline (the writer was
        cut mid-line; what it writes next goes to the new file). Shipped once, marked
        ``partial: true`` (lines that came complete meanwhile go first, unmarked)."""
        cut = body.rfind(b"\n") + 1
        if cut:
            self._emit(t, body[:cut], emit)
        rest = body[cut:]
        if not rest:
            return
        if self.cfg.multiline is not None:
            self._emit(t, rest, emit)
            return
        end = t.read_off + len(rest)
        self._send(t, split_lines(rest), rest, end, end, emit, {"partial": True})

    # -- letting go -------------------------------------------------------------------------------

    def _detach(self, t: Tailed) -> None:
        if t.dec is not None:
            t.dec.close()
            t.dec = None
        if t.fd is not None:
            os.close(t.fd)
            t.fd = None

    def _retire(self, t: Tailed, deleted: bool = False) -> None:
        """Read to its end: let go of it once every chunk of it was acknowledged."""
        with self.lock:
            if t.pending:
                return  # held until acknowledged: a failed chunk is still read from here
            self.live.pop((t.dev, t.ino), None)
            self._detach(t)
            # a deleted file's inode number will be reused: from now on only content identifies it
            t.ghost = t.ghost or deleted
            self.dormant.append(t)
        telemetry.file_closed(self.name, t.path, t.read_off)

    def give_up(self, t: Tailed) -> None:
        """``rotate_wait_secs`` passed: let go of a rotated file whatever is left of it (counted and
        logged when bytes are left unread). Called holding ``io`` and the lock."""
        left = unread_bytes(t)
        held = time.monotonic() - (t.rotated_at or time.monotonic())
        self.live.pop((t.dev, t.ino), None)
        self._detach(t)
        self.dormant.append(t)
        if left:
            telemetry.bytes_dropped(self.name, t.path, left, "rotate_wait", offset=t.read_off,
                                    held_secs=round(held, 1),
                                    hint="rotate_wait_secs let go of a rotated file before it was read; "
                                         "raise it or leave it unset (unlimited)")
        else:
            telemetry.file_closed(self.name, t.path, t.read_off)
