"""The fair read gate (store/gate.py) with real threads: turn order, per-owner caps, refusals."""

from __future__ import annotations

import threading
import time

import pytest

from logharbor.server.engine.store.gate import INTERNAL, FairGate, QueueFull, QueueTimeout


def wait_until(condition, timeout: float = 30.0) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline
        time.sleep(0.005)


def test_a_freed_slot_goes_to_the_owners_in_turn_not_to_the_busiest() -> None:
    gate = FairGate(1, per_owner=1, max_waiting=10)
    gate.acquire("a", 5)  # the one slot is busy
    order: list[str] = []

    def read(owner: str) -> None:
        gate.acquire(owner, 30)
        order.append(owner)
        gate.release(owner)

    threads = []
    for owner in ["a", "a", "a", "b", "c"]:  # a queues three before b and c ask once each
        threads.append(threading.Thread(target=read, args=(owner,)))
        threads[-1].start()
        wait_until(lambda n=len(threads): sum(gate.snapshot()["waiting"].values()) == n)
    gate.release("a")
    for t in threads:
        t.join(30)
    assert order[:3] == ["a", "b", "c"]  # one each, then a's others
    assert order[3:] == ["a", "a"]


def test_an_owner_at_its_cap_leaves_free_slots_to_others() -> None:
    gate = FairGate(3, per_owner=2, max_waiting=1)
    gate.acquire("a", 1)
    gate.acquire("a", 1)
    waiter = threading.Thread(target=lambda: gate.acquire("a", 30))
    waiter.start()
    wait_until(lambda: gate.snapshot()["waiting"] == {"a": 1})
    with pytest.raises(QueueFull) as refused:
        gate.acquire("a", 1)
    assert refused.value.limits == {"query_concurrency": 3, "query_per_key_concurrency": 2,
                                    "query_per_key_queue": 1}
    gate.acquire("b", 0.5)  # the third slot is b's at once, though a waits
    gate.release("b")
    gate.release("a")
    waiter.join(30)
    assert gate.snapshot()["running"] == {"a": 2}


def test_a_read_that_waits_its_whole_budget_is_refused_and_leaves_the_queue() -> None:
    gate = FairGate(1)
    gate.acquire("a", 1)
    with pytest.raises(QueueTimeout):
        gate.acquire("b", 0.05)
    assert gate.snapshot()["waiting"] == {}
    gate.release("a")
    gate.acquire("b", 1)


def test_background_work_is_never_refused_for_its_queue() -> None:
    gate = FairGate(1, per_owner=1, max_waiting=1)
    gate.acquire(INTERNAL, 1)
    done: list[int] = []

    def work(i: int) -> None:
        gate.acquire(INTERNAL, 30)
        done.append(i)
        gate.release(INTERNAL)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(10)]
    for t in threads:
        t.start()
    wait_until(lambda: gate.snapshot()["waiting"].get(INTERNAL) == 10)
    gate.release(INTERNAL)
    for t in threads:
        t.join(30)
    assert sorted(done) == list(range(10))
