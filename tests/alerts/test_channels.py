"""Channels and the dispatcher with real receivers: SMTP (aiosmtpd, STARTTLS + login), an HTTP
webhook receiver checking the HMAC signature, retries with backoff on a manual clock, silences,
grouping, deduplication and the per-rule rate limit."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from logharbor.server.features.alerts.catalog import StoredRule
from logharbor.server.features.alerts.channels import (
    UNDELIVERED,
    Alert,
    Notification,
    Permanent,
    Retriable,
    build_channel,
)
from logharbor.server.features.alerts.rules import Rule
from logharbor.server.features.alerts.silences import Matcher, SilenceCreate
from logharbor.server.features.alerts.tables import alert_notifications

from .conftest import T0, Harness, Mailbox, Receiver, S, insert, run

M = 60 * S


def put(h: Harness, **spec: Any) -> StoredRule:
    h.catalog.put_rule(Rule.model_validate(spec))
    return next(s for s in h.catalog.enabled_rules() if s.rule.name == spec["name"])


def statuses(h: Harness) -> list[tuple[str, str, int]]:
    with h.meta.engine.connect() as conn:
        rows = conn.execute(select(alert_notifications.c.kind, alert_notifications.c.status,
                                   alert_notifications.c.attempts).order_by(alert_notifications.c.id)).all()
    return [tuple(r) for r in rows]  # type: ignore[misc]


def errors(service: str, n: int, at_ns: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"timestamp": at_ns + i, "level": "ERROR", "service": service, "message": "boom", **extra}
            for i in range(n)]


def test_firing_and_resolve_emails_over_starttls_with_login(harness: Harness, mailbox: Mailbox) -> None:
    h = harness
    svc = "mail-svc"
    h.catalog.put_channel("oncall", "email", dict(mailbox.config))
    r = put(h, name="checkout errors", query=f"level:ERROR AND service:{svc}", condition="count > 2",
            window="5m", group_by=["service"], channels=["oncall"],
            annotations={"summary": "{{service}} logged {{value}} errors in {{window}}",
                         "runbook": "https://runbooks.example.test/checkout"})
    insert(h.store, errors(svc, 4, T0 - M))
    h.evaluator.evaluate(r, T0)
    assert run(h.dispatcher.deliver_due()) == 1
    h.clock.set(T0 + 10 * M)
    h.evaluator.evaluate(r, T0 + 10 * M)
    assert run(h.dispatcher.deliver_due()) == 1
    assert len(mailbox.logins) == 2 and set(mailbox.logins) <= {"LOGIN", "PLAIN"}  # one login per mail
    assert mailbox.tls_sessions == 2  # both mails went over STARTTLS
    assert [rcpt for rcpt, _ in mailbox.messages] == [["oncall@example.test", "team@example.test"]] * 2
    firing, resolved = (msg for _, msg in mailbox.messages)
    assert firing["Subject"] == "[FIRING] checkout errors: mail-svc logged 4 errors in 5m"
    assert resolved["Subject"] == "[RESOLVED] checkout errors: mail-svc logged 0 errors in 5m"
    assert firing["From"] == "logharbor@example.test"
    body = firing.get_payload(decode=True).decode()
    assert "- firing: service=mail-svc" in body and "value: 4\r\n" in body
    assert "runbook: https://runbooks.example.test/checkout" in body
    resolved_body = resolved.get_payload(decode=True).decode()
    assert "- resolved: service=mail-svc" in resolved_body and "resolved: 2027-01-15T08:10:00" in resolved_body
    assert statuses(h) == [("firing", "sent", 1), ("resolved", "sent", 1)]


def test_email_with_a_wrong_password_is_a_permanent_failure(harness: Harness, mailbox: Mailbox,
                                                            caplog: pytest.LogCaptureFixture) -> None:
    channel = build_channel("email", {**mailbox.config, "password": "wrong-password"})
    note = Notification("r", "firing", [Alert({}, {}, 1.0, "firing", T0)], T0)
    with pytest.raises(Permanent) as failed:
        run(channel.send(note))
    assert str(failed.value) == UNDELIVERED  # the server's reply goes to the log, not to the API
    assert "535" in caplog.text
    assert mailbox.messages == []


def test_webhook_signed_json(harness: Harness, receiver: Receiver) -> None:
    h = harness
    receiver.secret = "a-shared-secret"
    h.catalog.put_channel("hook", "webhook", {"url": receiver.url, "secret": receiver.secret})
    r = put(h, name="grouped", query="level:ERROR AND env:hook", condition="count > 0", window="5m",
            group_by=["service"], channels=["hook"], labels={"severity": "page"},
            annotations={"summary": "{{service}}: {{value}}"})
    insert(h.store, errors("hook-a", 1, T0 - M, env="hook") + errors("hook-b", 2, T0 - M, env="hook")
           + errors("hook-c", 3, T0 - M, env="hook"))
    h.evaluator.evaluate(r, T0)
    h.evaluator.evaluate(r, T0 + M)  # still firing: nothing new to send (dedup)
    assert run(h.dispatcher.deliver_due()) == 1
    assert len(receiver.requests) == 1  # three alerts of one slot, grouped into one request
    request = receiver.requests[0]
    assert request["signature_ok"] and request["headers"]["x-logharbor-signature-256"].startswith("sha256=")
    body = request["body"]
    assert body["status"] == "firing" and body["rule"] == "grouped" and body["labels"] == {"severity": "page"}
    assert sorted((a["labels"]["service"], a["value"]) for a in body["alerts"]) == [
        ("hook-a", 1.0), ("hook-b", 2.0), ("hook-c", 3.0)]
    assert body["alerts"][0]["labels"]["alertname"] == "grouped"
    assert {a["annotations"]["summary"] for a in body["alerts"]} == {"hook-a: 1", "hook-b: 2", "hook-c: 3"}
    # a tampered body does not verify with the same header
    assert not receiver.signature_ok(request["raw"] + b" ", request["headers"]["x-logharbor-signature-256"])


def test_slack_compatible_body(harness: Harness, receiver: Receiver) -> None:
    channel = build_channel("webhook", {"url": receiver.url, "format": "slack"})
    run(channel.send(Notification("disk", "resolved", [Alert({"host": "web-1"}, {"summary": "ok again"},
                                                             0.0, "resolved", T0, T0 + M)], T0 + M)))
    body = receiver.requests[0]["body"]
    assert list(body) == ["text"]
    assert body["text"].startswith(":large_green_circle: [RESOLVED] disk: ok again") and "host=web-1" in body["text"]


def test_receiver_failing_twice_then_succeeding_gets_exactly_one_delivery(harness: Harness,
                                                                            receiver: Receiver) -> None:
    h = harness
    receiver.fail_first = 2
    h.catalog.put_channel("flaky", "webhook", {"url": receiver.url})
    r = put(h, name="flaky", query="service:flaky-svc", condition="count > 0", window="5m", channels=["flaky"])
    insert(h.store, errors("flaky-svc", 1, T0 - M))
    h.evaluator.evaluate(r, T0)
    assert run(h.dispatcher.deliver_due()) == 0  # 500: retried after 1 s
    assert statuses(h) == [("firing", "pending", 1)]
    assert run(h.dispatcher.deliver_due()) == 0  # not due yet: nothing sent
    assert len(receiver.requests) == 1
    h.clock.set(T0 + 1 * S)
    assert run(h.dispatcher.deliver_due()) == 0  # second 500: backoff doubles to 2 s
    h.clock.set(T0 + 2 * S)
    assert run(h.dispatcher.deliver_due()) == 0 and len(receiver.requests) == 2
    h.clock.set(T0 + 3 * S)
    assert run(h.dispatcher.deliver_due()) == 1
    h.clock.set(T0 + 60 * S)
    assert run(h.dispatcher.deliver_due()) == 0
    assert len(receiver.requests) == 3 and len(receiver.delivered) == 1
    assert statuses(h) == [("firing", "sent", 3)]


def test_retries_end_and_4xx_is_not_retried(harness: Harness, receiver: Receiver) -> None:
    h = harness
    receiver.status = 404
    h.catalog.put_channel("gone", "webhook", {"url": receiver.url})
    r = put(h, name="gone", query="service:gone-svc", condition="count > 0", window="5m", channels=["gone"])
    insert(h.store, errors("gone-svc", 1, T0 - M))
    h.evaluator.evaluate(r, T0)
    run(h.dispatcher.deliver_due())
    assert statuses(h) == [("firing", "failed", 1)] and len(receiver.requests) == 1
    with pytest.raises(Retriable):  # a closed port is worth retrying
        run(build_channel("webhook", {"url": "http://127.0.0.1:9/x"}).send(
            Notification("r", "firing", [], T0)))


def test_silence_holds_back_matching_alerts_only(harness: Harness, receiver: Receiver) -> None:
    h = harness
    h.catalog.put_channel("hook", "webhook", {"url": receiver.url})
    r = put(h, name="silenced", query="level:ERROR AND env:sil", condition="count > 0", window="5m",
            group_by=["service"], channels=["hook"])
    h.silences.create(SilenceCreate(matchers=[Matcher(name="alertname", value="silenced"),
                                              Matcher(name="service", value="sil-(a|b)", op="=~")],
                                    ends_at="30m", comment="maintenance"), actor="test", now_ns=T0)
    insert(h.store, errors("sil-a", 1, T0 - M, env="sil") + errors("sil-c", 1, T0 - M, env="sil"))
    h.evaluator.evaluate(r, T0)
    run(h.dispatcher.deliver_due())
    assert [a["labels"]["service"] for a in receiver.requests[0]["body"]["alerts"]] == ["sil-c"]
    assert sorted(s for _, s, _ in statuses(h)) == ["sent", "silenced"]
    # the silence ends at T0+30m: a new firing of sil-a is sent
    h.clock.set(T0 + 40 * M)
    insert(h.store, errors("sil-a", 1, T0 + 39 * M, env="sil"))
    h.evaluator.evaluate(r, T0 + 20 * M)  # both quiet: resolve (sil-a's resolve is still silenced)
    h.evaluator.evaluate(r, T0 + 40 * M)
    run(h.dispatcher.deliver_due())
    sent = [(b["body"]["status"], [a["labels"]["service"] for a in b["body"]["alerts"]]) for b in receiver.requests]
    assert sent == [("firing", ["sil-c"]), ("resolved", ["sil-c"]), ("firing", ["sil-a"])]


def test_rate_limit_per_rule(harness: Harness, receiver: Receiver) -> None:
    h = harness
    h.catalog.put_channel("hook", "webhook", {"url": receiver.url})
    r = put(h, name="noisy", query="service:noisy-svc", condition="count > 0", window="1m", channels=["hook"],
            max_notifications_per_hour=2)
    for k in range(4):  # fires, resolves, fires, … four times within the hour
        at = T0 + k * 2 * M
        insert(h.store, errors("noisy-svc", 1, at - 30 * S))
        h.clock.set(at)
        h.evaluator.evaluate(r, at)
        h.evaluator.evaluate(r, at + M)
        h.clock.set(at + M)
        run(h.dispatcher.deliver_due())
    kinds = [b["body"]["status"] for b in receiver.requests]
    assert kinds == ["firing", "resolved", "firing", "resolved"]  # each sent firing gets its resolve
    assert [s for k, s, _ in statuses(h) if k == "firing"] == ["sent", "sent", "rate_limited", "rate_limited"]
    assert [s for k, s, _ in statuses(h) if k == "resolved"] == ["sent", "sent", "skipped", "skipped"]


def test_test_send_through_a_stored_channel(harness: Harness, receiver: Receiver) -> None:
    h = harness
    h.catalog.put_channel("hook", "webhook", {"url": receiver.url, "secret": "another-secret"})
    receiver.secret = "another-secret"
    run(h.dispatcher.send_test("hook"))
    body = receiver.requests[0]["body"]
    assert body["status"] == "test" and receiver.requests[0]["signature_ok"]
    with pytest.raises(LookupError):
        run(h.dispatcher.send_test("nope"))
