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
    Handle,
    Tailed,
    aggregate,
    flush_multiline,
    read_compressed,
    split_lines,
)
from logharbor.agent.types import Ack, Chunk
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
        block = self.cfg.read_block_bytes
        if t.compressed:
            data = read_compressed(t, block)
        elif t.frozen:  # a copytruncate copy: nobody writes to it any more
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
        if data is None:
            return False
        if not data:
            self._at_eof(t, emit)
            return False
        t.last_data = time.monotonic()
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < block:
                if t.compressed:
                    t.carry = data
                return False  # a partial line: wait for its end (or for the file's end, in _at_eof)
            cut = len(data)  # a line longer than a block is shipped in block-sized pieces
        self._emit(t, data[:cut], emit)
        if t.compressed:
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
        else:
            lines, ack_end = split_lines(body), end
        self._send(t, lines, body, end, ack_end, emit)

    def _track(self, t: Tailed, body: bytes, end: int, ack_end: int) -> Ack:
        """A chunk in flight: its acknowledgement moves ``t``'s delivered offset to ``ack_end``."""
        ack = Ack(self.sinks, partial(self._acked, t))
        mark = t.mark_at(ack_end, body)
        with self.lock:
            t.pending.append((ack_end, ack, mark))
            t.advance(end, body)
        return ack

    def _send(self, t: Tailed, lines: list[str], body: bytes, end: int, ack_end: int,
              emit: Callable[[Chunk], None]) -> None:
        ack = self._track(t, body, end, ack_end)
        self._lines.inc(len(lines))
        self._bytes.inc(len(body))
        meta = dict(self.meta_base)
        meta["file"] = telemetry.shown(t.path)
        emit(Chunk(lines, ack, len(body), meta, None, time.time_ns()))

    def _flush_multiline(self, t: Tailed, emit: Callable[[Chunk], None], final: bool) -> None:
        released = flush_multiline(t, final)
        if released is not None:
            self._send(t, released, b"", t.read_off, t.safe_off, emit)

    def _at_eof(self, t: Tailed, emit: Callable[[Chunk], None]) -> None:
        assert t.fd is not None
        st = os.fstat(t.fd)
        idle = time.monotonic() - t.last_data >= self.cfg.rotated_idle_secs
        gone = st.st_nlink == 0 or t.rotated_at is not None
        self._flush_multiline(t, emit, final=False)
        if t.compressed:
            if t.carry and idle:  # the last line of a compressed file has no newline
                body, t.carry = t.carry, b""
                self._emit(t, body, emit)
            if gone and idle:
                self._flush_multiline(t, emit, final=True)
                self._retire(t, deleted=st.st_nlink == 0)
            return
        t.size = st.st_size
        if gone and idle:
            if st.st_size > t.read_off:  # the last line never got its newline
                self._emit(t, os.pread(t.fd, st.st_size - t.read_off, t.read_off), emit)
            self._flush_multiline(t, emit, final=True)
            self._retire(t, deleted=st.st_nlink == 0)

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
