"""The clock offsets history confines a scoped key in SQL, before the row cap: filtered after a
cap of 50,000 rows, a key of a small tenant got a truncated (or empty) history whenever another
tenant had more rows in the window. In process, on a real chDB store."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from starlette.requests import Request

from logharbor.server.auth import viewer_of
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.sql import clock as clock_sql
from logharbor.server.features.traces import clock as clock_module
from logharbor.server.features.traces.clock import _TYPES, ClockOffsets
from logharbor.server.meta.keys import Principal
from logharbor.server.scopes import Scope

MS = 10**6


@pytest.fixture(scope="module")
def stamps() -> tuple[int, int]:
    """(T0, T1): an hour ago (inside the table's 30-day TTL) and a minute ago (the latest estimates,
    of the last hour), taken when the module runs: taken at collection, a long run (the whole
    suite) left T1 out of the last hour that ``latest`` reads, and its test failed."""
    now_s = time.time_ns() // 10**9
    return (now_s - 3600) * 10**9, (now_s - 60) * 10**9


@pytest.fixture(scope="module")
def offsets(tmp_path_factory: pytest.TempPathFactory, stamps: tuple[int, int]) -> Iterator[ClockOffsets]:
    T0, T1 = stamps
    store = EmbeddedStore(Path(tmp_path_factory.mktemp("clockscope")) / "store")
    store.open()
    clock = ClockOffsets(store)
    clock.ensure()
    rows = []
    for i in range(200):  # a busy tenant first in time: it fills any cap taken before the scope
        rows.append(_row(T0 + i * MS, "globex", f"g-{i % 7}", "api"))
    for i in range(6):
        rows.append(_row(T0 + (500 + i) * MS, "acme", f"a-{i % 3}", "checkout" if i % 2 else "billing"))
    for i in range(3):  # acme's older estimate, of a clock its latest one no longer has
        rows.append(_row(T1 - 10**10 + i * MS, "acme", "a-gone", "checkout"))
    for i in range(40):  # the latest estimates: globex's first in (tenant, clock) order
        rows.append(_row(T1, "globex", f"g-{i:02d}", "api"))
    for i in range(3):
        rows.append(_row(T1 + MS, "acme", f"a-{i}", "billing" if i == 0 else "checkout"))
    for chunk in range(0, len(rows), 50):
        store.query(*clock_sql.insert_sql(clock.table, _TYPES, rows[chunk:chunk + 50], ns_column="at"))
    yield clock
    store.close()


def _row(at: int, tenant: str, clock: str, service: str) -> dict[str, object]:
    return {"at": at, "tenant": tenant, "clock": clock, "layer": "app", "host": clock, "instance": clock,
            "service": service, "reference": "alb", "offset_ms": 1.5, "uncertainty_ms": 0.5,
            "requests": 10, "consistent": 1}


def test_a_scoped_history_is_whole_under_a_cap_other_tenants_fill(offsets: ClockOffsets,
                                                                   stamps: tuple[int, int]) -> None:
    window = (stamps[0], stamps[0] + 10**9)
    assert len(offsets.history(*window, limit=100)) == 100  # unscoped: the cap, all globex
    acme = offsets.history(*window, limit=100, scope=Scope.of("acme"))
    assert len(acme) == 6 and {h["tenant"] for h in acme} == {"acme"}
    billing = offsets.history(*window, limit=100, scope=Scope.of("acme", ["billing"]))
    assert len(billing) == 3 and {h["service"] for h in billing} == {"billing"}
    # the cap still holds after the scope; it keeps the newest rows, shown oldest first
    capped = offsets.history(*window, limit=4, scope=Scope.of("acme"))
    assert [h["at"] for h in capped] == [h["at"] for h in acme[-4:]]
    newest = offsets.history(*window, limit=10)  # unscoped: the 10 newest of globex and acme
    assert [h["at"] for h in newest] == sorted(h["at"] for h in newest)
    assert newest[-1]["tenant"] == "acme" and newest[-1]["at"] == acme[-1]["at"]
    page, cut = offsets.history_page(*window, limit=4, scope=Scope.of("acme"))  # what the route answers
    assert (page, cut) == (capped, True)
    assert offsets.history_page(*window, limit=6, scope=Scope.of("acme")) == (acme, False)


def test_a_scope_value_is_a_parameter_not_text(offsets: ClockOffsets, stamps: tuple[int, int]) -> None:
    hostile = offsets.history(stamps[0], stamps[0] + 10**9, scope=Scope.of("acme' OR '1'='1"))
    assert hostile == []


def test_the_key_s_scope_is_what_the_route_passes() -> None:
    key = Principal(prefix="lh_x", role="reader", tenant="acme", services=("billing",))
    assert viewer_of(Request({"type": "http", "state": {}})).unscoped  # auth off: every clock
    assert viewer_of(Request({"type": "http", "state": {"principal": key}})) == Scope.of("acme", ["billing"])


def test_the_latest_offsets_confine_a_scoped_key_before_the_row_cap(
        offsets: ClockOffsets, monkeypatch: pytest.MonkeyPatch) -> None:
    """``latest`` read every tenant's latest rows (capped) and left the scope to the route: a
    small tenant's clocks went missing whenever others filled the cap."""
    monkeypatch.setattr(clock_module, "LATEST_LIMIT", 20)
    offsets._cache.clear()
    assert len(offsets.latest()) == 20  # the cap (the newest rows: acme's 3, then globex's)
    acme = offsets.latest(Scope.of("acme"))
    assert sorted(c["clock"] for c in acme) == ["a-0", "a-1", "a-2"]  # the latest estimate only
    assert [c["clock"] for c in offsets.latest(Scope.of("acme", ["billing"]))] == ["a-0"]
    assert sorted(offsets.offsets_for("acme")) == [("app", "a-0"), ("app", "a-1"), ("app", "a-2")]
    assert offsets.latest(Scope.of("acme' OR '1'='1")) == []
