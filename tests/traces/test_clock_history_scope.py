"""The clock offsets history confines a scoped key in SQL, before the row cap: filtered after a
cap of 50,000 rows, a key of a small tenant got a truncated (or empty) history whenever another
tenant had more rows in the window. In process, on a real chDB store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.sql import clock as clock_sql
from logharbor.server.features.traces.clock import _TYPES, ClockOffsets, _scope_of
from logharbor.server.scopes import Scope

T0 = (time.time_ns() // 10**9 - 3600) * 10**9  # an hour ago: inside the table's 30-day TTL
MS = 10**6


@pytest.fixture(scope="module")
def offsets(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ClockOffsets]:
    store = EmbeddedStore(Path(tmp_path_factory.mktemp("clockscope")) / "store")
    store.open()
    clock = ClockOffsets(store)
    clock.ensure()
    rows = []
    for i in range(200):  # a busy tenant first in time: it fills any cap taken before the scope
        rows.append(_row(T0 + i * MS, "globex", f"g-{i % 7}", "api"))
    for i in range(6):
        rows.append(_row(T0 + (500 + i) * MS, "acme", f"a-{i % 3}", "checkout" if i % 2 else "billing"))
    for chunk in range(0, len(rows), 50):
        store.query(*clock_sql.insert_sql(clock.table, _TYPES, rows[chunk:chunk + 50], ns_column="at"))
    yield clock
    store.close()


def _row(at: int, tenant: str, clock: str, service: str) -> dict[str, object]:
    return {"at": at, "tenant": tenant, "clock": clock, "layer": "app", "host": clock, "instance": clock,
            "service": service, "reference": "alb", "offset_ms": 1.5, "uncertainty_ms": 0.5,
            "requests": 10, "consistent": 1}


def test_a_scoped_history_is_whole_under_a_cap_other_tenants_fill(offsets: ClockOffsets) -> None:
    window = (T0, T0 + 10**9)
    assert len(offsets.history(*window, limit=100)) == 100  # unscoped: the cap, all globex
    acme = offsets.history(*window, limit=100, scope=Scope.of("acme"))
    assert len(acme) == 6 and {h["tenant"] for h in acme} == {"acme"}
    billing = offsets.history(*window, limit=100, scope=Scope.of("acme", ["billing"]))
    assert len(billing) == 3 and {h["service"] for h in billing} == {"billing"}
    # the cap still holds after the scope, oldest first
    capped = offsets.history(*window, limit=4, scope=Scope.of("acme"))
    assert [h["at"] for h in capped] == [h["at"] for h in acme[:4]]


def test_a_scope_value_is_a_parameter_not_text(offsets: ClockOffsets) -> None:
    hostile = offsets.history(T0, T0 + 10**9, scope=Scope.of("acme' OR '1'='1"))
    assert hostile == []


def test_the_key_s_scope_is_what_the_route_passes() -> None:
    class Key:
        tenant = "acme"
        services = ("billing",)

    assert _scope_of(None) is None
    assert _scope_of(Key()) == Scope.of("acme", ["billing"])
