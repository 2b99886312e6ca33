"""The tail hub on a real embedded store: its rounds never wait for the store's writer."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import orjson

from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_record
from logharbor.server.features.tail.hub import TailHub


def test_a_round_finishes_while_an_insert_holds_the_store(tmp_path: Path) -> None:
    """A batch insert holds the store's insert lock (retention's statements too) for as long as
    it runs; a round that took it as well would hold every tail client behind each insert."""
    store = EmbeddedStore(tmp_path / "store")
    store.open()

    async def scenario() -> list[object]:
        hub = TailHub(store)
        await hub.start()
        try:
            sub = await hub.subscribe("service:held")
            with store._insert_lock:  # as an insert in progress holds it
                hub.publish(b"\n".join(encode_record({"service": s, "message": "m"}, received_ns=time.time_ns())
                                       for s in ("other", "held")))
                return await sub.take(timeout=120)  # a round behind the lock would get nothing
        finally:
            await hub.stop()

    try:
        items = asyncio.run(scenario())
    finally:
        store.close()
    assert [orjson.loads(i)["service"] for i in items if isinstance(i, bytes)] == ["held"]
