"""kill -9 of the server while clients post large bodies, which go through the decode pool.

Native ingest decodes a body over 64 KiB off the event loop: in threads of the server process
when its decoder releases the GIL (the compiled C normaliser, ``ingest_decode=auto``), or in
worker processes (``ingest_decode=processes``). ``test_server_kill.py`` posts small bodies, which
are decoded inline, so it never kills the server with bodies inside the pool; this test does. Each
round checks in ``/metrics`` which decoder ran and that large bodies were decoded where this
mode says (``logharbor_ingest_decoded_in_{threads,processes}_total``), so it cannot pass by
exercising another path, and that the killed server's worker processes end (none left behind). A batch whose answer was lost is not sent again: it may be stored, but
only whole and only once. Two kills per mode in CI, more with ``LOGHARBOR_FULL_TESTS=1``.
"""

from __future__ import annotations

import itertools
import os
import random
import threading
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, wait_for

from logharbor.server.ingest import decoder

FULL = os.environ.get("LOGHARBOR_FULL_TESTS") == "1"
KILLS = 6 if FULL else 2
BATCH = 300
SENDERS = 3
PAD = "p" * 200  # ~300 bytes a line: a 300-line body is ~90 KiB, over the 64 KiB inline limit
INLINE_LIMIT = 64 * 1024


class LargeBodies:
    """Sender threads posting large NDJSON bodies until stopped; a batch is acknowledged or abandoned."""

    def __init__(self, server: ServerProcess, tally: Tally) -> None:
        self.server, self.tally = server, tally
        self.numbers = itertools.count()
        self.sent: set[str] = set()  # every id of every batch posted (acknowledged or not)
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads: list[threading.Thread] = []
        self.failures: list[str] = []

    def start(self) -> None:
        self.stop.clear()
        self.threads = [threading.Thread(target=self._run, daemon=True) for _ in range(SENDERS)]
        for thread in self.threads:
            thread.start()

    def halt(self) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=120)

    def _run(self) -> None:
        with self.server.client(headers={"content-type": "application/x-ndjson"}, timeout=60) as client:
            while not self.stop.is_set():
                n = next(self.numbers)
                ids = [f"d{n}-{i}" for i in range(BATCH)]
                body = b"\n".join(orjson.dumps({"service": "decodekill", "rid": rid, "n": n,
                                                "message": f"record {rid} {PAD}"}) for rid in ids)
                assert len(body) > INLINE_LIMIT
                with self.lock:
                    self.sent.update(ids)
                try:
                    response = client.post("/api/v1/logs", content=body)
                except httpx.HTTPError:
                    return  # the server is gone: this batch is unacknowledged, never resent
                if response.status_code == 200 and response.json().get("accepted") == BATCH:
                    self.tally.ack(ids)
                elif response.status_code not in (429, 503, 507):
                    self.failures.append(f"HTTP {response.status_code}: {response.text[:300]}")
                    return


def metrics(server: ServerProcess) -> dict[str, str]:
    """``/metrics`` lines by their name (labels included)."""
    text = httpx.get(server.url + "/metrics", headers=server.headers, timeout=30).text
    return {line.rsplit(" ", 1)[0]: line.rsplit(" ", 1)[1]
            for line in text.splitlines() if line and not line.startswith("#")}


def running(pid: int) -> bool:
    """Whether ``pid`` still runs (a zombie waiting to be reaped has ended)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return False


def stored_ids(server: ServerProcess) -> list[str]:
    with server.client(timeout=300) as client:
        response = client.post("/api/v1/query", json={"q": "service:decodekill | fields rid", "from": "2000-01-01",
                                                      "to": "2100-01-01", "limit": 10**9},
                               headers={"Accept": "application/x-ndjson"})
        response.raise_for_status()
    return [orjson.loads(line)["rid"] for line in response.content.splitlines() if line.strip()]


@pytest.mark.parametrize("mode", ["auto", "processes"])
def test_kill9_with_large_bodies_in_the_decode_pool(tmp_path: Path, mode: str) -> None:
    if mode == "auto" and decoder.PATH != "rowc":
        pytest.skip(f"the compiled decoder is not in use here ({decoder.REASON}): auto would not use threads")
    where = "threads" if mode == "auto" else "processes"
    other = "processes" if where == "threads" else "threads"
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    server = ServerProcess(tmp_path / "data", "--batch-max-age", "0.3", "--ingest-decode", mode,
                           "--ingest-workers", "2").start(timeout=180)
    tally = Tally(f"kill -9 with large bodies decoded in {where}",
                  extra={"seed": seed, "kills": KILLS, "decoder": decoder.PATH, "ingest_decode": mode})
    load = LargeBodies(server, tally)
    try:
        for round_ in range(KILLS):
            load.start()
            target = len(tally.acknowledged) + BATCH * rng.randint(3, 12)
            wait_for(f"acknowledgements before kill {round_ + 1}",
                     lambda t=target: len(tally.acknowledged) >= t or bool(load.failures), timeout=180.0)
            assert not load.failures, load.failures[:3]
            seen = metrics(server)  # the path that served this round's bodies, read before the kill
            workers = server.decode_workers()
            server.kill9()
            load.halt()
            assert bool(workers) == (where == "processes")
            # a worker left behind would block for ever writing to a pipe nobody reads
            wait_for("the killed server's decode workers to end", lambda w=workers: not any(map(running, w)),
                     timeout=60.0)
            assert f'logharbor_ingest_decoder{{path="{decoder.PATH}",reason="{decoder.REASON}"}}' in seen
            assert next(k for k in seen if k.startswith("logharbor_ingest_decode_mode{")).startswith(
                f'logharbor_ingest_decode_mode{{ndjson="{where}"')
            assert float(seen[f"logharbor_ingest_decoded_in_{where}_total"]) > 0
            assert float(seen[f"logharbor_ingest_decoded_in_{other}_total"]) == 0
            server.start(timeout=180)
        wait_for("the store to hold every acknowledged record",
                 lambda: server.store_rows() >= len(tally.acknowledged), timeout=180.0)
        ids = stored_ids(server)
    finally:
        load.halt()
        server.stop()
    assert not load.failures, load.failures[:3]
    tally.saw(ids)
    # records of unanswered batches may be there, but only whole batches, each once
    extra = {rid for rid in tally.stored if rid not in tally.acknowledged}
    assert extra <= load.sent
    partial = {rid.split("-")[0] for rid in extra}
    assert len(extra) == BATCH * len(partial), "a batch was stored in part"
    tally.extra["stored_unacknowledged"] = len(extra)
    tally.report()
