"""Sampling keeps whole traces: every line of a kept trace, none of a dropped one."""

from __future__ import annotations

import logging
import random
import zlib

import pytest

from logharbor import sdk
from logharbor.sdk.sampling import Sampler, trace_bucket


def test_whole_traces_are_kept_or_dropped(capture) -> None:  # type: ignore[no-untyped-def]
    cap = capture(service="s", level="DEBUG", sample={"DEBUG": 0.1, "INFO": 0.5})
    log = logging.getLogger("sampled")
    rng = random.Random(7)
    traces = [f"{rng.getrandbits(128):032x}" for _ in range(400)]
    for trace in traces:
        with sdk.context(trace_id=trace):
            for i in range(3):
                log.debug("d", extra={"i": i})
                log.info("i", extra={"i": i})
            log.warning("w")
    lines = cap.records()
    by_trace: dict[str, dict[str, int]] = {}
    for line in lines:
        counts = by_trace.setdefault(line["trace_id"], {})
        counts[line["level"]] = counts.get(line["level"], 0) + 1
    assert set(by_trace) == set(traces)  # WARN is never sampled: every trace shows up
    kept_info = kept_debug = 0
    for trace, counts in by_trace.items():
        assert counts["WARN"] == 1
        assert counts.get("INFO", 0) in (0, 3)  # all three lines or none
        assert counts.get("DEBUG", 0) in (0, 3)
        if counts.get("DEBUG"):
            assert counts.get("INFO") == 3  # rates grow with the level: DEBUG kept ⇒ INFO kept
            kept_debug += 1
        kept_info += bool(counts.get("INFO"))
        assert bool(counts.get("INFO")) == (trace_bucket(trace) < 0.5)
    assert 150 < kept_info < 250
    assert 15 < kept_debug < 70
    assert cap.handler.stats()["sampled_out"] == len(traces) * 6 - 3 * (kept_info + kept_debug)


def test_same_decision_in_every_process() -> None:
    trace = "5759e988bd862e3fe1be46a994272793"
    assert trace_bucket(trace) == zlib.crc32(trace.encode()) / 0xFFFFFFFF
    a, b = Sampler({"INFO": 0.3}), Sampler({"info": 0.3})
    assert all(a.keep(20, t) == b.keep(20, t) for t in (f"{i:032x}" for i in range(1, 2000, 7)))


def test_records_without_trace_are_sampled_independently() -> None:
    sampler = Sampler({"INFO": 0.25}, rng=random.Random(1))
    kept = sum(sampler.keep(logging.INFO, None) for _ in range(4000))
    assert 850 < kept < 1150
    assert all(sampler.keep(logging.ERROR, None) for _ in range(100))
    assert not Sampler({"DEBUG": 0.0}).keep(logging.DEBUG, "5759e988bd862e3fe1be46a994272793")


def test_custom_levels_use_the_level_below() -> None:
    sampler = Sampler({"DEBUG": 0.0})
    assert not sampler.keep(15, None) and not sampler.keep(10, None)
    assert sampler.keep(20, None) and sampler.keep(99, None)


@pytest.mark.parametrize(("rates", "message"), [
    ({"LOUD": 0.5}, "unknown level 'LOUD'"),
    ({"INFO": 1.5}, "within 0..1"),
])
def test_bad_rates_are_named(rates: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        Sampler(rates)


def test_agrees_with_the_agent_sample_transform() -> None:
    agent = pytest.importorskip("logharbor.agent.transforms.sample")
    transform = agent.Sample(agent.Config(type="sample", rates={"INFO": 0.3}))
    sampler = Sampler({"INFO": 0.3})
    rng = random.Random(3)
    for _ in range(500):
        trace = f"{rng.getrandbits(128):032x}"
        assert sampler.keep(logging.INFO, trace) == transform.keep("INFO", trace)
