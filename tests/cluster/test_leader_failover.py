"""Killing the leader moves alert evaluation to the other server: the firing notification sent
by the first leader is not sent again by the second, and the resolve is sent once, by the second.

Two real servers share PostgreSQL metadata (alert rules, states and the outbox) and one ClickHouse
store (the HTTP double); the leader is whoever holds the PostgreSQL advisory lock."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from tests.alerts.conftest import Receiver, receiver  # noqa: F401 - the alerting tests' webhook receiver
from tests.conftest import ServerProcess

from .conftest import Double
from .test_side_by_side import pair  # noqa: F401 - two servers on one store and one metadata DB

pytestmark = pytest.mark.slow


def wait_for(check: Any, timeout: float = 40.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


def leads(server: ServerProcess) -> bool:
    try:
        text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=10).text
    except httpx.HTTPError:
        return False
    return "logharbor_leader 1.0" in text


@pytest.fixture
def leader_and_follower(pair: tuple[ServerProcess, ServerProcess]  # noqa: F811
                        ) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    a, b = pair
    first = wait_for(lambda: a if leads(a) else b if leads(b) else None)
    other = b if first is a else a
    assert not leads(other), "two leaders at once"
    yield first, other


def test_killing_the_leader_moves_alerting_without_missed_or_doubled_notifications(
        leader_and_follower: tuple[ServerProcess, ServerProcess], receiver: Receiver,  # noqa: F811
        chdouble: Double) -> None:
    first, second = leader_and_follower
    rule = {"query": "level:ERROR AND service:failover", "condition": "count > 2", "window": "30m",
            "interval": "10s", "channels": ["hook"], "annotations": {"summary": "{{value}} errors"}}
    with first.client() as c:
        c.post("/api/v1/channels", json={"name": "hook", "kind": "webhook",
                                         "config": {"url": receiver.url}}).raise_for_status()
        c.post("/api/v1/logs", content=b"\n".join(orjson.dumps(
            {"level": "ERROR", "service": "failover", "message": "failed"}) for _ in range(3))).raise_for_status()
        wait_for(lambda: second.query("service:failover", since="1h")["rows"])
        c.post("/api/v1/alerts/rules", json={"name": "failover errors", **rule}).raise_for_status()
    wait_for(lambda: receiver.delivered)  # the first slot is at most 10 s away
    assert receiver.delivered[0]["body"]["status"] == "firing"
    # the leader records the delivery right after the receiver answered; a crash between the two
    # is the outbox's at-least-once window (docs/scaling.md), so kill it once it is recorded
    with second.client() as c:
        wait_for(lambda: [n["status"] for n in c.get("/api/v1/alerts/notifications").json()["notifications"]]
                 == ["sent"])

    first.kill9()  # its PostgreSQL session ends with it, and the advisory lock with the session
    wait_for(lambda: leads(second))
    with second.client() as c:
        evaluated = c.get("/api/v1/alerts/rules/failover errors").json()["last_eval_ns"]
        # the new leader evaluates the rule on its own schedule …
        wait_for(lambda: c.get("/api/v1/alerts/rules/failover errors").json()["last_eval_ns"] > evaluated)
        # … finds it already firing and notified, and does not notify again
        assert [a["state"] for a in c.get("/api/v1/alerts").json()["alerts"]] == ["firing"]
        assert len(receiver.requests) == 1
        # the condition stops holding: the resolve comes once, from the new leader
        c.put("/api/v1/alerts/rules/failover errors", json={**rule, "condition": "count > 100"}).raise_for_status()
        wait_for(lambda: len(receiver.delivered) == 2)
        assert receiver.delivered[1]["body"]["status"] == "resolved"
        # as above: the receiver has the body before the leader records the delivery
        wait_for(lambda: sorted((n["kind"], n["status"]) for n in
                                c.get("/api/v1/alerts/notifications").json()["notifications"])
                 == [("firing", "sent"), ("resolved", "sent")])
        history = c.get("/api/v1/alerts/history", params={"rule": "failover errors"}).json()["history"]
        assert sorted((h["from_state"], h["to_state"]) for h in history) == [("firing", "resolved"),
                                                                               ("inactive", "firing")]
    time.sleep(1.0)
    assert len(receiver.requests) == 2  # nothing doubled after the fact either
