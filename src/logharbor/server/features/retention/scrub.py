"""Erased values in the metadata database: alert state, history and notifications, the audit log
and earlier delete jobs.

Alerting copies record values into metadata: a rule grouped by ``user_id`` keys its state, its
history and its notifications by the user id; a ``new_pattern`` alert carries the pattern's
template and a sample message. After a delete, every such string that holds one of the filter's
values, or an erased record's message, has it replaced by ``[deleted]`` (rows are kept: the
alert fired, a notification went out, an admin did something). On SQLite the database then gets
``VACUUM`` and a WAL checkpoint, with ``secure_delete`` on (meta/db.py), so the old text is not
left in free pages or in the ``-wal`` file. On PostgreSQL old row versions stay in the table files
until ``VACUUM FULL`` (docs/retention.md says so); that database is not in the data directory.
"""

from __future__ import annotations

import logging
from typing import Any

from sqlalchemy import String, Table, Text, cast, or_, select, update

from logharbor.server.features.alerts.tables import alert_history, alert_notifications, alert_states
from logharbor.server.features.retention.redact import Redactor, redacted_filter
from logharbor.server.features.retention.tables import retention_deletes
from logharbor.server.meta.db import MetaStore, audit_log

__all__ = ["compact_metadata", "scrub_metadata"]

log = logging.getLogger("logharbor.retention")

#: table → (primary key columns, text columns, JSON columns)
_TARGETS: list[tuple[Table, tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = [
    (alert_states, ("rule_id", "group_key"), ("group_key",), ("group_labels", "details")),
    (alert_history, ("id",), ("group_key",), ()),
    (alert_notifications, ("id",), ("dedup_key",), ("alert",)),
    (audit_log, ("id",), ("target", "detail"), ()),
    (retention_deletes, ("id",), ("error",), ()),
]


def _needles(redactor: Redactor) -> list[str]:
    """What a changed row must contain as text: each literal, raw and as JSON escapes it."""
    import json

    out: set[str] = set()
    for value in redactor.literals:
        out.add(value)
        out.add(json.dumps(value)[1:-1])  # ensure_ascii, as SQLAlchemy's JSON serializer writes
    return sorted(out)


def scrub_metadata(meta: MetaStore, redactor: Redactor, *, skip_job: str | None = None) -> dict[str, int]:
    """Redact erased values in every target table; rows changed per table."""
    changed: dict[str, int] = {}
    if not redactor:
        return changed
    needles = _needles(redactor)
    for table, keys, texts, jsons in _TARGETS:
        columns = [table.c[name] for name in (*texts, *jsons)]
        query = select(*(table.c[k] for k in keys), *columns)
        if not (redactor.texts and jsons):  # messages hide only in JSON payloads: read those whole
            if not needles:
                continue
            query = query.where(or_(*(cast(col, Text).icontains(n, autoescape=True)
                                      for col in columns for n in needles)))
        n = 0
        with meta.engine.connect() as conn:
            rows = conn.execute(query).mappings().all()
        for row in rows:
            values: dict[str, Any] = {}
            for name in texts:
                if row[name] is not None:
                    new = redactor.text(str(row[name]))
                    if new != row[name]:
                        values[name] = new[: _length(table, name)]
            for name in jsons:
                if row[name] is not None:
                    new_json = redactor.value(row[name])
                    if new_json != row[name]:
                        values[name] = new_json
            if not values:
                continue
            if table is retention_deletes and row["id"] == skip_job:
                continue
            with meta.engine.begin() as conn:
                clause = [table.c[k] == row[k] for k in keys]
                conn.execute(update(table).where(*clause).values(**values))
            n += 1
        if n:
            changed[table.name] = n
    changed.update(_redact_old_jobs(meta, redactor, skip_job))
    return changed


def _length(table: Table, name: str) -> int | None:
    column_type = table.c[name].type
    return column_type.length if isinstance(column_type, String) and column_type.length else None


def _redact_old_jobs(meta: MetaStore, redactor: Redactor, skip_job: str | None) -> dict[str, int]:
    """Finished delete jobs whose stored filter still holds an erased value (made before filters
    were stored redacted) keep only its shape."""
    n = 0
    with meta.engine.connect() as conn:
        rows = conn.execute(select(retention_deletes.c.id, retention_deletes.c.q)
                            .where(retention_deletes.c.state.in_(("done", "failed")))).all()
    for job_id, q in rows:
        if job_id == skip_job or redactor.text(q) == q:
            continue
        with meta.engine.begin() as conn:
            conn.execute(update(retention_deletes).where(retention_deletes.c.id == job_id)
                         .values(q=redacted_filter(q)))
        n += 1
    return {"retention_deletes.q": n} if n else {}


def compact_metadata(meta: MetaStore, *, attempts: int = 60, pause_s: float = 0.5) -> str:
    """On SQLite, rebuild the file and empty its WAL so replaced text is not left in free pages.

    Both need the database to themselves for a moment; another writer (alert evaluation, an API
    call) makes them busy, so they are tried a few times.
    """
    if not meta.url.startswith("sqlite"):
        return "not sqlite: old row versions stay until the database is vacuumed"
    import time

    from sqlalchemy import text

    last = ""
    for _ in range(attempts):
        try:
            with meta.engine.connect() as conn:
                conn.exec_driver_sql("VACUUM")
                busy = conn.execute(text("PRAGMA wal_checkpoint(TRUNCATE)")).first()
            if busy is None or not busy[0]:
                return "vacuumed"
            last = "the WAL checkpoint was busy"
        except Exception as exc:  # a reader holding the database: try again, never fail the delete here
            last = str(exc)
        time.sleep(pause_s)
    log.warning("delete: compacting the metadata database did not finish (%s); free pages or its -wal "
                "file may keep redacted text until the next delete or restart", last)
    return f"not finished: {last}"
