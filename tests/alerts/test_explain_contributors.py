"""A firing alert carries its top contributors (features/explain/alerting.py), and an explain
that fails never holds back the notification."""

from __future__ import annotations

import asyncio
import random
from typing import Any

from logharbor.server.features.alerts.evaluator import Evaluator
from logharbor.server.features.explain.alerting import contributors, rule_filter

from .conftest import T0, Harness, Receiver, S, insert
from .test_evaluator import outbox, put

M = 60 * S


def records(svc: str) -> list[dict[str, Any]]:
    """Errors spread over eight hosts in the 5 minutes before the window; in the window, three
    times as many, most from version 1.4.3 on web-7."""
    rng = random.Random(7)
    out = []
    for i in range(60):
        out.append({"timestamp": T0 - 10 * M + i * 5 * S, "level": "ERROR", "service": svc, "message": "boom",
                    "host": f"web-{rng.randrange(1, 9)}", "version": rng.choice(["1.4.2", "1.4.3"])})
    for i in range(180):
        cause = i % 10 != 0
        out.append({"timestamp": T0 - 5 * M + i * S, "level": "ERROR", "service": svc, "message": "boom",
                    "host": "web-7" if cause else f"web-{rng.randrange(1, 9)}",
                    "version": "1.4.3" if cause else "1.4.2"})
    return out


def explaining(h: Harness, explain: Any) -> Evaluator:
    return Evaluator(h.catalog, lambda sql, params: h.store.query(sql, params), h.store.table, h.clock,
                     explain=explain)


def test_a_firing_notification_names_its_top_contributors(harness: Harness, receiver: Receiver) -> None:
    h = harness
    insert(h.store, records("explain-svc"))
    h.catalog.put_channel("hook", "webhook", {"url": receiver.url})
    r = put(h, name="errors up", query="level:ERROR AND service:explain-svc", condition="count > 100",
            window="5m", channels=["hook"], annotations={"summary": "{{value}} errors"})

    def explain(query, numerator, labels, window_ns, at_ns, scope):  # type: ignore[no-untyped-def]
        return contributors(h.store, {}, query=query, numerator=numerator, labels=labels,
                            window_ns=window_ns, at_ns=at_ns, scope=scope)

    explaining(h, explain).evaluate(r, T0)
    alert = outbox(h)[0]["alert"]
    text = alert["annotations"]["contributors"]
    assert text.startswith("180 records, 3.0x the window before (60)"), text
    assert "host=web-7" in text and "version=1.4.3" in text, text
    top = {(c["field"], c["value"]) for c in alert["contributors"]["top"]}
    assert {("host", "web-7"), ("version", "1.4.3")} <= top
    assert asyncio.run(h.dispatcher.deliver_due()) == 1
    sent = receiver.requests[0]["body"]["alerts"][0]["annotations"]
    assert sent["contributors"] == text and sent["summary"] == "180 errors"


def test_an_explain_error_never_blocks_the_notification(harness: Harness) -> None:
    h = harness
    insert(h.store, records("explain-broken"))
    h.catalog.put_channel("hook2", "webhook", {"url": "http://127.0.0.1:9/unused"})
    r = put(h, name="errors up 2", query="level:ERROR AND service:explain-broken", condition="count > 100",
            window="5m", channels=["hook2"])

    def broken(*args: Any) -> dict[str, Any]:
        raise RuntimeError("the store went away")

    ev = explaining(h, broken).evaluate(r, T0)
    assert ev.error is None
    rows = outbox(h)
    assert len(rows) == 1 and "contributors" not in rows[0]["alert"]["annotations"]
    # the real one on a store that cannot answer gives nothing, without raising
    assert contributors(object(), {}, query="level:ERROR", numerator=None, labels={}, window_ns=5 * M,
                        at_ns=T0, scope=None) is None


def test_the_rule_filter_keeps_numerator_and_group_labels() -> None:
    text = rule_filter("service:api | where level:ERROR | stats count() by host", "status:>=500",
                       {"host": "web 7"})
    assert text == 'service:api AND level:ERROR AND status:>=500 AND host:"web 7"'
