"""The alert tables on PostgreSQL (what several servers share): states, outbox dedup and the lease.

A real PostgreSQL from Debian's binaries is started on loopback for the module (``pg_url`` in
tests/conftest.py, tests/postgres.py); the test is skipped where there is none.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest
from sqlalchemy import select

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.features.alerts.catalog import StoredRule
from logharbor.server.features.alerts.evaluator import Evaluator, ManualClock
from logharbor.server.features.alerts.lease import Lease
from logharbor.server.features.alerts.rules import Rule
from logharbor.server.features.alerts.tables import alert_notifications
from logharbor.server.meta.db import MetaStore

from .conftest import T0, S, insert, make_harness

M = 60 * S


@pytest.fixture
def pg_meta(pg_url: str) -> Iterator[MetaStore]:
    meta = MetaStore(pg_url)
    from logharbor.server.meta.db import metadata

    metadata.drop_all(meta.engine)
    meta.create()
    yield meta
    meta.close()


def test_states_outbox_and_restart_on_postgres(pg_meta: MetaStore, store: EmbeddedStore) -> None:
    h = make_harness(pg_meta, store, ManualClock(T0))
    h.catalog.put_channel("hook", "webhook", {"url": "http://127.0.0.1:9/unused", "secret": "pg-secret-1"})
    h.catalog.put_rule(Rule.model_validate({
        "name": "pg errors", "query": "service:pg-svc AND level:ERROR", "condition": "count > 1",
        "window": "5m", "group_by": ["host"], "channels": ["hook"]}))
    stored: StoredRule = h.catalog.enabled_rules()[0]
    insert(store, [{"timestamp": T0 - M + i, "level": "ERROR", "service": "pg-svc", "host": f"web-{i % 2}",
                    "message": "x"} for i in range(6)])
    h.evaluator.evaluate(stored, T0)
    again = h.reopen()
    again.evaluator.evaluate(again.catalog.enabled_rules()[0], T0 + M)  # a restart: nothing re-fires
    with pg_meta.engine.connect() as conn:
        rows = conn.execute(select(alert_notifications.c.kind, alert_notifications.c.alert)).all()
    assert sorted(r[1]["labels"]["host"] for r in rows) == ["web-0", "web-1"]
    assert {r[0] for r in rows} == {"firing"}
    assert [a["state"] for a in again.catalog.alerts()] == ["firing", "firing"]
    assert again.catalog.get_channel("hook")["config"]["secret"] == "********"  # type: ignore[index]


def test_lease_on_postgres(pg_meta: MetaStore, store: EmbeddedStore) -> None:
    a, b = Lease(pg_meta, holder="a", ttl_ns=60 * S), Lease(pg_meta, holder="b", ttl_ns=60 * S)
    assert a.hold(T0) and not b.hold(T0 + 10 * S)
    assert a.hold(T0 + 30 * S)  # renewed
    assert not b.hold(T0 + 80 * S)  # a's renewal runs to T0+90s
    assert b.hold(T0 + 91 * S) and not a.hold(T0 + 92 * S)  # a went quiet: b took over
    b.release()
    assert a.hold(T0 + 93 * S)


def test_two_evaluators_on_one_postgres_run_each_slot_once(pg_meta: MetaStore, store: EmbeddedStore) -> None:
    h = make_harness(pg_meta, store, ManualClock(T0))
    h.catalog.put_rule(Rule.model_validate({"name": "pg sched", "query": "service:pg-sched",
                                            "condition": "count > 0", "window": "1m", "interval": "10s"}))
    clock = ManualClock(T0)
    servers = [Evaluator(h.catalog, lambda sql, params: store.query(sql, params), store.table, clock,
                         lease=Lease(pg_meta, holder=name)) for name in ("a", "b")]

    async def scenario() -> None:
        for server in servers:
            await server.start()
        for _ in range(60):
            clock.advance(S)
            deadline = time.monotonic() + 10
            while not all(s.settled() for s in servers) and time.monotonic() < deadline:
                await asyncio.sleep(0.005)
        for server in servers:
            await server.stop()

    asyncio.run(scenario())
    assert sorted(s.runs for s in servers) == [0, 6]


def test_an_old_postgres_database_gets_the_new_columns(pg_url: str) -> None:
    """The additive migration of the metadata (tests/server/test_meta_migrations.py) on PostgreSQL."""
    from sqlalchemy import insert as sa_insert
    from sqlalchemy import inspect
    from tests.server.test_meta_migrations import old_alert_states

    from logharbor.server.features.alerts.tables import alert_states
    from logharbor.server.meta.db import metadata

    meta = MetaStore(pg_url)
    metadata.drop_all(meta.engine)
    old_alert_states(meta.engine)
    with meta.engine.begin() as conn:
        conn.execute(sa_insert(alert_states).values(rule_id=1, group_key="{}", group_labels={}, state="firing",
                                                 value=3.0, updated_ns=1))
    meta.create()
    assert "details" in {c["name"] for c in inspect(meta.engine).get_columns("alert_states")}
    with meta.engine.connect() as conn:
        assert conn.execute(select(alert_states.c.state, alert_states.c.details)).one() == ("firing", None)
    metadata.drop_all(meta.engine)
    meta.close()
