"""Clock offsets end to end through a real server (issue 28 part 2): generated requests of the
reference stack with one app instance 40 ms ahead, shipped through the parsers and native ingest;
the estimate (run now by an admin, as the leader's job does every minute) is kept in the history,
answered by ``GET /api/v1/clock/offsets``, exported on ``/metrics``, and applied to traces.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from tests.conftest import ServerProcess

from logharbor.demo.lab import Shipper, collect
from logharbor.demo.traffic import RequestStory, TrafficGenerator

SKEW_MS = 40.0
N = 1500


@pytest.fixture(scope="module")
def skewed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ServerProcess, list[RequestStory]]]:
    # the leader's job every 2 s over a 10-minute window (clock_interval_s, clock_window_s)
    server = ServerProcess(tmp_path_factory.mktemp("clock") / "data", "--batch-max-age", "0.2",
                           "--clock-interval", "2s", "--clock-window", "10m").start()
    gen = TrafficGenerator(seed=11, rate_5xx=0.2, clock_offsets_ms={"checkout-9093": SKEW_MS})
    stories = list(gen.stories(N, start_ns=time.time_ns() - 480 * 10**9, spacing_ns=300_000_000))
    shipper = Shipper(server.url, api_key=server.api_key)
    total = shipper.ship(collect(stories))
    shipper.close()
    assert server.wait_rows(total) == total
    yield server, stories
    server.stop()


def clocks(answer: dict) -> dict[str, dict]:  # type: ignore[type-arg]
    return {c["clock"]: c for c in answer["current"]}


def test_the_estimate_finds_the_skewed_instance_and_keeps_a_history(skewed) -> None:  # type: ignore[no-untyped-def]
    server, _ = skewed
    with server.client() as client:
        ran = client.post("/api/v1/clock/estimate")
        assert ran.status_code == 200, ran.text
        assert ran.json()["clocks"] == 4
        client.post("/api/v1/clock/estimate")
        answer = client.get("/api/v1/clock/offsets", params={"since": "1h"}).json()
    found = clocks(answer)
    assert found["shop-alb"]["offset_ms"] == 0 and found["shop-alb"]["reference"] == "shop-alb"
    skewed_clock = found["checkout-9093"]
    assert abs(skewed_clock["offset_ms"] - SKEW_MS) <= skewed_clock["uncertainty_ms"] + 1e-3
    assert skewed_clock["uncertainty_ms"] <= 3.0
    assert abs(found["checkout-9092"]["offset_ms"]) <= found["checkout-9092"]["uncertainty_ms"] + 1e-3
    assert {"ip-10-0-1-20", "checkout-9092"} <= set(found)
    # two estimates of four clocks at least (the leader's own job may have run one more)
    times = {h["at"] for h in answer["history"]}
    assert len(times) >= 2 and len(answer["history"]) == 4 * len(times)
    assert answer["window_s"] == 600  # --clock-window 10m


def test_the_leader_estimates_every_clock_interval(skewed) -> None:  # type: ignore[no-untyped-def]
    """Nobody asks: the leader's job alone adds estimates, at the configured interval (2 s)."""
    server, _ = skewed
    with server.client() as client:
        def estimates() -> set[str]:
            return {h["at"] for h in client.get("/api/v1/clock/offsets", params={"since": "1h"}).json()["history"]}

        before = estimates()
        deadline = time.monotonic() + 90
        while len(estimates() - before) < 2:
            assert time.monotonic() < deadline, "the leader's job did not run twice in 90 s at a 2 s interval"
            time.sleep(0.5)


def test_metrics_export_each_offset_and_its_uncertainty(skewed) -> None:  # type: ignore[no-untyped-def]
    server, _ = skewed
    with server.client() as client:
        client.post("/api/v1/clock/estimate")
        text = client.get("/metrics").text
    line = next(x for x in text.splitlines()
                if x.startswith("logharbor_clock_offset_seconds{") and 'instance="checkout-9093"' in x)
    assert abs(float(line.rsplit(" ", 1)[1]) - SKEW_MS / 1000) <= 0.003
    assert 'host="ip-10-0-1-5"' in line and 'layer="app"' in line
    assert any(x.startswith("logharbor_clock_offset_uncertainty_seconds{") and 'clock="checkout-9093"' in x
               for x in text.splitlines())


def test_a_trace_is_adjusted_by_default_and_raw_on_request(skewed) -> None:  # type: ignore[no-untyped-def]
    server, stories = skewed
    story = next(s for s in stories if s.port == 9093 and s.status >= 500 and len(s.app_records) > 1)
    with server.client() as client:
        client.post("/api/v1/clock/estimate")
        adjusted = client.get(f"/api/v1/traces/{story.trace_id}").json()
        raw = client.get(f"/api/v1/traces/{story.trace_id}", params={"clock": "raw"}).json()
        bad = client.get(f"/api/v1/traces/{story.trace_id}", params={"clock": "local"})
    assert bad.status_code == 400 and bad.json()["error"]["code"] == "invalid_request"
    assert raw["timings"]["clock"] == {"mode": "raw", "reference": None, "applied": []}
    applied = {a["clock"]: a for a in adjusted["timings"]["clock"]["applied"]}
    assert adjusted["timings"]["clock"]["mode"] == "adjusted"
    assert adjusted["timings"]["clock"]["reference"] == "shop-alb"
    assert applied["checkout-9093"]["offset_ms"] == pytest.approx(SKEW_MS, abs=3.0)
    app_records = [i for i, r in enumerate(adjusted["records"]) if r.get("instance") == "checkout-9093"]
    assert sorted(applied["checkout-9093"]["records"]) == app_records
    # the records are shown as logged; only the waterfall's clock-placed events move
    assert adjusted["records"] == raw["records"]
    app_bar = next(b for b in adjusted["waterfall"]["bars"] if b["layer"] == "app")
    end = app_bar["start_ms"] + app_bar["duration_ms"]
    for events, inside in ((adjusted["waterfall"]["events"], True), (raw["waterfall"]["events"], False)):
        app_events = [e["at_ms"] for e in events if e["record"] in app_records]
        # adjusted: every app event lies within the app's bar, give or take the estimate's error
        # (≤ 3 ms); raw: the instance's clock puts them 40 ms after the app ended
        assert all(e <= end + 3.0 for e in app_events) is inside, (app_events, app_bar)


def test_a_reader_reads_offsets_and_only_an_admin_runs_the_estimate(skewed) -> None:  # type: ignore[no-untyped-def]
    server, _ = skewed
    reader = server.create_key("reader")
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {reader}"}) as client:
        assert client.get("/api/v1/clock/offsets").status_code == 200
        assert client.post("/api/v1/clock/estimate").status_code == 403
        assert client.get("/api/v1/clock/offsets", params={"since": "nonsense"}).status_code == 400


def test_the_trace_command_names_the_offsets_and_shows_raw_times_on_request(skewed) -> None:  # type: ignore[no-untyped-def]
    import os
    import subprocess
    import sys

    server, stories = skewed
    story = next(s for s in stories if s.port == 9093 and s.status < 400)
    with server.client() as client:
        client.post("/api/v1/clock/estimate")
    env = dict(os.environ, LOGHARBOR_SERVER=server.url, LOGHARBOR_API_KEY=server.api_key, COLUMNS="160")
    outs = [subprocess.run([sys.executable, "-m", "logharbor.cli.main", "trace", story.trace_id, *extra],
                           capture_output=True, text=True, timeout=60, env=env) for extra in ([], ["--raw-clock"])]
    assert all(out.returncode == 0 for out in outs), [out.stderr for out in outs]
    adjusted, raw = (out.stdout for out in outs)
    import re

    found = re.search(r"clock offsets applied \(against shop-alb\): checkout-9093 \+([\d.]+) ± ([\d.]+) ms",
                      adjusted.replace("\n", " "))
    assert found, adjusted
    assert abs(float(found[1]) - SKEW_MS) <= float(found[2]) + 0.05
    assert "clock offsets applied" not in raw


def test_a_scoped_key_reads_only_its_scope_s_clocks(skewed) -> None:  # type: ignore[no-untyped-def]
    """Another tenant's reader and admin see none of these clocks, by the API or a clock_skew rule's
    dry run; a service-scoped reader only its services'; a scoped admin cannot run the estimate."""
    server, _ = skewed
    with server.client() as client:
        assert client.post("/api/v1/clock/estimate").status_code == 200
        everything = client.get("/api/v1/clock/offsets", params={"since": "1h"}).json()
        rule = {"name": "clock scope", "query": "*", "condition": "clock_skew >= 0", "window": "1h"}
        tested = client.post("/api/v1/alerts/test", json={"rule": rule})
        assert tested.status_code == 200 and tested.json()["groups"], tested.text
    assert everything["current"] and everything["history"]
    other = {"reader": server.create_key("reader", tenant="globex"),
             "admin": server.create_key("admin", tenant="globex")}
    for role, key in other.items():
        with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {key}"}) as client:
            seen = client.get("/api/v1/clock/offsets", params={"since": "1h"}).json()
            assert seen["current"] == [] and seen["history"] == [], (role, seen)
            tested = client.post("/api/v1/alerts/test", json={"rule": rule})
            assert tested.status_code == 200 and tested.json()["groups"] == [], (role, tested.text)
            assert client.post("/api/v1/clock/estimate").status_code == 403
    services = server.create_key("reader", services=["checkout"])
    with httpx.Client(base_url=server.url, headers={"authorization": f"Bearer {services}"}) as client:
        seen = client.get("/api/v1/clock/offsets", params={"since": "1h"}).json()
    assert all(row["service"] == "checkout" for row in (*seen["current"], *seen["history"])), seen
    assert len(seen["history"]) < len(everything["history"])
