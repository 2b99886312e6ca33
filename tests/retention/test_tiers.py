"""Records of several ages and levels pass through every tier on an injectable clock; counts per
tier match the rules; cold records are found by compiled queries; sampling keeps whole traces."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.retention.helpers import DAY, FakeClock, counts, insert, open_tiers, record, set_policy

from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.query import compile_query

POLICY = {"rules": [
    {"name": "debug", "match": {"level": "DEBUG"}, "hot": "1d", "delete": "3d",
     "sample": {"after": "1d", "keep": 0.1}},
    {"name": "alb", "match": {"source": "alb"}, "hot": "7d", "warm": "30d", "cold": "365d"},
    {"name": "errors", "match": {"level": "ERROR"}, "hot": "30d", "cold": "400d"},
    {"name": "alb-errors", "match": {"source": "alb", "level": "ERROR"}, "hot": "2d", "delete": "never"},
]}


def _dataset() -> list[dict]:  # type: ignore[type-arg]
    out = []
    for age in (0.5, 2, 10, 40, 380, 500):
        for level in ("DEBUG", "INFO", "ERROR"):
            for source in ("alb", "app"):
                for i in range(40):
                    # four lines per trace, so sampling must keep or drop them together
                    out.append(record(age, level=level, source=source, service=f"svc-{source}",
                                      trace_id=f"{(i // 4) + int(age * 100):032x}", n=i))
    return out


def _expected(age: float, level: str, source: str) -> str | None:
    """Where one record of the dataset must be after a tick (the rules, by hand)."""
    if source == "alb" and level == "ERROR":  # most specific: hot 2d, then stays hot for good
        return "hot"
    if level == "DEBUG":
        return "hot" if age < 3 else None
    if source == "alb":
        return "hot" if age < 7 else "warm" if age < 30 else "cold" if age < 365 else None
    if level == "ERROR":
        return "hot" if age < 30 else "cold" if age < 400 else None
    return "hot"  # no rule: app INFO stays hot


AGES = (0.5, 2, 10, 40, 380, 500)


def _expected_counts(shift_days: float) -> dict[str, int]:
    out = {"hot": 0, "warm": 0, "cold": 0}
    for age in AGES:
        for level in ("INFO", "ERROR"):
            for source in ("alb", "app"):
                tier = _expected(age + shift_days, level, source)
                if tier is not None:
                    out[tier] += 40
    return out


@pytest.mark.e2e
def test_every_tier_by_the_rules(tmp_path: Path) -> None:
    clock = FakeClock()
    store, tiers, mover = open_tiers(tmp_path, clock=clock)
    insert(store, _dataset())
    set_policy(mover, POLICY)
    mover.tick()
    assert counts(tiers, "level != 'DEBUG'") == _expected_counts(0)
    # DEBUG: 0.5d untouched (80), 2d sampled to whole traces, 3d and older deleted
    assert counts(tiers, "level = 'DEBUG' AND message LIKE '% at 0.5d'") == {"hot": 80, "warm": 0, "cold": 0}
    assert counts(tiers, "level = 'DEBUG' AND timestamp < fromUnixTimestamp64Nano({t:Int64})".replace(
        "{t:Int64}", str(clock.now - 3 * DAY))) == {"hot": 0, "warm": 0, "cold": 0}
    sampled = store.query(f"SELECT trace_id, count() AS n FROM {tiers.hot} "  # noqa: S608
                          "WHERE level = 'DEBUG' AND message LIKE '% at 2d' GROUP BY trace_id", {})
    assert 0 < len(sampled) < 10  # of 10 traces, about a tenth kept
    assert all(int(r["n"]) == 8 for r in sampled)  # every line of a kept trace (4 lines × 2 sources)

    # pattern ids move with their records (issue 15): warm and cold keep them
    everywhere = counts(tiers)
    assert counts(tiers, "pattern_id != ''") == everywhere and min(everywhere.values()) > 0

    # the view reads every tier: the same compiled SQL finds warm and cold records
    compiled = compile_query("source:alb AND level:INFO", table=store.table, time_from_ns=None,
                             time_to_ns=None, limit=10_000, max_limit=10_000)
    rows = store.query(compiled.sql, compiled.params)
    assert sorted({r["message"].rsplit(" ", 1)[1] for r in rows}) == ["0.5d", "10d", "2d", "40d"]
    assert len(rows) == 160

    # a second tick finds nothing to do; a month later every tier moves on
    assert mover.tick() == {"recovered": 0, "sampled": 0, "deleted": 0, "moved": 0}
    clock.now += 30 * DAY
    mover.tick()
    assert counts(tiers, "level != 'DEBUG'") == _expected_counts(30)
    assert counts(tiers, "level = 'DEBUG'") == {"hot": 0, "warm": 0, "cold": 0}
    clock.now += 400 * DAY
    mover.tick()
    assert counts(tiers, "level != 'DEBUG'") == _expected_counts(430)
    store.close()


def test_most_specific_rule_wins() -> None:
    from logharbor.server.features.retention.rules import RetentionPolicy

    policy = RetentionPolicy.model_validate(POLICY)
    assert policy.rule_for({"source": "alb", "level": "ERROR"}).name == "alb-errors"  # type: ignore[union-attr]
    assert policy.rule_for({"source": "alb", "level": "INFO"}).name == "alb"  # type: ignore[union-attr]
    assert policy.rule_for({"source": "app", "level": "ERROR"}).name == "errors"  # type: ignore[union-attr]
    assert policy.rule_for({"source": "app", "level": "INFO"}) is None
    plan = policy.rules[1].plan()
    assert [(w.tier, w.lo // DAY, None if w.hi is None else w.hi // DAY) for w in plan.windows] == \
        [("hot", 0, 7), ("warm", 7, 30), ("cold", 30, 365)]
    assert plan.tier_at(400 * DAY) is None and plan.tier_at(8 * DAY) == "warm"


def _view_text(store, name: str) -> str:  # type: ignore[no-untyped-def]
    rows = store.query("SELECT create_table_query AS q FROM system.tables WHERE database = currentDatabase() "
                       "AND name = {n:String}", {"n": name})
    return str(rows[0]["q"])


def test_the_view_reads_the_hot_table_alone_until_another_tier_holds_rows(tmp_path: Path) -> None:
    """A UNION ALL view made a first page read every column of every row (bench/README.md):
    while warm and cold are empty the view reads hot alone, with the same answers; a move into
    warm widens it before the first row is copied, and it narrows again once warm is empty."""
    clock = FakeClock()
    store, tiers, mover = open_tiers(tmp_path, clock=clock)
    insert(store, [record(age, source=source, n=i) for age in (0.5, 10) for source in ("alb", "app")
                   for i in range(30)])
    assert "UNION ALL" not in _view_text(store, tiers.view_name)
    assert store.table != store.hot_table  # queries still name the view: which tiers it reads stays inside
    compiled = compile_query("*", table=store.table, time_from_ns=None, time_to_ns=None, limit=100, max_limit=100)
    hot_alone = store.query(compiled.sql, compiled.params)
    tiers._expose_all_tiers(False)  # the same query through hot ∪ warm: the same rows, in the same order
    assert "UNION ALL" in _view_text(store, tiers.view_name)
    assert store.query(compiled.sql, compiled.params) == hot_alone and len(hot_alone) == 100
    tiers.refresh_view()
    assert "UNION ALL" not in _view_text(store, tiers.view_name)

    set_policy(mover, {"rules": [{"name": "alb", "match": {"source": "alb"}, "hot": "7d", "warm": "365d"}]})
    assert mover.tick()["moved"] == 30
    assert counts(tiers) == {"hot": 90, "warm": 30, "cold": 0}
    assert "UNION ALL" in _view_text(store, tiers.view_name)
    everything = compile_query("*", table=store.table, time_from_ns=None, time_to_ns=None, limit=1000,
                               max_limit=1000)
    assert len(store.query(everything.sql, everything.params)) == 120  # warm rows are found

    tiers.delete_where("warm", "1", {})
    tiers.refresh_view()
    assert "UNION ALL" not in _view_text(store, tiers.view_name)
    assert len(store.query(everything.sql, everything.params)) == 90
    store.close()


def _visible(store) -> int:  # type: ignore[no-untyped-def]
    """How many records a search sees: the compiled query of ``*`` through the store's read table."""
    everything = compile_query("*", table=store.table, time_from_ns=None, time_to_ns=None, limit=100_000,
                               max_limit=100_000)
    return len(store.query(everything.sql, everything.params))


@pytest.mark.parametrize("dest", ["warm", "cold"])
def test_a_search_sees_every_record_at_each_step_of_a_move(tmp_path: Path, dest: str) -> None:
    """A move removes rows from hot only once the view reads the tier they went to: a search
    between the removal and the end of the tick saw 60 of 120 records when the first cold file
    of a store was written (the view took the cold branch only at the tick's end)."""
    seen: dict[str, int] = {}
    clock = FakeClock()
    store, _tiers, mover = open_tiers(tmp_path, clock=clock)
    mover.step_hook = lambda step, _move: seen.__setitem__(step, _visible(store))
    insert(store, [record(age, source=source, n=i) for age in (0.5, 10) for source in ("alb", "app")
                   for i in range(30)])
    tier = {"warm": "365d"} if dest == "warm" else {"cold": "365d"}
    set_policy(mover, {"rules": [{"name": "alb", "match": {"source": "alb"}, "hot": "7d", **tier}]})
    assert mover.tick()["moved"] == 30
    # between the copy and the removal a search may see a moved row twice (warm and hot), never not at all
    assert seen["intent"] == 120 and seen["copied"] >= 120 and seen["removed"] == 120, seen
    assert _visible(store) == 120
    store.close()


def test_a_second_server_cannot_narrow_the_view_under_a_move(tmp_path: Path) -> None:
    """Two servers on one store: the one that does not lead refreshes its view (at its start, or
    after a delete job) while the leader moves rows into an empty warm tier. Its look at warm
    (empty) and its change of the view (to hot alone) are two statements; a move that ran between
    them left the moved rows out of every search until the leader's next refresh."""
    clock = FakeClock()
    store, tiers, mover = open_tiers(tmp_path, clock=clock)
    insert(store, [record(age, source=source, n=i) for age in (0.5, 10) for source in ("alb", "app")
                   for i in range(30)])
    set_policy(mover, {"rules": [{"name": "alb", "match": {"source": "alb"}, "hot": "7d", "warm": "365d"}]})
    other = Tiers(store, tiers.cold)  # the second server's view of the same tables
    other.columns = tiers.columns
    looked = other.count

    def count_then_the_leader_moves(tier: str, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        n = looked(tier, *args, **kwargs)
        if tier == "warm" and not n:
            assert mover.tick()["moved"] == 30  # the whole move, between the look and the change
        return n

    other.count = count_then_the_leader_moves  # type: ignore[method-assign]
    other.refresh_view()
    assert counts(tiers) == {"hot": 90, "warm": 30, "cold": 0}
    assert "UNION ALL" in _view_text(store, tiers.view_name)
    assert _visible(store) == 120
    store.close()


def test_the_disk_guard_relieving_a_short_disk_goes_on_and_shows_the_rows_once_it_can(tmp_path: Path) -> None:
    """The disk guard's relieve() moves a hot day to cold on a disk too short for a view change
    (it is what frees the disk). The relief is counted (relieve() raised the view's refusal after
    the rows had moved, so the guard neither counted it nor measured again), and the moved rows are
    searched again at the first refresh with room. Known gap: until then they are not searched."""
    clock = FakeClock()
    store, tiers, mover = open_tiers(tmp_path, clock=clock)
    insert(store, [record(age, source=source, n=i) for age in (0.5, 10) for source in ("alb", "app")
                   for i in range(30)])
    set_policy(mover, {"rules": [{"name": "alb", "match": {"source": "alb"}, "hot": "30d", "cold": "365d"}]})
    assert _visible(store) == 120
    store.free_disk_bytes = lambda: 1 << 20  # type: ignore[method-assign]  # 1 MiB left
    rule, cond, params = next(c for c in mover.policy.conditions() if c[0].name == "alb")
    assert mover.relieve(rule, cond, params) == 30
    assert counts(tiers)["cold"] == 30 and counts(tiers)["hot"] == 90
    store.free_disk_bytes = lambda: 1 << 30  # type: ignore[method-assign]  # room again
    mover.tick()
    assert _visible(store) == 120
    store.close()
