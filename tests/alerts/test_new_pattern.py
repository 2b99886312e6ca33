"""The ``new_pattern`` condition on a real server process: a template a service never logged before.

Records with past timestamps give one service two days of history and another two hours; the
server mines their patterns on ingest, the scheduled evaluator fires the rule and a real
webhook receiver gets the alert with the template, a sample and the count.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import ServerProcess

from .conftest import Receiver

S = 10**9
H = 3600 * S


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("alerts-patterns") / "data", "--batch-max-age", "0.2").start()
    yield server
    server.stop()


def rec(service: str, at_ns: int, level: str, message: str) -> dict[str, Any]:
    return {"timestamp": at_ns, "service": service, "level": level, "message": message}


def history(service: str, since_ns: int, until_ns: int) -> list[dict[str, Any]]:
    """What a service usually logs, every ten minutes from ``since`` to ``until``."""
    out = []
    for i, t in enumerate(range(since_ns, until_ns, 600 * S)):
        out += [rec(service, t, "INFO", f"user u-{i} logged in from 10.0.{i % 7}.{i % 200}"),
                rec(service, t + S, "WARN", f"slow query on orders took {300 + i} ms")]
    return out


def payment(service: str, now: int, n: int) -> list[dict[str, Any]]:
    return [rec(service, now - 60 * S + i * S, "ERROR", f"payment gateway refused card ending {4000 + i} with code 51")
            for i in range(n)]


def test_new_error_pattern_of_an_established_service_fires(srv: ServerProcess, receiver: Receiver) -> None:
    now = time.time_ns()
    records = history("np-old", now - 48 * H, now - 10 * 60 * S)  # two days of the usual
    records += history("np-young", now - 2 * H, now - 10 * 60 * S)  # a service two hours old
    records += payment("np-old", now, 3) + payment("np-young", now, 2)  # new to both
    records += [rec("np-old", now - 50 * S, "WARN", "slow query on orders took 950 ms"),  # known pattern
                rec("np-old", now - 40 * S, "INFO", "feature flag checkout-v2 switched on for 5 percent")]  # new, INFO
    srv.ingest(records)
    mined = srv.query("service:np-old AND payment", **{"from": "now-1h"})["rows"]
    assert len(mined) == 3 and len({r["pattern_id"] for r in mined}) == 1, "the server mines one pattern"
    payment_id = mined[0]["pattern_id"]
    with srv.client() as c:
        assert c.post("/api/v1/channels", json={"name": "pattern hook", "kind": "webhook",
                                                "config": {"url": receiver.url}}).status_code == 201
        rule = {"name": "new error patterns", "query": "service:np-*", "condition": "new_pattern",
                "window": "5m", "interval": "10s", "channels": ["pattern hook"],
                "annotations": {"summary": "{{service}} logs something new: {{template}} ({{count}}×)",
                                "example": "{{sample}}"}}
        created = c.post("/api/v1/alerts/rules", json=rule)
        assert created.status_code == 201, created.text
        assert created.json()["spec"]["condition"] == {"type": "new_pattern", "op": ">", "threshold": 0.0,
                                                        "numerator": None, "column": None,
                                                        "min_level": "WARN", "learning": "24h"}

        def dry(**condition: Any) -> dict[tuple[str, str], dict[str, Any]]:
            answer = c.post("/api/v1/alerts/test", json={"rule": {**rule, "condition": {
                "type": "new_pattern", **condition}}})
            assert answer.status_code == 200, answer.text
            return {(g["group"]["service"], g["group"]["pattern_id"]): g for g in answer.json()["groups"]}

        assert set(dry()) == {("np-old", payment_id)}
        # INFO counts too from min_level INFO: the feature-flag message is new as well
        info = dry(min_level="INFO")
        assert len(info) == 2 and ("np-old", payment_id) in info
        assert any("feature flag" in g["details"]["sample"] for g in info.values())
        # with a learning period of one hour, the two-hour-old service is past it
        assert {s for s, _ in dry(learning="1h")} == {"np-old", "np-young"}
        assert set(dry(min_level="FATAL")) == set()
        # a key scoped to the young service sees only its records: the new payment pattern of
        # np-old is not there, and with a one-hour learning period np-young's is. It names no
        # channel: the unscoped admin's channel is outside its scope, and a preview refuses a
        # channel as saving would (tests/alerts/test_api.py)
        scoped = {"authorization": f"Bearer {srv.create_key('reader', services=['np-young'])}"}
        answer = c.post("/api/v1/alerts/test", headers=scoped, json={"rule": {
            **rule, "channels": [], "condition": {"type": "new_pattern", "learning": "1h"}}}).json()
        assert [g["group"]["service"] for g in answer["groups"]] == ["np-young"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not receiver.delivered:
        time.sleep(0.2)
    assert receiver.delivered, srv.log()
    [alert] = receiver.delivered[0]["body"]["alerts"]
    assert alert["labels"] == {"alertname": "new error patterns", "service": "np-old", "pattern_id": payment_id}
    assert alert["value"] == 3 and alert["details"]["count"] == 3
    assert "payment gateway refused card ending" in alert["details"]["template"]
    assert alert["details"]["sample"].startswith("payment gateway refused card ending 400")
    assert alert["annotations"]["summary"] == f"np-old logs something new: {alert['details']['template']} (3×)"


def test_new_pattern_rules_are_validated(srv: ServerProcess) -> None:
    rule = {"name": "bad new pattern", "query": "service:x", "window": "5m"}
    bad = {
        "condition: a new_pattern condition has no 'op' or 'threshold'": {"type": "new_pattern", "threshold": 1},
        "condition: learning: ": {"type": "new_pattern", "learning": "a day"},
        "condition.min_level: Input should be": {"type": "new_pattern", "min_level": "NOTICE"},
        "condition: 'k' is not an option of a new_pattern condition": {"type": "new_pattern", "k": 3},
        "condition: 'learning' is not an option of a count condition": {"type": "count", "learning": "1h"},
    }
    with srv.client() as c:
        for expected, condition in bad.items():
            answer = c.post("/api/v1/alerts/rules", json={**rule, "condition": condition})
            assert answer.status_code == 400, condition
            assert expected in answer.json()["error"]["message"], (expected, answer.json())
        grouped = c.post("/api/v1/alerts/rules", json={**rule, "condition": "new_pattern", "group_by": ["host"]})
        assert "group_by: a new_pattern rule has one alert per service and pattern" in grouped.json()["error"]["message"]
        piped = c.post("/api/v1/alerts/rules", json={**rule, "condition": "new_pattern",
                                                     "query": "service:x | stats count() as n"})
        assert "query: a new_pattern rule takes a filter only" in piped.json()["error"]["message"]


def test_the_documented_new_pattern_rules_run(srv: ServerProcess) -> None:
    from .test_anomaly import doc_rules

    rules = doc_rules("new_pattern")
    assert len(rules) == 2
    with srv.client() as c:
        for rule in rules:
            answer = c.post("/api/v1/alerts/test", json={"rule": rule})
            assert answer.status_code == 200, (rule["name"], answer.text)
            assert answer.json()["condition"].startswith("new_pattern (level >= ")
