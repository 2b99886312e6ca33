"""The data directory is the owner's alone: directories 0700, files 0600.

Two halves, because files come from two places. :func:`private_umask` makes every file the
process creates from now on private — the WAL, ``meta.db`` and its ``-wal``/``-journal``, the
patterns journal, and every part the embedded engine (chDB, in this process) writes later.
:func:`tighten` fixes what an older release, or a copy by hand, left readable by others, so an
upgraded data directory is no wider than a new one. Symbolic links are not followed (the engine
links tables into its store; the targets are walked as files of the tree themselves).
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "private_umask", "tighten"]

log = logging.getLogger("logharbor.server")

#: group and others get nothing: new files 0600, new directories 0700
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Make every file and directory this process creates from now on private to its owner."""
    os.umask(PRIVATE_UMASK)


def tighten(root: Path) -> int:
    """Take group and other permissions off ``root`` and everything under it; how many changed.

    Unreadable entries (a file removed meanwhile, a directory of another owner) are skipped with
    a warning: the server still starts, and says what it could not fix.
    """
    changed = 0
    failed: list[str] = []
    stack = [root]
    while stack:
        path = stack.pop()
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_mode & 0o077:
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
                changed += 1
            if stat.S_ISDIR(info.st_mode):
                with os.scandir(path) as entries:
                    stack.extend(Path(e.path) for e in entries)
        except FileNotFoundError:
            continue
        except OSError as exc:
            failed.append(f"{path}: {exc.strerror}")
    if failed:
        log.warning("could not make %d path(s) private to the server's user (first: %s)",
                    len(failed), failed[0])
    if changed:
        log.warning("made %d file(s) and directories under %s private to the server's user "
                    "(0600/0700; they were readable by others)", changed, root)
    return changed
