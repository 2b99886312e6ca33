"""The file source's watcher: discovery and rotation detection, in a thread of its own.

Why its own thread: the reader stops reading when a sink's buffer is full (backpressure) and may
stay stopped for as long as the server is down. Rotations go on meanwhile, and each one must be
seen *while it can still be seen*: a file renamed away must be opened before it is deleted, and a
copytruncate copy must be found while it is still in the directory. So the watcher never waits on
the reader; every ``glob_interval_secs`` it:

- expands the globs and opens every new file at once (the descriptor is held from then on: a
  renamed or deleted file stays readable, however many rotations follow while reading is paused);
- marks files that left their path as *rotated* (read to the end, then let go);
- watches each watched path's content (size and first bytes): a size that drops, first bytes that
  change, or a reader that found its file rewritten under it, is a copytruncate. The content that
  was there is looked for by fingerprint among the path's siblings; the copy found is opened and
  becomes the content's file at once (its reader goes on in it from its offset, as in Vector and
  Fluent Bit); the truncated file is a new content, with a reader of its own from 0 — so every
  content the watcher has seen is in the checkpoint, whatever the reader is doing;
- after any rotation, reads whole the rotation-named siblings (``app.log.1``, ``app.log.2.gz``,
  ``app.log-20261125``) of unknown content written since its previous look: generations that
  lived and rotated away between two looks;
- looks for the content of checkpoint entries and truncated files in their directories for a
  while (a restart after rotations while the agent was down);
- lets go of a rotated file held longer than ``rotate_wait_secs`` (if set: unlimited by default),
  counting what was left unread as ``dropped_bytes{reason="rotate_wait"}`` and logging it.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from logharbor.agent import telemetry
from logharbor.agent.sources.siblings import find_copy, mark_holds, open_with_head
from logharbor.agent.sources.tailed import Tailed, codec_of_fd, content_size, is_rotation_of, is_sibling

if TYPE_CHECKING:
    from logharbor.agent.sources.file import FileSource

__all__ = ["Watcher"]

#: file times are compared with the time of a look: allow for coarse timestamps
_MTIME_SLACK = 2.0
#: how many steps a rotation keeps its siblings under watch for missed generations
_EVENT_STEPS = 2

Key = tuple[int, int]


@dataclass(slots=True)
class _Seen:
    """What the watcher last saw at a watched inode: its size, first bytes and modification time."""

    size: int
    head: bytes
    mtime: int = 0


class Watcher:
    """Discovery for one :class:`~logharbor.agent.sources.file.FileSource` (see the module doc)."""

    def __init__(self, source: FileSource) -> None:
        self.src = source
        self.seen: dict[Key, _Seen] = {}
        self.looked: dict[str, float] = {}  # watched path → wall time of the last look
        self.path_key: dict[str, Key] = {}  # watched path → the inode it held at the last look
        #: watched path → (wall time since when its unknown siblings count as missed, steps left)
        self.events: dict[str, tuple[float, int]] = {}
        self.steps = 0  # looks taken (tests wait on it)
        #: wall time the last finished look began (stored with the checkpoint it fed)
        self.last_look: float | None = None

    # -- one look ---------------------------------------------------------------------------------

    def step(self, first: bool = False) -> None:
        """One look at everything (see the module docstring)."""
        src = self.src
        now, wall = time.monotonic(), time.time()
        matched: dict[Key, str] = {}
        truncated: dict[Key, _Seen] = {}
        for path in src._paths():
            try:
                st = os.stat(path)
            except OSError:
                continue
            if not os.path.isfile(path):
                continue
            key = (st.st_dev, st.st_ino)
            matched[key] = path
            before = self.path_key.get(path)
            if before is not None and before != key:  # rename + create: a new file at the path
                self._event(path, wall)
            with src.lock:
                t = src.live.get(key)
            if t is not None:
                if t.rotated_at is None:
                    t.path = path
                if not t.compressed:
                    old = self._check(key, path, st, wall)
                    if old is not None:
                        truncated[key] = old
                continue
            self._discover(path, st, first)
        self._rotated(matched, now, wall)
        self._verify_rotated()
        self._copytruncated(truncated, now, wall)
        self._missed(now)
        self.seek_orphans(now)
        self._rotate_wait(now)
        for key in [k for k in self.seen if k not in matched]:
            del self.seen[key]
        for key, path in matched.items():
            self.looked[path] = wall
            self.path_key[path] = key
        self.steps += 1
        with src.lock:
            self.last_look = wall

    def start(self, since: float | None, paths: list[str]) -> None:
        """At start: siblings of these paths of unknown content written after ``since`` (the last
        checkpoint) are rotations that happened while the agent was down."""
        if since is None:
            return
        for path in paths:
            self.events[path] = (since, _EVENT_STEPS)

    def _event(self, path: str, wall: float) -> None:
        since = self.looked.get(path, wall)
        old = self.events.get(path)
        self.events[path] = (min(since, old[0]) if old else since, _EVENT_STEPS)

    # -- opening files ----------------------------------------------------------------------------

    def _discover(self, path: str, st: os.stat_result, first: bool) -> None:
        src = self.src
        opened = open_with_head(path, self.src.cfg.fingerprint_bytes)
        if opened is None:
            return
        fd, head = opened
        key = (st.st_dev, st.st_ino)
        codec = codec_of_fd(fd)
        why = "new"
        with src.lock:
            adopt = self._adopt(path, key, fd, head, codec)
            if adopt is False:
                os.close(fd)  # a copy of a file still tailed: the original's truncation decides
                return
            if isinstance(adopt, tuple):
                found, why = adopt
            else:
                found = Tailed(path, *key, 0)
                if first and src.cfg.start_at == "end":
                    found.read_off = found.acked_off = self._line_end(fd, codec)
            found.path, found.dev, found.ino, found.ghost = path, *key, False
            found.fd, found.codec, found.rotated_at, found.seek_until = fd, codec, None, 0.0
            if head and (found.fp_len == 0 or len(head) > found.fp_len):
                found.set_fp(head)
            src.live[key] = found
        if codec is None:
            self.seen[key] = _Seen(st.st_size, head[:self.src.cfg.fingerprint_bytes], st.st_mtime_ns)
        telemetry.file_opened(src.name, path, found.read_off, why)

    def _line_end(self, fd: int, codec: str | None) -> int:
        """Where ``start_at: end`` starts: after the file's last complete line. A line the writer
        is in the middle of is read whole when it ends (starting at the size shipped its rest as
        a line of its own); one with no newline within ``max_line_bytes`` before the end is left."""
        size = content_size(fd, codec)
        if codec is not None:
            return size
        window = min(size, self.src.line_limit)
        tail = os.pread(fd, window, size - window)
        nl = tail.rfind(b"\n")
        if nl >= 0:
            return size - window + nl + 1
        return 0 if window == size else size

    def _adopt(self, path: str, key: Key, fd: int, head: bytes,
               codec: str | None) -> tuple[Tailed, str] | bool | None:
        """A dormant state this file continues (its inode, or a copy of its content), False when
        the file is a copy of a content still tailed, None when it is new. Under the lock."""
        src = self.src
        for t in list(src.dormant):
            if (t.dev, t.ino) == key and not t.ghost:
                src.dormant.remove(t)
                if (t.matches(head) or t.fp_len == 0) and mark_holds(t, fd, codec):
                    return t, "resumed"
                # the inode holds other content now (reused, or truncated and rewritten while we
                # were away): the old content may live on in a copy
                t.ghost = True
                t.seek_until = time.monotonic() + self._seek_secs()
                src.dormant.append(t)
        if not head:
            return None
        for other in src.live.values():
            if other.matches(head) and is_sibling(path, other.path):
                return False
        for t in src.dormant:
            if ((t.dev, t.ino) != key and t.matches(head) and is_sibling(path, t.path)
                    and mark_holds(t, fd, codec)):
                src.dormant.remove(t)
                return t, "copy-or-compressed"
        return None

    def _seek_secs(self) -> float:
        return max(self.src.cfg.rotated_idle_secs, 2.0)

    # -- rename -------------------------------------------------------------------------------------

    def _rotated(self, matched: dict[Key, str], now: float, wall: float) -> None:
        src = self.src
        moved = []
        with src.lock:
            for key, t in src.live.items():
                if t.rotated_at is None and key not in matched:
                    t.rotated_at = now
                    moved.append(t.path)
        for path in moved:
            telemetry.file_rotated(src.name, path, "renamed-or-deleted")
            self._event(path, wall)

    def _verify_rotated(self) -> None:
        """A file truncated (copytruncate) and then renamed between two looks was never seen
        truncated at its path: check the renamed files against what was read of them."""
        src = self.src
        with src.io, src.lock:
            for t in src.live.values():
                if (t.rotated_at is not None and t.fd is not None and not t.compressed and not t.frozen
                        and not t.stalled and src.rewritten(t)):
                    t.stalled = True

    # -- copytruncate -------------------------------------------------------------------------------

    def _check(self, key: Key, path: str, st: os.stat_result, wall: float) -> _Seen | None:
        """Update what was seen at a watched plain file; the old sight when it was truncated.

        A file written to *and* truncated between two looks may show neither a smaller size nor
        other first bytes (it was empty, or short, when last seen); it did change, though: then
        its rotation-named siblings are searched for a content missed in between."""
        fpb = self.src.cfg.fingerprint_bytes
        try:
            with open(path, "rb") as fh:
                head = fh.read(fpb)
        except OSError:
            return None
        old = self.seen.get(key)
        self.seen[key] = _Seen(st.st_size, head, st.st_mtime_ns)
        if old is None:
            return None
        common = min(len(old.head), len(head))
        if st.st_size < old.size or head[:common] != old.head[:common] or len(head) < len(old.head):
            return old
        if st.st_mtime_ns != old.mtime and (st.st_size <= old.size or len(old.head) < fpb):
            self._event(path, wall)
        return None

    def _copytruncated(self, truncated: dict[Key, _Seen], now: float, wall: float) -> None:
        """Each truncated content goes on in its copy, found now, while it is still there (the
        content the watcher saw at the path is the one its reader is in: every content it sees
        gets a reader at once, so none waits for the reader to come back)."""
        src = self.src
        with src.lock:
            stalled = [k for k, t in src.live.items() if t.stalled]
        for key in stalled:
            truncated.setdefault(key, _Seen(0, b""))
        for key, old in truncated.items():
            with src.lock:
                cur = src.live.get(key)
            if cur is None or cur.fd is None:
                continue
            telemetry.file_rotated(src.name, cur.path, "copytruncate")
            self._event(cur.path, wall)
            if cur.fp_len == 0 and cur.read_off == 0:
                cur.stalled = False
                continue  # nothing of it is known: its copy is a sibling of unknown content, read whole
            found = find_copy(cur.path, cur.fp_len, cur.fp_hash, (cur.read_off, cur.tail), self._taken,
                              self.src.cfg.fingerprint_bytes)
            with src.io:
                with src.lock:
                    current = src.live.get(key) is cur and cur.fd is not None
                if current:
                    src.split(cur, found, max(old.size, cur.size))
                elif found is not None:
                    os.close(found.fd)

    # -- generations missed between two looks -----------------------------------------------------

    def _taken(self, key: Key) -> bool:
        with self.src.lock:
            return key in self.src.live

    def _known(self, head: bytes) -> bool:
        src = self.src
        with src.lock:
            states = (*src.live.values(), *src.dormant)
            if any(t.matches(head) for t in states):
                return True
        # the current content of a watched file (a copy being made, not yet truncated)
        return any(s.head and head[:len(s.head)] == s.head[:len(head)] for s in self.seen.values())

    def _missed(self, now: float) -> None:
        """Read whole the rotation-named siblings of unknown content written since the look
        before a rotation: contents that lived and rotated away between two looks."""
        src = self.src
        for path, (since, left) in list(self.events.items()):
            if left <= 1:
                del self.events[path]
            else:
                self.events[path] = (since, left - 1)
            directory = os.path.dirname(path) or "."
            try:
                names = sorted(os.listdir(directory))
            except OSError:
                continue
            for name in names:
                candidate = os.path.join(directory, name)
                if not is_rotation_of(candidate, path):
                    continue
                try:
                    st = os.stat(candidate)
                except OSError:
                    continue
                key = (st.st_dev, st.st_ino)
                with src.lock:
                    taken = key in src.live
                if taken or st.st_mtime < since - _MTIME_SLACK or not os.path.isfile(candidate):
                    continue
                opened = open_with_head(candidate, self.src.cfg.fingerprint_bytes)
                if opened is None:
                    continue
                fd, head = opened
                if not head or self._known(head):
                    os.close(fd)
                    continue
                found = Tailed(candidate, *key, 0)
                found.fd, found.codec, found.rotated_at = fd, codec_of_fd(fd), now
                found.set_fp(head)
                with src.lock:
                    src.live[key] = found
                telemetry.file_opened(src.name, candidate, 0, "rotation-missed-between-looks")

    # -- dormant contents: renamed while the agent was down, truncated copies -----------------------

    def seek_orphans(self, now: float) -> None:
        """Find, in their directories, rotated-away files and copies not finished."""
        src = self.src
        with src.lock:
            seeking = [t for t in src.dormant if t.seek_until > now]
            expired = [t for t in src.dormant if t.seek_until and t.seek_until <= now and not t.lost_logged
                       and t.ghost and t.known_size > t.read_off]
            for t in expired:
                t.lost_logged = True
        for t in expired:
            telemetry.bytes_dropped(src.name, t.path, t.known_size - t.read_off, "copy_not_found",
                                    why="the content of a truncated file was not found among its siblings")
        for directory in {os.path.dirname(t.path) or "." for t in seeking}:
            try:
                names = os.listdir(directory)
            except OSError:
                continue
            for name in names:
                self._orphan(os.path.join(directory, name), seeking, now)

    def _orphan(self, path: str, seeking: list[Tailed], now: float) -> None:
        src = self.src
        try:
            st = os.stat(path)
        except OSError:
            return
        key = (st.st_dev, st.st_ino)
        with src.lock:
            taken = key in src.live
        if taken or not os.path.isfile(path):
            return
        opened = open_with_head(path, self.src.cfg.fingerprint_bytes)
        if opened is None:
            return
        fd, head = opened
        with src.lock:
            codec = codec_of_fd(fd)
            found = next((t for t in seeking if t in src.dormant and t.matches(head)
                          and ((t.dev, t.ino) == key or is_sibling(path, t.path))
                          and mark_holds(t, fd, codec)), None)
            if found is None:
                os.close(fd)
                return
            src.dormant.remove(found)
            found.path, found.dev, found.ino, found.ghost, found.fd = path, *key, False, fd
            found.codec, found.seek_until = codec, 0.0
            found.rotated_at = now  # not ours to follow: read to the end, then let go
            src.live[key] = found
        telemetry.file_opened(src.name, path, found.read_off, "found-rotated")

    # -- the upper bound on holding a rotated file --------------------------------------------------

    def _rotate_wait(self, now: float) -> None:
        src = self.src
        bound = src.cfg.rotate_wait_secs
        if bound is None:
            return
        with src.io, src.lock:
            due = [t for t in src.live.values() if t.rotated_at is not None and now - t.rotated_at > bound]
            for t in due:
                src.give_up(t)
