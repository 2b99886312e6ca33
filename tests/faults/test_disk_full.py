"""A full disk under a real server: refused with 507/429 and ``Retry-After``, never a 500 and never
a loss; ``/readyz`` says not ready while it lasts; ingest resumes by itself once space returns.

The server's data directory is on a real small filesystem (tmpfs). Clients send records with
unique ids and count what was acknowledged; a ballast file fills the filesystem, then goes; every
acknowledged id must be stored exactly once, and the server must start again afterwards.
Run with the free-space guard off (``--disk-min-free-mb 0``: the WAL meets ENOSPC itself, and the
store's inserts fail too) and with the default guard (100 MiB: it answers 429 before the disk
fills, and 507 covers the seconds between two of its checks).
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import ServerProcess
from tests.faults.conftest import Tally, fill_to, wait_for

BATCH = 100
REFUSALS = {429, 503, 507}


class Senders:
    """Client threads posting NDJSON batches with unique ids; they count every answer."""

    def __init__(self, server: ServerProcess, tally: Tally, service: str, threads: int = 2) -> None:
        self.server = server
        self.tally = tally
        self.service = service
        self.statuses: Counter[int] = Counter()
        self.problems: list[str] = []  # answers that break the promise (a 500, no Retry-After, …)
        self._numbers = itertools.count()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(threads)]

    def start(self) -> Senders:
        for thread in self._threads:
            thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=120)

    def _run(self) -> None:
        with self.server.client(headers={"content-type": "application/x-ndjson"}) as client:
            while not self._stop.is_set():
                n = next(self._numbers)
                ids = [f"{self.service}-{n}-{k}" for k in range(BATCH)]
                body = b"\n".join(orjson.dumps({"service": self.service, "rid": rid,
                                                "message": f"disk full test record {rid}"}) for rid in ids)
                try:
                    response = client.post("/api/v1/logs", content=body)
                except httpx.HTTPError as exc:
                    with self._lock:
                        self.problems.append(f"transport error {exc!r}")
                    time.sleep(0.2)
                    continue
                with self._lock:
                    self.statuses[response.status_code] += 1
                if response.status_code == 200 and response.json().get("accepted") == BATCH:
                    self.tally.ack(ids)
                    continue
                problem = check_refusal(response)
                if problem:
                    with self._lock:
                        self.problems.append(problem)
                time.sleep(0.05)


def check_refusal(response: httpx.Response, *, json_body: bool = True) -> str | None:
    """Why ``response`` is not a proper "not now" answer (None when it is one)."""
    if response.status_code not in REFUSALS:
        return f"HTTP {response.status_code}: {response.text[:200]}"
    if not response.headers.get("retry-after"):
        return f"HTTP {response.status_code} without Retry-After"
    if json_body:
        try:
            error = response.json()["error"]
            assert error["code"] and error["message"]
        except (ValueError, KeyError, TypeError, AssertionError):
            return f"HTTP {response.status_code} without a JSON error body: {response.text[:200]}"
    return None


def readyz(server: ServerProcess) -> httpx.Response:
    return httpx.get(server.url + "/readyz", timeout=10)


def stored_ids(server: ServerProcess, service: str) -> list[str]:
    """Every ``rid`` stored for ``service``, read back through the query API (an NDJSON export)."""
    with server.client(timeout=120) as client:
        response = client.post("/api/v1/query", json={"q": f"service:{service} | fields rid",
                                                      "from": "now-1d", "to": "now+1h", "limit": 10**9},
                               headers={"Accept": "application/x-ndjson"})
        response.raise_for_status()
    return [orjson.loads(line)["rid"] for line in response.content.splitlines() if line.strip()]


def probe_every_endpoint(server: ServerProcess) -> dict[str, int]:
    """One write to each HTTP ingest endpoint and one admin write while the disk is full: each
    must be accepted or refused properly (never a 500). Returns the statuses."""
    now_ns = str(time.time_ns())
    many = range(2_000)  # ~200 KB a body: more than a full disk's last crumbs
    probes = {
        "native": ("/api/v1/logs", b"\n".join(b'{"service":"probe","message":"native %d"}' % i for i in many),
                   {"content-type": "application/x-ndjson"}, True),
        "bulk": ("/probe/_bulk", b"".join(b'{"index":{}}\n{"service":"probe","message":"bulk %d"}\n' % i
                                          for i in many),
                 {"content-type": "application/x-ndjson"}, True),
        "loki": ("/loki/api/v1/push", orjson.dumps({"streams": [{"stream": {"service": "probe"},
                                                                 "values": [[now_ns, f"loki {i}"] for i in many]}]}),
                 {"content-type": "application/json"}, True),
        "otlp": ("/v1/logs", orjson.dumps({"resourceLogs": [{"scopeLogs": [{"logRecords": [
            {"timeUnixNano": now_ns, "body": {"stringValue": f"otlp {i}"}} for i in many]}]}]}),
                 {"content-type": "application/json"}, False),
        "admin": ("/api/v1/keys", orjson.dumps({"role": "reader", "name": "made while the disk is full"}),
                  {"content-type": "application/json"}, True),
    }
    statuses = {}
    problems = []
    with server.client() as client:
        for name, (path, body, headers, json_body) in probes.items():
            response = client.post(path, content=body, headers=headers)
            statuses[name] = response.status_code
            if response.status_code >= 300:
                problem = check_refusal(response, json_body=json_body)
                if problem:
                    problems.append(f"{name}: {problem}")
            elif name == "bulk" and response.json().get("errors"):
                problems.append(f"bulk: 200 with item errors: {response.text[:200]}")
    assert not problems, problems
    return statuses


@pytest.mark.parametrize("small_fs", ["160m"], indirect=True)
@pytest.mark.parametrize("guard", ["off", "default"])
def test_a_full_disk_refuses_properly_loses_nothing_and_ingest_resumes(small_fs: Path, guard: str) -> None:
    args = ["--batch-max-age", "0.2"] + (["--disk-min-free-mb", "0"] if guard == "off" else [])
    server = ServerProcess(small_fs / "data", *args)
    server.log_path = small_fs.parent / f"server-{server.port}.log"  # the log is not on the small disk
    server.start()
    service = f"diskfull-{guard}"
    tally = Tally(f"disk full (guard {guard})")
    senders = Senders(server, tally, service).start()
    try:
        wait_for("records acknowledged before the fill", lambda: len(tally.acknowledged) >= 2_000)
        ballast = fill_to(small_fs, 0)
        refusals_at_fill = sum(senders.statuses[s] for s in REFUSALS)
        wait_for("refusals while the disk is full",
                 lambda: sum(senders.statuses[s] for s in REFUSALS) >= refusals_at_fill + 10)
        answers: list[httpx.Response] = []  # the 503 itself: a second look could meet space a merge freed
        wait_for("/readyz not ready while the disk is full",
                 lambda: answers.append(readyz(server)) or answers[-1].status_code == 503)
        not_ready = answers[-1].json()
        assert not_ready["reasons"], not_ready
        probes = probe_every_endpoint(server)
        acked_while_full = len(tally.acknowledged)

        ballast.unlink()
        wait_for("/readyz ready again once space returned", lambda: readyz(server).status_code == 200)
        wait_for("ingest to resume without a restart",
                 lambda: len(tally.acknowledged) >= acked_while_full + 2_000)
    finally:
        senders.stop()
    acked = len(tally.acknowledged)
    wait_for("the store to hold every acknowledged record", lambda: server.store_rows() >= acked)
    tally.saw(stored_ids(server, service))
    assert not senders.problems, senders.problems[:5]
    assert senders.statuses[500] == 0
    tally.extra.update(statuses={str(k): v for k, v in sorted(senders.statuses.items())}, probes=probes, readyz=not_ready["checks"])
    tally.report()

    # the episode left nothing that stops the next start (an empty table metadata file did)
    server.stop()
    server.start()
    assert len(stored_ids(server, service)) == sum(tally.stored.values())
    server.stop()
