"""The advisory-lock leader on a real PostgreSQL: one leader among many, taken over at once when
the leader's session ends (shutdown, crash, or a killed backend), and always the leader on SQLite."""

from __future__ import annotations

import psycopg

from logharbor.server.leader import Leader, leads, lock_key

S = 10**9


def test_one_leader_and_takeover_when_its_session_ends(pg_url: str) -> None:
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    a, b, c = (Leader(url, name="test-leader") for _ in range(3))
    try:
        assert a.hold(0) and a.holds(S) and a.is_leader
        assert not b.hold(0) and not c.hold(0) and not b.holds(0)
        assert a.hold(5 * S)  # renewing keeps it
        a.release()  # clean shutdown: the next one takes it at its next check
        assert b.hold(6 * S) and not c.hold(6 * S)
        # a crash: the leader's backend goes away without an unlock
        with psycopg.connect(url, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                          "WHERE application_name = 'logharbor-test-leader' AND pid IN "
                          "(SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted)")
        assert c.hold(7 * S)
        # the old leader finds out at its next check and steps down (then may not take it back)
        assert not b.hold(8 * S) and not b.holds(8 * S) and not b.is_leader
        assert b.changes == 2
    finally:
        for leader in (a, b, c):
            leader.release()


def test_an_unreachable_database_means_not_leading() -> None:
    leader = Leader("postgresql://nobody@127.0.0.1:1/none", name="x")
    assert not leader.hold(0) and not leader.holds(0)


def test_sqlite_is_always_the_leader(tmp_path) -> None:  # type: ignore[no-untyped-def]
    for url in (None, f"sqlite:///{tmp_path / 'meta.db'}"):
        leader = Leader(url)
        assert leader.hold(0) and leader.holds(S)


def test_only_the_leader_leads(pg_url: str) -> None:
    """What the mover and the pattern upkeep ask before each tick (``leads``)."""
    url = pg_url.replace("postgresql+psycopg://", "postgresql://")
    first, second = Leader(url, name="retention"), Leader(url, name="retention")
    try:
        assert leads(first) and not leads(second) and leads(None)
        assert lock_key("retention") == first.key == second.key != lock_key("leader")
    finally:
        first.release()
        second.release()
