"""State that is its owner's alone: directories 0700, files 0600 (the server's and the agent's).

Two halves, because files come from two places. :func:`private_umask` makes every file the
process creates from now on private (including what libraries create: the embedded engine's
parts, SQLite's journal). :func:`tighten_tree` fixes what an older release, or a copy by hand,
left readable by others, so an upgraded directory is no wider than a new one. Symbolic links are
not followed. Each caller logs what was changed in its own log (the server's, the agent's JSON).
"""

from __future__ import annotations

import fnmatch
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "Tightened", "private_dir", "private_umask", "tighten_tree"]

#: group and others get nothing: new files 0600, new directories 0700
PRIVATE_UMASK = 0o077


def private_umask() -> None:
    """Make every file and directory this process creates from now on private to its owner."""
    os.umask(PRIVATE_UMASK)


def private_dir(path: Path) -> None:
    """Create ``path`` and its missing parents, each 0700 whatever the umask (``Path.mkdir``
    gives the parents the umask's default mode)."""
    missing = []
    for p in (path, *path.parents):
        if p.exists():
            break
        missing.append(p)
    for p in reversed(missing):
        try:
            p.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(p, 0o700)


@dataclass
class Tightened:
    """What :func:`tighten_tree` changed, and what it could not (``path: reason``)."""

    changed: int = 0
    failed: list[str] = field(default_factory=list)


def tighten_tree(root: Path, *, only: tuple[str, ...] | None = None, root_too: bool = True) -> Tightened:
    """Take group and other permissions off ``root`` (unless not ``root_too``) and everything under it.

    ``only``: name patterns (``fnmatch``) of the entries directly under ``root`` to walk; the
    rest of ``root`` is left alone (a directory that may hold other programs' files).
    Unreadable entries (removed meanwhile, another owner's) are listed in ``failed``; the caller
    still starts, and says what it could not fix.
    """
    out = Tightened()
    stack = [root]
    top = True
    while stack:
        path = stack.pop()
        try:
            info = os.lstat(path)
            if stat.S_ISLNK(info.st_mode):
                continue
            if info.st_mode & 0o077 and (root_too or not top):
                os.chmod(path, stat.S_IMODE(info.st_mode) & ~0o077)
                out.changed += 1
            if stat.S_ISDIR(info.st_mode):
                with os.scandir(path) as entries:
                    stack.extend(Path(e.path) for e in entries
                                 if not top or only is None
                                 or any(fnmatch.fnmatchcase(e.name, pat) for pat in only))
        except FileNotFoundError:
            continue
        except OSError as exc:
            out.failed.append(f"{path}: {exc.strerror}")
        top = False
    return out
