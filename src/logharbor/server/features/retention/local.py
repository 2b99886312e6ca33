"""A server's own copies of what a delete-by-query erases: its WAL, quarantine and template miner.

These live in one server's data directory, beside the store:

- **the WAL.** Before the store is touched, :meth:`LocalState.flush` rolls the WAL (every record
  acknowledged so far is then in a sealed segment) and waits until the batcher has stored all of
  it, so a record still in flight is erased with the rest instead of arriving after the delete.
  After the erasure, :meth:`LocalState.release` drops every segment from before that barrier;
  what ingest acknowledges after it is new data, which the delete does not cover.
- **the quarantine** (``<wal>/quarantine/*.bad``): damaged WAL bytes copied aside, never stored;
  and the rows the store refused (``quarantine/refused/*.ndjson``, engine/refused.py), which the
  engine cannot read, so they are matched by the filter's values as text.
  Each line that parses as a record is checked against the delete's filter by the engine (read
  exactly, an integer beyond 64 bits too, and a row of an older release's layout turned into
  today's, store/attrmigrate.py ``upgrade_rows``); a line that does not parse is removed when it
  holds one of the filter's values. What remains
  unreadable is counted (``unreadable_lines``); with encryption at rest the copies are sealed and
  hold nothing in the clear.
- **the miner** (``patterns/miner.json`` and ``journal.ndjson``): samples and clusters are fixed
  in the batcher thread, then the snapshot is rewritten and the journal emptied.
"""

# SQL here: the structure is built from the logs table's own columns; values are parameters.
from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from logharbor import exactjson
from logharbor.durable import write_atomic
from logharbor.sealing import Sealer
from logharbor.server.engine.store.attrmigrate import upgrade_rows
from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.sql.retention import quarantine_match_sql
from logharbor.server.features.retention.redact import Redactor

__all__ = ["LocalState", "scrub_quarantine"]

log = logging.getLogger("logharbor.retention")
_LINE = "__lh_line"


class LocalState:
    """The WAL and batcher of this server, as a delete-by-query needs them."""

    def __init__(self, wal: Any, batcher: Any) -> None:
        self.wal = wal
        self.batcher = batcher

    @property
    def quarantine_dir(self) -> Path:
        return Path(self.wal.quarantine_dir)

    def flush(self, timeout_s: float) -> list[int]:
        """Roll the WAL and wait until everything before the roll is stored; the barrier position."""
        if self.batcher.paused:
            raise RuntimeError("the batcher is paused: records acknowledged before the delete cannot be "
                               "stored (and so erased) until it runs")
        self.wal.roll()
        barrier = self.wal.durable  # the start of the segment the roll opened: everything before it
        self.batcher.flush_to(barrier)
        deadline = time.monotonic() + timeout_s
        while not self._stored(barrier):
            if time.monotonic() > deadline:
                raise TimeoutError("the batcher did not store the WAL up to the delete within "
                                   f"{timeout_s:.0f} s ({self.batcher.last_error or 'no error reported'})")
            time.sleep(0.05)
        return [barrier.segment, barrier.offset]

    def _stored(self, barrier: Any) -> bool:
        progress = self.batcher.progress
        return progress.intent is None and progress.done_pos >= barrier

    def release(self, barrier: list[int]) -> list[int]:
        """Drop the WAL segments from before the barrier (all stored by then); the ones still there."""
        self.wal.release(self.batcher.progress.done_pos)
        left = [s for s in self.wal.iter_segments() if s < barrier[0]]
        if left:  # the batcher may not have released yet: roll deletes whatever is released
            self.wal.roll()
            left = [s for s in self.wal.iter_segments() if s < barrier[0]]
        return left

    def scrub_patterns(self, samples: Mapping[str, str | None]) -> int:
        return int(self.batcher.scrub_patterns(samples))


def scrub_quarantine(directory: Path, store: Store, columns: list[tuple[str, str]], cond: str,
                     params: Mapping[str, Any], redactor: Redactor, sealer: Sealer | None = None
                     ) -> dict[str, int]:
    """Remove from every quarantined copy the lines holding an erased record (see module doc).

    Refused-rows files are sealed when encryption at rest is on: they are opened with ``sealer``
    and sealed again (read as ciphertext, an erased record stayed in them, and a requeue brought it
    back into the store)."""
    figures = {"files": 0, "lines_removed": 0, "unreadable_lines": 0}
    if not directory.is_dir():
        return figures
    structure = ", ".join(f"{name} {sql_type}" for name, sql_type in columns) + f", {_LINE} UInt32"
    needles = [n.lower().encode() for n in redactor.needles]
    needles += [orjson.dumps(n)[1:-1].lower() for n in redactor.needles]  # as JSON writes them
    # damaged WAL bytes, and the rows the store refused (engine/refused.py: refused-*, requeued-*)
    copies = sorted(directory.glob("*.bad")) + sorted((directory / "refused").glob("*.ndjson"))
    for bad in copies:
        figures["files"] += 1
        data = bad.read_bytes()
        sealed = bad.suffix == ".ndjson" and bool(data) and not data.startswith(b"{")
        if sealed:
            if sealer is None:
                log.error("delete: %s is sealed and no key was given: it may still hold erased records",
                          bad)
                figures["unreadable_lines"] += 1
                continue
            data = sealer.open(data)
        lines = data.split(b"\n")
        parsed: dict[int, dict[str, Any]] = {}
        for i, line in enumerate(lines):
            start = line.find(b'{"')
            if start < 0:
                continue
            try:  # exact (an int beyond 64 bits), and a row an older release wrote in today's layout
                row = exactjson.loads(upgrade_rows(line[start:]))
            except ValueError:  # ExactJSONError, and bad UTF-8
                continue
            if isinstance(row, dict):
                parsed[i] = row
        matched = _matching_lines(store, structure, parsed, cond, params, redactor)
        kept: list[bytes] = []
        removed = 0
        for i, line in enumerate(lines):
            lower = line.lower()
            if (matched is not None and i in matched) or (needles and any(n in lower for n in needles)):
                removed += 1
                continue
            if (matched is None or i not in parsed) and line.strip():
                figures["unreadable_lines"] += 1  # checked by text only
            kept.append(line)
        if removed:
            kept_bytes = b"\n".join(kept)
            write_atomic(bad, sealer.seal(kept_bytes) if sealed and sealer is not None else kept_bytes,
                         mode=0o600)
            _note(bad.with_suffix(".json"), removed)
            figures["lines_removed"] += removed
    return figures


def _matching_lines(store: Store, structure: str, parsed: dict[int, dict[str, Any]], cond: str,
                    params: Mapping[str, Any], redactor: Redactor) -> set[int] | None:
    """The parsed lines the engine finds matching ``cond``; None when it cannot read them."""
    if not parsed:
        return set()
    lines = [exactjson.dumps({**row, _LINE: i}) for i, row in parsed.items()]
    # pieces of at most the store's limit for rows in one parameter (a longer line alone), as the
    # live tail's rounds; through ClickHouse run_on_rows sends each as external data anyway
    pieces: list[list[bytes]] = [[]]
    size, limit = 0, store.rows_batch_limit
    for line in lines:
        if limit is not None and pieces[-1] and size + len(line) + 1 > limit:
            pieces.append([])
            size = 0
        pieces[-1].append(line)
        size += len(line) + 1
    found: set[int] = set()
    sql = quarantine_match_sql(cond, line_column=_LINE)
    for piece in pieces:
        try:
            body = b"\n".join(piece).decode("utf-8", "replace")
            found.update(int(r["i"]) for r in store.run_on_rows(
                sql, {**params, "tail_structure": structure, "tail_rows": body}))
        except (StoreError, ValueError) as exc:
            log.warning("delete: the engine could not read %d quarantined lines (%s); they are matched by "
                        "the filter's values as text only", len(parsed), redactor.text(str(exc))[:300])
            return None
    return found


def _note(sidecar: Path, removed: int) -> None:
    """Record in the copy's sidecar that a delete removed lines from it (the offsets no longer fit)."""
    try:
        info = orjson.loads(sidecar.read_bytes())
    except (OSError, orjson.JSONDecodeError):
        return
    info.setdefault("scrubbed", []).append({"at": datetime.now(UTC).isoformat(timespec="seconds"),
                                            "lines_removed": removed, "by": "delete-by-query"})
    write_atomic(sidecar, orjson.dumps(info, option=orjson.OPT_INDENT_2), mode=0o600)
