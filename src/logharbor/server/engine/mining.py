"""The one template miner of a server: it runs in the batcher thread, between the WAL and the store.

Ingest (in any worker process) stores each row with its *masked-template id* (sid): a hash of the
tenant, the service and :func:`logharbor.patterns.template_of` of the message, written as the
row's first key (``rows.PATTERN_PREFIX``). That id depends on the message alone, so a row is
stored the same whatever came before it. The batcher is where the stateful step runs
(:class:`logharbor.miner.Miner`): for each batch it finds the ids with a byte search (no row is
decoded), decodes one row of each id it has never seen to learn from it, and writes the
*assignments* that changed — (stored id → group id, group template) — to the patterns table
before the rows, which are inserted unchanged. Readers resolve a stored id to its group through
the patterns table (``| patterns``, ``pattern_id:``, records), so a group that forms or
generalizes later takes in the rows stored before it (docs/patterns.md).

State on disk, under ``<data_dir>/patterns/``: ``miner.json`` (a snapshot) and ``journal.ndjson``
(the masked templates added and dropped since, one line per batch). A batch's changes are appended
and fsync'd before its assignments and rows are written; the groups themselves are recomputed
from the set on load, so a crash anywhere replays to the same groups. The journal is folded into a
new snapshot (temp file, fsync, rename) every ``compact_ops`` changes; a torn last journal line is
dropped. State written by the first release (version 1: clusters with ids fixed at creation) is
not replayed: its ids are adopted from the patterns table instead (server/features/patterns/upkeep.py).
A snapshot of a later version, or a journal change of a kind neither version knows, was written by
a newer release: the start is refused (:class:`~logharbor.formatversion.NewerFormat`) before
anything is moved aside, cut or compacted.
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from logharbor.durable import write_atomic
from logharbor.formatversion import NewerFormat
from logharbor.miner import Miner, Row
from logharbor.patterns import pattern_id, pattern_key, template_of
from logharbor.sealing import Sealer, SealError
from logharbor.server.engine.store.rows import PATTERN_PREFIX
from logharbor.types import StoreRow

__all__ = ["PatternMiner"]

log = logging.getLogger("logharbor.server.engine.mining")

_ROW_START = b"\n" + PATTERN_PREFIX  # a newline then this: only ever the start of a row
#: a row's id: the bytes after its row start, up to 16 (the length of every id), never past its row
_SID_AT_ROW = re.compile(re.escape(_ROW_START) + rb"([^\n]{0,16})")
_VERSION = 2
_SAMPLE_CHARS = 256  # the miner keeps one sample per masked template: its head is enough
_OPS = frozenset("adlLE")  # the op kinds of version 2
_FIRST_RELEASE_OPS = frozenset("cse")  # version 1's


class _Damaged(Exception):
    """The snapshot or the journal cannot be read back (the message names the file)."""


class PatternMiner:
    """A :class:`Miner` with its journal and snapshot, and the per-batch learning from store rows."""

    def __init__(self, directory: str | os.PathLike[str], *, max_sids: int = 2_000,
                 max_services: int = 100, compact_ops: int = 20_000, sealer: Sealer | None = None) -> None:
        self.directory = Path(directory)
        #: encryption at rest: journal lines and the snapshot hold service names and samples
        self.sealer = sealer
        self._miner_args = {"max_sids": max_sids, "max_services": max_services}
        self.miner = Miner(**self._miner_args)
        self.compact_ops = compact_ops
        self.generation = 0  # the journal generation; a snapshot names the one it includes
        self._journal_ops = 0
        self._pending: list[list[object]] = []
        self._journal: Any = None
        #: assignments changed outside a batch (a scrub): the batcher writes them with the next one
        self.loose_rows: list[StoreRow] = []
        #: state of the first release was found (and set aside): its ids need adopting
        self.legacy = False
        #: journal lines skipped at load as damaged (``logharbor_pattern_journal_damaged_lines``)
        self.damaged_lines = 0

    @property
    def snapshot_path(self) -> Path:
        return self.directory / "miner.json"

    @property
    def journal_path(self) -> Path:
        return self.directory / "journal.ndjson"

    # -- state -------------------------------------------------------------------------------

    def load(self) -> list[StoreRow]:
        """Read the snapshot and the journal; the assignment rows of what changed since the snapshot
        (to write again: the batch that made them may have died before it could).

        A torn last journal line (a crash mid-write) is cut. A damaged line with whole lines after
        it (a bad disk block, an edit) is skipped, counted (:attr:`damaged_lines`), copied to
        ``damaged-<time>/journal-lines.ndjson`` and logged with its line and byte; the lines after
        it are replayed, and the state is folded into a new snapshot so the damage is read once.
        What the skipped line added is learned again when its messages come back (a masked
        template the miner does not know is learned from its next row). A snapshot that does not
        parse is logged with the file's name and the state is moved aside to ``damaged-<time>/``:
        the patterns start afresh. That is safe: stored records do not depend on it, and the groups
        are learned again from new records (ids of groups are ids of templates: the same groups get
        the same ids).
        """
        self.directory.mkdir(parents=True, exist_ok=True)
        try:
            return self._load()
        except _Damaged as exc:
            aside = self.directory / f"damaged-{time.strftime('%Y%m%dT%H%M%S')}"
            aside.mkdir(exist_ok=True)
            for path in (self.snapshot_path, self.journal_path):
                if path.exists():
                    os.replace(path, aside / path.name)
            log.error("%s. The pattern state was moved to %s and patterns are learned afresh "
                      "(stored records are not affected)", exc, aside)
            self.miner = Miner(**self._miner_args)
            self.generation = 0
            self._journal_ops = 0
            self._pending = []
            return self._load()

    def _load(self) -> list[StoreRow]:
        snap_gen = 0
        try:
            raw_snap = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            raw_snap = None
        if raw_snap is not None:
            try:
                data = orjson.loads(self._open(raw_snap))
                self._refuse_newer_snapshot(data)
                if int(data.get("version", 1)) < _VERSION:
                    data = None
                else:
                    snap_gen = int(data["generation"])
                    for op in data["ops"]:
                        self.miner.apply(op)
                    self.miner.regroup()  # the snapshot's groups were written when they were made
            except (orjson.JSONDecodeError, SealError, KeyError, IndexError, TypeError, ValueError) as exc:
                raise _Damaged(f"the pattern snapshot {self.snapshot_path} is damaged "
                               f"({len(raw_snap)} bytes: {exc!r})") from None
            if data is None:
                self._set_aside()  # the first release's state: not replayed
        self.generation = snap_gen
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            raw = b""
        lines = raw.split(b"\n")
        offset = 0
        cut: int | None = None
        damaged: list[tuple[int, int, bytes, str]] = []  # (line, byte, the line, why)
        for number, line in enumerate(lines, 1):
            start, offset = offset, offset + len(line) + 1
            if not line.strip():
                continue
            try:
                entry = orjson.loads(self._open(base64.b64decode(line, validate=True))
                                     if self.sealer is not None else line)
                gen = int(entry["g"])
                ops = entry["ops"]
                if not isinstance(ops, list):
                    raise TypeError(f"ops is {type(ops).__name__}, not a list")
            except (orjson.JSONDecodeError, binascii.Error, SealError, KeyError, TypeError,
                    ValueError) as exc:
                if any(rest.strip() for rest in lines[number:]):
                    damaged.append((number, start, line, f"unreadable: {exc!r}"))
                    continue  # the lines after it are whole: keep them
                log.warning("dropping a torn last line of the pattern journal (%d bytes)", len(raw) - start)
                cut = start
                break
            if gen <= snap_gen:
                continue  # folded into the snapshot already (a crash between rename and truncate)
            self._refuse_newer_ops(ops, number)
            self.generation = max(self.generation, gen)
            try:
                for op in ops:
                    if isinstance(op, list) and op and op[0] in _OPS:
                        self.miner.apply(op)
                        self._journal_ops += 1
                    else:
                        self.legacy = True  # a line of the first release: not replayed
            except (KeyError, IndexError, TypeError, ValueError, AttributeError) as exc:
                # the ops before it are applied: each is a whole change of the set (add, drop, alias)
                damaged.append((number, start, line, f"a change that does not apply: {exc!r}"))
        if cut is not None:
            os.truncate(self.journal_path, cut)
        # kept open, unbuffered (commit writes whole lines itself); closed in close()
        self._journal = open(self.journal_path, "ab", buffering=0)
        if cut is None and raw and not raw.endswith(b"\n"):  # a whole last entry lost its newline
            self._journal.write(b"\n")
        ops, rows = self.miner.regroup()
        if damaged:
            self._skip_damaged(damaged)
        self._pending.extend(ops)  # aliases of group ids that the replay saw go: with the next batch
        now = int(time.time() * 1000)
        return [_row(r, now) for r in rows]

    def check_version(self) -> None:
        """Refuse state of a newer release (:class:`NewerFormat`); read-only. What does not parse
        is left to :meth:`load` (damage, handled there)."""
        try:
            raw = self.snapshot_path.read_bytes()
            self._refuse_newer_snapshot(orjson.loads(self._open(raw)))
        except (OSError, orjson.JSONDecodeError, SealError, ValueError, AttributeError):
            pass
        try:
            lines = self.journal_path.read_bytes().split(b"\n")
        except OSError:
            return
        for number, line in enumerate(lines, 1):
            try:
                entry = orjson.loads(self._open(base64.b64decode(line, validate=True))
                                     if self.sealer is not None else line)
                ops = entry["ops"]
            except (orjson.JSONDecodeError, binascii.Error, SealError, KeyError, TypeError, ValueError):
                continue
            if isinstance(ops, list):
                self._refuse_newer_ops(ops, number)

    def _refuse_newer_snapshot(self, data: Any) -> None:
        version = data.get("version", 1) if isinstance(data, dict) else None
        if type(version) is int and version > _VERSION:
            raise NewerFormat(self.snapshot_path, "the pattern miner's snapshot", version,
                              range(1, _VERSION + 1), self._aside_advice())

    def _refuse_newer_ops(self, ops: list[Any], number: int) -> None:
        known = _OPS | _FIRST_RELEASE_OPS
        kind = next((op[0] for op in ops if isinstance(op, list) and op and isinstance(op[0], str)
                     and op[0] not in known), None)
        if kind is not None:
            raise NewerFormat(self.journal_path, f"the pattern miner's journal (line {number}: a change "
                              f"of kind {kind!r})", f"above {_VERSION}", range(1, _VERSION + 1),
                              self._aside_advice())

    def _aside_advice(self) -> str:
        return (f"or, to start this release anyway, move {self.directory} aside (patterns are then "
                "learned afresh; stored records do not depend on them)")

    def _skip_damaged(self, damaged: list[tuple[int, int, bytes, str]]) -> None:
        """Count and log the journal lines that were skipped, keep a copy of them, and fold the
        state read into a new snapshot (the damaged lines are then read once, not at every start)."""
        self.damaged_lines += len(damaged)
        aside = self.directory / f"damaged-{time.strftime('%Y%m%dT%H%M%S')}"
        aside.mkdir(exist_ok=True)
        with open(aside / "journal-lines.ndjson", "ab") as fh:  # sealed lines stay sealed
            fh.write(b"".join(line + b"\n" for _, _, line, _ in damaged))
            fh.flush()
            os.fsync(fh.fileno())
        for number, start, line, why in damaged:
            log.error("the pattern journal %s is damaged at line %d (byte %d, %d bytes): %s; the line "
                      "is skipped (copied to %s) and the lines after it are kept", self.journal_path,
                      number, start, len(line), why, aside)
        self.compact()

    def _set_aside(self) -> None:
        """Move the first release's state out of the way (kept, not read again)."""
        self.legacy = True
        aside = self.directory / "v1"
        aside.mkdir(exist_ok=True)
        for path in (self.snapshot_path, self.journal_path):
            if path.exists():
                os.replace(path, aside / path.name)
        log.warning("pattern state of the first release moved to %s; its ids are adopted from the "
                    "patterns table", aside)

    def _open(self, blob: bytes) -> bytes:
        return self.sealer.open(blob) if self.sealer is not None else blob

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def commit(self) -> None:
        """Make the changes of the batch being prepared durable (before its rows are written)."""
        if not self._pending:
            return
        self.generation += 1
        line = orjson.dumps({"g": self.generation, "ops": self._pending})
        if self.sealer is not None:
            line = base64.b64encode(self.sealer.seal(line))  # one line per entry, sealed or not
        line += b"\n"
        fd = self._journal.fileno()
        end = os.lseek(fd, 0, os.SEEK_END)
        try:
            view = memoryview(line)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        except OSError:
            # a full disk: cut what was half written, so the journal stays whole lines and the
            # same changes are written again by the retry (the batch is not inserted before)
            self.generation -= 1
            try:
                os.ftruncate(fd, end)
            except OSError:
                log.exception("could not cut a half-written line of %s", self.journal_path)
            raise
        self._journal_ops += len(self._pending)
        self._pending = []

    def maybe_compact(self) -> bool:
        """Fold the journal into a new snapshot once it holds ``compact_ops`` changes."""
        if self._journal_ops < self.compact_ops or self._pending:
            return False
        self.compact()
        return True

    def compact(self) -> None:
        body = orjson.dumps({"version": _VERSION, "generation": self.generation,
                             "ops": self.miner.snapshot()})
        write_atomic(self.snapshot_path, self.sealer.seal(body) if self.sealer is not None else body)
        self._journal.close()
        self._journal = open(self.journal_path, "wb", buffering=0)  # truncated: all in the snapshot
        os.fsync(self._journal.fileno())
        self._journal_ops = 0

    def scrub(self, samples: Mapping[str, str | None]) -> int:
        """Forget what erased records taught (delete-by-query): a stored id in ``samples`` whose
        value is None lost every record and is dropped (its group may change: the new assignments
        wait in :attr:`loose_rows`); the others take the given sample (a remaining record's
        message). The snapshot is then rewritten and the journal emptied, so no earlier sample stays
        on disk. Call between batches (nothing pending). Returns the masked templates changed."""
        changed = 0
        now = int(time.time() * 1000)
        for tenant, service, member in list(self.miner.members()):
            if member.sid not in samples:
                continue
            new = samples[member.sid]
            if new is None:
                self._pending.extend(self.miner.forget(tenant, service, member.sid))
            else:
                member.sample = str(new)[:_SAMPLE_CHARS]
            changed += 1
        ops, rows = self.miner.regroup()
        self._pending.extend(ops)
        self.loose_rows.extend(_row(r, now) for r in rows)
        self._pending = []  # folded into the snapshot just below
        if samples and self._journal is not None:
            # even when no live template changed: the journal may still hold the sample of a
            # template evicted since (its addition op is there until the next snapshot)
            self.compact()
        return changed

    def adopt(self, tenant: str, service: str, stored_id: str, message: str, ts: str = ""
              ) -> list[StoreRow]:
        """Learn the message of a stored id from an earlier release and make that id follow its
        group (an alias when the id is not the message's masked-template id any more); the
        assignment rows to write. Call between batches; :meth:`commit` makes it durable."""
        template = template_of(message)
        sid = pattern_id(pattern_key(tenant, service), template)
        self._pending.extend(self.miner.add(tenant, service, sid, template.split(), ts=ts,
                                            sample=message[:_SAMPLE_CHARS]))
        if stored_id != sid:
            self._pending.extend(self.miner.alias(tenant, service, stored_id, sid))
        ops, rows = self.miner.regroup()
        self._pending.extend(ops)
        if not any(r[2] == stored_id for r in rows):  # assigned already: say so again, for this id
            member = self.miner.member(tenant, service, sid)
            if member is not None:
                rows.append((tenant, service, stored_id, member.gid, member.template, member.first_ts,
                             member.sample))
        now = int(time.time() * 1000)
        return [_row(r, now) for r in rows]

    # -- batches -----------------------------------------------------------------------------

    def process(self, payload: bytes) -> tuple[bytes, list[StoreRow]]:
        """The rows of one WAL entry (unchanged) and the assignment rows of the masked templates
        this entry added (and of those whose group that changed). Call :meth:`commit` before
        writing either.

        One regex pass takes each row's id (the 16 bytes after its row start) without copying
        the rows: a split at the row starts made a copy of every row, ~1 µs a row on the
        batcher's thread (bench/README.md, the parent's per-record work)."""
        data = b"\n" + payload
        heads = _SID_AT_ROW.findall(data)
        if not heads:
            return payload, []
        resolve = self.miner.resolve
        learned = False
        for raw_sid in dict.fromkeys(heads):
            if resolve(raw_sid.decode()) is None:
                self._add(_first_row_of(data, raw_sid), raw_sid)
                learned = True
        if not learned:
            return payload, []
        ops, changed = self.miner.regroup()  # once per entry: the groups depend on the set only
        self._pending.extend(ops)
        now = int(time.time() * 1000)
        return payload, [_row(r, now) for r in changed]

    def _add(self, line: bytes, raw_sid: bytes) -> None:
        """Learn from the row ``line`` (one whole row): its sid was never seen."""
        try:
            row = orjson.loads(line)
        except orjson.JSONDecodeError:
            return
        tenant, service = row.get("tenant") or "", row.get("service") or ""
        message = row.get("message") or ""
        self._pending.extend(self.miner.add(tenant, service, raw_sid.decode(), template_of(message).split(),
                                            ts=str(row.get("timestamp") or ""),
                                            sample=message[:_SAMPLE_CHARS]))

    def stats(self) -> dict[str, int]:
        """Services, groups, masked templates, aliases and evictions, and the journal's size."""
        return {**self.miner.counts(), "journal_ops": self._journal_ops}

    def gauges(self) -> dict[str, float]:
        """For /metrics, from another thread: ``len`` of a dict is safe while the batcher writes."""
        services = list(self.miner.services.values())  # a copy: the batcher may add one meanwhile
        return {"logharbor_pattern_services": float(len(services)),
                "logharbor_pattern_clusters": float(sum(len(s.groups) for s in services)),
                "logharbor_pattern_templates": float(sum(len(s.members) for s in services)),
                "logharbor_pattern_evictions": float(self.miner.evictions),
                "logharbor_pattern_journal_damaged_lines": float(self.damaged_lines)}


def _first_row_of(data: bytes, raw_sid: bytes) -> bytes:
    """The first row of ``data`` (``\\n`` + an entry's rows) whose id starts with ``raw_sid``."""
    for match in _SID_AT_ROW.finditer(data):
        if match.group(1) == raw_sid:
            end = data.find(b"\n", match.end())
            return data[match.start() + 1:end if end >= 0 else len(data)]
    raise AssertionError("a head found by findall is found again by finditer")


def _row(r: Row, now_ms: int) -> StoreRow:
    tenant, service, stored_id, gid, template, ts, sample = r
    return {"tenant": tenant, "service": service, "pattern_id": stored_id, "group_id": gid,
            "template": template, "updated": now_ms, "timestamp": ts or "0000000000.000000000",
            "sample": sample}
