"""Leader election: which of the servers sharing one metadata database runs the singletons.

The alert evaluator (and its dispatcher) and the retention mover must run on one server at a
time. With PostgreSQL metadata, the leader is the server whose dedicated connection holds a
session-level advisory lock (``pg_try_advisory_lock``): PostgreSQL releases it the moment that
session ends — clean shutdown, ``kill -9`` (the kernel closes the socket), or a lost network —
so another server takes over at its next check, with no expiry to wait out. On SQLite there is one
server per metadata file, so it is always the leader.

:class:`Leadership` is what a singleton is given (``hold``/``holds``/``release``/``held_until``):
``build_runtime`` passes the one :class:`Leader` into the alert evaluator and dispatcher, the
retention mover and the pattern upkeep when it builds them (:func:`leads` gates one step); the
alerting part's own ``Lease`` has the same shape. ``holds(now)``
answers from memory until ``held_until``; the leader re-checks its session every ``ttl_ns / 2``
(the evaluator renews at half the TTL), so a leader cut off from PostgreSQL stops acting within
``ttl_ns`` while a successor may start at once: that window is where two could overlap, and the
alert outbox's unique deduplication keys are what keep it from sending a message twice.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from typing import Any, Protocol

__all__ = ["Leader", "Leadership", "leads", "lock_key"]

log = logging.getLogger("logharbor.server.leader")


class Leadership(Protocol):
    """Whether this server runs the singletons now (a :class:`Leader`, or the alerts' ``Lease``)."""

    ttl_ns: int
    held_until: int

    def hold(self, now_ns: int) -> bool:
        """Take or confirm it at ``now_ns`` (may ask the database); whether it is held."""
        ...

    def holds(self, now_ns: int) -> bool:
        """Whether the last :meth:`hold` is still good at ``now_ns`` (no round trip)."""
        ...

    def release(self) -> None:
        """Give it up (shutdown)."""
        ...


def leads(leader: Leadership | None) -> bool:
    """Whether a singleton's step runs here now: alone (no leader given) or leading."""
    return leader is None or leader.hold(time.time_ns())


def lock_key(name: str) -> int:
    """A stable signed 64-bit advisory-lock key for ``name`` (same on every server)."""
    digest = hashlib.sha256(f"logharbor:{name}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def _psycopg_dsn(url: str) -> str:
    """``postgresql+psycopg://…`` (SQLAlchemy form) as a libpq URL."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql://{rest}" if sep and scheme.startswith("postgres") else url


class Leader:
    """Leadership of ``name`` among servers on the metadata database at ``meta_url``."""

    def __init__(self, meta_url: str | None, *, name: str = "leader", ttl_ns: int = 10 * 10**9) -> None:
        self.meta_url = meta_url
        self.name = name
        self.ttl_ns = ttl_ns
        self.key = lock_key(name)
        self.held_until = 0
        self.shared = bool(meta_url) and meta_url.startswith("postgres")  # type: ignore[union-attr]
        self._conn: Any = None
        self._lock = threading.Lock()
        self._is_leader = False
        self.changes = 0  # times leadership was gained or lost (a /metrics counter)

    def hold(self, now_ns: int) -> bool:
        """Take or confirm leadership at ``now_ns``; whether this server leads now."""
        if not self.shared:
            self.held_until = now_ns + self.ttl_ns
            self._set(True)
            return True
        with self._lock:
            try:
                held = self._check()
            except Exception as exc:  # the database is away: lead nothing rather than risk two leaders
                log.warning("leader: cannot reach the metadata database: %s", exc)
                self._drop()
                held = False
        self.held_until = now_ns + self.ttl_ns if held else 0
        self._set(held)
        return held

    def _check(self) -> bool:
        import psycopg

        if self._conn is not None and self._conn.closed:
            self._drop()
        if self._conn is None:
            self._conn = psycopg.connect(_psycopg_dsn(self.meta_url or ""), autocommit=True,
                                         connect_timeout=5, application_name=f"logharbor-{self.name}")
        if self._is_leader:
            # the lock lives as long as this session; a query that works proves the session does
            row = self._conn.execute("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                     "AND pid = pg_backend_pid() AND granted", ()).fetchone()
            if row and row[0]:
                return True
        row = self._conn.execute("SELECT pg_try_advisory_lock(%s)", (self.key,)).fetchone()
        return bool(row and row[0])

    def _drop(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            try:
                conn.close()
            except Exception:  # noqa: S110 - closing a broken connection may fail; it is gone either way
                pass

    def _set(self, held: bool) -> None:
        if held != self._is_leader:
            self.changes += 1
            if self.shared:  # alone on SQLite, leading is not news
                state = "now leads" if held else "no longer leads"
                log.warning("leader: this server %s (%s)", state, self.name)
        self._is_leader = held

    def holds(self, now_ns: int) -> bool:
        """Whether the last :meth:`hold` is still good at ``now_ns`` (no database round trip)."""
        return now_ns < self.held_until

    @property
    def is_leader(self) -> bool:
        """Leadership as of the last check (for ``/metrics`` and ``/readyz`` detail)."""
        return self._is_leader

    def release(self) -> None:
        """Give leadership up at shutdown so another server takes over at once."""
        with self._lock:
            if self._conn is not None and self._is_leader:
                try:
                    self._conn.execute("SELECT pg_advisory_unlock(%s)", (self.key,))
                except Exception:  # noqa: S110 - closing the session below releases it anyway
                    pass
            self._drop()
        self.held_until = 0
        self._set(False)
