"""A rule made by a scoped key runs inside that scope, and a scoped silence silences only alerts of
rules inside its scope (issue 21: scoped admins act only inside their scope)."""

from __future__ import annotations

from logharbor.server.features.alerts.rules import Rule
from logharbor.server.features.alerts.silences import Matcher, SilenceCreate
from logharbor.server.scopes import Scope

from .conftest import T0, Harness, Receiver, S, insert, run

M = 60 * S
ACME = Scope.of("acme")


def records(tenant: str, n: int) -> list[dict[str, object]]:
    return [{"timestamp": T0 - M + i, "level": "ERROR", "service": "scoped-svc", "tenant": tenant,
             "message": "boom"} for i in range(n)]


def test_a_scoped_rule_counts_only_its_tenants_records(harness: Harness) -> None:
    h = harness
    insert(h.store, records("acme", 2) + records("globex", 5))
    spec = {"query": "service:scoped-svc", "condition": "count > 0", "window": "5m", "group_by": ["tenant"]}
    h.catalog.put_rule(Rule.model_validate({"name": "acme only", **spec}), ACME)
    h.catalog.put_rule(Rule.model_validate({"name": "everyone", **spec}))
    stored = {s.rule.name: s for s in h.catalog.enabled_rules()}
    assert stored["acme only"].scope == ACME
    for rule in stored.values():
        h.evaluator.evaluate(rule, T0)
    values = {(a["rule"], a["group"]["tenant"]): a["value"] for a in h.catalog.alerts()}
    assert values == {("acme only", "acme"): 2, ("everyone", "acme"): 2, ("everyone", "globex"): 5}


def test_a_scoped_silence_leaves_other_scopes_alerts_alone(harness: Harness, receiver: Receiver) -> None:
    h = harness
    h.catalog.put_channel("hook", "webhook", {"url": receiver.url})
    h.catalog.put_channel("acme hook", "webhook", {"url": receiver.url}, ACME)
    spec = {"query": "service:scoped-svc", "condition": "count > 0", "window": "5m"}
    h.catalog.put_rule(Rule.model_validate({"name": "acme rule", **spec, "channels": ["acme hook"]}), ACME)
    h.catalog.put_rule(Rule.model_validate({"name": "global rule", **spec, "channels": ["hook"]}))
    everything = SilenceCreate(matchers=[Matcher(name="alertname", value=".*", op="=~")], ends_at="1h")
    h.silences.create(everything, actor="acme-admin", now_ns=T0, owner=ACME)
    insert(h.store, records("acme", 1))
    for rule in h.catalog.enabled_rules():
        h.evaluator.evaluate(rule, T0)
    run(h.dispatcher.deliver_due())
    assert [r["body"]["rule"] for r in receiver.requests] == ["global rule"]  # acme's own is silenced
