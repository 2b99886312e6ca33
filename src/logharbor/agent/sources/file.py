"""Tail files matched by globs through every kind of rotation, without losing or repeating lines.

How a file is recognised (see ``checkpoint.py``): by device + inode *and* a fingerprint (hash of
the first ``fingerprint_bytes`` bytes, read through gzip). That covers:

- **rename + create**: the renamed inode keeps its state; it is read to its end and closed
  ``rotate_wait_secs`` after it stopped growing; the new file at the path is a new inode, read
  from its start. If the agent was down across the rename, the old inode is looked for in the
  file's directory by inode and fingerprint and its unread tail is read first.
- **copytruncate**: a size below the read offset, or first bytes that changed, mean the inode was
  truncated. The old content's state becomes a *ghost*, found again by fingerprint: the copy
  (``app.log.1``, matched by the globs or found in the same directory) resumes where the
  original stopped, so lines written between the last read and the truncation are not lost.
  A copy of a file that is still being tailed is ignored until the original is truncated.
- **compressed later** (``app.log.1`` → ``app.log.1.gz``): the fingerprint of the decompressed
  head matches the finished file, so it is not read again (or only its unread tail).
- **deleted while open**: read to the end through the open descriptor, then closed.
- **inode reuse**: same inode, different fingerprint → a new file, read from its start.

Each chunk (one read block cut at its last newline) carries an :class:`Ack`; a file's delivered
offset moves only over acknowledged chunks, in order, and that is what the checkpoint stores.
"""

from __future__ import annotations

import fnmatch
import glob
import os
import socket
import threading
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any, Literal

from pydantic import Field

from logharbor.agent import telemetry
from logharbor.agent.checkpoint import CheckpointStore, read_head
from logharbor.agent.sources.common import SourceConfig
from logharbor.agent.sources.tailed import (
    Tailed,
    aggregate,
    content_size,
    flush_multiline,
    is_gzip,
    is_sibling,
    read_gzip,
    split_lines,
)
from logharbor.agent.types import Ack, Chunk

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
    rotate_wait_secs: float = Field(default=5.0, ge=0)
    checkpoint_interval_secs: float = Field(default=1.0, gt=0)
    forget_after_secs: float = Field(default=7 * 86400, gt=0)
    read_gzip: bool = True
    multiline: dict[str, Any] | None = None


class FileSource:
    """The ``file`` source (see the module docstring for the rotation rules)."""

    def __init__(self, name: str, cfg: Config, data_dir: Path, sinks: int) -> None:
        self.name = name
        self.cfg = cfg
        self.sinks = sinks
        self.store = CheckpointStore(data_dir / "checkpoints" / f"{name}.json")
        self.live: dict[tuple[int, int], Tailed] = {}
        self.dormant: list[Tailed] = []
        self.lock = threading.Lock()
        self._unseen_since: float | None = None
        self._unseen_until = 0.0
        self.meta_base: dict[str, Any] = {"source": "file", "host": socket.gethostname(), **cfg.fields}
        m = telemetry.METRICS
        self._lines, self._bytes = m.lines_read.labels(name), m.bytes_read.labels(name)

    # -- acknowledgements -------------------------------------------------------------------------

    def _acked(self, t: Tailed, _ack: Ack) -> None:
        with self.lock:
            while t.pending and t.pending[0][1].finished:
                t.acked_off = t.pending.popleft()[0]
                t.updated = time.time()

    def pending(self) -> int:
        with self.lock:
            return sum(len(t.pending) for t in (*self.live.values(), *self.dormant))

    # -- checkpoints ------------------------------------------------------------------------------

    def write_checkpoint(self) -> None:
        """Persist every file's delivered offset (atomically, only when changed)."""
        now = time.time()
        with self.lock:
            self.dormant = [t for t in self.dormant
                            if t.pending or now - t.updated < self.cfg.forget_after_secs][-1000:]
            entries = [t.entry() for t in (*self.live.values(), *self.dormant)]
        if self.store.write(entries):
            telemetry.checkpoint_written(self.name, len(entries))

    def close(self) -> None:
        self.write_checkpoint()
        for t in list(self.live.values()):
            self._detach(t)

    # -- the loop ---------------------------------------------------------------------------------

    def run(self, emit: Callable[[Chunk], None], stop: threading.Event) -> None:
        self.dormant = [Tailed.from_entry(e) for e in self.store.load()]
        now = time.monotonic()
        for t in self.dormant:
            t.seek_until = now + max(self.cfg.rotate_wait_secs, 1.0)
        # rotation siblings written after our last checkpoint may hold lines we never saw
        self._unseen_since = self.store.saved_at() if self.dormant else None
        self._unseen_until = now + max(self.cfg.rotate_wait_secs, 1.0)
        next_scan = next_ckpt = 0.0
        first = True
        while not stop.is_set():
            now = time.monotonic()
            if now >= next_scan:
                self._scan(first)
                first = False
                next_scan = now + self.cfg.glob_interval_secs
            busy = False
            for t in list(self.live.values()):
                for _ in range(4):  # a few blocks per file per round: fair to every file
                    if stop.is_set() or not self._read(t, emit):
                        break
                    busy = True
            if now >= next_ckpt:
                self.write_checkpoint()
                self._lag()
                next_ckpt = now + self.cfg.checkpoint_interval_secs
            if not busy:
                stop.wait(self.cfg.poll_interval_secs)

    def _lag(self) -> None:
        gauge = telemetry.METRICS.file_lag
        for t in self.live.values():
            if t.fd is not None and not t.is_gzip:
                t.size = os.fstat(t.fd).st_size
            gauge.labels(self.name, t.path).set(max(0, t.size - t.acked_off))
        telemetry.METRICS.files_open.labels(self.name).set(len(self.live))

    # -- discovery --------------------------------------------------------------------------------

    def _paths(self) -> list[str]:
        found: set[str] = set()
        for pattern in self.cfg.include:
            found.update(glob.glob(pattern, recursive=True))
        return sorted(p for p in found if not any(fnmatch.fnmatch(p, x) for x in self.cfg.exclude)
                      and (self.cfg.read_gzip or not p.endswith(".gz")))

    def _scan(self, first: bool) -> None:
        matched: set[tuple[int, int]] = set()
        for path in self._paths():
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            key = (st.st_dev, st.st_ino)
            matched.add(key)
            if key in self.live:
                self.live[key].path = path
                continue
            self._discover(path, st, first)
        for key, t in list(self.live.items()):
            if t.rotated_at is None and key not in matched:
                t.rotated_at = time.monotonic()
                telemetry.file_rotated(self.name, t.path, "renamed-or-deleted")
        self._seek_orphans()

    def _open(self, path: str) -> tuple[int, bytes] | None:
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            return None
        with os.fdopen(os.dup(fd), "rb") as fh:
            head = read_head(fh, self.cfg.fingerprint_bytes)
        return fd, head

    def _discover(self, path: str, st: os.stat_result, first: bool) -> None:
        opened = self._open(path)
        if opened is None:
            return
        fd, head = opened
        key = (st.st_dev, st.st_ino)
        gz = is_gzip(fd)
        why = "new"
        adopt: Tailed | None = None
        for t in list(self.dormant):
            if (t.dev, t.ino) == key and not t.ghost:
                self.dormant.remove(t)
                if t.matches(head) or t.fp_len == 0:
                    adopt, why = t, "resumed"
                    break
                t.ghost = True  # the inode was reused: its old content may live on elsewhere
                self.dormant.append(t)
        if adopt is None and head:
            for other in self.live.values():
                if other.matches(head) and is_sibling(path, other.path):
                    os.close(fd)  # a copy of a file still tailed: wait for the original's truncation
                    return
            for t in self.dormant:
                if t.matches(head) and is_sibling(path, t.path):
                    self.dormant.remove(t)
                    adopt, why = t, "copy-or-compressed"
                    break
        if adopt is None:
            adopt = Tailed(path, *key, 0)
            if first and self.cfg.start_at == "end":
                adopt.read_off = adopt.acked_off = content_size(fd, gz)
        adopt.path, adopt.dev, adopt.ino, adopt.ghost = path, *key, False
        adopt.fd, adopt.is_gzip, adopt.rotated_at, adopt.seek_until = fd, gz, None, 0.0
        if head and (adopt.fp_len == 0 or len(head) > adopt.fp_len):
            adopt.set_fp(head)
        if not gz and os.fstat(fd).st_size < adopt.read_off:  # truncated while we were away
            adopt.read_off = adopt.acked_off = 0
            adopt.set_fp(head)
        self.live[key] = adopt
        telemetry.file_opened(self.name, path, adopt.read_off, why)

    def _seek_orphans(self) -> None:
        """Find, in their directories, rotated-away files and copies we have not finished."""
        now = time.monotonic()
        seeking = [t for t in self.dormant if t.seek_until > now]
        if not seeking:
            return
        live_keys = set(self.live)
        for directory in {os.path.dirname(t.path) or "." for t in seeking}:
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                path = os.path.join(directory, name)
                try:
                    st = os.stat(path)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                if key in live_keys or not os.path.isfile(path):
                    continue
                opened = self._open(path)
                if opened is None:
                    continue
                fd, head = opened
                why = "found-rotated"
                found = next((t for t in seeking if t in self.dormant and t.matches(head)
                              and ((t.dev, t.ino) == key or is_sibling(path, t.path))), None)
                if found is not None:
                    self.dormant.remove(found)
                elif self._unseen(path, st, head, now):
                    found, why = Tailed(path, *key, 0), "found-unseen"
                    found.set_fp(head)
                else:
                    os.close(fd)
                    continue
                found.path, found.dev, found.ino, found.ghost, found.fd = path, *key, False, fd
                found.is_gzip, found.seek_until = is_gzip(fd), 0.0
                found.rotated_at = now  # not ours to follow: read to the end, then let go
                self.live[key] = found
                live_keys.add(key)
                telemetry.file_opened(self.name, path, found.read_off, why)

    def _unseen(self, path: str, st: os.stat_result, head: bytes, now: float) -> bool:
        """A rotation sibling (``app.log.4`` of ``app.log``) of unknown identity, written while the
        agent was down: a copy made by copytruncate of a file the agent never saw. Its lines exist
        nowhere else, so it is read whole (a copy of a known file is matched by fingerprint first)."""
        if self._unseen_since is None or now > self._unseen_until or not head:
            return False
        if st.st_mtime < self._unseen_since:
            return False
        if not any(fnmatch.fnmatch(path, pattern + ".*") for pattern in self.cfg.include):
            return False
        return not any(t.matches(head) for t in (*self.live.values(), *self.dormant))

    # -- reading ----------------------------------------------------------------------------------

    def _read(self, t: Tailed, emit: Callable[[Chunk], None]) -> bool:
        """Read one block of ``t`` and emit its complete lines; False when there was nothing."""
        if t.fd is None:
            return False
        block = self.cfg.read_block_bytes
        if t.is_gzip:
            data = read_gzip(t, block)
        else:
            head = os.pread(t.fd, self.cfg.fingerprint_bytes, 0)
            if t.fp_len and not t.matches(head):  # truncated and written again since last look
                self._truncated(t, head)
                return True
            if len(head) > t.fp_len:
                t.set_fp(head)
            data = os.pread(t.fd, block, t.read_off)
        if data is None:
            return False
        if not data:
            self._at_eof(t, emit)
            return False
        t.last_data = time.monotonic()
        cut = data.rfind(b"\n") + 1
        if cut == 0:
            if len(data) < block:
                if t.is_gzip:
                    t.carry = data
                return False  # a partial line: wait for its end (or for rotate_wait, in _at_eof)
            cut = len(data)  # a line longer than a block is shipped in block-sized pieces
        self._emit(t, data[:cut], emit)
        if t.is_gzip:
            t.carry = data[cut:]
        return True

    def _emit(self, t: Tailed, body: bytes, emit: Callable[[Chunk], None]) -> None:
        end = t.read_off + len(body)
        if self.cfg.multiline is not None:
            lines, ack_end = aggregate(t, body, end, self.cfg.multiline)
        else:
            lines, ack_end = split_lines(body), end
        self._send(t, lines, len(body), end, ack_end, emit)

    def _send(self, t: Tailed, lines: list[str], nbytes: int, end: int, ack_end: int,
              emit: Callable[[Chunk], None]) -> None:
        ack = Ack(self.sinks, partial(self._acked, t))
        with self.lock:
            t.pending.append((ack_end, ack))
            t.read_off = end
        self._lines.inc(len(lines))
        self._bytes.inc(nbytes)
        meta = dict(self.meta_base)
        meta["file"] = t.path
        emit(Chunk(lines, ack, nbytes, meta, None, time.time_ns()))

    def _flush_multiline(self, t: Tailed, emit: Callable[[Chunk], None], final: bool) -> None:
        released = flush_multiline(t, final)
        if released is not None:
            self._send(t, released, 0, t.read_off, t.safe_off, emit)

    def _at_eof(self, t: Tailed, emit: Callable[[Chunk], None]) -> None:
        assert t.fd is not None
        st = os.fstat(t.fd)
        idle = time.monotonic() - t.last_data >= self.cfg.rotate_wait_secs
        gone = st.st_nlink == 0 or t.rotated_at is not None
        self._flush_multiline(t, emit, final=False)
        if t.is_gzip:
            if t.carry and idle:  # the last line of a compressed file has no newline
                body, t.carry = t.carry, b""
                self._emit(t, body, emit)
            if gone and idle:
                self._flush_multiline(t, emit, final=True)
                self._retire(t, deleted=st.st_nlink == 0)
            return
        t.size = st.st_size
        if st.st_size < t.read_off:
            self._truncated(t, os.pread(t.fd, self.cfg.fingerprint_bytes, 0))
            return
        if gone and idle:
            if st.st_size > t.read_off:  # the last line never got its newline
                self._emit(t, os.pread(t.fd, st.st_size - t.read_off, t.read_off), emit)
            self._flush_multiline(t, emit, final=True)
            self._retire(t, deleted=st.st_nlink == 0)

    def _truncated(self, t: Tailed, head: bytes) -> None:
        """copytruncate: the old content becomes a ghost; the inode starts over as a new file."""
        telemetry.file_rotated(self.name, t.path, "truncated")
        fresh = Tailed(t.path, t.dev, t.ino, 0)
        fresh.fd, t.fd = t.fd, None
        if head:
            fresh.set_fp(head)
        with self.lock:
            t.ghost = True
            t.seek_until = time.monotonic() + max(self.cfg.rotate_wait_secs, 2.0)
            self.dormant.append(t)
            self.live[(t.dev, t.ino)] = fresh
        self._seek_orphans()

    def _detach(self, t: Tailed) -> None:
        if t.gz is not None:
            t.gz.close()
            t.gz = None
        if t.fd is not None:
            os.close(t.fd)
            t.fd = None

    def _retire(self, t: Tailed, deleted: bool = False) -> None:
        self._detach(t)
        with self.lock:
            self.live.pop((t.dev, t.ino), None)
            # a deleted file's inode number will be reused: from now on only content identifies it
            t.ghost = t.ghost or deleted
            self.dormant.append(t)
        telemetry.file_closed(self.name, t.path, t.read_off)
