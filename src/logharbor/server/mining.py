"""The one template miner of a server: it runs in the batcher thread, between the WAL and the store.

Ingest (in any worker process) stores each row with a *masked-template id*: a hash of the tenant,
the service and :func:`logharbor.patterns.template_of` of the message, written as the row's first
key (``rows.PATTERN_PREFIX``). The batcher is the only writer of the store, so it is where the
stateful Drain step runs (:class:`logharbor.patterns.Miner`): for each batch it finds the ids with a
byte search (no row is decoded), decodes one row of each id it has never seen to learn from it,
and rewrites the ids that the miner merged into an older cluster (most are their own cluster and
stay as they are).

State on disk, under ``<data_dir>/patterns/``: ``miner.json`` (a snapshot) and ``journal.ndjson``
(the changes since, one line per batch). A batch's changes are appended and fsync'd *before* its
intent is written and its rows inserted, so after a crash the replayed batch meets a miner that
knows every id in it and gets the very same ids (the insert is then deduplicated by its token as
before). The journal is folded into a new snapshot (temp file, fsync, rename) every
``compact_ops`` changes; a torn last journal line is dropped (its batch was never inserted).
"""

from __future__ import annotations

import base64
import binascii
import logging
import os
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import orjson

from logharbor.durable import write_atomic
from logharbor.patterns import Miner, template_of
from logharbor.sealing import Sealer, SealError
from logharbor.server.store.rows import PATTERN_PREFIX

__all__ = ["PatternMiner"]

log = logging.getLogger("logharbor.server.mining")

_ROW_START = b"\n" + PATTERN_PREFIX  # a newline then this: only ever the start of a row
_VERSION = 1
_SAMPLE_CHARS = 512  # the miner keeps one sample per cluster: its head is enough


class _Damaged(Exception):
    """The snapshot or the journal cannot be read back (the message names the file)."""


class PatternMiner:
    """A :class:`Miner` with its journal and snapshot, and the per-batch rewrite of store rows."""

    def __init__(self, directory: str | os.PathLike[str], *, max_clusters: int = 500,
                 max_sids: int = 5_000, max_services: int = 100, similarity: float = 0.6,
                 compact_ops: int = 20_000, sealer: Sealer | None = None) -> None:
        self.directory = Path(directory)
        #: encryption at rest: journal lines and the snapshot hold service names and samples
        self.sealer = sealer
        self._miner_args = {"similarity": similarity, "max_clusters": max_clusters,
                            "max_sids": max_sids, "max_services": max_services}
        self.miner = Miner(**self._miner_args)  # type: ignore[arg-type]
        self.compact_ops = compact_ops
        self.generation = 0  # the journal generation; a snapshot names the one it includes
        self._journal_ops = 0
        self._pending: list[list[object]] = []
        self._journal: Any = None

    @property
    def snapshot_path(self) -> Path:
        return self.directory / "miner.json"

    @property
    def journal_path(self) -> Path:
        return self.directory / "journal.ndjson"

    # -- state -------------------------------------------------------------------------------

    def load(self) -> list[dict[str, Any]]:
        """Read the snapshot and the journal; the template rows of clusters changed since the
        snapshot (to insert again: the batch that made them may have died before it could).

        A torn last journal line (a crash mid-write) is cut. Other damage (a snapshot that does
        not parse, a bad line with whole lines after it) is logged with the file's name and the
        state is moved aside to ``damaged-<time>/``: the patterns start afresh. That is safe:
        records do not depend on it, only which pattern id new records get.
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
                      "(stored records are not affected; new records may get new pattern ids)",
                      exc, aside)
            self.miner = Miner(**self._miner_args)
            self.generation = 0
            self._journal_ops = 0
            return self._load()

    def _load(self) -> list[dict[str, Any]]:
        snap_gen = 0
        try:
            raw_snap = self.snapshot_path.read_bytes()
        except FileNotFoundError:
            raw_snap = None
        if raw_snap is not None:
            try:
                data = orjson.loads(self._open(raw_snap))
                snap_gen = int(data["generation"])
                for op in data["ops"]:
                    self.miner.apply(op)
            except (orjson.JSONDecodeError, SealError, KeyError, IndexError, TypeError, ValueError) as exc:
                raise _Damaged(f"the pattern snapshot {self.snapshot_path} is damaged "
                               f"({len(raw_snap)} bytes: {exc!r})") from None
        self.generation = snap_gen
        changed: dict[tuple[str, str, str], None] = {}
        try:
            raw = self.journal_path.read_bytes()
        except FileNotFoundError:
            raw = b""
        lines = raw.split(b"\n")
        offset = 0
        cut: int | None = None
        for number, line in enumerate(lines, 1):
            start, offset = offset, offset + len(line) + 1
            if not line.strip():
                continue
            try:
                entry = orjson.loads(self._open(base64.b64decode(line, validate=True))
                                     if self.sealer is not None else line)
                gen = int(entry["g"])
                ops = entry["ops"]
            except (orjson.JSONDecodeError, binascii.Error, SealError, KeyError, TypeError, ValueError):
                if any(rest.strip() for rest in lines[number:]):
                    raise _Damaged(f"the pattern journal {self.journal_path} is damaged at byte {start} "
                                   f"(line {number}), with whole lines after it") from None
                log.warning("dropping a torn last line of the pattern journal (%d bytes)", len(raw) - start)
                cut = start
                break
            if gen <= snap_gen:
                continue  # folded into the snapshot already (a crash between rename and truncate)
            self.generation = max(self.generation, gen)
            try:
                for op in ops:
                    self.miner.apply(op)
                    self._journal_ops += 1
                    if op[0] == "c":
                        changed[(str(op[1]), str(op[2]), str(op[3]))] = None
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                raise _Damaged(f"the pattern journal {self.journal_path} has a change that does not "
                               f"apply at byte {start} (line {number}): {exc!r}") from None
        if cut is not None:
            os.truncate(self.journal_path, cut)
        # kept open, unbuffered (commit writes whole lines itself); closed in close()
        self._journal = open(self.journal_path, "ab", buffering=0)
        if cut is None and raw and not raw.endswith(b"\n"):  # a whole last entry lost its newline
            self._journal.write(b"\n")
        now = int(time.time() * 1000)
        rows = []
        for tenant, service, cluster in self.miner.clusters():
            if (tenant, service, cluster.id) in changed:
                rows.append(self._template_row(tenant, service, cluster.id, cluster.template,
                                               cluster.first_ts, cluster.sample, now))
        return rows

    def _open(self, blob: bytes) -> bytes:
        return self.sealer.open(blob) if self.sealer is not None else blob

    def close(self) -> None:
        if self._journal is not None:
            self._journal.close()
            self._journal = None

    def commit(self) -> None:
        """Make the changes of the batch being prepared durable (before its intent and insert)."""
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
        """Forget what erased records taught (delete-by-query): a cluster in ``samples`` whose value
        is None lost every record and is dropped; the others take the given sample (a remaining
        record's message). The snapshot is then rewritten and the journal emptied, so no earlier
        sample stays on disk. Call between batches (nothing pending). Returns clusters changed."""
        changed = 0
        for tenant, service, cluster in list(self.miner.clusters()):
            if cluster.id not in samples:
                continue
            new = samples[cluster.id]
            if new is None:
                evictions = self.miner.evictions
                self.miner.apply(["e", tenant, service, cluster.id])
                self.miner.evictions = evictions  # an erasure is not an eviction
            else:
                cluster.sample = str(new)[:_SAMPLE_CHARS]
            changed += 1
        if samples and self._journal is not None:
            # even when no live cluster changed: the journal may still hold the sample of a
            # cluster evicted since (its creation op is there until the next snapshot)
            self.compact()
        return changed

    # -- batches -----------------------------------------------------------------------------

    def process(self, payload: bytes) -> tuple[bytes, list[dict[str, Any]]]:
        """Rows of one WAL entry with merged ids rewritten, and the template rows of clusters
        this entry created or generalized. Call :meth:`commit` before inserting them."""
        data = b"\n" + payload
        parts = data.split(_ROW_START)  # every part after the first is one row, its id first
        if len(parts) == 1:
            return payload, []
        heads = [part[:16] for part in parts[1:]]
        resolve = self.miner.resolve
        renames: dict[bytes, bytes] = {}
        templates: list[dict[str, Any]] = []
        where: dict[bytes, int] | None = None  # sid → its first row, built when one is new
        for raw_sid in dict.fromkeys(heads):  # first-seen order: the same learning every run
            sid = raw_sid.decode()
            cid = resolve(sid)
            if cid is None:
                if where is None:
                    where = {}
                    for i, head in enumerate(heads):
                        where.setdefault(head, i)
                cid = self._learn(parts[where[raw_sid] + 1], raw_sid, templates)
            if cid is not None and cid != sid:
                renames[raw_sid] = cid.encode()
        if not renames:
            return payload, templates
        parts[1:] = [renames[h] + part[16:] if h in renames else part
                     for h, part in zip(heads, parts[1:], strict=True)]
        return _ROW_START.join(parts)[1:], templates

    def _learn(self, part: bytes, raw_sid: bytes, templates: list[dict[str, Any]]) -> str | None:
        """Learn from the row ``part`` (its text after the row start): its sid was never seen."""
        try:
            row = orjson.loads(_ROW_START[1:] + part.split(b"\n", 1)[0])  # a row with no id may follow
        except orjson.JSONDecodeError:
            return None
        tenant, service = row.get("tenant") or "", row.get("service") or ""
        message = row.get("message") or ""
        sample = message[:_SAMPLE_CHARS]
        cid, ops = self.miner.learn(tenant, service, raw_sid.decode(), template_of(message).split(),
                                    ts=str(row.get("timestamp") or ""), sample=sample)
        self._pending.extend(ops)
        now = int(time.time() * 1000)
        for op in ops:
            if op[0] == "c":
                templates.append(self._template_row(str(op[1]), str(op[2]), str(op[3]), str(op[4]),
                                                    str(op[5]), str(op[6]), now))
        return cid

    @staticmethod
    def _template_row(tenant: str, service: str, cid: str, template: str, ts: str, sample: str,
                      now_ms: int) -> dict[str, Any]:
        return {"tenant": tenant, "service": service, "pattern_id": cid, "template": template,
                "updated": now_ms, "timestamp": ts or "0", "sample": sample}

    def stats(self) -> dict[str, int]:
        """Services, clusters, sids and evictions, and the journal's pending size."""
        return {**self.miner.counts(), "journal_ops": self._journal_ops}

    def gauges(self) -> dict[str, float]:
        """For /metrics, from another thread: ``len`` of a dict is safe while the batcher writes."""
        services = list(self.miner.services.values())  # a copy: the batcher may add one meanwhile
        return {"logharbor_pattern_services": float(len(services)),
                "logharbor_pattern_clusters": float(sum(len(s.clusters) for s in services)),
                "logharbor_pattern_evictions": float(self.miner.evictions)}
