"""The disk guard: over its size, the lowest-priority rule's oldest hot day goes first (to cold
when the rule has it, else deleted); over the hard limit ingest answers 429, before the disk fills."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from tests.retention.helpers import counts, insert, open_tiers, record, set_policy

from logharbor.server.engine.wal import WriteAheadLog
from logharbor.server.features.retention.guard import DiskGuard, directory_bytes, store_bytes
from logharbor.server.ingest.base import Backpressure, Ingestor, http_error

POLICY = {"rules": [
    {"name": "debug", "match": {"level": "DEBUG"}, "hot": "30d", "priority": 0},
    {"name": "alb", "match": {"source": "alb"}, "hot": "30d", "cold": "365d", "priority": 1},
    {"name": "errors", "match": {"level": "ERROR"}, "hot": "30d", "priority": 9},
]}


def test_lowest_priority_oldest_day_goes_first(tmp_path: Path) -> None:
    store, tiers, mover = open_tiers(tmp_path)
    try:
        insert(store, [record(age, level=level, source=source, n=i)
                       for age in (1, 2, 3) for level in ("DEBUG", "ERROR") for source in ("alb", "app")
                       for i in range(50)])
        set_policy(mover, POLICY)
        assert directory_bytes(tmp_path, exclude=tmp_path / "cold") > 0
        guard = DiskGuard(tmp_path, mover, max_bytes=1024, exclude=tmp_path / "cold", reject_margin=10**6,
                          store_dir=tmp_path / "store")
        # 1st step: rule "debug" (priority 0) loses its oldest day (no cold tier: deleted)
        assert store_bytes(mover) > 0
        assert guard.check() and not guard.rejecting
        assert counts(tiers, "level = 'DEBUG'")["hot"] == 200  # 3 days × 2 sources × 50, minus day 3
        assert counts(tiers, "level = 'DEBUG' AND message LIKE '% at 3d'")["hot"] == 0
        # the freed rows left the active parts at once (what the guard measures), not at a later merge
        parts = store.query("SELECT sum(rows) AS n FROM system.parts WHERE active AND table = 'logs'", {})
        assert int(parts[0]["n"]) == 500
        guard.check()
        guard.check()
        assert counts(tiers, "level = 'DEBUG'")["hot"] == 0
        # then "alb" (priority 1): its oldest day moves to cold; errors (priority 9) are untouched
        guard.check()
        alb = counts(tiers, "source = 'alb' AND level != 'DEBUG'")
        assert alb == {"hot": 100, "warm": 0, "cold": 50}
        assert counts(tiers, "level = 'ERROR' AND source = 'app'")["hot"] == 150
    finally:
        store.close()


def test_ingest_answers_429_before_the_disk_fills(tmp_path: Path) -> None:
    wal = WriteAheadLog(tmp_path / "wal", max_bytes=64 * 1024 * 1024, fsync=False)
    wal.open()
    used = {"bytes": 1000}
    guard = DiskGuard(tmp_path, None, max_bytes=2000, measure=lambda: used["bytes"], free=lambda: 10**12)
    ingestor = Ingestor(wal, refusal=guard.refusal)
    try:
        guard.check()
        asyncio.run(ingestor.write_payload(b'{"message":"fits"}'))
        used["bytes"] = 2300  # more than 10 % over the limit
        guard.check()
        with pytest.raises(Backpressure) as refused:
            asyncio.run(ingestor.write_payload(b'{"message":"refused"}'))
        answer = http_error(refused.value)
        assert answer.status == 429 and "Retry-After" in answer.headers
        assert "over its size limit" in str(answer.detail)
        used["bytes"] = 1500
        guard.check()
        asyncio.run(ingestor.write_payload(b'{"message":"accepted again"}'))
        # too little free disk refuses as well, whatever the size limit
        low = DiskGuard(tmp_path, None, max_bytes=None, min_free_bytes=10**9, free=lambda: 10**6)
        low.check()
        assert low.rejecting
    finally:
        ingestor.close()
        wal.close()
