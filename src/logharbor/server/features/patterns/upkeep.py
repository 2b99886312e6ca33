"""What an upgrade leaves behind, brought up to date in the background, throttled (docs/patterns.md).

Two kinds of leftovers, worked through in this order, a step per run of a :class:`Periodic`:

1. **Ids of the first release.** It stored each record with the id of the *cluster* its message
   joined, and its patterns table has no ``group_id`` for them. Each such id is *adopted*: its
   sample message is learned by the miner and the id follows that message's group (an alias when
   it is not the message's masked-template id). So ``| patterns`` over old and new records shows one
   group, whose first-seen time is the old one — a ``new_pattern`` rule does not fire for every
   template after the upgrade.
2. **Records stored before patterns existed** (``pattern_id = ''`` with a message): one partition of
   the hot and warm tables at a time, the masked-template id of each distinct message is put in a
   memory-only join table; the partition's counts go to the patterns table (deduplicated by a token
   naming the partition, so a crash before the next step does not count twice), the miner learns
   the new ids, then one mutation writes ``pattern_id`` from the join table. Between two steps the
   upkeep waits ``rows / rows_per_s`` seconds, so it takes a bounded share of the machine.

Cold (Parquet) files are not rewritten: records already moved there keep ``''``. On servers
sharing a store it runs on the leader; on a ClickHouse cluster the backfill is skipped (the
mutations would have to run on every shard) and said so in the log. Progress is in ``/metrics``
(:meth:`PatternUpkeep.gauges`).
"""

from __future__ import annotations

import logging
import math
import re
import time
from typing import TYPE_CHECKING, Any

from logharbor.server.engine.store.base import Store, StoreError
from logharbor.server.engine.store.patterns import patterns_table_name
from logharbor.server.engine.store.rows import _sid
from logharbor.server.engine.store.sql import upkeep as sql
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.leader import Leadership, leads
from logharbor.server.periodic import Periodic

if TYPE_CHECKING:
    from logharbor.server.engine.batcher import Batcher
    from logharbor.server.engine.mining import PatternMiner

__all__ = ["PatternUpkeep"]

log = logging.getLogger("logharbor.server.patterns")

_ADOPT_PAGE = 500  # old ids adopted per step
_SLICE = 200_000  # distinct messages held in the join table at once
_PARTITION_ID = re.compile(r"[A-Za-z0-9_-]{1,128}")
_DATABASE = re.compile(r"[A-Za-z0-9_]{1,128}")


class PatternUpkeep:
    """Adopts the first release's ids, then backfills records that have none; see the module doc."""

    def __init__(self, store: Store, batcher: Batcher, *, rows_per_s: float = 20_000.0,
                 idle_s: float = 600.0, leader: Leadership | None = None) -> None:
        self.store = store
        self.leader = leader  # servers sharing a store: only the leader works
        self.batcher = batcher
        self.rows_per_s = rows_per_s
        self.idle_s = idle_s
        self.patterns = quote_identifier(patterns_table_name(store.table_name))
        self.join_name = f"{store.table_name}_pattern_backfill"
        self.interval_s = 1.0
        self.adopted = 0
        self.backfilled = 0
        self.ids_left = -1  # unknown until counted
        self.rows_left = -1
        self._todo: list[tuple[str, str, int]] | None = None  # (table, partition, rows) to backfill
        self._worker = Periodic("pattern-upkeep", self.tick, lambda: self.interval_s,
                                "the pattern upkeep (adopting old ids, backfilling old records)")

    def start(self) -> None:
        self._worker.start()

    def stop(self) -> None:
        self._worker.stop()

    def gauges(self) -> dict[str, float]:
        return {"logharbor_pattern_upgrade_ids_left": float(self.ids_left),
                "logharbor_pattern_upgrade_ids_adopted": float(self.adopted),
                "logharbor_pattern_backfill_rows_left": float(self.rows_left),
                "logharbor_pattern_backfill_rows_done": float(self.backfilled)}

    # -- one step ----------------------------------------------------------------------------

    def tick(self) -> dict[str, int]:
        """One step of work (old ids first, then one partition); the wait before the next."""
        if not leads(self.leader):
            return {}
        adopted = self._adopt_page()
        if adopted:
            self.interval_s = 0.2
            return {"adopted": adopted}
        rows = self._backfill_partition() if self.rows_per_s > 0 else 0
        if rows:
            self.interval_s = max(0.2, rows / self.rows_per_s)
            return {"backfilled": rows}
        self.interval_s = self.idle_s  # nothing left: look again now and then (a restore, a merge)
        return {}

    # -- old ids -----------------------------------------------------------------------------

    def _adopt_page(self) -> int:
        if self.ids_left < 0:
            self.ids_left = int(self.store.query(sql.count_of(sql.unadopted_sql(self.patterns, None)),
                                                 {})[0]["n"])
        if self.ids_left == 0:
            return 0
        page = self.store.query(sql.unadopted_sql(self.patterns, _ADOPT_PAGE), {})
        if not page:
            self.ids_left = 0
            return 0

        def adopt(miner: PatternMiner) -> list[dict[str, Any]]:
            rows: list[dict[str, Any]] = []
            for r in page:
                rows.extend(miner.adopt(str(r["tenant"]), str(r["service"]), str(r["pattern_id"]),
                                        str(r["s"]), ts=str(r["f"])))
            return rows

        self.batcher.assign(adopt, f"adopt-{time.time_ns()}")
        self.adopted += len(page)
        self.ids_left = max(0, self.ids_left - len(page))
        if self.ids_left == 0:
            log.info("patterns: %d ids of the first release adopted into their groups", self.adopted)
        return len(page)

    # -- old records -------------------------------------------------------------------------

    def _tables(self) -> list[str]:
        if self.store.cluster:
            log.warning("patterns: records stored before patterns existed are not backfilled on a "
                        "cluster (each shard would need its own mutations)")
            return []
        names = [self.store.table_name, f"{self.store.table_name}_warm"]
        found = self.store.existing_tables(names)
        return [n for n in names if n in found]

    def _plan(self) -> list[tuple[str, str, int]]:
        todo = []
        for name in self._tables():
            for r in self.store.query(sql.unassigned_partitions_sql(quote_identifier(name)), {}):
                if not _PARTITION_ID.fullmatch(str(r["p"])):
                    raise StoreError(f"unexpected partition id {r['p']!r}")
                todo.append((name, str(r["p"]), int(r["n"])))
        return todo

    def _backfill_partition(self) -> int:
        if self._todo is None:
            self._todo = self._plan()
            self.rows_left = sum(n for _, _, n in self._todo)
            if self.rows_left:
                log.info("patterns: %d records stored before patterns existed get their ids, in the "
                         "background (%d partitions)", self.rows_left, len(self._todo))
        if not self._todo:
            self.rows_left = 0
            return 0
        name, partition, rows = self._todo[0]
        self._backfill(name, partition, rows)
        self._todo.pop(0)
        self.backfilled += rows
        self.rows_left = max(0, self.rows_left - rows)
        if not self._todo:
            log.info("patterns: backfill done (%d records)", self.backfilled)
            with self.store.schema_change("dropping the pattern backfill's helper table"):
                self.store.execute(sql.drop_table_sql(quote_identifier(self.join_name)))
        return rows

    def _backfill(self, name: str, partition: str, rows: int) -> None:
        table = quote_identifier(name)
        join = quote_identifier(self.join_name)
        database = str(self.store.query(sql.CURRENT_DATABASE, {})[0]["db"])
        if not _DATABASE.fullmatch(database):
            raise StoreError(f"database name {database!r} cannot be named inside joinGet")
        # the one schema change of the backfill (after start: TierView.schema_change, refused on a
        # short disk); memory-only, so a damaged definition of it is set aside at start (startcheck)
        with self.store.schema_change("the pattern backfill's helper table"):
            self.store.execute(sql.create_join_sql(join))
        self.store.execute(sql.truncate_sql(join))
        slices = max(1, math.ceil(rows / _SLICE))
        learned: dict[tuple[str, str, str], tuple[str, str]] = {}  # (tenant, service, sid) → message, ts
        for k in range(slices):
            found = self.store.query(sql.message_slice_sql(table), {"p": partition, "s": slices, "k": k})
            hashes, sids = [], []
            for r in found:
                tenant, service, message = str(r["tenant"]), str(r["service"]), str(r["message"])
                sid = _sid(tenant or None, service or None, message)
                hashes.append(int(r["h"]))
                sids.append(sid)
                learned.setdefault((tenant, service, sid), (message, str(r["ts"])))
            if hashes:
                self.store.execute(sql.fill_join_sql(join), {"h": hashes, "s": sids})
        if not re.fullmatch(r"[A-Za-z0-9_]+", self.join_name):
            raise StoreError(f"table name {self.join_name!r} cannot be named inside joinGet")
        lookup = sql.join_lookup(database, self.join_name)
        # counts first (a replay of this step is deduplicated by the token), then the assignments,
        # then the ids themselves: a record never shows an id the patterns table does not know
        token = f"backfill-{name}-{partition}-{rows}"  # names and partition ids: checked above
        self.store.execute(sql.backfill_counts_sql(self.patterns, table, lookup, token), {"p": partition})

        def learn(miner: PatternMiner) -> list[dict[str, Any]]:
            out: list[dict[str, Any]] = []
            for (tenant, service, sid), (message, ts) in learned.items():
                out.extend(miner.adopt(tenant, service, sid, message, ts=ts))
            return out

        self.batcher.assign(learn, f"backfill-assign-{time.time_ns()}")
        self.store.execute(sql.assign_ids_sql(table, lookup, partition), {"p": partition})
        self.store.execute(sql.truncate_sql(join))
