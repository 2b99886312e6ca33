"""The batcher's progress file (``batcher.json``): what is in the store, and the batch being
inserted when it was last written (the *intent*, replayed after a crash with the same token).

Written atomically (``durable.write_atomic``); a file that does not parse stops the start with
a message naming it (:class:`DamagedProgress`), and so does one of a ``version`` this release
does not read (:class:`~logharbor.formatversion.NewerFormat`: never taken for damage, never
rewritten).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import orjson

from logharbor.durable import write_atomic
from logharbor.formatversion import NewerFormat
from logharbor.server.engine.wal import WalPosition

__all__ = ["VERSION", "BatcherProgress", "DamagedProgress", "load_progress", "save_progress", "stored_seq"]

#: the format written (and the only one read: files without the member are version 1 too)
VERSION = 1


@dataclass
class BatcherProgress:
    """What is in the store (``done``) and what was being inserted when we last wrote."""

    done_seq: int
    done_pos: WalPosition
    intent: tuple[int, int, WalPosition, WalPosition] | None = None  # first, last, start, end
    #: the intent's batch is being stored in halves (engine/refused.py): some halves may be in the
    #: store under their own tokens, so the batch must never again be inserted whole
    isolating: bool = False


class DamagedProgress(ValueError):
    """The batcher's progress file cannot be read; the message names it and what to do."""


def _read(path: Path) -> dict[str, object] | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    try:
        data = orjson.loads(raw)
        if not isinstance(data, dict):
            raise ValueError("not a JSON object")
        version = data.get("version", VERSION)
        if type(version) is int and version != VERSION:  # a well-formed version: newer, not damage
            raise NewerFormat(path, "the batcher's progress file", version, (VERSION,))
        if type(version) is not int:
            raise ValueError(f"version {version!r} is not a number")
        int(data.get("done_seq", 0))
        WalPosition(*data["done_pos"])
        intent = data.get("intent")
        if intent:
            first, last, start, end = intent
            int(first), int(last), WalPosition(*start), WalPosition(*end)
    except (ValueError, TypeError, KeyError) as exc:
        raise DamagedProgress(
            f"the batcher's progress file {path} is damaged ({len(raw)} bytes: {exc}). It "
            "records which WAL entries are in the store. Restore it from a backup if you have "
            "one; otherwise move it aside and start again: the whole WAL is then inserted "
            "again, and batches the store already had may be stored twice") from None
    return data


def stored_seq(path: Path) -> int:
    """The highest WAL sequence number that may be in the store (0 when none)."""
    data = _read(path)
    if data is None:
        return 0
    intent = data.get("intent")
    return max(int(data.get("done_seq", 0)), int(intent[1]) if intent else 0)  # type: ignore[index, call-overload]


def load_progress(path: Path) -> BatcherProgress | None:
    """The progress in ``path``; None when there is no file yet."""
    data = _read(path)
    if data is None:
        return None
    intent = data.get("intent")
    return BatcherProgress(
        done_seq=int(data["done_seq"]),  # type: ignore[call-overload]
        done_pos=WalPosition(*data["done_pos"]),  # type: ignore[misc]
        intent=(intent[0], intent[1], WalPosition(*intent[2]), WalPosition(*intent[3]))  # type: ignore[index]
        if intent else None,
        isolating=bool(intent and data.get("isolating")),
    )


def save_progress(path: Path, progress: BatcherProgress) -> None:
    """Replace ``path`` with ``progress``, durably (raises OSError, e.g. on a full disk)."""
    body: dict[str, object] = {"version": VERSION, "done_seq": progress.done_seq,
                               "done_pos": progress.done_pos.as_list()}
    if progress.intent:
        first, last, start, end = progress.intent
        body["intent"] = [first, last, start.as_list(), end.as_list()]
        if progress.isolating:
            body["isolating"] = True
    write_atomic(path, orjson.dumps(body))
