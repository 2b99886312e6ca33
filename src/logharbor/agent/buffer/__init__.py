"""Per-sink buffers between the pipeline and a sink's delivery thread, bounded in bytes.

Both kinds hand items out in order (``get``) and forget them only when the sink reports them
delivered (``commit``), so a batch that fails stays owned by the sink until it succeeds. Their
interface, :class:`~logharbor.agent.types.Buffer`, lives with the agent's other shared types.

- :class:`MemoryBuffer` (``memory.py``): items keep their acknowledgement until delivered.
- :class:`DiskBuffer` (``disk.py``): an item is fsync'd in a segment file, and *that* is its
  acknowledgement; damaged entries are set aside and everything else delivered
  (``segmentlog.py``, ``segments.py``, ``legacy.py``, ``quarantine.py``; ``position.py`` keeps
  the delivered position).

``when_full: block`` makes ``put`` wait (backpressure up to the source, which stops reading);
``drop_newest`` refuses the item, and the caller counts and acknowledges it as dropped.
"""

from __future__ import annotations

from pathlib import Path

from logharbor.agent.buffer.disk import DiskBuffer
from logharbor.agent.buffer.memory import MemoryBuffer
from logharbor.agent.types import Buffer, BufferClosed
from logharbor.sealing import Sealer

__all__ = ["Buffer", "BufferClosed", "DiskBuffer", "MemoryBuffer", "open_buffer"]


def open_buffer(kind: str, directory: Path, max_bytes: int, when_full: str,
                encryption_key_file: Path | None = None) -> Buffer:
    """The buffer a sink's config asks for (a disk buffer sealed when a key file is given)."""
    if kind == "disk":
        sealer = Sealer.from_file(encryption_key_file) if encryption_key_file is not None else None
        return DiskBuffer(directory, max_bytes, when_full, sealer)
    return MemoryBuffer(max_bytes, when_full)
