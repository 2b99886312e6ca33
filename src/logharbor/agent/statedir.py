"""The agent's state directory (``data_dir``) is its user's alone: directories 0700, files 0600.

It holds what the agent read (checkpoints, the ALB read-set) and log lines not yet delivered (the
disk buffers and their quarantine), so nobody else may read it (``docs/security.md``, "Files and
permissions"). The agent runs with umask 077 (set by ``logharbor agent``) and creates its files
with explicit private modes whatever the umask; at every start :func:`prepare` also takes group
and other permissions off what an older release (or a copy by hand) left wider, and logs it.

A ``data_dir`` that is a shared directory (sticky or writable by others, like ``/tmp``) is not
made private itself (that would break the system's other users): only the agent's own entries
in it are, and a warning says to give the agent a directory of its own.
"""

from __future__ import annotations

import logging
import os
import stat
from pathlib import Path

from logharbor.agent import telemetry
from logharbor.filemodes import private_dir, tighten_tree

__all__ = ["OWN_ENTRIES", "prepare"]

#: what the agent keeps directly under ``data_dir``
OWN_ENTRIES = ("instance_id", "instance_id.tmp", "checkpoints", "buffer", "*.alb.json", "*.alb.json.*")


def prepare(data_dir: Path) -> None:
    """Create ``data_dir`` (0700) if needed and make what is in it private, logging changes."""
    private_dir(data_dir)
    mode = os.stat(data_dir).st_mode
    shared = bool(mode & (stat.S_ISVTX | stat.S_IWOTH))
    if shared:
        telemetry.event(logging.WARNING, "data_dir is a shared directory (sticky or writable by others): "
                        "only the agent's own files in it are made private; give the agent a directory "
                        "of its own", data_dir=str(data_dir))
    done = tighten_tree(data_dir, only=OWN_ENTRIES if shared else None, root_too=not shared)
    telemetry.files_tightened(str(data_dir), done.changed, done.failed)
