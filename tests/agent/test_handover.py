"""A sink's buffer handed to its successor on a hot reload: what was queued, and what was handed
out but not delivered, is delivered once by the successor; what was delivered is not again."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.agent.conftest import wait_for

from logharbor.agent.buffer import DiskBuffer, MemoryBuffer
from logharbor.agent.sinks.logharbor import Config, LogharborSink
from logharbor.agent.types import Ack, Encoded


def item(n: int) -> Encoded:
    return Encoded(orjson.dumps({"n": n}) + b"\n", 1, None)


@pytest.mark.parametrize("kind", ["memory", "disk"])
def test_rewind_gives_back_only_what_was_not_delivered_in_order(tmp_path: Path, kind: str) -> None:
    buf: Any = MemoryBuffer(1 << 20, "block") if kind == "memory" else DiskBuffer(tmp_path / "b", 1 << 20, "block")
    for n in range(5):
        buf.put(item(n))
    out = [buf.get(0.1) for _ in range(4)]
    buf.commit([out[1], out[3]])  # delivered out of order: 0 and 2 still in flight, 4 never handed out
    buf.rewind()
    again = []
    while (x := buf.get(0.0)) is not None:
        again.append(orjson.loads(x.payload)["n"])
        buf.commit([x])
    assert again == [0, 2, 4]
    assert buf.size() == (0, 0)
    if kind == "disk":
        buf.close()
        reopened = DiskBuffer(tmp_path / "b", 1 << 20, "block")
        assert reopened.get(0.0) is None  # the delivered position reached the end
        reopened.close()


def test_a_changed_sink_adopts_the_buffer_and_delivers_each_record_once(tmp_path: Path,
                                                                         receiver_factory: Any) -> None:
    r = receiver_factory()
    dead = receiver_factory()
    dead.kill()  # the old sink's receiver is down: its batches stay in flight, unacknowledged
    old = LogharborSink("s", Config.model_validate(
        {"type": "logharbor", "url": dead.url, "retry_initial_secs": 0.05, "retry_max_secs": 0.1,
         "batch": {"timeout_secs": 0.05, "max_events": 2}}), tmp_path)
    old.start()
    acks = [Ack(1) for _ in range(6)]
    for n, ack in enumerate(acks):
        old.submit(Encoded(orjson.dumps({"n": n}) + b"\n", 1, ack))
    assert wait_for(lambda: old.buffer.size()[1] == 6, 5)
    buffer = old.detach(2.0)
    assert not any(a.finished for a in acks)
    new = LogharborSink("s", Config.model_validate(
        {"type": "logharbor", "url": r.url, "batch": {"timeout_secs": 0.05}}), tmp_path, buffer=buffer)
    new.start()
    old.submit(Encoded(orjson.dumps({"n": 6}) + b"\n", 1, None))  # a chunk fanned out to the old one
    assert wait_for(lambda: all(a.finished for a in acks) and len(r.records()) == 7, 10)
    new.close(2)
    assert sorted(x["n"] for x in r.records()) == list(range(7))
