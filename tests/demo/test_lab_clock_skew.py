"""The real-lab clock-skew check (issue 28), automated: real nginx in front of two real app
instances on loopback, the ALB stand-in in front of nginx, the agent shipping the four logs, and
one app instance whose log clock runs 40 ms ahead (``--clock-offset-ms``, as ``logharbor demo
--skew-ms`` runs it). The server's estimate from those requests finds the skewed instance within
its stated uncertainty, and the instance in sync within its uncertainty of 0 — also beside another
test process (the stamp of a descheduled app came late, and the interval missed the truth).

Bounded: a few hundred requests from four clients (seconds), then one estimate; marked slow as
every test that starts the whole stack."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import httpx
import pytest
from tests.conftest import ServerProcess

from logharbor.demo.nginx import NginxNotFound, find_nginx
from logharbor.demo.stack import Stack, StackTraffic

pytestmark = pytest.mark.slow

SKEW_MS = 40.0
ROUNDING_MS = 0.002  # offset and uncertainty are each given to the µs
REQUESTS = 320
CLIENTS = 4


def _count(server: ServerProcess, source: str) -> int:
    rows = server.query(f"source:{source} | stats count() as n")["rows"]
    return int(rows[0]["n"]) if rows else 0


def test_the_lab_finds_the_instance_whose_clock_is_ahead(tmp_path: Path, server: ServerProcess) -> None:
    try:
        find_nginx()
    except NginxNotFound as exc:
        pytest.fail(f"{exc}: the test needs Debian's nginx")
    stack = Stack(tmp_path / "stack", server.url, server.create_key("writer"), app_clock_offsets_ms=(SKEW_MS,))
    stack.start()
    answered: list[int] = []
    try:
        def client(seed: int) -> None:
            traffic = StackTraffic(stack.front_url, seed=seed)
            try:
                for _ in range(REQUESTS // CLIENTS):
                    answered.append(traffic.one().status)
            finally:
                traffic.close()

        threads = [threading.Thread(target=client, args=(seed,)) for seed in range(CLIENTS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(answered) == REQUESTS
        # every layer's record of every request stored (the ALB stand-in flushes every 2 s)
        deadline = time.monotonic() + 120
        while min(_count(server, "alb"), _count(server, "nginx")) < REQUESTS:
            assert time.monotonic() < deadline, (_count(server, "alb"), _count(server, "nginx"))
            time.sleep(1)  # the pace of the poll; the condition is the stored counts
    finally:
        stack.stop()
    skewed, steady = (f"checkout-{port}" for port in stack.app_ports)
    admin = httpx.post(server.url + "/api/v1/clock/estimate", headers=server.headers, timeout=120)
    assert admin.status_code == 200, admin.text
    clocks = {c["clock"]: c for c in admin.json()["current"]}
    assert {skewed, steady} <= set(clocks), sorted(clocks)
    ahead, in_sync = clocks[skewed], clocks[steady]
    assert ahead["offset_ms"] is not None and in_sync["offset_ms"] is not None, (ahead, in_sync)
    # the true offset inside the stated interval — what the product promises, to the µs both
    # figures are rounded to (no more: under two test processes the interval once missed by 0.9 ms,
    # see the sdk's STAMP_SLACK_S) — and the interval narrow enough to tell 40 from 0
    assert abs(ahead["offset_ms"] - SKEW_MS) <= ahead["uncertainty_ms"] + ROUNDING_MS, ahead
    assert abs(in_sync["offset_ms"]) <= in_sync["uncertainty_ms"] + ROUNDING_MS, in_sync
    assert ahead["uncertainty_ms"] < SKEW_MS / 2 and in_sync["uncertainty_ms"] < SKEW_MS / 2, (ahead, in_sync)
    assert ahead["consistent"] and in_sync["consistent"]
