"""Looking at a watched file's siblings: opening a file with its first bytes, finding the copy of
a content by fingerprint (and the bytes before its offset), and checking a checkpoint's mark.

Shared by the watcher (``file_watch.py``) and the reader (``file.py``); none of it keeps state.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Callable

from logharbor.agent.checkpoint import fingerprint_of
from logharbor.agent.sources.compressed import read_head
from logharbor.agent.sources.tailed import MARK_BYTES, Handle, Tailed, codec_of_fd, is_sibling, mark_of

__all__ = ["find_copy", "mark_holds", "open_with_head", "unread_bytes"]


def open_with_head(path: str, n: int) -> tuple[int, bytes] | None:
    """A descriptor on ``path`` and its first ``n`` bytes of content (decompressed), or None."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return None
    try:
        with os.fdopen(os.dup(fd), "rb") as fh:
            head = read_head(fh, n)
    except OSError:
        os.close(fd)
        return None
    return fd, head


def mark_holds(t: Tailed, fd: int, codec: str | None) -> bool:
    """Whether the bytes before ``t``'s checkpointed offset are still the ones that were read (a
    file shorter than the offset is judged by the fingerprint alone: a copy made before the last
    lines were read from the original)."""
    if not t.acked_mark or codec is not None or t.acked_off <= 0:
        return True
    n = min(MARK_BYTES, t.acked_off)
    try:
        if os.fstat(fd).st_size < t.acked_off:
            return True
        before = os.pread(fd, n, t.acked_off - n)
    except OSError:
        return False
    return mark_of(before) == t.acked_mark


def _holds(fd: int, tail: tuple[int, bytes] | None) -> bool:
    """Whether a plain file holds ``tail`` = (offset, bytes just before it), or is shorter."""
    if tail is None or not tail[1] or codec_of_fd(fd) is not None:
        return True
    offset, before = tail
    try:
        if os.fstat(fd).st_size < offset:
            return True  # the copy ends before what was read: it was read from the original
        return os.pread(fd, len(before), offset - len(before)) == before
    except OSError:
        return False


def find_copy(path: str, fp_len: int, fp_hash: str, tail: tuple[int, bytes] | None,
              taken: Callable[[tuple[int, int]], bool], head_bytes: int) -> Handle | None:
    """Open the sibling of ``path`` (not ``taken``) whose content starts with the given
    fingerprint and, when ``tail`` = (offset, bytes before it) is given and the sibling is that
    long, holds those bytes there; an uncompressed one first, then the newest; None if none."""
    if fp_len <= 0:
        return None
    directory = os.path.dirname(path) or "."
    try:
        names = os.listdir(directory)
    except OSError:
        return None
    best: tuple[tuple[bool, float], Handle] | None = None
    for name in names:
        candidate = os.path.join(directory, name)
        if candidate == path or not is_sibling(candidate, path):
            continue
        try:
            st = os.stat(candidate)
        except OSError:
            continue
        key = (st.st_dev, st.st_ino)
        if taken(key) or not os.path.isfile(candidate):
            continue
        opened = open_with_head(candidate, head_bytes)
        if opened is None:
            continue
        fd, head = opened
        if len(head) < fp_len or fingerprint_of(head[:fp_len]) != fp_hash or not _holds(fd, tail):
            os.close(fd)
            continue
        handle = Handle(fd, candidate, *key, codec_of_fd(fd))
        rank = (handle.codec is None, st.st_mtime)
        if best is None or rank > best[0]:
            if best is not None:
                os.close(best[1].fd)
            best = (rank, handle)
        else:
            os.close(fd)
    return best[1] if best is not None else None


def unread_bytes(t: Tailed) -> int:
    """What is left to read of an open plain file (0 when unknown: compressed)."""
    if t.fd is None or t.compressed:
        return 0
    with contextlib.suppress(OSError):
        return max(0, os.fstat(t.fd).st_size - t.read_off)
    return 0
