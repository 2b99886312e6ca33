"""The dispatcher: sends the outbox, with grouping, silences, a per-rule rate limit and retries.

The evaluator only writes outbox rows (one per alert transition and channel, unique by a
dedup key, so a transition is never queued twice). The dispatcher groups the due rows of one
rule, kind, slot and channel into one message, drops alerts a silence matches (recorded as
``silenced``), holds back firing messages over the rule's ``max_notifications_per_hour``
(``rate_limited``; resolves are not limited, so nobody is left believing an alert still fires),
sends a resolve only when its firing notification went out (else it is ``skipped``),
and sends. A :class:`Retriable` failure is tried again after ``backoff_s · 2^(attempt-1)``
(capped) up to ``max_attempts``; a :class:`Permanent` one is recorded as ``failed`` at once.
A row is marked ``sent`` only after the channel returned, so delivery is at least once across
crashes and exactly once otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from sqlalchemy import distinct, func, select, update

from logharbor.server.leader import Leadership
from logharbor.server.scopes import Scope

from .catalog import Catalog
from .channels import (
    UNDELIVERED,
    Alert,
    Blocked,
    Channel,
    DeliveryError,
    Notification,
    Permanent,
    build_channel,
)
from .channels.secrets import SecretsUnreadable
from .evaluator import Clock, SystemClock
from .silences import SilenceStore
from .tables import alert_notifications

__all__ = ["Dispatcher"]

log = logging.getLogger("logharbor.alerts")
_HOUR_NS = 3600 * 10**9
_POLL_NS = 5 * 10**9


class Dispatcher:
    """Delivers pending notifications; :meth:`deliver_due` is one pass, :meth:`start` loops."""

    def __init__(self, catalog: Catalog, silences: SilenceStore, clock: Clock | None = None, *,
                 max_attempts: int = 6, backoff_s: float = 2.0, backoff_max_s: float = 300.0,
                 build: Callable[[str, dict[str, Any]], Channel] = build_channel,
                 lease: Leadership | None = None) -> None:
        self.catalog = catalog
        self.silences = silences
        self.clock: Clock = clock or SystemClock()
        self.max_attempts = max_attempts
        self.backoff_s = backoff_s
        self.backoff_max_s = backoff_max_s
        self.build = build
        self.lease = lease  # when set, only the lease holder (the evaluating server) sends
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.sent = 0
        self.failed = 0

    @property
    def engine(self) -> Any:
        """The metadata engine the outbox lives in."""
        return self.catalog.meta.engine

    def wake(self) -> None:
        """New rows are waiting (called by the evaluator, possibly from a worker thread)."""
        loop = self._task.get_loop() if self._task is not None else None
        if loop is not None and loop.is_running():
            loop.call_soon_threadsafe(self._wake.set)

    async def start(self) -> None:
        """Start the delivery loop on the running event loop."""
        self._task = asyncio.create_task(self._loop(), name="alert-dispatcher")

    async def stop(self) -> None:
        """Stop the delivery loop (rows not sent stay pending for the next start)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _loop(self) -> None:
        while True:
            try:
                await self.deliver_due()
            except Exception:  # the database may be briefly unavailable; keep the loop alive
                log.exception("alert dispatcher pass failed")
            wake = await asyncio.to_thread(self._next_due)
            now = self.clock.now_ns()
            wake = min(wake if wake is not None else now + _POLL_NS, now + _POLL_NS)
            sleeper = asyncio.create_task(self.clock.sleep_until(wake))
            woken = asyncio.create_task(self._wake.wait())
            try:
                await asyncio.wait({sleeper, woken}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                sleeper.cancel()
                woken.cancel()
                self._wake.clear()

    def _next_due(self) -> int | None:
        with self.engine.connect() as conn:
            return conn.execute(select(func.min(alert_notifications.c.next_attempt_ns)).where(
                alert_notifications.c.status == "pending")).scalar()

    def _due(self, now: int) -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            rows = conn.execute(select(alert_notifications).where(
                alert_notifications.c.status == "pending", alert_notifications.c.next_attempt_ns <= now
            ).order_by(alert_notifications.c.id).limit(1000)).mappings().all()
        return [dict(r) for r in rows]

    def _mark(self, ids: list[int], **values: Any) -> None:
        if ids:
            with self.engine.begin() as conn:
                conn.execute(update(alert_notifications).where(alert_notifications.c.id.in_(ids)).values(**values))

    def _sent_last_hour(self, rule_id: int, channel: str, now: int) -> int:
        with self.engine.connect() as conn:
            return int(conn.execute(select(func.count(distinct(alert_notifications.c.batch))).where(
                alert_notifications.c.rule_id == rule_id, alert_notifications.c.channel == channel,
                alert_notifications.c.kind == "firing", alert_notifications.c.status == "sent",
                alert_notifications.c.delivered_ns > now - _HOUR_NS)).scalar() or 0)

    async def deliver_due(self) -> int:
        """Send every due group once; the number of messages delivered."""
        now = self.clock.now_ns()
        if self.lease is not None and not self.lease.holds(now):
            return 0
        rows = await asyncio.to_thread(self._due, now)
        groups: dict[tuple[str, int, str, int], list[dict[str, Any]]] = defaultdict(list)
        for row in rows:
            groups[(row["channel"], row["rule_id"], row["kind"], row["batch"])].append(row)
        delivered = 0
        for (channel, rule_id, kind, _), members in groups.items():
            delivered += await self._deliver(channel, rule_id, kind, members, now)
        return delivered

    def _firing_status(self, row: dict[str, Any]) -> tuple[str, int] | None:
        """(status, next attempt) of the firing notification a resolve answers, if there was one."""
        prefix, _, since = row["dedup_key"].rsplit(":", 2)
        with self.engine.connect() as conn:
            n = alert_notifications.c
            found = conn.execute(select(n.status, n.next_attempt_ns).where(
                alert_notifications.c.dedup_key == f"{prefix}:firing:{since}",
                alert_notifications.c.channel == row["channel"])).first()
        return (found[0], found[1]) if found is not None else None

    async def _deliver(self, channel: str, rule_id: int, kind: str, rows: list[dict[str, Any]],
                       now: int) -> int:
        if kind == "resolved":  # announce the end only of what was announced
            kept = []
            for row in rows:
                firing = await asyncio.to_thread(self._firing_status, row)
                if firing is not None and firing[0] == "pending":  # still retrying: resolve after it
                    await asyncio.to_thread(self._mark, [row["id"]], next_attempt_ns=firing[1] + 1)
                elif firing is not None and firing[0] != "sent":
                    await asyncio.to_thread(self._mark, [row["id"]], status="skipped",
                                            error=f"its firing notification was {firing[0]}")
                else:
                    kept.append(row)
            rows = kept
        silenced, live = [], []
        rule_scope = Scope.from_json(rows[0]["alert"].get("scope")) if rows else Scope()
        for row in rows:
            silence = await asyncio.to_thread(self.silences.silenced_by, row["alert"]["labels"], now,
                                              rule_scope)
            (silenced if silence is not None else live).append(row)
            if silence is not None:
                row["error"] = f"silenced by silence {silence}"
        for row in silenced:
            await asyncio.to_thread(self._mark, [row["id"]], status="silenced", error=row["error"])
        if not live:
            return 0
        ids = [r["id"] for r in live]
        limit = int(live[0]["alert"].get("max_per_hour") or 20)
        if kind == "firing" and await asyncio.to_thread(self._sent_last_hour, rule_id, channel, now) >= limit:
            await asyncio.to_thread(self._mark, ids, status="rate_limited",
                                    error=f"over {limit} notifications per hour for this rule")
            return 0
        try:
            target = await asyncio.to_thread(self.catalog.channel, channel)
        except SecretsUnreadable as exc:
            await asyncio.to_thread(self._mark, ids, status="failed", error=str(exc))
            return 0
        if target is None or not rule_scope.covers(target[2]):  # a channel outside the rule's scope
            await asyncio.to_thread(self._mark, ids, status="failed", error=f"no channel named {channel!r}")
            return 0
        first = live[0]
        notification = Notification(rule=first["rule_name"], kind=kind,
                                    alerts=[Alert.from_json(r["alert"]) for r in live], sent_ns=now,
                                    rule_labels=first["alert"].get("rule_labels", {}))
        attempts = max(r["attempts"] for r in live) + 1
        try:
            await self.build(target[0], target[1]).send(notification)
        except DeliveryError as exc:
            error = str(exc)[:2000]
            if isinstance(exc, Permanent) or attempts >= self.max_attempts:
                self.failed += 1
                log.warning("notification %s/%s to %s failed for good: %s", first["rule_name"], kind,
                            channel, error)
                await asyncio.to_thread(self._mark, ids, status="failed", attempts=attempts, error=error)
            else:
                delay = min(self.backoff_max_s, self.backoff_s * 2 ** (attempts - 1))
                await asyncio.to_thread(self._mark, ids, attempts=attempts, error=error,
                                        next_attempt_ns=now + int(delay * 1e9))
            return 0
        except Exception:  # a bug in a channel must not leave the row pending forever
            log.exception("channel %s raised", channel)
            await asyncio.to_thread(self._mark, ids, status="failed", attempts=attempts, error=UNDELIVERED)
            return 0
        self.sent += 1
        await asyncio.to_thread(self._mark, ids, status="sent", attempts=attempts, delivered_ns=now,
                                error=None)
        return 1

    async def send_test(self, name: str, viewer: Scope | None = None) -> None:
        """One test message through channel ``name`` (raises LookupError or DeliveryError).

        A failure is answered no sooner than the channel's timeout after the start: a refused
        port (at once) and a silent one (at the timeout) take as long, so the time tells nothing
        either.
        """
        began = time.monotonic()
        target = await asyncio.to_thread(self.catalog.channel, name)
        if target is None or (viewer is not None and not viewer.covers(target[2])):
            raise LookupError(f"no channel named {name!r}")
        now = self.clock.now_ns()
        alert = Alert({"alertname": "logharbor test"}, {"summary": f"test notification through {name}"},
                      None, "firing", now)
        try:
            await self.build(target[0], target[1]).send(Notification("logharbor test", "firing", [alert], now,
                                                                     test=True))
        except Blocked:
            raise
        except DeliveryError:
            floor = float(target[1].get("timeout_s") or 0.0)
            await asyncio.sleep(max(0.0, began + floor - time.monotonic()))
            raise
