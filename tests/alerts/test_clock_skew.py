"""The ``clock_skew`` condition on a real server (issue 28 part 2): generated requests of the
reference stack with one app instance 340 ms ahead; the server estimates the offsets, the
scheduled evaluator fires the rule for that clock only, and a real webhook receiver gets
"clock of checkout-9093 is +340.0 ms off (…); NTP?".
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from tests.conftest import ServerProcess

from logharbor.demo.lab import Shipper, collect
from logharbor.demo.traffic import TrafficGenerator
from logharbor.server.features.alerts.conditions import Condition

from .conftest import Receiver

SKEW_MS = 340.0


@pytest.fixture(scope="module")
def srv(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    server = ServerProcess(tmp_path_factory.mktemp("alerts-clock") / "data", "--batch-max-age", "0.2").start()
    gen = TrafficGenerator(seed=31, clock_offsets_ms={"checkout-9093": SKEW_MS})
    stories = list(gen.stories(600, start_ns=time.time_ns() - 300 * 10**9, spacing_ns=480_000_000))
    shipper = Shipper(server.url, api_key=server.api_key)
    total = shipper.ship(collect(stories))
    shipper.close()
    assert server.wait_rows(total) == total
    yield server
    server.stop()


RULE: dict[str, Any] = {"name": "clock off", "query": "*", "condition": "clock_skew > 100", "window": "15m",
                        "interval": "10s"}


def test_the_condition_reads_as_text_and_object() -> None:
    assert Condition.parse_text("clock_skew > 100") == Condition(type="clock_skew", op=">", threshold=100)
    assert Condition.parse_text("clock_skew >= 0.5").text() == "clock_skew >= 0.5 ms"
    for bad in ("clock_skew < 100", "clock_skew > -1"):
        with pytest.raises(ValueError, match="clock_skew > <ms>"):
            Condition.parse_text(bad)


def test_a_skewed_clock_fires_and_the_others_do_not(srv: ServerProcess, receiver: Receiver) -> None:
    with srv.client() as c:
        assert c.post("/api/v1/clock/estimate").json()["clocks"] == 4
        assert c.post("/api/v1/channels", json={"name": "clock hook", "kind": "webhook",
                                                "config": {"url": receiver.url}}).status_code == 201
        dry = c.post("/api/v1/alerts/test", json={"rule": RULE})
        assert dry.status_code == 200, dry.text
        groups = {g["group"]["clock"]: g for g in dry.json()["groups"]}
        assert set(groups) == {"shop-alb", "ip-10-0-1-20", "checkout-9092", "checkout-9093"}
        assert [name for name, g in groups.items() if g["active"]] == ["checkout-9093"]
        assert groups["checkout-9093"]["value"] == pytest.approx(SKEW_MS, abs=3.0)
        # a higher threshold than the offset: nothing fires
        higher = c.post("/api/v1/alerts/test", json={"rule": {**RULE, "condition": "clock_skew > 400"}}).json()
        assert not higher["firing"]
        created = c.post("/api/v1/alerts/rules", json={**RULE, "channels": ["clock hook"]})
        assert created.status_code == 201, created.text
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not receiver.delivered:
        time.sleep(0.2)
    assert receiver.delivered, srv.log()
    [alert] = receiver.delivered[0]["body"]["alerts"]
    assert alert["labels"] == {"alertname": "clock off", "tenant": "", "clock": "checkout-9093", "layer": "app",
                               "host": "ip-10-0-1-5", "instance": "checkout-9093"}
    summary = alert["annotations"]["summary"]
    assert summary.startswith("clock of checkout-9093 is +3") and summary.endswith("against shop-alb); NTP?")
    assert abs(float(summary.split("+", 1)[1].split(" ms", 1)[0]) - SKEW_MS) <= 3.0


def test_clock_skew_rules_are_validated(srv: ServerProcess) -> None:
    with srv.client() as c:
        for rule, message in (({**RULE, "query": "service:x"}, "query: a clock_skew rule's query is '*'"),
                              ({**RULE, "group_by": ["host"]}, "group_by: a clock_skew rule has one alert per clock"),
                              ({**RULE, "condition": "clock_skew < 5"}, "clock_skew > <ms>")):
            answer = c.post("/api/v1/alerts/rules", json={**rule, "name": "bad clock rule"})
            assert answer.status_code == 400, answer.text
            assert message in answer.json()["error"]["message"], answer.text
