"""The Alertmanager and Microsoft Teams channels (#26 item 11) against a local receiver that
checks each body against the service's documented schema: Alertmanager's OpenAPI v2
``postableAlerts`` (api/v2/openapi.yaml, POST /api/v2/alerts) and the Teams workflow message
with an Adaptive Card (learn.microsoft.com "Create incoming webhooks with Workflows"; the card
elements used, TextBlock and FactSet, as adaptivecards.io documents them for version 1.4),
through the real dispatcher."""

from __future__ import annotations

from typing import Any

import jsonschema

from logharbor.server.features.alerts.channels import Alert, Notification, build_channel

from .conftest import T0, Harness, Receiver, S, insert, run
from .test_channels import errors, put

M = 60 * S
_TIME = {"type": "string", "pattern": r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$"}
_LABEL_SET = {"type": "object", "additionalProperties": {"type": "string"}}
# openapi.yaml: postableAlerts = [postableAlert]; postableAlert = {startsAt, endsAt, annotations} + alert
POSTABLE_ALERTS: dict[str, Any] = {
    "type": "array",
    "items": {
        "type": "object",
        "required": ["labels"],
        "additionalProperties": False,
        "properties": {
            "labels": {**_LABEL_SET, "propertyNames": {"pattern": r"^[a-zA-Z_][a-zA-Z0-9_]*$"}},
            "annotations": _LABEL_SET,
            "startsAt": _TIME, "endsAt": _TIME,
            "generatorURL": {"type": "string", "format": "uri"},
        },
    },
}
_TEXT_BLOCK = {"type": "object", "required": ["type", "text"],
               "properties": {"type": {"const": "TextBlock"}, "text": {"type": "string"},
                              "weight": {"enum": ["Default", "Lighter", "Bolder"]},
                              "size": {"enum": ["Default", "Small", "Medium", "Large", "ExtraLarge"]},
                              "color": {"enum": ["Default", "Dark", "Light", "Accent", "Good", "Warning",
                                                 "Attention"]},
                              "wrap": {"type": "boolean"}}}
_FACT_SET = {"type": "object", "required": ["type", "facts"],
             "properties": {"type": {"const": "FactSet"}, "separator": {"type": "boolean"},
                            "facts": {"type": "array", "items": {
                                "type": "object", "required": ["title", "value"], "additionalProperties": False,
                                "properties": {"title": {"type": "string"}, "value": {"type": "string"}}}}}}
TEAMS_MESSAGE: dict[str, Any] = {
    "type": "object",
    "required": ["type", "attachments"],
    "properties": {
        "type": {"const": "message"},
        "attachments": {"type": "array", "minItems": 1, "items": {
            "type": "object", "required": ["contentType", "content"],
            "properties": {
                "contentType": {"const": "application/vnd.microsoft.card.adaptive"},
                "contentUrl": {"type": "null"},
                "content": {"type": "object", "required": ["type", "version", "body"],
                            "properties": {"type": {"const": "AdaptiveCard"}, "version": {"const": "1.4"},
                                           "$schema": {"type": "string"},
                                           "body": {"type": "array", "items": {"oneOf": [_TEXT_BLOCK, _FACT_SET]}}}},
            }}},
    },
}


def test_alertmanager_gets_postable_alerts_then_their_end(harness: Harness, receiver: Receiver) -> None:
    h = harness
    h.catalog.put_channel("am", "alertmanager", {"url": receiver.url.removesuffix("/hook") + "/",
                                                 "generator_url": "https://logs.example.test/ui/"})
    r = put(h, name="checkout errors", query="level:ERROR AND env:am", condition="count > 0", window="5m",
            group_by=["service", "kubernetes.pod_name"], channels=["am"], labels={"severity": "page"},
            annotations={"summary": "{{service}}: {{value}}"})
    insert(h.store, errors("am-a", 1, T0 - M, env="am", kubernetes={"pod_name": "a-1"})
           + errors("am-b", 2, T0 - M, env="am", kubernetes={"pod_name": "b-1"}))
    h.evaluator.evaluate(r, T0)
    assert run(h.dispatcher.deliver_due()) == 1
    h.clock.set(T0 + 10 * M)
    h.evaluator.evaluate(r, T0 + 10 * M)
    run(h.dispatcher.deliver_due())
    assert [q["path"] for q in receiver.requests] == ["/api/v2/alerts"] * 2
    firing, resolved = (q["body"] for q in receiver.requests)
    for body in (firing, resolved):
        jsonschema.validate(body, POSTABLE_ALERTS)
    a = next(x for x in firing if x["labels"]["service"] == "am-a")
    assert a["labels"] == {"alertname": "checkout errors", "severity": "page", "service": "am-a",
                           "kubernetes_pod_name": "a-1"}
    assert a["annotations"] == {"summary": "am-a: 1"} and "endsAt" not in a
    assert a["startsAt"].startswith("2027-01-15T08:00:00") and a["generatorURL"] == "https://logs.example.test/ui/"
    assert len(firing) == 2 and len(resolved) == 2
    assert all(x["endsAt"].startswith("2027-01-15T08:10:00") for x in resolved)
    assert {x["labels"]["service"] for x in resolved} == {"am-a", "am-b"}


def test_teams_gets_an_adaptive_card(harness: Harness, receiver: Receiver) -> None:
    h = harness
    receiver.status = 202
    h.catalog.put_channel("teams", "teams", {"url": receiver.url})
    r = put(h, name="checkout errors", query="level:ERROR AND env:teams", condition="count > 0", window="5m",
            group_by=["service"], channels=["teams"], annotations={"summary": "{{service}}: {{value}}"})
    insert(h.store, errors("teams-a", 3, T0 - M, env="teams"))
    h.evaluator.evaluate(r, T0)
    assert run(h.dispatcher.deliver_due()) == 1
    run(h.dispatcher.send_test("teams"))
    for request in receiver.requests:
        jsonschema.validate(request["body"], TEAMS_MESSAGE)
    card = receiver.requests[0]["body"]["attachments"][0]["content"]
    assert card["body"][0]["text"] == "[FIRING] checkout errors: teams-a: 3" and card["body"][0]["color"] == "Attention"
    facts = {f["title"]: f["value"] for f in card["body"][1]["facts"]}
    assert facts["group"] == "service=teams-a" and facts["value"] == "3" and facts["summary"] == "teams-a: 3"
    test_card = receiver.requests[1]["body"]["attachments"][0]["content"]
    assert test_card["body"][0]["text"].startswith("[TEST]")


def test_alertmanager_test_send_ends_by_itself(receiver: Receiver) -> None:
    channel = build_channel("alertmanager", {"url": receiver.url.removesuffix("/hook")})
    run(channel.send(Notification("disk", "firing", [Alert({"host": "web-1"}, {}, 1.0, "firing", T0)], T0,
                                  test=True)))
    (alert,) = receiver.requests[0]["body"]
    jsonschema.validate([alert], POSTABLE_ALERTS)
    assert alert["labels"]["logharbor_test"] == "true" and alert["endsAt"].startswith("2027-01-15T08:01:00")
