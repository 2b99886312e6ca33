"""Shared pieces of the retention tests: a store with tiers on a temporary folder, records of
chosen ages, and counts per tier."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

from logharbor.record import normalize
from logharbor.server.engine.store.coldstore import ColdStore, LocalCold
from logharbor.server.engine.store.embedded import EmbeddedStore
from logharbor.server.engine.store.rows import encode_row
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.retention.mover import Mover
from logharbor.server.features.retention.rules import RetentionPolicy
from logharbor.server.meta.db import MetaStore

DAY = 86_400 * 10**9
#: "now" of the injectable clock: 2026-06-01T00:00:00Z
NOW = 1_780_272_000 * 10**9
_tokens = itertools.count()


class FakeClock:
    """The mover's clock, moved by the test."""

    def __init__(self, now: int = NOW) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def open_tiers(tmp: Path, cold: ColdStore | None = None, *, clock: FakeClock | None = None,
               **mover_args: Any) -> tuple[EmbeddedStore, Tiers, Mover]:
    store = EmbeddedStore(tmp / "store")
    store.open()
    meta = MetaStore.for_data_dir(tmp)
    meta.create()
    tiers = Tiers(store, cold if cold is not None else LocalCold(tmp / "cold"))
    tiers.open()
    mover = Mover(tiers, meta, clock=clock or FakeClock(), **mover_args)
    mover.load_policy()
    return store, tiers, mover


def record(age_days: float, *, level: str = "INFO", service: str = "checkout", source: str = "app",
           trace_id: str = "", n: int = 0, **extra: Any) -> dict[str, Any]:
    ts = NOW - int(age_days * DAY) + n * 1000
    return {"timestamp": ts, "level": level, "service": service, "source": source,
            "message": f"record {n} of {service} at {age_days}d", "trace_id": trace_id, **extra}


def insert(store: EmbeddedStore, records: list[dict[str, Any]]) -> None:
    rows = b"\n".join(encode_row(normalize(r)) for r in records)
    store.insert(rows, dedup_token=f"test-{next(_tokens)}")


def counts(tiers: Tiers, where: str = "1") -> dict[str, int]:
    out = {}
    for tier in ("hot", "warm", "cold"):
        if tier == "cold" and not tiers.cold.keys():  # type: ignore[union-attr]
            out[tier] = 0
            continue
        rows = tiers.store.query(f"SELECT count() AS n FROM {tiers.source(tier)} WHERE {where}", {})  # noqa: S608
        out[tier] = int(rows[0]["n"])
    return out


def set_policy(mover: Mover, spec: dict[str, Any]) -> None:
    mover.save_policy(RetentionPolicy.model_validate(spec), "test")
