"""Delete by query (GDPR erasure, a leaked secret): one job per request, applied physically everywhere.

A job is written to ``retention_deletes`` before it runs and runs in a thread. Its steps, each
recorded in the job's progress as it ends (a restart resumes at the first step not done; every
step is idempotent):

1. ``flush``: the WAL is rolled and the batcher stores everything acknowledged before the delete
   (:mod:`.local`), so no record in flight arrives after the erasure;
2. ``select``: the pattern ids of the matches are noted (ids only, no values);
3. ``hot``, ``warm``: the partitions holding a match are rewritten without it (:mod:`.erase`:
   masked copies go too, and the engine's mutation text names a set of row hashes, never a
   value); ``cold``: each Parquet file holding a match is rewritten without it or removed,
   staged copies a crash left are removed, and a versioned bucket's older versions too;
4. ``patterns``: patterns whose records are all gone are dropped, the others take a remaining
   record's message as their sample, in the patterns table and in the miner (snapshot rewritten,
   journal emptied);
5. ``wal``: the WAL segments from before the flush are deleted; ``quarantine``: lines of
   damaged-WAL copies holding a match are removed;
6. ``purge``: the job waits (bounded) until the engine has removed the parts the rewrite
   replaced;
7. ``metadata``: alert state, history, notifications, the audit log and older jobs have the
   filter's values and the erased messages replaced by ``[deleted]`` (:mod:`.scrub`); last, so an
   alert evaluation that read the records before the erasure has written its state by then.
   Then ``done``.

The mover's lock is held through steps 2–4, so no move copies a record half-way through. While a
job runs its filter is stored as given (a restart needs it); when it ends only the filter's shape
is kept (``user_id:…``), in the job and in the audit log (:mod:`.redact`).
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from sqlalchemy import insert, select, update

from logharbor.server.engine.store.erase import Eraser
from logharbor.server.features.query import compile_filter
from logharbor.server.features.retention.local import LocalState, scrub_quarantine
from logharbor.server.features.retention.mover import Mover
from logharbor.server.features.retention.redact import Redactor, filter_literals, redacted_filter
from logharbor.server.features.retention.rules import TIERS
from logharbor.server.features.retention.scrub import compact_metadata, scrub_metadata
from logharbor.server.features.retention.tables import retention_deletes
from logharbor.server.meta.db import MetaStore

__all__ = ["STEPS", "DeleteJobs", "DeleteUnsupported"]

log = logging.getLogger("logharbor.retention")
Audit = Callable[..., None]
#: every step a job records, in order (docs/retention.md lists them; tiers are in tiers_done too)
STEPS = ("flush", "select", "hot", "warm", "cold", "patterns", "wal", "quarantine", "purge", "metadata")
#: erased messages kept in memory to find them in alert payloads; more and only the values are
_MAX_MESSAGES = 10_000


class Interrupted(Exception):
    """The server is stopping: the job stays ``running`` and resumes at the next start."""


class DeleteUnsupported(Exception):
    """This store cannot erase physically (a ClickHouse cluster): the delete is refused up front."""


class DeleteJobs:
    """Starts, runs, resumes and reports delete-by-query jobs."""

    def __init__(self, mover: Mover, meta: MetaStore, audit: Audit | None = None, *,
                 local: LocalState | None = None, flush_timeout_s: float = 120.0,
                 purge_timeout_s: float = 900.0) -> None:
        self.mover = mover
        self.meta = meta
        self.audit = audit
        #: this server's WAL, batcher and miner (None in tests that drive the store alone)
        self.local = local
        self.flush_timeout_s = flush_timeout_s
        self.purge_timeout_s = purge_timeout_s
        self.deleted_rows = 0
        self._threads: list[threading.Thread] = []
        self._since: dict[str, float] = {}  # job → when its last step ended (for progress.seconds)
        self._stopping = threading.Event()
        #: what keeps record values in memory (recording rules' groups): called with the
        #: redaction of each delete, each returns how many entries it dropped
        self.forget: list[Callable[[Callable[[str], str]], int]] = []

    def submit(self, q: str, actor: str, scope: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Validate ``q`` (a filter; QueryError when it is not), record the job and start it.

        ``scope`` is the caller's key scope (auth's ``scope_filter``): a key confined to a tenant
        or services deletes only there.
        """
        now_ns = time.time_ns()
        compile_filter(q, now_ns=now_ns)
        if not q.strip():
            raise ValueError("a delete needs a non-empty filter")
        if self.mover.tiers.store.cluster:
            raise DeleteUnsupported("delete-by-query is not available on a ClickHouse cluster store: the "
                                    "replicated tables cannot be rewritten without the values reaching "
                                    "the replication log (docs/retention.md)")
        job_id = secrets.token_hex(8)
        # now_ns: a relative time in the filter (_time:15m) means the same after a restart
        progress: dict[str, Any] = {"tiers_done": [], "steps": [], "now_ns": now_ns, "runner": self.runner}
        if scope is not None:
            progress["scope"] = [scope[0], dict(scope[1])]
        with self.meta.engine.begin() as conn:
            conn.execute(insert(retention_deletes).values(
                id=job_id, q=q, actor=actor, state="pending", progress=progress,
                created_ns=time.time_ns()))
        if self.audit is not None:
            self.audit(actor, "delete.submit", job_id, detail=redacted_filter(q))
        self._start(job_id)
        return self.get(job_id) or {}

    @property
    def runner(self) -> str:
        """Which server runs a job: servers sharing one metadata database resume only their own
        (two running one job would fill each other's helper tables)."""
        return self.mover.tiers.store.writer_id

    def resume(self) -> int:
        """Restart the jobs a shutdown or crash of this server interrupted."""
        with self.meta.engine.connect() as conn:
            rows = conn.execute(select(retention_deletes.c.id, retention_deletes.c.progress).where(
                retention_deletes.c.state.in_(("pending", "running")))).all()
        ids = [job_id for job_id, progress in rows
               if dict(progress or {}).get("runner", self.runner) == self.runner]
        for job_id in ids:
            self._start(job_id)
        return len(ids)

    def _start(self, job_id: str) -> None:
        thread = threading.Thread(target=self.run, args=(job_id,), name=f"delete-{job_id}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float = 60.0) -> None:
        """Join the job threads (tests; the server calls :meth:`stop`)."""
        for thread in self._threads:
            thread.join(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Let running jobs end their current step and stop there, still ``running``: the next
        start resumes them (a job cut by the store closing under it is never marked failed)."""
        self._stopping.set()
        self.wait(timeout)

    # -- running ---------------------------------------------------------------------------

    def run(self, job_id: str) -> None:
        """Run (or resume) one job to ``done`` or ``failed``."""
        job = self.get(job_id, raw=True)
        if job is None or job["state"] in ("done", "failed"):
            return
        q = job["q"]
        progress: dict[str, Any] = dict(job["progress"])
        progress.setdefault("steps", [])
        redactor = Redactor(filter_literals(q))
        eraser = Eraser(self.mover.tiers, job_id)
        self._since[job_id] = time.monotonic()
        if progress.get("finishing"):  # every step was done and the filter redacted: end it
            self._finish(job_id, job["actor"], progress, q)
            return
        try:
            cond, params = compile_filter(q, now_ns=progress.get("now_ns"))
            if "scope" in progress:  # built by auth.scope_filter: its own parameter names
                cond = f"({cond}) AND {progress['scope'][0]}"
                params = {**params, **progress["scope"][1]}
            self._update(job_id, state="running")
            redactor = self._erase(job_id, progress, eraser, cond, params, redactor)
            self._local_steps(job_id, progress, cond, params, redactor)
            if "purge" not in progress["steps"]:
                left = eraser.wait_gone(list(progress.get("replaced", [])), self.purge_timeout_s,
                                        stop=self._stopping)
                self._check_stopping()
                if left:
                    raise RuntimeError(f"{len(left)} replaced parts were still on disk after "
                                       f"{self.purge_timeout_s:.0f} s (e.g. {left[0][0]}); "
                                       "run the delete again")
                self._done_step(job_id, progress, "purge")
            if "metadata" not in progress["steps"]:
                progress["metadata"] = scrub_metadata(self.meta, redactor, skip_job=job_id)
                if redactor:
                    progress["memory"] = sum(forget(redactor.text) for forget in self.forget)
                self._done_step(job_id, progress, "metadata")
            eraser.drop_helpers()
            total = sum(int(progress.get(t, 0)) for t in TIERS)
            self.deleted_rows += total
            # the filter is redacted first and the database compacted before the job says done:
            # a reader that sees done finds the value in no file (the -wal file included)
            progress["finishing"] = True
            self._update(job_id, q=redacted_filter(q), progress=progress)
            self._finish(job_id, job["actor"], progress, redacted_filter(q))
        except Exception as exc:
            if isinstance(exc, Interrupted) or self._stopping.is_set():
                log.warning("delete job %s stopped with the server; it resumes at the next start", job_id)
                return
            error = redactor.text(f"{type(exc).__name__}: {exc}")[:2000]
            log.error("delete job %s failed: %s", job_id, error)
            try:
                eraser.drop_helpers()  # its mutations are done or killed by now
            except Exception:
                log.warning("delete job %s: its helper tables could not be dropped", job_id)
            self._update(job_id, state="failed", error=error, q=redacted_filter(q), progress=progress,
                         finished_ns=time.time_ns())
            compact_metadata(self.meta)
            if self.audit is not None:
                self.audit(job["actor"], "delete.failed", job_id, detail=error[:500])

    def _erase(self, job_id: str, progress: dict[str, Any], eraser: Eraser, cond: str,
               params: dict[str, Any], redactor: Redactor) -> Redactor:
        """Steps 1–4: flush, select, the tiers, the patterns. Returns the redactor for what follows
        (with the erased messages, when they were read before the erasure)."""
        tiers = self.mover.tiers
        steps: list[str] = progress["steps"]
        if self.local is not None and "flush" not in steps:
            progress["barrier"] = self.local.flush(self.flush_timeout_s)
            self._done_step(job_id, progress, "flush")
        with self.mover.lock:
            eraser.prepare()
            if "select" not in steps:
                progress["pattern_ids"] = eraser.pattern_ids(cond, params)
                self._done_step(job_id, progress, "select")
            messages = self._messages(cond, params)
            if messages is not None:
                redactor = Redactor(redactor.literals, messages)
            progress.setdefault("replaced", [])
            for tier in ("hot", "warm"):
                if tier in progress["tiers_done"]:
                    continue
                erased = eraser.erase(tier, cond, params)
                progress[tier] = erased.rows
                progress["masked_copies"] = int(progress.get("masked_copies", 0)) + erased.masked
                progress["replaced"] = [*progress["replaced"], *erased.replaced]
                progress["tiers_done"] = [*progress["tiers_done"], tier]
                self._done_step(job_id, progress, tier)
            if "cold" not in progress["tiers_done"]:
                progress["cold"] = self._erase_cold(cond, params)
                progress["tiers_done"] = [*progress["tiers_done"], "cold"]
                self._done_step(job_id, progress, "cold")
            tiers.refresh_view()
            if "patterns" not in steps:
                ids = list(progress.get("pattern_ids", []))
                survivors = eraser.survivors(ids)
                if self.local is not None:  # first: no pending template row can bring a sample back
                    self.local.scrub_patterns({i: survivors.get(i) for i in ids})
                fixed = eraser.fix_patterns(ids, survivors)
                progress["patterns"] = {"changed": len(ids), "dropped": len(set(ids) - set(survivors))}
                progress["replaced"] = [*progress["replaced"], *fixed.replaced]
                self._done_step(job_id, progress, "patterns")
        return redactor

    def _erase_cold(self, cond: str, params: dict[str, Any]) -> int:
        tiers = self.mover.tiers
        if tiers.cold is None:
            return 0
        n = 0
        for key in tiers.cold_matches(cond, params):
            n += tiers.delete_in_cold_file(key, cond, params)
            tiers.cold.forget_versions(key)
        tiers.cold.clear_staging()
        return n

    def _messages(self, cond: str, params: dict[str, Any]) -> list[str] | None:
        """The erased messages (whole, and their head as a sample holds it), if not too many."""
        messages = self.mover.tiers.distinct_messages(cond, params, limit=_MAX_MESSAGES + 1)
        if len(messages) > _MAX_MESSAGES:
            return None
        return messages + [m[:512] for m in messages if len(m) > 512]

    def _local_steps(self, job_id: str, progress: dict[str, Any], cond: str, params: dict[str, Any],
                     redactor: Redactor) -> None:
        """Step 5: this server's WAL segments and quarantined copies."""
        if self.local is None:
            return
        steps: list[str] = progress["steps"]
        if "wal" not in steps:
            left = self.local.release(list(progress["barrier"]))
            if left:
                raise RuntimeError(f"the WAL kept {len(left)} segments from before the delete "
                                   f"(first {left[0]}); they still hold the erased records")
            self._done_step(job_id, progress, "wal")
        if "quarantine" not in steps:
            progress["quarantine"] = scrub_quarantine(
                Path(self.local.quarantine_dir), self.mover.tiers.store, self.mover.tiers.columns,
                cond, params, redactor, getattr(self.local.wal, "sealer", None))
            self._done_step(job_id, progress, "quarantine")

    def _check_stopping(self) -> None:
        if self._stopping.is_set():
            raise Interrupted()

    def _done_step(self, job_id: str, progress: dict[str, Any], step: str) -> None:
        """Record a step as done, with the seconds it took (what a delete costs, per step); stop
        after it when the server is stopping."""
        now = time.monotonic()
        seconds = dict(progress.get("seconds", {}))
        seconds[step] = round(now - self._since.get(job_id, now), 3)
        self._since[job_id] = now
        progress["seconds"] = seconds
        progress["steps"] = [*progress["steps"], step]
        self._update(job_id, progress=progress)
        self._check_stopping()

    def _finish(self, job_id: str, actor: str, progress: dict[str, Any], redacted_q: str) -> None:
        """Compact the metadata database (the old text leaves its free pages and -wal file), then
        mark the job done and audit it."""
        progress["metadata_compaction"] = compact_metadata(self.meta)
        progress.pop("finishing", None)
        self._update(job_id, state="done", progress=progress, finished_ns=time.time_ns())
        if self.audit is not None:
            total = sum(int(progress.get(t, 0)) for t in TIERS)
            self.audit(actor, "delete.done", job_id, detail=f"{total} records: {redacted_q}")

    def _update(self, job_id: str, **values: Any) -> None:
        with self.meta.engine.begin() as conn:
            conn.execute(update(retention_deletes).where(retention_deletes.c.id == job_id).values(**values))

    def get(self, job_id: str, *, raw: bool = False) -> dict[str, Any] | None:
        """The job as the API shows it (``raw``: with its stored scope), or None."""
        with self.meta.engine.connect() as conn:
            row = conn.execute(select(retention_deletes).where(retention_deletes.c.id == job_id)
                               ).mappings().first()
        if row is None:
            return None
        hidden = {"scope", "replaced", "pattern_ids", "barrier", "now_ns", "runner"}
        progress = {k: v for k, v in dict(row["progress"]).items() if raw or k not in hidden}
        return {"id": row["id"], "q": row["q"], "actor": row["actor"], "state": row["state"],
                "progress": progress,
                "deleted": sum(int(progress.get(t, 0)) for t in TIERS),
                "created_ns": row["created_ns"], "finished_ns": row["finished_ns"], "error": row["error"]}
