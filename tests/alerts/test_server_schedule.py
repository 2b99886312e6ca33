"""The evaluator inside a real server: a rule fires on its own schedule, the webhook arrives once,
and a restart of the server (kill -9) neither sends it again nor forgets it (it still resolves later)."""

from __future__ import annotations

import time
from typing import Any

import orjson
import pytest

from .conftest import Receiver


def wait_for(check: Any, timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError("condition not met in time")


@pytest.mark.e2e
def test_scheduled_firing_survives_a_restart(server_factory, receiver: Receiver) -> None:  # type: ignore[no-untyped-def]
    receiver.secret = "e2e-secret-value"
    server = server_factory("--batch-max-age", "0.2")
    with server.client() as c:
        c.post("/api/v1/channels", json={"name": "hook", "kind": "webhook",
                                         "config": {"url": receiver.url, "secret": receiver.secret}}).raise_for_status()
        c.post("/api/v1/logs", content=b"\n".join(orjson.dumps(
            {"level": "ERROR", "service": "e2e", "message": "failed"}) for _ in range(3))).raise_for_status()
        server.wait_rows(3)
        c.post("/api/v1/alerts/rules", json={
            "name": "e2e errors", "query": "level:ERROR AND service:e2e", "condition": "count > 2",
            "window": "30m", "interval": "10s", "channels": ["hook"],
            "annotations": {"summary": "{{value}} errors"}}).raise_for_status()
        wait_for(lambda: receiver.delivered, timeout=30)  # the first slot is at most 10 s away
        body = receiver.delivered[0]["body"]
        assert body["status"] == "firing" and body["alerts"][0]["annotations"]["summary"] == "3 errors"
        assert receiver.delivered[0]["signature_ok"]
        alerts = c.get("/api/v1/alerts").json()["alerts"]
        assert [(a["rule"], a["state"], a["value"]) for a in alerts] == [("e2e errors", "firing", 3.0)]
        evaluated = c.get("/api/v1/alerts/rules/e2e errors").json()["last_eval_ns"]
        # The receiver has the body before the server has its 200 answer: the server counts and marks
        # the notification sent after that, so wait for it (a kill -9 before the mark resends, by design).
        wait_for(lambda: [n["status"] for n in c.get("/api/v1/alerts/notifications").json()["notifications"]]
                 == ["sent"])
        metrics = wait_for(lambda: next((m for m in [c.get("/metrics").text]
                                         if "logharbor_alert_notifications_sent 1.0" in m), None))
        assert "logharbor_alerts_firing 1.0" in metrics and "logharbor_alert_notifications_sent 1.0" in metrics
    server.kill9()  # no graceful shutdown: state and outbox must already be on disk
    server.start()
    with server.client() as c:
        # wait until the restarted server has evaluated the rule again
        wait_for(lambda: c.get("/api/v1/alerts/rules/e2e errors").json()["last_eval_ns"] > evaluated, timeout=30)
        assert [a["state"] for a in c.get("/api/v1/alerts").json()["alerts"]] == ["firing"]
        notes = c.get("/api/v1/alerts/notifications").json()["notifications"]
        assert [(n["kind"], n["status"]) for n in notes] == [("firing", "sent")]
        mine = c.get("/api/v1/alerts/notifications", params={"rule": "e2e errors"}).json()["notifications"]
        assert [n["id"] for n in mine] == [n["id"] for n in notes]
        assert c.get("/api/v1/alerts/notifications", params={"rule": "no such rule"}).json()["notifications"] == []
        assert len(receiver.requests) == 1  # not sent again after the restart
        history = c.get("/api/v1/alerts/history", params={"rule": "e2e errors"}).json()["history"]
        assert [(h["from_state"], h["to_state"]) for h in history] == [("inactive", "firing")]
        # the rule is narrowed so the condition stops holding: the remembered alert resolves
        c.put("/api/v1/alerts/rules/e2e errors", json={
            "query": "level:ERROR AND service:e2e", "condition": "count > 100", "window": "30m",
            "interval": "10s", "channels": ["hook"], "annotations": {"summary": "{{value}} errors"}}
        ).raise_for_status()
        wait_for(lambda: len(receiver.delivered) == 2, timeout=30)
        assert receiver.delivered[1]["body"]["status"] == "resolved"
        assert [a["state"] for a in c.get("/api/v1/alerts").json()["alerts"]] == ["resolved"]
