"""Damaged WAL bytes are copied aside before anything skips or removes them.

Each damaged span becomes two files in ``<wal dir>/quarantine/``: ``<segment>-<offset>.bad`` (the
raw bytes, exactly as they were in the segment: sealed when encryption is on) and, written after
it, ``<segment>-<offset>.json`` (where they came from and why they were set aside). A ``.bad``
without its ``.json`` is a copy that was interrupted; the next finder writes both again.
Counters (per process) feed ``/metrics`` and ``/readyz``.
"""

from __future__ import annotations

import logging
import threading
from datetime import UTC, datetime
from pathlib import Path

import orjson

from logharbor.durable import write_atomic
from logharbor.framing import BadSpan
from logharbor.types import JsonObject

__all__ = ["Quarantine", "quarantine_contents", "segment_name"]

log = logging.getLogger("logharbor.server.engine.wal")

SUFFIX = ".wal"


def segment_name(first_seq: int) -> str:
    return f"{first_seq:020d}{SUFFIX}"


def quarantine_contents(directory: Path) -> list[JsonObject]:
    """The sidecars in ``directory`` (each with ``file`` and ``complete``), oldest name first."""
    out: list[JsonObject] = []
    if not directory.is_dir():
        return out
    for bad in sorted(directory.glob("*.bad")):
        sidecar = bad.with_suffix(".json")
        try:
            info = orjson.loads(sidecar.read_bytes())
        except (OSError, orjson.JSONDecodeError):
            info = {"reason": "sidecar missing or unreadable (an interrupted copy)"}
            info["complete"] = False
        else:
            info["complete"] = True
        info["file"] = bad.name
        try:
            info["file_bytes"] = bad.stat().st_size
        except OSError:
            info["file_bytes"] = None
        out.append(info)
    return out


class Quarantine:
    """Copies damaged spans aside once each, and counts what this process found."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.corrupt_entries = 0  # damaged spans this process set aside (each held ≥ 1 entry)
        self.corrupt_bytes = 0
        self.torn_tails = 0
        self.torn_bytes = 0
        self.last: JsonObject | None = None
        self._seen: set[tuple[int, int]] = set()
        self._lock = threading.Lock()

    def keep(self, segment: int, span: BadSpan, data: bytes, *, version: int,
             found_by: str = "server") -> bool:
        """Copy ``data`` (the span's bytes) aside with its sidecar; True once both are durable."""
        with self._lock:
            if (segment, span.start) in self._seen:
                return True
        stem = f"{segment:020d}-{span.start:012d}"
        info: JsonObject = {
            "segment": segment_name(segment), "segment_first_seq": segment,
            "format": f"LHWAL0{version}", "offset": span.start, "size": span.size,
            "seq_first": span.seq_first, "seq_last": span.seq_last, "reason": span.reason,
            "found_at": datetime.now(UTC).isoformat(timespec="seconds"), "found_by": found_by,
        }
        sidecar = self.directory / f"{stem}.json"
        already = sidecar.exists()
        if not already:
            try:
                self.directory.mkdir(mode=0o700, exist_ok=True)
                write_atomic(self.directory / f"{stem}.bad", bytes(data), mode=0o600)
                write_atomic(sidecar, orjson.dumps(info, option=orjson.OPT_INDENT_2), mode=0o600)
            except OSError as exc:
                log.error("WAL damage in %s at offset %d (%d bytes) could NOT be copied to %s: %s; "
                          "the segment is kept until it can", segment_name(segment), span.start,
                          span.size, self.directory, exc)
                return False
        seqs = "unknown" if span.seq_first is None else (
            f"{span.seq_first}" if span.seq_first == span.seq_last
            else f"{span.seq_first}-{'?' if span.seq_last is None else span.seq_last}")
        log.error("WAL damage: %s offset %d, %d bytes (sequence numbers %s) skipped%s: %s; copy in %s",
                  segment_name(segment), span.start, span.size, seqs,
                  " (already quarantined)" if already else "", span.reason, sidecar.with_suffix(".bad"))
        with self._lock:
            if (segment, span.start) not in self._seen:
                self._seen.add((segment, span.start))
                if not already:  # counted once, by the process that set it aside
                    self.corrupt_entries += 1
                    self.corrupt_bytes += span.size
                    self.last = info
        return True

    def torn(self, segment: int, span: BadSpan, *, truncated: bool) -> None:
        """A torn tail (never acknowledged): logged with its size and counted, not copied."""
        with self._lock:
            if (segment, span.start) in self._seen:
                return
            self._seen.add((segment, span.start))
            self.torn_tails += 1
            self.torn_bytes += span.size
        log.warning("WAL: %s %d bytes of a torn tail at %s offset %d (%s; never acknowledged)",
                    "truncated" if truncated else "skipped", span.size, segment_name(segment),
                    span.start, span.reason)

    def files(self) -> int:
        """Damaged spans kept in the quarantine directory (from this run and earlier ones)."""
        try:
            return sum(1 for _ in self.directory.glob("*.bad"))
        except OSError:
            return 0

    def summary(self) -> JsonObject:
        return {"corrupt_entries": self.corrupt_entries, "corrupt_bytes": self.corrupt_bytes,
                "torn_tails": self.torn_tails, "torn_tail_bytes": self.torn_bytes,
                "quarantine_files": self.files(), "quarantine_dir": str(self.directory),
                "last": self.last}

    def forget(self, segment: int) -> None:
        """The segment is gone: a new one of the same name is new ground."""
        with self._lock:
            self._seen = {k for k in self._seen if k[0] != segment}

