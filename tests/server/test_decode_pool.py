"""Where large bodies are decoded (server/ingest/decodepool.py): threads or worker processes, the
bound on bodies handed to the executors, and what a worker process's death does to the bodies it
held (decoded again in a new pool; twice lost is a 503, never a pool broken for good)."""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess

from logharbor.server.ingest.decodepool import DecodeFailed, DecodePool, choose


def _where() -> tuple[int, str]:
    return os.getpid(), threading.current_thread().name


def _os_thread_name() -> str:
    return Path("/proc/thread-self/comm").read_text().strip()


def _die_once(marker: str) -> str:
    """Kill the worker process the first time (as a crash or the OOM killer would), then work."""
    if not os.path.exists(marker):
        Path(marker).touch()
        os._exit(1)
    return "decoded"


def _die(_: str) -> str:
    os._exit(1)


def test_auto_puts_a_gil_releasing_decode_in_threads_and_the_others_in_processes() -> None:
    assert choose("auto", 2, True) == ("threads", "auto: the NDJSON decoder releases the GIL")
    assert choose("auto", 2, False)[0] == "processes"
    assert choose("threads", 2, False)[0] == "threads"
    assert choose("processes", 2, True)[0] == "processes"
    assert choose("processes", 0, False)[0] == "threads"  # no worker processes at all
    pool = DecodePool("auto", 1, releases_gil=True)
    try:
        pid, name = asyncio.run(pool.run(_where, releases_gil=True))
        assert pid == os.getpid() and name.startswith("ingest-decode")
        pid, _ = asyncio.run(pool.run(_where))  # holds the GIL: a worker process
        assert pid != os.getpid()
        if Path("/proc/thread-self/comm").exists():  # per-thread CPU tells decode threads apart
            assert asyncio.run(pool.run(_os_thread_name, releases_gil=True)) == "lh-decode"
    finally:
        pool.close()


def test_a_body_lost_with_its_worker_is_decoded_again_in_a_new_pool(tmp_path: Path) -> None:
    pool = DecodePool("processes", 1, releases_gil=False)
    try:
        assert asyncio.run(pool.run(_die_once, str(tmp_path / "died"))) == "decoded"
        assert pool.worker_deaths == 1
        with pytest.raises(DecodeFailed):  # kills the new pool too: said, not retried for ever
            asyncio.run(pool.run(_die, ""))
        assert pool.worker_deaths == 3
        pid, _ = asyncio.run(pool.run(_where))  # the pool works again afterwards
        assert pid != os.getpid()
        assert pool.gauges()["logharbor_ingest_decode_worker_deaths_total"] == 3.0
    finally:
        pool.close()


def test_at_most_twice_the_workers_bodies_are_in_the_executor() -> None:
    pool = DecodePool("threads", 1, releases_gil=False)
    gate = threading.Event()

    async def main() -> None:
        tasks = [asyncio.create_task(pool.run(gate.wait, 30)) for _ in range(5)]
        deadline = time.monotonic() + 30
        while pool.gauges()["logharbor_ingest_decode_waiting"] < 3 and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        gauges = pool.gauges()
        assert gauges["logharbor_ingest_decode_busy"] == 2 and gauges["logharbor_ingest_decode_waiting"] == 3
        tasks[4].cancel()  # a waiter that gives up takes no slot
        gate.set()
        assert await asyncio.gather(*tasks[:4]) == [True] * 4
        assert pool.gauges()["logharbor_ingest_decode_busy"] == 0

    try:
        asyncio.run(main())
    finally:
        gate.set()
        pool.close()


def _post(server: ServerProcess, service: str, n: int = 800) -> httpx.Response:
    body = b"\n".join(orjson.dumps({"service": service, "message": f"tick {i} " + "x" * 120}) for i in range(n))
    assert len(body) > 64 * 1024  # over native ingest's inline limit: decoded in the pool
    return httpx.post(server.url + "/api/v1/logs", content=body, timeout=60,
                      headers={"content-type": "application/x-ndjson", **server.headers})


def _metric(server: ServerProcess, prefix: str) -> list[str]:
    text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=30).text
    return [line for line in text.splitlines() if line.startswith(prefix)]


def test_threads_decode_in_the_server_process(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The same answers in threads: per-line errors by number, a retry with the same key stored once."""
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--ingest-decode", "threads",
                                           "--ingest-workers", "1")
    answer = _post(server, "t")
    assert answer.status_code == 200 and answer.json() == {"accepted": 800, "rejected": []}
    lines = [orjson.dumps({"service": "k", "message": f"keyed {i} " + "y" * 120}) for i in range(700)]
    lines[9], lines[500] = b"{not json", b"[1, 2]"
    headers = {"content-type": "application/x-ndjson", "idempotency-key": "batch-dt-1", **server.headers}
    answers = [httpx.post(server.url + "/api/v1/logs", content=b"\n".join(lines), headers=headers, timeout=60)
               for _ in range(2)]
    for keyed in answers:
        assert keyed.status_code == 200
        assert keyed.json()["accepted"] == 698
        assert [r["line"] for r in keyed.json()["rejected"]] == [10, 501]
    assert answers[1].headers["idempotent-replayed"] == "true"
    assert server.wait_rows(800 + 698) == 800 + 698
    assert _metric(server, "logharbor_ingest_decode_mode") == [
        'logharbor_ingest_decode_mode{ndjson="threads",others="threads",reason="ingest_decode is threads"} 1.0']
    assert not server.decode_workers()  # no worker process was started


def test_a_killed_worker_process_does_not_break_ingest(server_factory) -> None:  # type: ignore[no-untyped-def]
    """The old pool, once a worker died, answered every later large body with a 500."""
    server: ServerProcess = server_factory("--batch-max-age", "0.2", "--ingest-decode", "processes",
                                           "--ingest-workers", "1")
    assert _post(server, "before").status_code == 200
    workers = server.decode_workers()
    assert len(workers) == 1
    os.kill(workers[0], signal.SIGKILL)
    answer = _post(server, "after")
    assert answer.status_code == 200 and answer.json()["accepted"] == 800
    assert server.wait_rows(1600) == 1600
    assert _metric(server, "logharbor_ingest_decode_worker_deaths_total") == [
        "logharbor_ingest_decode_worker_deaths_total 1.0"]
