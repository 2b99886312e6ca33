"""The alerting part of one server: catalog, silences, evaluator and dispatcher, started together.

``app.py`` builds one :class:`AlertService` from the runtime in its lifespan and stops it before
the store closes; the routes reach it as ``request.app.state.alerts``.
"""

from __future__ import annotations

import asyncio
import logging
import socket
from collections.abc import Mapping
from typing import Any

from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.features.explain.alerting import contributors
from logharbor.server.leader import Leadership
from logharbor.server.meta.db import MetaStore

from .catalog import Catalog
from .channels import HostPolicy, build_channel, check_destination
from .channels.secrets import SecretBox
from .evaluator import Clock, Evaluator, Job, SystemClock
from .lease import Lease
from .notify import Dispatcher
from .silences import SilenceStore

__all__ = ["AlertService"]

log = logging.getLogger("logharbor.alerts")


class AlertService:
    """Owns the alert loops of one server."""

    def __init__(self, meta: MetaStore, store: Store, *, secrets: SecretBox, hosts: HostPolicy,
                 clock: Clock | None = None, query_timeout_s: float = 30.0,
                 query_max_memory_bytes: int | None = None, jobs: list[Job] | None = None,
                 holder: str | None = None, lease: Leadership | None = None,
                 clock_table: str | None = None) -> None:
        self.clock: Clock = clock or SystemClock()
        self.store = store
        self.catalog = Catalog(meta, secrets,
                               check_host=lambda kind, config: check_destination(hosts, kind, config))
        self.silences = SilenceStore(meta)
        # one evaluating server among those sharing the DB: the server's Leader, or a lease of its own
        self.lease: Leadership = lease if lease is not None else Lease(meta, holder=holder)
        self.dispatcher = Dispatcher(self.catalog, self.silences, self.clock, lease=self.lease,
                                     build=lambda kind, config: build_channel(kind, config, hosts))
        self._settings: dict[str, float] = {"max_execution_time": query_timeout_s}
        if query_max_memory_bytes is not None:
            self._settings["max_memory_usage"] = query_max_memory_bytes
        self.evaluator = Evaluator(self.catalog, self.run_query, store.table, self.clock,
                                   on_outbox=self.dispatcher.wake, jobs=jobs, lease=self.lease,
                                   patterns_table=quote_identifier(store.patterns_name),
                                   explain=self.contributors, clock_table=clock_table)

    def contributors(self, query: str, numerator: str | None, labels: dict[str, str], window_ns: int,
                     at_ns: int, scope: tuple[str, dict[str, object]] | None) -> dict[str, Any] | None:
        """A firing group's top contributors (features/explain/alerting.py; None on error)."""
        return contributors(self.store, self._settings, query=query, numerator=numerator, labels=labels,
                            window_ns=window_ns, at_ns=at_ns, scope=scope)

    def run_query(self, sql: str, params: Mapping[str, Any]) -> list[dict[str, Any]]:
        """One compiled rule query against the store, under the server's query time and memory budget."""
        return self.store.query(sql, params, settings=self._settings)

    def live_values(self) -> dict[str, float]:
        """Gauges for ``/metrics``, read at scrape time."""
        return {
            "logharbor_alert_evaluations": float(self.evaluator.runs),
            "logharbor_alert_skipped_runs": float(self.evaluator.skips),
            "logharbor_alert_notifications_sent": float(self.dispatcher.sent),
            "logharbor_alert_notifications_failed": float(self.dispatcher.failed),
            "logharbor_alerts_firing": float(self.catalog.count_state("firing")),
        }

    async def start(self) -> None:
        """Start the dispatcher, then the evaluator (whose first runs may already queue mail)."""
        await self.dispatcher.start()
        await self.evaluator.start()

    async def stop(self) -> None:
        """Stop the evaluator first, so nothing new is queued while the dispatcher stops."""
        await self.evaluator.stop()
        await self.dispatcher.stop()


async def start_alerting(app_state: Any, runtime: Any, *, jobs: tuple[Job, ...] = (),
                         clock_table: str | None = None) -> AlertService:
    """Everything of this part the app needs at start: alert loops, the service-health recording
    job (and ``jobs`` of other parts on the same scheduler), and the dashboard stores (with the
    reference dashboard on a fresh server); ``clock_table`` is what clock_skew rules read."""
    from logharbor.server.features.dashboards.service import open_dashboards
    from logharbor.server.features.health.services import MINUTE_NS, ServiceRecorder

    recorder = app_state.service_recorder = ServiceRecorder(runtime.store)
    service = app_state.alerts = AlertService(
        runtime.meta, runtime.store, secrets=runtime.secrets, hosts=runtime.channel_hosts,
        query_timeout_s=runtime.config.query_timeout_s,
        query_max_memory_bytes=runtime.config.query_max_memory_bytes,
        jobs=[Job("service-minutes", MINUTE_NS, recorder.record), *jobs], clock_table=clock_table,
        # stable across restarts of this server, so a restart after kill -9 takes its lease back
        holder=f"{socket.gethostname()}:{runtime.config.data_dir.resolve()}",
        lease=runtime.leader)  # one leader mechanism for every singleton (server/leader.py)
    open_dashboards(app_state, runtime.meta)
    sealed = await asyncio.to_thread(service.catalog.migrate_secrets)
    if sealed:
        log.warning("sealed the secrets of notification channels (and scrubbed old delivery errors) "
                    "in the metadata database: %d row(s)", sealed)
    runtime.metrics.watch(service.live_values)
    await service.start()
    return service
