"""Where a disk buffer's delivery stands: ``ack.json`` (delivered position, batches in flight) and ``id``.

``ack.json`` holds the position up to which everything was delivered, the batches noted as about
to be sent (start, end, items: after a crash the same batch is formed again under the same
idempotency key), and the buffer's id. It is a checked state document (``statefile.py``: a CRC,
the previous copy kept). What a damaged one costs:

- the previous copy is sound: it is one write older, so the batches delivered since are sent
  again (those it noted keep their keys, and a server within its window stores them once);
- no copy is sound: delivery starts again at the oldest segment still on disk (a segment is
  deleted once delivered, so that is at most what the buffer holds, never everything ever sent),
  and that is logged with the bytes concerned.

``id`` names the buffer in its batches' keys (positions restart only with a new buffer). It is
also kept in ``ack.json``, so a damaged ``id`` file is replaced by that copy, not by a new id.

``ack.json`` carries a ``version`` (1; absent in files of older agents, which are version 1 too):
a sound copy of another version is a newer release's and is refused, never taken for damage.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from logharbor.agent import statefile, telemetry
from logharbor.agent.identity import short_id
from logharbor.durable import write_atomic
from logharbor.types import JsonObject

__all__ = ["Pos", "Position", "check_position_version", "load_position", "save_position"]

Pos = tuple[int, int]  # (segment number, offset)
#: the format of ``ack.json`` written and read here
VERSION = 1
_VERSIONS = statefile.Versions("disk buffer position (ack.json)", (VERSION,), default=VERSION)


@dataclass
class Position:
    """The delivery state of one disk buffer, as loaded."""

    acked: Pos | None = None
    #: batches noted and not yet delivered: start -> (end, items)
    batches: dict[Pos, tuple[Pos, int]] = field(default_factory=dict)
    buffer_id: str = ""
    #: no sound copy of ``ack.json`` although one existed: the position was lost
    lost: bool = False


def _valid(doc: JsonObject) -> None:
    int(doc["segment"])
    int(doc["offset"])
    for b in doc.get("batches", []):
        if len(b) != 5:
            raise ValueError("a noted batch is not [segment, offset, segment, offset, items]")
        [int(x) for x in b]


def _good_id(value: Any) -> bool:
    return isinstance(value, str) and value.isalnum() and 0 < len(value) <= 16


def load_position(directory: Path, sink: str, *, holds_data: bool) -> Position:
    """Read ``ack.json`` (reporting a damaged one) and the buffer's id (creating one if needed)."""
    loaded = statefile.read(directory / "ack.json", _valid, _VERSIONS)
    out = Position()
    doc = loaded.doc
    if doc is not None:
        out.acked = (int(doc["segment"]), int(doc["offset"]))
        out.batches = {(int(b[0]), int(b[1])): ((int(b[2]), int(b[3])), int(b[4]))
                       for b in doc.get("batches", [])}
    out.lost = doc is None and bool(loaded.damaged)
    statefile.report(
        "buffer_position", loaded,
        "delivery starts again at the oldest segment on disk: what it holds may be sent twice"
        if doc is None else "the batches delivered since the previous copy are sent again "
        "(those it noted under the same idempotency keys)")
    out.buffer_id = _load_id(directory, sink, doc.get("id") if doc else None, holds_data=holds_data)
    return out


def check_position_version(directory: Path) -> None:
    """Refuse an ``ack.json`` of a newer release (read-only)."""
    statefile.read(directory / "ack.json", _valid, _VERSIONS)


def _load_id(directory: Path, sink: str, kept: Any, *, holds_data: bool) -> str:
    path = directory / "id"
    try:
        value = path.read_bytes().decode("ascii", "replace").strip()
    except FileNotFoundError:
        value = None
    except OSError:
        value = ""
    if _good_id(value):
        return str(value)
    if _good_id(kept):
        if value is not None:
            telemetry.event(logging.WARNING, "disk buffer id file damaged: restored from ack.json",
                            sink=sink, path=str(path))
        write_atomic(path, str(kept).encode() + b"\n")
        return str(kept)
    new = short_id()
    if holds_data and value is not None:
        telemetry.event(logging.ERROR, "disk buffer id lost (file damaged, no copy): a new id; batches "
                        "sent again after this start get new idempotency keys and may be stored twice",
                        sink=sink, path=str(path))
    write_atomic(path, new.encode() + b"\n")
    return new


def save_position(directory: Path, acked: Pos, batches: dict[Pos, tuple[Pos, int]], buffer_id: str) -> None:
    """Write ``ack.json`` durably (the previous copy kept)."""
    statefile.write(directory / "ack.json", {
        "version": VERSION, "segment": acked[0], "offset": acked[1], "id": buffer_id,
        "batches": [[*s, *e, n] for s, (e, n) in sorted(batches.items())]})
