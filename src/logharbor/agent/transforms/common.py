"""What transforms share: the ``sources`` filter option and access to records of a chunk.

A chunk whose lines are still raw (no parser) has no record dicts; :func:`records_of` builds
them (``{"message": line}``) only when a transform needs to look inside, so a pipeline without
per-record work keeps the fast path. Fields given by the source (``meta``) are visible to
:func:`field_value` too: a filter on ``file`` or ``service`` works on raw lines.
"""

from __future__ import annotations

from typing import Any

from logharbor.agent.options import Strict
from logharbor.agent.types import Chunk
from logharbor.types import RawRecord

__all__ = ["TransformConfig", "field_value", "records_of"]


class TransformConfig(Strict):
    """``sources``: names of the sources this step applies to (default: all)."""

    sources: list[str] | None = None


def records_of(chunk: Chunk) -> list[RawRecord]:
    """The chunk's records, made from its raw lines the first time they are needed."""
    if chunk.records is None:
        chunk.records = [{"message": line} for line in chunk.lines]
    return chunk.records


_MISSING = object()


def field_value(record: RawRecord, meta: RawRecord, path: str) -> Any:
    """A field by name or dotted path (``http.status``), looked up in the record, then in meta."""
    for obj in (record, meta):
        if path in obj:
            return obj[path]
        cur: Any = obj
        for part in path.split("."):
            if not isinstance(cur, dict) or part not in cur:
                cur = _MISSING
                break
            cur = cur[part]
        if cur is not _MISSING:
            return cur
    return None
