"""The PagerDuty channel (#26 item 11) against a local receiver that checks every request
against the Events API v2 schema as PagerDuty documents it
(https://developer.pagerduty.com/docs/events-api-v2/trigger-events/ and resolve-events/):
trigger and resolve under one dedup_key per alert group, through the real dispatcher."""

from __future__ import annotations

from typing import Any

import jsonschema
import pytest

from logharbor.server.features.alerts.channels import Alert, Notification, Permanent, Retriable, build_channel
from logharbor.server.features.alerts.channels.pagerduty import dedup_key

from .conftest import T0, Harness, Receiver, S, insert, run
from .test_channels import errors, put

M = 60 * S
ROUTING_KEY = "R0123456789abcdef0123456789abcde"  # 32 characters, as PagerDuty issues them

_STRING = {"type": "string"}
EVENT_SCHEMA: dict[str, Any] = {
    "type": "object",
    "required": ["routing_key", "event_action"],
    "additionalProperties": False,
    "properties": {
        "routing_key": {"type": "string", "minLength": 1},
        "event_action": {"enum": ["trigger", "acknowledge", "resolve"]},
        "dedup_key": {"type": "string", "maxLength": 255},
        "payload": {
            "type": "object",
            "required": ["summary", "source", "severity"],
            "additionalProperties": False,
            "properties": {
                "summary": {"type": "string", "minLength": 1, "maxLength": 1024},
                "source": {"type": "string", "minLength": 1},
                "severity": {"enum": ["critical", "error", "warning", "info"]},
                "timestamp": {"type": "string", "format": "date-time",
                              "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"},
                "component": _STRING, "group": _STRING, "class": _STRING,
                "custom_details": {"type": "object"},
            },
        },
        "images": {"type": "array"}, "links": {"type": "array"},
        "client": _STRING, "client_url": _STRING,
    },
    "allOf": [
        {"if": {"properties": {"event_action": {"const": "trigger"}}}, "then": {"required": ["payload"]}},
        {"if": {"properties": {"event_action": {"enum": ["acknowledge", "resolve"]}}},
         "then": {"required": ["dedup_key"]}},
    ],
}


def checked(receiver: Receiver) -> list[dict[str, Any]]:
    """Every body the receiver got, each valid against the Events API v2 schema."""
    bodies = [r["body"] for r in receiver.requests]
    for body in bodies:
        jsonschema.validate(body, EVENT_SCHEMA)
    return bodies


def test_trigger_then_resolve_with_one_dedup_key_per_group(harness: Harness, receiver: Receiver) -> None:
    h = harness
    receiver.status = 202
    h.catalog.put_channel("pd", "pagerduty", {"routing_key": ROUTING_KEY, "url": receiver.url})
    r = put(h, name="checkout errors", query="level:ERROR AND env:pd", condition="count > 0", window="5m",
            group_by=["service"], channels=["pd"], labels={"severity": "critical"},
            annotations={"summary": "{{service}}: {{value}} errors"})
    insert(h.store, errors("pd-a", 1, T0 - M, env="pd") + errors("pd-b", 2, T0 - M, env="pd"))
    h.evaluator.evaluate(r, T0)
    assert run(h.dispatcher.deliver_due()) == 1
    triggers = checked(receiver)
    assert [t["event_action"] for t in triggers] == ["trigger", "trigger"]
    by_service = {t["payload"]["component"]: t for t in triggers}
    assert set(by_service) == {"pd-a", "pd-b"}
    a = by_service["pd-a"]
    assert a["routing_key"] == ROUTING_KEY and a["payload"]["severity"] == "critical"
    assert a["payload"]["summary"] == "pd-a: 1 errors" and a["payload"]["source"] == "logharbor"
    assert a["payload"]["custom_details"]["value"] == 1.0
    keys = {service: t["dedup_key"] for service, t in by_service.items()}
    assert len(set(keys.values())) == 2  # one incident per group

    h.clock.set(T0 + 10 * M)
    h.evaluator.evaluate(r, T0 + 10 * M)  # the errors left the window: resolved
    run(h.dispatcher.deliver_due())
    resolves = checked(receiver)[2:]
    assert sorted((e["event_action"], e["dedup_key"]) for e in resolves) == \
        sorted(("resolve", key) for key in keys.values())


def test_test_send_leaves_no_incident_open(harness: Harness, receiver: Receiver) -> None:
    h = harness
    h.catalog.put_channel("pd", "pagerduty", {"routing_key": ROUTING_KEY, "url": receiver.url,
                                              "severity": "warning"})
    run(h.dispatcher.send_test("pd"))
    bodies = checked(receiver)
    assert [b["event_action"] for b in bodies] == ["trigger", "resolve"]
    assert bodies[0]["dedup_key"] == bodies[1]["dedup_key"]
    assert bodies[0]["payload"]["summary"].startswith("[TEST]")


def test_statuses_and_keys() -> None:
    assert dedup_key("r", {"service": "a", "host": "x"}) == dedup_key("r", {"host": "x", "service": "a"})
    assert dedup_key("r", {"service": "a"}) != dedup_key("r2", {"service": "a"})
    with pytest.raises(ValueError):
        build_channel("pagerduty", {"routing_key": ""})
    notification = Notification("r", "firing", [Alert({"service": "a"}, {}, 1.0, "firing", T0)], T0)
    for status, error in ((400, Permanent), (429, Retriable), (503, Retriable)):
        channel = build_channel("pagerduty", {"routing_key": ROUTING_KEY, "url": _answering(status)})
        with pytest.raises(error):
            run(channel.send(notification))


def _answering(status: int) -> str:
    """A loopback URL whose server answers ``status`` to every POST (closed with the process)."""
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            self.rfile.read(int(self.headers.get("content-length", 0)))
            self.send_response(status)
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f"http://127.0.0.1:{server.server_address[1]}/v2/enqueue"
