"""One evaluator at a time: a lease row in the metadata database.

Servers behind a load balancer share PostgreSQL (DESIGN §3 "Store"); each starts an evaluator
and a dispatcher, but only the holder of the ``alerts`` lease runs rules and sends the outbox,
so a rule is not evaluated — nor a message sent — once per server. The holder renews the lease
on every scheduler pass; when it stops (crash, shutdown), another server takes over once the
lease has expired. Taking and renewing are single conditional UPDATEs (or an INSERT of the
first row), so two servers can never both believe they hold it for the same instant.
"""

from __future__ import annotations

import os
import socket
import uuid

from sqlalchemy import insert, select, update
from sqlalchemy.exc import IntegrityError

from logharbor.server.meta.db import MetaStore

from .tables import alert_leases

__all__ = ["Lease"]


class Lease:
    """The ``name`` lease for this process (``holder`` is unique per process start)."""

    def __init__(self, meta: MetaStore, *, name: str = "alerts", ttl_ns: int = 60 * 10**9,
                 holder: str | None = None) -> None:
        self.meta = meta
        self.name = name
        self.ttl_ns = ttl_ns
        self.holder = holder or f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.held_until = 0

    def hold(self, now_ns: int) -> bool:
        """Take or renew the lease at ``now_ns``; whether this process holds it now."""
        expires = now_ns + self.ttl_ns
        t = alert_leases.c
        with self.meta.engine.begin() as conn:
            done = conn.execute(update(alert_leases).where(
                t.name == self.name, (t.holder == self.holder) | (t.expires_ns <= now_ns)).values(
                holder=self.holder, expires_ns=expires))
            if done.rowcount == 0:
                exists = conn.execute(select(t.holder).where(t.name == self.name)).first()
                if exists is not None:
                    return False
        if done.rowcount == 0:
            try:
                with self.meta.engine.begin() as conn:
                    conn.execute(insert(alert_leases).values(name=self.name, holder=self.holder,
                                                             expires_ns=expires))
            except IntegrityError:  # another server inserted it first
                return False
        self.held_until = expires
        return True

    def holds(self, now_ns: int) -> bool:
        """Whether the last :meth:`hold` is still good at ``now_ns`` (no database round trip)."""
        return now_ns < self.held_until

    def release(self) -> None:
        """Give the lease up at shutdown so another server takes over at once."""
        with self.meta.engine.begin() as conn:
            conn.execute(update(alert_leases).where(
                alert_leases.c.name == self.name, alert_leases.c.holder == self.holder).values(expires_ns=0))
        self.held_until = 0
