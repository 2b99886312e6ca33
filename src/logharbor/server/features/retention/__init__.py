"""Retention (DESIGN §3 "Alerts and retention"): tiers hot → warm → cold → delete per rule,
down-sampling, delete by query, the disk guard and storage figures.

The app calls :func:`build_retention` once the store is open and mounts :func:`retention_router`.
"""

from __future__ import annotations

import logging
from pathlib import Path

from logharbor.server.engine.store.base import Store
from logharbor.server.engine.store.coldstore import ColdStore, LocalCold, cold_store_from_url
from logharbor.server.engine.store.tiers import Tiers
from logharbor.server.features.retention import tables as _tables  # noqa: F401  (registers the tables)
from logharbor.server.features.retention.delete import Audit, DeleteJobs
from logharbor.server.features.retention.guard import DiskGuard
from logharbor.server.features.retention.local import LocalState
from logharbor.server.features.retention.mover import Mover
from logharbor.server.features.retention.routes import retention_router
from logharbor.server.features.retention.rules import RetentionPolicy, Rule
from logharbor.server.features.retention.service import Retention, StorageCollector
from logharbor.server.leader import Leadership
from logharbor.server.meta.db import MetaStore

log = logging.getLogger("logharbor.retention")

__all__ = ["LocalState", "Retention", "RetentionPolicy", "Rule", "StorageCollector", "build_retention",
           "retention_router"]


def build_retention(store: Store, meta: MetaStore, data_dir: Path, *, cold_storage: str,
                    cold_endpoint: str | None, interval_s: float, disk_max_bytes: int | None,
                    disk_min_free_bytes: int, audit: Audit | None, local: LocalState | None = None,
                    leader: Leadership | None = None) -> Retention:
    """Open the tiers (warm table, read view) and wire mover, delete jobs and guard; not started.

    ``local`` is this server's WAL and batcher, which a delete-by-query flushes and scrubs;
    ``leader`` (servers sharing meta) is the one that runs the mover's ticks.
    """
    cold: ColdStore | None = cold_store_from_url(cold_storage, data_dir, endpoint=cold_endpoint)
    if store.storage_policy is not None:
        # Parquet files are not sealed: with encryption at rest, records stay hot or warm
        log.warning("encryption at rest is on: the cold tier is off (rules' cold ages are not applied)")
        cold = None
    tiers = Tiers(store, cold)
    tiers.open()
    mover = Mover(tiers, meta, interval_s=interval_s, leader=leader, audit=audit)
    exclude = cold.root if isinstance(cold, LocalCold) else None
    guard = DiskGuard(data_dir, mover, max_bytes=disk_max_bytes, min_free_bytes=disk_min_free_bytes,
                      exclude=exclude, store_dir=store.path)
    return Retention(tiers, mover, DeleteJobs(mover, meta, audit, local=local), guard)
