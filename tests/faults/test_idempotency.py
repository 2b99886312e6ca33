"""Retried batches under kill -9: every acknowledged record stored exactly once.

Fault: the server dies between the WAL fsync of a batch and its answer; the client, never having
heard back, sends the batch again. Without idempotency that batch is stored twice.

Clients here send batches from several threads and send *every* batch 2–3 times on purpose (a
lost answer is just a retry the client did not choose), while the server is killed with SIGKILL
at random moments and restarted on the same data directory. (a) native ingest with an
``Idempotency-Key`` per batch; (b) ``_bulk`` ``create`` with an ``_id`` per document and no key.
The records are read back through the query API and tallied: nothing acknowledged may be missing
and nothing may be stored twice. ``LOGHARBOR_FULL_TESTS=1`` runs more batches and kills.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally

FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"
BATCHES = 120 if FULL else 36
KILLS = 6 if FULL else 2
SENDERS = 4
ALL_TIME = {"from": "2000-01-01T00:00:00Z", "to": "2100-01-01T00:00:00Z"}


class Run:
    """The shared state of one run: the server, what was acknowledged, and the counters."""

    def __init__(self, server: ServerProcess, tally: Tally, seed: int) -> None:
        self.server = server
        self.tally = tally
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.failed_attempts = 0
        self.replayed = 0
        self.conflicts = 0
        #: first attempts whose answer was lost (the server died) although the batch was stored:
        #: the case this test is about (the next answer is a replay or a 409)
        self.stored_but_unanswered = 0

    def add(self, **counts: int) -> None:
        with self.lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)


def _send_until_answered(run: Run, client: httpx.Client, send: Callable[[httpx.Client], httpx.Response],
                         deadline: float) -> tuple[httpx.Response, bool]:
    """One logical attempt: repeat through connection errors and retryable answers (the server is
    being killed) until an answer comes; also whether an answer was lost on the way."""
    lost = False
    while time.monotonic() < deadline:
        try:
            response = send(client)
        except httpx.HTTPError:
            run.add(failed_attempts=1)
            lost = True
            time.sleep(0.2)
            continue
        if response.status_code in (429, 503, 507):
            run.add(failed_attempts=1)
            time.sleep(0.2)
            continue
        return response, lost
    raise AssertionError("no answer from the server before the deadline")


def _run(run: Run, batches: list[object], send_batch: Callable[[Run, httpx.Client, object, float], None]
         ) -> None:
    """Send ``batches`` from :data:`SENDERS` threads while the server is killed :data:`KILLS` times.

    The batches come in ``KILLS + 1`` phases; a kill lands when half of a phase is answered (so
    requests are in flight when it does), and the next phase is released only after it.
    """
    deadline = time.monotonic() + (900 if FULL else 400)
    size = -(-len(batches) // (KILLS + 1))
    phases = [batches[i : i + size] for i in range(0, len(batches), size)]
    state = {"phase": 0, "kills": 0, "answered": [0] * len(phases)}
    changed = threading.Condition()
    errors: list[BaseException] = []

    def next_batch() -> tuple[int, object] | None:
        with changed:
            while True:
                phase = state["phase"]
                if phases[phase]:
                    return phase, phases[phase].pop()
                if phase == len(phases) - 1:
                    return None
                if state["kills"] > phase:
                    state["phase"] = phase + 1
                    continue
                if not changed.wait(timeout=max(0.0, deadline - time.monotonic())):
                    raise AssertionError("the kill of this phase never came")

    def sender() -> None:
        with httpx.Client(base_url=run.server.url, headers=run.server.headers, timeout=30) as client:
            try:
                while (job := next_batch()) is not None:
                    phase, batch = job
                    send_batch(run, client, batch, deadline)
                    with changed:
                        state["answered"][phase] += 1
                        changed.notify_all()
            except BaseException as exc:  # reported by the main thread
                with changed:
                    errors.append(exc)
                    changed.notify_all()

    threads = [threading.Thread(target=sender, name=f"sender-{i}") for i in range(SENDERS)]
    for thread in threads:
        thread.start()
    try:
        half = max(1, size // 2)
        for k in range(KILLS):
            with changed:
                assert changed.wait_for(lambda k=k: state["answered"][k] >= half or errors,
                                        timeout=max(0.0, deadline - time.monotonic()))
            if errors:
                break
            run.server.kill9()
            with changed:
                state["kills"] += 1
                changed.notify_all()
            run.server.start(timeout=120)
    finally:
        for thread in threads:
            thread.join(timeout=600)
    assert not errors, errors[0]


def _stored(server: ServerProcess, q: str, expected: int) -> list[str]:
    assert server.wait_rows(expected, timeout=120) >= expected
    rows = server.query(q, limit=10_000, **ALL_TIME)["rows"]
    return [r["message"] for r in rows]


@pytest.fixture
def server(tmp_path: Path) -> Iterator[ServerProcess]:
    proc = ServerProcess(tmp_path / "data", "--batch-max-age", "0.2")
    proc.start()
    yield proc
    proc.stop()


def test_native_batches_with_keys_survive_kills_and_retries(server: ServerProcess) -> None:
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    tally = Tally("idempotency/native-kill9")
    run = Run(server, tally, seed)
    batches = [[f"nat-{b}-{i}" for i in range(60)] for b in range(BATCHES)]

    def send_batch(run: Run, client: httpx.Client, ids: object, deadline: float) -> None:
        assert isinstance(ids, list)
        body = b"\n".join(orjson.dumps({"message": i, "service": "idem-kill"}) for i in ids)
        headers = {"content-type": "application/x-ndjson", "idempotency-key": f"key-{ids[0]}"}
        for attempt in range(run.random.randint(2, 3)):  # every batch is sent again on purpose
            response, lost = _send_until_answered(
                run, client, lambda c: c.post("/api/v1/logs", content=body, headers=headers), deadline)
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == len(ids)
            run.tally.ack(ids)
            if response.headers.get("idempotent-replayed") == "true":
                run.add(replayed=1, stored_but_unanswered=int(attempt == 0 and lost))

    _run(run, batches, send_batch)
    tally.saw(_stored(server, "service:idem-kill", len(tally.acknowledged)))
    tally.extra.update(seed=seed, kills=KILLS, batches=BATCHES, sends_retried_by_failure=run.failed_attempts,
                       replayed=run.replayed, stored_but_unanswered=run.stored_but_unanswered)
    tally.report()
    assert run.replayed >= BATCHES  # every batch was sent at least twice


def test_bulk_create_ids_survive_kills_and_retries(server: ServerProcess) -> None:
    seed = random.randrange(1 << 30)
    print(f"seed={seed}")
    tally = Tally("idempotency/bulk-create-id-kill9")
    run = Run(server, tally, seed)
    batches = [[f"es-{b}-{i}" for i in range(40)] for b in range(BATCHES)]

    def send_batch(run: Run, client: httpx.Client, ids: object, deadline: float) -> None:
        assert isinstance(ids, list)
        body = b"".join(orjson.dumps({"create": {"_index": "idem-kill", "_id": i}}) + b"\n"
                        + orjson.dumps({"message": i, "service": "idem-kill-es"}) + b"\n" for i in ids)
        for attempt in range(run.random.randint(2, 3)):
            response, lost = _send_until_answered(
                run, client, lambda c: c.post("/_bulk", content=body,
                                              headers={"content-type": "application/x-ndjson"}), deadline)
            assert response.status_code == 200, response.text
            items = [item["create"] for item in response.json()["items"]]
            assert len(items) == len(ids)
            assert all(item["status"] in (201, 409) for item in items), items  # 409: stored earlier
            conflicts = sum(item["status"] == 409 for item in items)
            run.add(conflicts=conflicts, stored_but_unanswered=int(attempt == 0 and lost and conflicts > 0))
            run.tally.ack(ids)

    _run(run, batches, send_batch)
    tally.saw(_stored(server, "service:idem-kill-es", len(tally.acknowledged)))
    tally.extra.update(seed=seed, kills=KILLS, batches=BATCHES, sends_retried_by_failure=run.failed_attempts,
                       conflicts_409=run.conflicts, stored_but_unanswered=run.stored_but_unanswered)
    tally.report()
    assert run.conflicts >= BATCHES * 40
