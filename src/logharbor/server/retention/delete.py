"""Delete by query (GDPR erasure, a leaked secret): one job per request, over every tier.

A job is written to ``retention_deletes`` before it runs, runs in a thread (holding the mover's
lock, so no move copies a record half-way through it), records its progress after each tier, and
is resumed after a restart: each tier's delete is idempotent, so redoing one is harmless. The
filter is compiled by the query language's own compiler (``compile_filter``), every value a
parameter; the audit log gets the request and the result.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select, update

from logharbor.server.meta.db import MetaStore
from logharbor.server.query import compile_filter
from logharbor.server.retention.mover import Mover
from logharbor.server.retention.rules import TIERS
from logharbor.server.retention.tables import retention_deletes

__all__ = ["DeleteJobs"]

log = logging.getLogger("logharbor.retention")
Audit = Callable[..., None]


class DeleteJobs:
    """Starts, runs, resumes and reports delete-by-query jobs."""

    def __init__(self, mover: Mover, meta: MetaStore, audit: Audit | None = None) -> None:
        self.mover = mover
        self.meta = meta
        self.audit = audit
        self.deleted_rows = 0
        self._threads: list[threading.Thread] = []

    def submit(self, q: str, actor: str, scope: tuple[str, dict[str, Any]] | None = None) -> dict[str, Any]:
        """Validate ``q`` (a filter; QueryError when it is not), record the job and start it.

        ``scope`` is the caller's key scope (auth's ``scope_filter``): a key confined to a tenant
        or services deletes only there.
        """
        compile_filter(q)
        if not q.strip():
            raise ValueError("a delete needs a non-empty filter")
        job_id = secrets.token_hex(8)
        progress: dict[str, Any] = {"tiers_done": []}
        if scope is not None:
            progress["scope"] = [scope[0], dict(scope[1])]
        with self.meta.engine.begin() as conn:
            conn.execute(insert(retention_deletes).values(
                id=job_id, q=q, actor=actor, state="pending", progress=progress,
                created_ns=time.time_ns()))
        if self.audit is not None:
            self.audit(actor, "delete.submit", job_id, detail=q)
        self._start(job_id)
        return self.get(job_id) or {}

    def resume(self) -> int:
        """Restart the jobs a shutdown or crash interrupted."""
        with self.meta.engine.connect() as conn:
            ids = [r[0] for r in conn.execute(select(retention_deletes.c.id).where(
                retention_deletes.c.state.in_(("pending", "running"))))]
        for job_id in ids:
            self._start(job_id)
        return len(ids)

    def _start(self, job_id: str) -> None:
        thread = threading.Thread(target=self.run, args=(job_id,), name=f"delete-{job_id}", daemon=True)
        self._threads.append(thread)
        thread.start()

    def wait(self, timeout: float = 60.0) -> None:
        """Join the job threads (shutdown and tests)."""
        for thread in self._threads:
            thread.join(timeout)

    def run(self, job_id: str) -> None:
        """Delete the matches from hot, warm and cold, recording progress after each tier."""
        job = self.get(job_id, raw=True)
        if job is None:
            return
        progress: dict[str, Any] = dict(job["progress"])
        try:
            cond, params = compile_filter(job["q"])
            if "scope" in progress:  # built by auth.scope_filter: its own parameter names
                cond = f"({cond}) AND {progress['scope'][0]}"
                params = {**params, **progress["scope"][1]}
            self._update(job_id, state="running")
            with self.mover.lock:
                for tier in TIERS:
                    if tier in progress["tiers_done"]:
                        continue
                    n = self.mover.tiers.delete_where(tier, cond, params)
                    progress[tier] = n
                    progress["tiers_done"] = [*progress["tiers_done"], tier]
                    self._update(job_id, progress=progress)
                self.mover.tiers.refresh_view()
            total = sum(int(progress.get(t, 0)) for t in TIERS)
            self.deleted_rows += total
            self._update(job_id, state="done", finished_ns=time.time_ns())
            if self.audit is not None:
                self.audit(job["actor"], "delete.done", job_id, detail=f"{total} records: {job['q']}")
        except Exception as exc:
            log.exception("delete job %s failed", job_id)
            self._update(job_id, state="failed", error=str(exc)[:2000], finished_ns=time.time_ns())
            if self.audit is not None:
                self.audit(job["actor"], "delete.failed", job_id, detail=str(exc)[:500])

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
        progress = {k: v for k, v in dict(row["progress"]).items() if raw or k != "scope"}
        return {"id": row["id"], "q": row["q"], "actor": row["actor"], "state": row["state"],
                "progress": progress,
                "deleted": sum(int(progress.get(t, 0)) for t in TIERS),
                "created_ns": row["created_ns"], "finished_ns": row["finished_ns"], "error": row["error"]}
