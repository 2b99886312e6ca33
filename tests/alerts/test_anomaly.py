"""The ``anomaly`` condition on a real server process: a value against its own baseline.

The records carry past timestamps (ingest keeps them), so a week of history is written in a
second. The scheduled evaluator fires the rule and a real webhook receiver gets the payload.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.cli.terminal import in_process
from tests.conftest import ServerProcess

from .conftest import Receiver

S = 10**9
M = 60 * S
D = 86400 * S


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("alerts-anomaly") / "data", "--batch-max-age", "0.2").start()
    yield server
    server.stop()


def burst(service: str, n: int, at_ns: int, *, level: str = "ERROR", spread_ns: int = 20 * S) -> list[dict[str, Any]]:
    return [{"timestamp": at_ns + i * spread_ns // n, "level": level, "service": service,
             "message": f"upstream timed out after {i} ms", "http": {"status": 502 if level == "ERROR" else 200}}
            for i in range(n)]


def alerts_of(server: ServerProcess, rule: str) -> dict[str, dict[str, Any]]:
    with server.client() as c:
        rows = c.get("/api/v1/alerts").json()["alerts"]
    return {a["group"].get("service", ""): a for a in rows if a["rule"] == rule}


def rule_status(server: ServerProcess, name: str) -> dict[str, Any]:
    with server.client() as c:
        return next(r for r in c.get("/api/v1/alerts/rules").json()["rules"] if r["name"] == name)


@pytest.mark.e2e
def test_error_burst_at_an_unusual_hour_fires_and_at_its_usual_hour_does_not(
        srv: ServerProcess, receiver: Receiver) -> None:
    now = time.time_ns()
    history = []
    for day in range(1, 8):  # the nightly-batch service has had this burst at this time every day
        history += burst("anom-batch", 30, now - day * D - 90 * S)
    history += burst("anom-batch", 30, now - 90 * S)  # ... and has it now
    history += burst("anom-web", 30, now - 90 * S)  # the same burst, a first for this service
    for day in range(1, 8):  # the web service is not silent at other times: INFO at this hour, errors at noon
        history += burst("anom-web", 30, now - day * D - 90 * S, level="INFO")
        history += burst("anom-web", 30, now - day * D + 6 * 3600 * S)
    srv.ingest(history)
    with srv.client() as c:
        assert c.post("/api/v1/channels", json={"name": "anomaly hook", "kind": "webhook",
                                                "config": {"url": receiver.url}}).status_code == 201
        rule = {"name": "unusual error burst", "query": "level:ERROR AND service:anom-*",
                "condition": {"type": "anomaly", "baseline": "same_hour", "periods": 7, "k": 3},
                "group_by": ["service"], "window": "5m", "interval": "10s", "channels": ["anomaly hook"],
                "annotations": {"summary": "{{service}}: {{value}} errors, usually {{median}} (MAD {{mad}}, k {{k}})"}}
        created = c.post("/api/v1/alerts/rules", json=rule)
        assert created.status_code == 201, created.text
        dry = c.post("/api/v1/alerts/test", json={"name": rule["name"]}).json()
        by_service = {g["group"]["service"]: g for g in dry["groups"]}
        assert by_service["anom-web"]["active"] and not by_service["anom-batch"]["active"]
        assert by_service["anom-batch"]["details"]["baseline"] == [30.0] * 7
        assert by_service["anom-web"]["details"]["baseline"] == [0.0] * 7
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not receiver.delivered:
        time.sleep(0.2)
    assert receiver.delivered, srv.log()
    body = receiver.delivered[0]["body"]
    assert body["status"] == "firing" and body["rule"] == "unusual error burst"
    [alert] = body["alerts"]
    assert alert["labels"]["service"] == "anom-web" and alert["value"] == 30
    details = alert["details"]
    assert (details["median"], details["mad"], details["k"], details["threshold"]) == (0, 0, 3, 3)
    assert alert["annotations"]["summary"] == "anom-web: 30 errors, usually 0 (MAD 0, k 3)"
    # a few more evaluations later: the usual burst never became an alert
    first = rule_status(srv, rule["name"])["last_eval_ns"]
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and rule_status(srv, rule["name"])["last_eval_ns"] <= first:
        time.sleep(0.2)
    current = alerts_of(srv, rule["name"])
    assert current["anom-web"]["state"] == "firing" and "anom-batch" not in current
    # the alert list (API, UI) says why, not only the value
    assert current["anom-web"]["details"]["median"] == 0 and current["anom-web"]["details"]["k"] == 3
    assert all(r["body"]["alerts"][0]["labels"]["service"] == "anom-web" for r in receiver.delivered)


def test_periods_baseline_and_directions(srv: ServerProcess) -> None:
    at = (time.time_ns() // M - 30) * M  # a whole minute half an hour ago, evaluated with "at"
    records = []
    for minute in range(1, 11):  # ten minutes of 5 to 7 errors a minute for each service
        for service in ("per-steady", "per-spike", "per-quiet"):
            records += burst(service, 5 + minute % 3, at - minute * M - 50 * S, spread_ns=40 * S)
    records += burst("per-steady", 6, at - 50 * S, spread_ns=40 * S)  # as usual
    records += burst("per-spike", 40, at - 50 * S, spread_ns=40 * S)  # a spike
    records += burst("per-quiet", 1, at - 50 * S)  # nearly nothing: a drop
    records += burst("per-new", 2, at - 50 * S)  # two errors of a service with no errors before
    srv.ingest(records)
    base = {"name": "error rate anomaly", "query": "level:ERROR AND service:per-*", "group_by": ["service"],
            "window": "1m", "interval": "10s"}

    def dry(condition: dict[str, Any]) -> dict[str, dict[str, Any]]:
        with srv.client() as c:
            answer = c.post("/api/v1/alerts/test", json={"rule": {**base, "condition": condition}, "at": at})
        assert answer.status_code == 200, answer.text
        return {g["group"]["service"]: g for g in answer.json()["groups"]}

    up = dry({"type": "anomaly", "baseline": "periods", "periods": 10})
    assert {s for s, g in up.items() if g["active"]} == {"per-spike"}
    assert up["per-spike"]["value"] == 40 and up["per-spike"]["details"]["median"] == 6
    assert up["per-spike"]["details"]["baseline"] == [float(5 + m % 3) for m in range(1, 11)]
    # per-new: 2 errors over a flat zero baseline stay under k × the MAD floor of 1
    assert up["per-new"]["details"]["mad"] == 0 and not up["per-new"]["active"]
    down = dry({"type": "anomaly", "baseline": "periods", "periods": 10, "direction": "down", "k": 2})
    assert {s for s, g in down.items() if g["active"]} == {"per-quiet"}
    both = dry({"type": "anomaly", "periods": 10, "direction": "both", "k": 2})
    assert {s for s, g in both.items() if g["active"]} == {"per-spike", "per-quiet"}
    # no floor and k 1: the two new errors are now an anomaly; a minimum change of 3 holds them back
    assert dry({"type": "anomaly", "periods": 10, "min_mad": 0, "k": 1})["per-new"]["active"]
    assert not dry({"type": "anomaly", "periods": 10, "min_mad": 0, "k": 1, "min_change": 3})["per-new"]["active"]
    # the 5xx ratio of all the services' requests (every burst is 502s): 1.0 throughout, no anomaly
    ratio = dry({"type": "anomaly", "metric": "ratio", "numerator": "status:>=500", "periods": 10})
    assert ratio["per-spike"]["value"] == 1.0 and not ratio["per-spike"]["active"]
    # a value of the query's own stats, by its own groups
    with srv.client() as c:
        answer = c.post("/api/v1/alerts/test", json={"at": at, "rule": {
            **base, "group_by": [], "query": "service:per-* | stats count() as n by service",
            "condition": "anomaly(n)"}}).json()
    assert {g["group"]["service"] for g in answer["groups"] if g["active"]} == {"per-spike"}
    assert answer["condition"] == "anomaly(n) up > 3 MAD over 12 periods"


def test_anomaly_rules_are_validated(srv: ServerProcess) -> None:
    rule = {"name": "bad anomaly", "query": "level:ERROR", "window": "5m"}
    bad = {
        "condition: an anomaly condition has no 'op' or 'threshold'": {"type": "anomaly", "threshold": 3},
        "condition: periods: between 3 and 60 earlier windows, not 2": {"type": "anomaly", "periods": 2},
        "condition: k: a positive number of MADs, not 0.0": {"type": "anomaly", "k": 0},
        "condition: min_change: a number of zero or more, not -1.0": {"type": "anomaly", "min_change": -1},
        "condition: an anomaly of a ratio needs 'numerator'": {"type": "anomaly", "metric": "ratio"},
        "condition: 'k' is not an option of a count condition": {"type": "count", "threshold": 1, "k": 3},
        "condition.direction: Input should be 'up', 'down' or 'both'": {"type": "anomaly", "direction": "sideways"},
        "condition.baseline: Input should be 'periods' or 'same_hour'": {"type": "anomaly", "baseline": "weekly"},
    }
    with srv.client() as c:
        for expected, condition in bad.items():
            answer = c.post("/api/v1/alerts/rules", json={**rule, "condition": condition})
            assert answer.status_code == 400, condition
            error = answer.json()["error"]
            assert error["code"] == "invalid_rule" and expected in error["message"], (expected, error)
        for expected, extra in {
            "window: a same_hour baseline compares windows of at most 1d": {"window": "2d"},
            "annotation 'summary': unknown template name {{template}}": {"annotations": {"summary": "{{template}}"}},
        }.items():
            answer = c.post("/api/v1/alerts/rules", json={**rule, **extra, "condition": {
                "type": "anomaly", "baseline": "same_hour"}})
            assert answer.status_code == 400 and expected in answer.json()["error"]["message"], answer.text
        assert c.get("/api/v1/alerts/rules/bad anomaly").status_code == 404


def doc_rules(kind: str) -> list[dict[str, Any]]:
    """The rules of docs/alerts.md whose condition is ``kind`` (object or text form)."""
    import yaml
    from tests.alerts.test_docs import blocks

    out = []
    for block in blocks("yaml rules"):
        data = yaml.safe_load(block)
        for rule in data["rules"] if isinstance(data, dict) else data:
            condition = rule["condition"]
            if (condition.get("type") if isinstance(condition, dict) else condition.split("(")[0]) == kind:
                out.append(rule)
    return out


def test_the_documented_anomaly_rules_run(srv: ServerProcess) -> None:
    rules = doc_rules("anomaly")
    assert len(rules) == 3
    with srv.client() as c:
        for rule in rules:
            answer = c.post("/api/v1/alerts/test", json={"rule": rule})
            assert answer.status_code == 200, (rule["name"], answer.text)
            assert answer.json()["condition"].startswith("anomaly(")


def test_cli_lists_an_anomaly_rule_with_its_condition(srv: ServerProcess) -> None:
    with srv.client() as c:
        assert c.put("/api/v1/alerts/rules/cli anomaly", json={
            "name": "cli anomaly", "query": "level:ERROR", "group_by": ["service"], "window": "10m",
            "condition": {"type": "anomaly", "baseline": "same_hour", "direction": "both"}}).status_code == 201
    listed = in_process("alerts", "list", "--server", srv.url, "--api-key", srv.api_key)
    assert listed.code == 0, listed.err
    lines = listed.out.splitlines()
    at = next(i for i, x in enumerate(lines) if "cli anomaly" in x)
    cell = " ".join(x.split("│")[2].strip() for x in lines[at:at + 3])  # rich wraps the column
    assert cell.startswith("anomaly(cou") and "both > 3 MAD over 7 days" in cell, listed.out


def test_for_repeat_and_resolve_of_an_anomaly(harness: Any) -> None:
    """The state machine is the one of every rule: pending for ``for``, repeats, resolves (manual clock)."""
    from .conftest import T0, insert
    from .test_evaluator import outbox, put

    h = harness
    svc = "h-anomaly"
    records = [{"timestamp": T0 - m * M + i * S, "level": "ERROR", "service": svc, "message": "x"}
               for m in range(1, 11) for i in range(2)]  # 2 errors a minute for ten minutes
    records += [{"timestamp": T0 + i * 4 * S, "level": "ERROR", "service": svc, "message": "x"}
                for i in range(45)]  # then 15 a minute for three minutes
    insert(h.store, records)
    h.catalog.put_channel("hook", "webhook", {"url": "http://127.0.0.1:9/unused"})
    r = put(h, name="anomaly states", query=f"level:ERROR AND service:{svc}", window="1m", interval="1m",
            condition={"type": "anomaly", "periods": 5}, channels=["hook"], repeat_interval="1m",
            **{"for": "1m"})

    def state() -> str:
        return next(iter(h.catalog.states(r.id).values()))["state"]

    h.evaluator.evaluate(r, T0 + 1 * M)  # 15 against five windows of 2: anomalous, for not over
    assert state() == "pending"
    h.evaluator.evaluate(r, T0 + 2 * M)  # 15 against 15, 2, 2, 2, 2: median 2, still anomalous
    assert state() == "firing"
    h.evaluator.evaluate(r, T0 + 3 * M)  # 15 against 15, 15, 2, 2, 2: firing, told again (repeat 1m)
    assert state() == "firing"
    h.evaluator.evaluate(r, T0 + 4 * M)  # the burst is over: 0 is not above the median
    assert state() == "resolved"
    rows = outbox(h)
    assert [(row["kind"], row["batch"]) for row in rows] == [
        ("firing", T0 + 2 * M), ("firing", T0 + 3 * M), ("resolved", T0 + 4 * M)]
    first = rows[0]["alert"]
    assert first["value"] == 15 and first["details"]["median"] == 2 and first["details"]["k"] == 3
    assert first["details"]["baseline"] == [15.0, 2.0, 2.0, 2.0, 2.0]
