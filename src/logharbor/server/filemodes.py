"""The data directory is the owner's alone: directories 0700, files 0600.

Two halves, because files come from two places (both from :mod:`logharbor.filemodes`, shared
with the agent). :func:`private_umask` makes every file the process creates from now on private
— the WAL, ``meta.db`` and its ``-wal``/``-journal``, the patterns journal, and every part the
embedded engine (chDB, in this process) writes later. :func:`tighten` fixes what an older
release, or a copy by hand, left readable by others, so an upgraded data directory is no wider
than a new one, and logs it. Symbolic links are not followed (the engine links tables into its
store; the targets are walked as files of the tree themselves).
"""

from __future__ import annotations

import logging
from pathlib import Path

from logharbor.filemodes import PRIVATE_UMASK, private_umask, tighten_tree

__all__ = ["PRIVATE_UMASK", "private_umask", "tighten"]

log = logging.getLogger("logharbor.server")


def tighten(root: Path) -> int:
    """Take group and other permissions off ``root`` and everything under it; how many changed.

    Unreadable entries (a file removed meanwhile, a directory of another owner) are skipped with
    a warning: the server still starts, and says what it could not fix.
    """
    done = tighten_tree(root)
    if done.failed:
        log.warning("could not make %d path(s) private to the server's user (first: %s)",
                    len(done.failed), done.failed[0])
    if done.changed:
        log.warning("made %d file(s) and directories under %s private to the server's user "
                    "(0600/0700; they were readable by others)", done.changed, root)
    return done.changed
