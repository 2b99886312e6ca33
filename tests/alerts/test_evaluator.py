"""The evaluator against a real chDB store: conditions, states, persistence, errors, scheduling."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from sqlalchemy import select

from logharbor.server.features.alerts.catalog import StoredRule
from logharbor.server.features.alerts.evaluator import Evaluator, ManualClock, next_slot
from logharbor.server.features.alerts.lease import Lease
from logharbor.server.features.alerts.rules import Rule
from logharbor.server.features.alerts.tables import alert_notifications

from .conftest import T0, Harness, S, insert

M = 60 * S


def put(h: Harness, **spec: Any) -> StoredRule:
    h.catalog.put_rule(Rule.model_validate(spec))
    return next(s for s in h.catalog.enabled_rules() if s.rule.name == spec["name"])


def outbox(h: Harness) -> list[dict[str, Any]]:
    with h.meta.engine.connect() as conn:
        return [dict(r) for r in conn.execute(select(alert_notifications).order_by(
            alert_notifications.c.id)).mappings().all()]


def errors(service: str, n: int, at_ns: int, **extra: Any) -> list[dict[str, Any]]:
    return [{"timestamp": at_ns + i * 1000, "level": "ERROR", "service": service, "message": f"boom {i}",
             **extra} for i in range(n)]


def state(h: Harness, stored: StoredRule) -> dict[str, str]:
    return {k: v["state"] for k, v in h.catalog.states(stored.id).items()}


def test_seed_more_than_10_errors_in_5_minutes(harness: Harness) -> None:
    h = harness
    svc = "seed-5m"
    r = put(h, name="more than 10 ERROR in 5m", query=f"level:ERROR AND service:{svc}", condition="count > 10",
            window="5m", annotations={"summary": "{{value}} errors in {{window}}"})
    insert(h.store, errors(svc, 10, T0 - 4 * M))
    assert h.evaluator.evaluate(r, T0).error is None
    assert state(h, r) == {}  # 10 is not more than 10: nothing stored, nothing sent
    insert(h.store, errors(svc, 1, T0 - 1 * M))
    ev = h.evaluator.evaluate(r, T0 + 10 * S)
    assert ev.upserts[0]["value"] == 11 and state(h, r) == {"{}": "firing"}
    assert h.evaluator.dry_run(r.rule, T0 + 10 * S)[0]["annotations"] == {"summary": "11 errors in 5m"}
    # the first 10 leave the 5-minute window at T0+1m: 1 left, resolved
    h.evaluator.evaluate(r, T0 + 1 * M + 1 * S)
    assert state(h, r) == {"{}": "resolved"}
    kinds = [row["kind"] for row in outbox(h)]
    assert kinds == []  # no channel on this rule: state changes, but nothing to send
    assert [(x["from_state"], x["to_state"]) for x in reversed(h.catalog.history(rule=r.rule.name))] == [
        ("inactive", "firing"), ("firing", "resolved")]


def test_seed_error_count_over_5_in_1_minute_with_for(harness: Harness) -> None:
    h = harness
    svc = "seed-1m"
    r = put(h, name="error count > 5 in 1 minute", query=f"level:ERROR AND service:{svc}",
            condition={"type": "count", "op": ">", "threshold": 5}, window="1m", interval="10s", **{"for": "20s"})
    insert(h.store, errors(svc, 6, T0 - 30 * S))
    insert(h.store, errors(svc, 6, T0 + 5 * S))
    h.evaluator.evaluate(r, T0)
    assert state(h, r) == {"{}": "pending"}
    h.evaluator.evaluate(r, T0 + 10 * S)
    assert state(h, r) == {"{}": "pending"}
    h.evaluator.evaluate(r, T0 + 20 * S)
    assert state(h, r) == {"{}": "firing"}
    h.evaluator.evaluate(r, T0 + 120 * S)
    assert state(h, r) == {"{}": "resolved"}


def test_pending_that_clears_goes_back_to_inactive(harness: Harness) -> None:
    h = harness
    svc = "pending-clears"
    r = put(h, name="p", query=f"service:{svc}", condition="count > 0", window="1m", **{"for": "5m"})
    insert(h.store, errors(svc, 1, T0 - 10 * S))
    h.evaluator.evaluate(r, T0)
    assert state(h, r) == {"{}": "pending"}
    h.evaluator.evaluate(r, T0 + 2 * M)
    assert state(h, r) == {}  # back to inactive (not stored)
    assert [x["to_state"] for x in reversed(h.catalog.history(rule="p"))] == ["pending", "inactive"]


def test_group_by_gives_one_alert_per_group_with_templated_annotations(harness: Harness) -> None:
    h = harness
    h.catalog.put_channel("hook", "webhook", {"url": "http://127.0.0.1:9/unused"})
    r = put(h, name="by service", query="level:ERROR AND env:grp", condition="count >= 3", window="5m",
            group_by=["service"], channels=["hook"], labels={"team": "shop"},
            annotations={"summary": "{{service}} logged {{value}} errors (team {{labels.team}})"})
    insert(h.store, errors("grp-a", 3, T0 - M, env="grp") + errors("grp-b", 5, T0 - M, env="grp")
           + errors("grp-c", 2, T0 - M, env="grp"))
    h.evaluator.evaluate(r, T0)
    assert state(h, r) == {'{"service":"grp-a"}': "firing", '{"service":"grp-b"}': "firing"}
    rows = outbox(h)
    assert sorted(row["alert"]["annotations"]["summary"] for row in rows) == [
        "grp-a logged 3 errors (team shop)", "grp-b logged 5 errors (team shop)"]
    assert {row["batch"] for row in rows} == {T0}  # one slot: grouped into one message per channel
    assert rows[0]["alert"]["labels"]["alertname"] == "by service" and rows[0]["alert"]["labels"]["team"] == "shop"
    # grp-a quiet: it resolves; grp-b still firing; no duplicate firing rows for grp-b
    insert(h.store, errors("grp-b", 5, T0 + 5 * M, env="grp"))
    h.evaluator.evaluate(r, T0 + 6 * M)
    assert state(h, r) == {'{"service":"grp-a"}': "resolved", '{"service":"grp-b"}': "firing"}
    assert [(row["kind"], row["alert"]["labels"]["service"]) for row in outbox(h)] == [
        ("firing", "grp-a"), ("firing", "grp-b"), ("resolved", "grp-a")]


def test_ratio_of_two_counts(harness: Harness) -> None:
    h = harness
    svc = "ratio-svc"
    r = put(h, name="5xx ratio", query=f"service:{svc}", condition="ratio(status:>=500) > 0.2", window="5m")
    ok = [{"timestamp": T0 - M + i, "service": svc, "message": "r", "http": {"status": 200}} for i in range(8)]
    bad = [{"timestamp": T0 - M + 100 + i, "service": svc, "message": "r", "http": {"status": 503}}
           for i in range(2)]
    insert(h.store, ok + bad)
    ev = h.evaluator.evaluate(r, T0)
    assert ev.upserts == [] and state(h, r) == {}  # 2/10 = 0.2 is not > 0.2
    assert h.evaluator.dry_run(r.rule, T0)[0]["value"] == 0.2
    insert(h.store, [{"timestamp": T0 - 30 * S, "service": svc, "message": "r", "http": {"status": 500}}])
    ev = h.evaluator.evaluate(r, T0 + S)
    assert round(ev.upserts[0]["value"], 4) == round(3 / 11, 4) and state(h, r) == {"{}": "firing"}
    # no requests at all in the window: the ratio is undefined, so the alert resolves
    h.evaluator.evaluate(r, T0 + 10 * M)
    assert state(h, r) == {"{}": "resolved"}


def test_stats_column_against_a_threshold(harness: Harness) -> None:
    h = harness
    r = put(h, name="slow", query="env:lat | stats p99(duration_ms) as p99, count() as n by service",
            condition="p99 > 500", window="5m", annotations={"summary": "{{service}} p99 {{value}} ms"})
    fast = [{"timestamp": T0 - M + i, "service": "lat-fast", "env": "lat", "message": "x",
             "http": {"duration_ms": 10.0}} for i in range(50)]
    slow = [{"timestamp": T0 - M + i, "service": "lat-slow", "env": "lat", "message": "x",
             "http": {"duration_ms": 900.0}} for i in range(50)]
    insert(h.store, fast + slow)
    h.evaluator.evaluate(r, T0)
    assert state(h, r) == {'{"service":"lat-slow"}': "firing"}
    assert r.rule.render({"service": "lat-slow"}, 900.0) == {"summary": "lat-slow p99 900 ms"}
    h.evaluator.evaluate(r, T0 + 10 * M)  # the group is gone from the output: condition false
    assert state(h, r) == {'{"service":"lat-slow"}': "resolved"}


def test_absence(harness: Harness) -> None:
    h = harness
    svc = "heartbeat-svc"
    r = put(h, name="no heartbeat", query=f"service:{svc} AND heartbeat", condition="absent", window="2m")
    h.evaluator.evaluate(r, T0)
    assert state(h, r) == {"{}": "firing"}
    insert(h.store, [{"timestamp": T0 + 30 * S, "service": svc, "message": "heartbeat ok"}])
    h.evaluator.evaluate(r, T0 + M)
    assert state(h, r) == {"{}": "resolved"}
    h.evaluator.evaluate(r, T0 + 3 * M)
    assert state(h, r) == {"{}": "firing"}


def test_restart_neither_refires_nor_forgets(harness: Harness) -> None:
    h = harness
    svc = "restart-svc"
    h.catalog.put_channel("hook", "webhook", {"url": "http://127.0.0.1:9/unused"})
    r = put(h, name="restart", query=f"service:{svc}", condition="count > 2", window="5m", channels=["hook"])
    insert(h.store, errors(svc, 3, T0 - M))
    h.evaluator.evaluate(r, T0)
    assert [row["kind"] for row in outbox(h)] == ["firing"]
    again = h.reopen()  # a new process: same databases, fresh objects
    stored = next(s for s in again.catalog.enabled_rules() if s.rule.name == "restart")
    assert stored.last_eval_ns == T0
    again.evaluator.evaluate(stored, T0 + M)
    assert state(again, stored) == {"{}": "firing"}
    assert [row["kind"] for row in outbox(again)] == ["firing"]  # not fired a second time
    # the same slot evaluated twice (a crash after saving, before the scheduler moved on)
    again.evaluator.evaluate(stored, T0 + M)
    assert len(outbox(again)) == 1
    again.evaluator.evaluate(stored, T0 + 10 * M)  # records gone: the remembered alert resolves
    assert [row["kind"] for row in outbox(again)] == ["firing", "resolved"]


def test_evaluation_errors_are_surfaced_on_the_rule(harness: Harness) -> None:
    h = harness
    svc = "error-svc"
    r = put(h, name="broken", query=f"service:{svc}", condition="count > 0", window="5m")
    insert(h.store, errors(svc, 1, T0 - M))
    assert h.evaluator.evaluate(r, T0).error is None
    assert state(h, r) == {"{}": "firing"}
    # the store refuses the query (here: a table that is not there, as after a bad migration)
    failing = Evaluator(h.catalog, lambda sql, params: h.store.query(sql, params), "`no_such_table`", h.clock)
    ev = failing.evaluate(r, T0 + M)
    assert ev.error and "StoreError" in ev.error and "no_such_table" in ev.error
    row = h.catalog.get_rule("broken")
    assert row is not None and row["last_error"] == ev.error and row["last_eval_ns"] == T0 + M
    assert state(h, r) == {"{}": "firing"}  # an error changes no state: nothing resolves by accident
    h.evaluator.evaluate(r, T0 + 2 * M)
    assert h.catalog.get_rule("broken")["last_error"] is None  # type: ignore[index]


def test_scheduler_runs_on_the_grid_without_drift_or_overlap(harness: Harness) -> None:
    h = harness
    put(h, name="every 10s", query="service:sched-a", condition="count > 0", window="1m", interval="10s")
    put(h, name="slow one", query="service:sched-b", condition="count > 0", window="1m", interval="10s")
    release = threading.Event()
    entered = threading.Event()
    slots: dict[str, list[int]] = {"every 10s": [], "slow one": []}

    def run_query(sql: str, params: dict[str, Any]) -> list[dict[str, Any]]:
        return h.store.query(sql, params)

    clock = ManualClock(T0)
    evaluator = Evaluator(h.catalog, run_query, h.store.table, clock)
    real = evaluator.evaluate

    def evaluate(stored: StoredRule, at_ns: int) -> Any:
        slots[stored.rule.name].append(at_ns)
        if stored.rule.name == "slow one" and len(slots["slow one"]) == 1:
            entered.set()
            assert release.wait(30)  # the first run of "slow one" takes three intervals
        return real(stored, at_ns)

    evaluator.evaluate = evaluate  # type: ignore[method-assign]

    async def drive() -> None:
        await evaluator.start()
        for _ in range(40):  # 40 steps of 1.5 s: 60 s of manual time, never on a slot boundary
            clock.advance(1_500_000_000)
            if clock.now_ns() >= T0 + 35 * S and not release.is_set():
                release.set()
            for _ in range(2000):  # until this step's work is done (the blocked run aside)
                waiting = evaluator.waiting_until
                if waiting is not None and waiting > clock.now_ns() and evaluator.running <= {"slow one"}:
                    break
                await asyncio.sleep(0.005)
        await asyncio.sleep(0.1)
        await evaluator.stop()

    asyncio.run(drive())
    assert entered.is_set()
    grid = [next_slot("every 10s", 10 * S, T0 - 1) + k * 10 * S for k in range(6)]
    assert slots["every 10s"] == [g for g in grid if g <= T0 + 60 * S]  # each slot once, on the grid
    slow = slots["slow one"]
    first = next_slot("slow one", 10 * S, T0 - 1)
    assert slow[0] == first and all((s - first) % (10 * S) == 0 for s in slow)  # still on its grid
    assert len(slow) < 6 and evaluator.skips >= 2  # the slots it was busy for were skipped, not queued
    assert h.catalog.get_rule("slow one")["skipped_runs"] == evaluator.skips  # type: ignore[index]


def test_only_the_lease_holder_evaluates(harness: Harness) -> None:
    h = harness
    put(h, name="leased", query="service:lease-svc", condition="count > 0", window="1m", interval="10s")
    clock = ManualClock(T0)
    servers = [Evaluator(h.catalog, lambda sql, params: h.store.query(sql, params), h.store.table, clock,
                         lease=Lease(h.meta, holder=name, ttl_ns=60 * S)) for name in ("server-a", "server-b")]

    async def drive(seconds: int, running: list[Evaluator]) -> None:
        for _ in range(seconds):
            clock.advance(S)
            for _ in range(2000):
                if all(e.settled() for e in running):
                    break
                await asyncio.sleep(0.005)

    async def scenario() -> tuple[int, int, int]:
        a, b = servers
        await a.start()
        await drive(1, [a])
        await b.start()
        await drive(60, [a, b])
        runs = (a.runs, b.runs)
        await a.stop()  # a graceful stop gives the lease up: b takes over at its next pass
        await drive(40, [b])
        await b.stop()
        return runs[0], runs[1], b.runs

    a_runs, b_before, b_after = asyncio.run(scenario())
    assert a_runs == 6 and b_before == 0  # one server ran every slot, the other none
    assert b_after >= 3


def test_resolved_groups_are_forgotten_after_a_day(harness: Harness) -> None:
    h = harness
    r = put(h, name="forget", query="service:forget-svc", condition="count > 0", window="1m")
    insert(h.store, errors("forget-svc", 1, T0 - 10 * S))
    h.evaluator.evaluate(r, T0)
    h.evaluator.evaluate(r, T0 + 2 * M)
    assert state(h, r) == {"{}": "resolved"}
    h.evaluator.evaluate(r, T0 + 23 * 60 * M)
    assert state(h, r) == {"{}": "resolved"}  # still shown within the day
    h.evaluator.evaluate(r, T0 + 25 * 60 * M)
    assert state(h, r) == {}


def test_delay_looks_at_an_earlier_window_for_late_logs(harness: Harness) -> None:
    h = harness
    r = put(h, name="alb 5xx", query="service:late-alb AND status:>=500", condition="count > 2", window="5m",
            delay="5m")
    # ALB records of the last five minutes have not arrived yet; those of the five before have
    insert(h.store, [{"timestamp": T0 - 7 * M + i, "service": "late-alb", "message": "alb",
                      "http": {"status": 502}} for i in range(3)])
    assert h.evaluator.dry_run(r.rule, T0)[0]["value"] == 3
    no_delay = Rule.model_validate({**r.rule.model_dump(by_alias=True), "delay": "0s"})
    assert h.evaluator.dry_run(no_delay, T0)[0]["value"] == 0


def test_the_history_keeps_the_newest_a_viewer_sees_and_says_it_cut(harness: Harness) -> None:
    """The history was capped first and filtered by the key's scope after: a scoped key saw fewer
    transitions (or none) whenever other rules had ``limit`` newer ones; and nothing said it cut."""
    from logharbor.server.features.alerts.tables import alert_history
    from logharbor.server.scopes import Scope

    h = harness
    h.catalog.put_rule(Rule.model_validate({"name": "hist-acme", "query": "level:ERROR",
                                            "condition": "count > 1", "window": "5m"}), Scope.of("acme"))
    mine = {"id": next(s.id for s in h.catalog.enabled_rules() if s.rule.name == "hist-acme")}
    theirs = put(h, name="hist-globex", query="level:ERROR", condition="count > 1", window="5m")
    rows = [{"rule_id": mine["id"], "rule_name": "hist-acme", "group_key": "{}", "from_state": "a",
             "to_state": f"acme-{i}", "value": 1.0, "time_ns": T0 + i} for i in range(5)]
    rows += [{"rule_id": theirs.id, "rule_name": "hist-globex", "group_key": "{}", "from_state": "a",
              "to_state": f"globex-{i}", "value": 1.0, "time_ns": T0 + 10 + i} for i in range(30)]
    with h.meta.engine.begin() as conn:
        conn.execute(alert_history.insert(), rows)
    page, cut = h.catalog.history_page(limit=3, viewer=Scope.of("acme"))
    assert [r["to_state"] for r in page] == ["acme-4", "acme-3", "acme-2"] and cut
    page, cut = h.catalog.history_page(limit=5, viewer=Scope.of("acme"))
    assert [r["to_state"] for r in page] == [f"acme-{i}" for i in range(4, -1, -1)] and not cut
    page, cut = h.catalog.history_page(limit=4, rule="hist-globex")
    assert [r["to_state"] for r in page] == ["globex-29", "globex-28", "globex-27", "globex-26"] and cut
