"""Who this agent is, and the ``Idempotency-Key`` each batch it sends carries.

The server stores a batch once per key within its window, so a key must be the *same* on every
attempt of one batch and *never* reused for another. A key is built from:

- the agent's instance id: 16 hex digits, created once in ``data_dir/instance_id`` (so two agents
  never share keys, and one agent keeps its keys across restarts);
- the sink's name (reduced to ``[A-Za-z0-9_.-]``);
- either the batch's place in a disk buffer (the buffer's own id and the span of segment offsets it
  covers: a batch replayed from disk after a restart gets the key it had before the crash), or a
  random run id plus a sequence number (a memory buffer dies with the process, and what the file
  source reads again after a restart is a new batch: at-least-once beyond the window).

Keys are printable ASCII and at most :data:`MAX_KEY` characters (a longer one is hashed).
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
import threading
from pathlib import Path

from logharbor.agent import telemetry
from logharbor.durable import write_atomic

__all__ = ["MAX_KEY", "batch_key", "instance_id", "short_id"]

MAX_KEY = 128
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]")
_lock = threading.Lock()
_cache: dict[Path, str] = {}


def short_id(nbytes: int = 4) -> str:
    """A random hex id (a run of a sink, a disk buffer)."""
    return secrets.token_hex(nbytes)


def instance_id(data_dir: Path) -> str:
    """This agent's id, read from ``data_dir/instance_id`` or created there once."""
    path = (data_dir / "instance_id").resolve()
    with _lock:
        found = _cache.get(path)
        if found is not None:
            return found
        try:
            value = path.read_bytes().decode("ascii", "replace").strip()
        except FileNotFoundError:
            value = None
        except OSError:
            value = ""
        if value is None or not re.fullmatch(r"[0-9a-f]{16}", value):
            if value is not None:  # damaged: batches sent again after this start get other keys
                telemetry.event(logging.ERROR, "agent instance id damaged: a new one; batches sent again "
                                "after this start get new idempotency keys and may be stored twice",
                                path=str(path))
            value = secrets.token_hex(8)
            path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(path, value.encode() + b"\n")
        _cache[path] = value
        return value


def batch_key(*parts: str) -> str:
    """Join key parts with ``-``; parts are made safe, and an over-long key is shortened to a
    hash of itself (still unique, still the same for the same parts)."""
    key = "-".join(_UNSAFE.sub("_", p) for p in parts if p)
    if len(key) > MAX_KEY:
        key = "h-" + hashlib.blake2b(key.encode(), digest_size=32).hexdigest()
    return key
