"""Convert a cluster's logs table of an older release (``attributes JSON`` + ``attributes_exact``)
to the text layout: ``logharbor migrate --to clickhouse://…?cluster=NAME``, every server stopped.

On a cluster the rows live in ``<logs>_local`` (``ReplicatedMergeTree`` on every replica of every
shard) behind the ``Distributed`` table ``<logs>``. A server does not rewrite that at start (it
would be every server of the cluster at once, and a long job); this command does, in steps that
are each found again from what the cluster holds, so after a crash the same command carries on:

1. **copy** into ``<logs>_local__attrtext`` (this release's table, ``ON CLUSTER``, replicated)
   through ``<logs>__attrtext`` (Distributed, same sharding key, so a row stays on its shard), a
   day partition at a time: rows without a patch by one ``INSERT … SELECT`` that each shard runs
   on its own rows (``parallel_distributed_insert_select = 2``), rows with a patch read back,
   rewritten exactly (store/attrmigrate.py) and inserted in the request body. A day is done when
   its count and content hash in the copy equal the old table's; a day that differs (cut short)
   is dropped from the copy and copied again. Inserts never deduplicate (``insert_deduplicate =
   0``): a day copied again after its drop would otherwise be skipped as already seen.
2. **verify** the whole table (count + hash of every row's identity), and write the figures into
   the copy's ``COMMENT``: the copy is now known whole even once the old table is gone.
3. **drop the old** patterns view, ``<logs>`` and ``<logs>_local`` (``ON CLUSTER … SYNC``).
4. **put back** ``<logs>_local`` at its usual replica path (``…/{table}`` = ``<logs>_local``, so a
   replica added later with logharbor's own DDL joins the same replica set), ``REPLACE
   PARTITION … FROM`` the copy for each partition (idempotent, hard links), the Distributed table
   again, compare with the comment, and drop the copy. The store's own start then creates what
   else is missing (the patterns view).

A crash in 1 or 2 leaves the old table whole (the next run skips the days already equal); in 3 the
copy is verified and the next run finishes the drop; in 4 the next run replaces the partitions
again. A server of this release refuses to start while the copy exists (clickhouse.py).
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from logharbor import exactjson
from logharbor.server.engine.store import attributes as attrs
from logharbor.server.engine.store.attrmigrate import MIGRATING_SUFFIX, TableAccess, new_row, stored_columns
from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string

if TYPE_CHECKING:
    from logharbor.server.engine.store.clickhouse import ClickHouseStore

__all__ = ["VERIFIED", "ClusterConversion"]

log = logging.getLogger("logharbor.store")

#: the copy's COMMENT once it is verified whole: ``logharbor-verified <rows> <hash>``
VERIFIED = "logharbor-verified"
#: every row's identity, order-free (the attributes change form, so they are left out; the
#: batch id and receive time tell apart records otherwise alike)
_HASH = "toString(sum(cityHash64(timestamp, observed_timestamp, service, message, trace_id, ingest_batch)))"
#: bytes of rewritten rows per insert
_PAGE_BYTES = 8 * 2**20
_COPY_SETTINGS = ("SETTINGS insert_deduplicate = 0, parallel_distributed_insert_select = 2, "
                  "distributed_foreground_insert = 1")


@dataclass
class ClusterConversion:
    """One run of the conversion of ``store``'s cluster table (see the module docstring)."""

    store: ClickHouseStore
    say: Callable[[str], None] = print
    #: per day: rows copied now (days already equal in the copy are not listed)
    copied: dict[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        store = self.store
        if not store.cluster:
            raise StoreError("the cluster conversion needs a store URL with ?cluster=NAME")
        self.on = f" ON CLUSTER {quote_identifier(store.cluster)}"
        self.local, self.dist = store.local_name, store.table_name
        self.copy_local, self.copy_dist = self.local + MIGRATING_SUFFIX, self.dist + MIGRATING_SUFFIX
        self.access = TableAccess(read=store.query, run=store.execute, insert=store.load_rows,
                                  create=lambda name: [], database=store.database)

    # -- what the cluster holds ------------------------------------------------------------

    def _layouts(self, name: str) -> set[str]:
        """The ``attributes`` types of table ``name`` on every replica ({} when absent everywhere)."""
        # a replica that is down is skipped (a server's start must not depend on every replica
        # answering); the conversion's own ON CLUSTER statements reach every one of them
        rows = self.store.query(
            f"SELECT DISTINCT type FROM clusterAllReplicas({quote_string(self.store.cluster or '')}, "  # noqa: S608
            "system.columns) WHERE database = {db:String} AND table = {t:String} AND name = 'attributes'",
            {"db": self.store.database, "t": name}, settings={"skip_unavailable_shards": 1})
        return {str(r["type"]) for r in rows}

    def _comment(self) -> tuple[int, str] | None:
        rows = self.store.query("SELECT comment FROM system.tables WHERE database = {db:String} "
                                "AND name = {t:String}", {"db": self.store.database, "t": self.copy_local})
        words = str(rows[0]["comment"]).split() if rows else []
        if len(words) == 3 and words[0] == VERIFIED:
            return int(words[1]), words[2]
        return None

    def _by_day(self, table: str) -> dict[str, tuple[int, str]]:
        rows = self.store.query(f"SELECT toString(toDate(timestamp)) AS d, count() AS n, {_HASH} AS h "  # noqa: S608
                                f"FROM {quote_identifier(table)} GROUP BY d ORDER BY d", {})
        return {str(r["d"]): (int(r["n"]), str(r["h"])) for r in rows}

    def _total(self, table: str) -> tuple[int, str]:
        rows = self.store.query(f"SELECT count() AS n, {_HASH} AS h FROM {quote_identifier(table)}", {})  # noqa: S608
        return (int(rows[0]["n"]), str(rows[0]["h"])) if rows else (0, "0")

    # -- the run ---------------------------------------------------------------------------

    def needed(self) -> bool:
        """Whether the table is of the old layout or a conversion was left part way."""
        return bool(self._layouts(self.copy_local)) or bool(self._layouts(self.local) - {"String"})

    def run(self) -> int:
        """Carry the conversion to its end from wherever it stands; the rows the table holds."""
        old, copy = self._layouts(self.local), self._layouts(self.copy_local)
        if len(old) > 1 or len(copy) > 1:
            raise StoreError(f"the replicas disagree on the layout of {self.local!r} ({sorted(old)}) or "
                             f"{self.copy_local!r} ({sorted(copy)}): a DDL did not reach every replica; "
                             "check system.distributed_ddl_queue, then run this again")
        if old and old != {"String"}:
            self._copy()
            verified = self._verify()
            self._drop_old()
        elif copy:
            verified = self._comment()
            if verified is None:
                raise StoreError(f"{self.copy_local!r} exists but was never verified whole and "
                                 f"{self.local!r} is not of the old layout: refusing to guess which holds "
                                 "the records (look at both, drop the wrong one by hand)")
        else:  # nothing to do
            return self._total(self.dist)[0] if old else 0
        self._put_back(verified)
        return verified[0]

    def _copy(self) -> None:
        store, cluster = self.store, quote_string(self.store.cluster or "")
        db = quote_string(store.database)
        # the Distributed table over the old rows (dropped by a run cut short in step 3)
        store.execute(f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.dist)}{self.on} AS "
                      f"{quote_identifier(self.local)} ENGINE = Distributed({cluster}, {db}, "
                      f"{quote_string(self.local)}, {store.sharding_key})")
        for statement in store.local_logs_ddl(self.copy_local):
            store.execute(statement)
        store.execute(f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.copy_dist)}{self.on} AS "
                      f"{quote_identifier(self.copy_local)} ENGINE = Distributed({cluster}, {db}, "
                      f"{quote_string(self.copy_local)}, {store.sharding_key})")
        old_columns, new_columns = stored_columns(self.access, self.local), stored_columns(self.access,
                                                                                          self.copy_local)
        lacking = [c for c in new_columns if c not in old_columns and c != "attributes"]
        if lacking:
            raise StoreError(f"cannot convert {self.local!r}: it lacks {', '.join(lacking)} (start this "
                             "release's server once so that it adds them, then run this again)")
        shared = [c for c in new_columns if c != "attributes"]
        has_patch = attrs.EXACT_COLUMN in old_columns
        old_days, done = self._by_day(self.dist), self._by_day(self.copy_dist)
        for day, figures in old_days.items():
            if done.get(day) == figures:
                continue
            if day in done:  # cut short: this day again, whole
                store.execute(f"ALTER TABLE {quote_identifier(self.copy_local)}{self.on} "
                              f"DROP PARTITION ID {quote_string(_partition_id(day))}")
            self._copy_day(day, shared, has_patch)
            got = self._by_day_one(self.copy_dist, day)
            if got != figures:
                raise StoreError(f"day {day}: the copy holds {got[0]} rows ({got[1]}) where {self.local!r} "
                                 f"holds {figures[0]} ({figures[1]}); nothing was changed in the old table; "
                                 "was a server writing to it? Stop every server and run this again")
            self.copied[day] = figures[0]
            self.say(f"{self.local} {day}: {figures[0]} rows copied and checked")

    def _by_day_one(self, table: str, day: str) -> tuple[int, str]:
        rows = self.store.query(f"SELECT count() AS n, {_HASH} AS h FROM {quote_identifier(table)} "  # noqa: S608
                                "WHERE toDate(timestamp) = toDate({d:String})", {"d": day})
        return (int(rows[0]["n"]), str(rows[0]["h"])) if rows else (0, "0")

    def _copy_day(self, day: str, shared: list[str], has_patch: bool) -> None:
        listed = ", ".join(quote_identifier(c) for c in shared)
        exact = quote_identifier(attrs.EXACT_COLUMN)
        plain = f"{exact} = ''" if has_patch else "1"
        where = f"toDate(timestamp) = toDate({{d:String}}) AND {plain}"
        self.store.execute(
            f"INSERT INTO {quote_identifier(self.copy_dist)} ({listed}, `attributes`) "  # noqa: S608
            f"SELECT {listed}, if(toString(`attributes`) = '{{}}', '', toString(`attributes`)) "
            f"FROM {quote_identifier(self.dist)} WHERE {where} {_COPY_SETTINGS}", {"d": day})
        if not has_patch:
            return
        page: list[bytes] = []
        size = 0
        chunks = self.store.stream(
            f"SELECT {listed}, toString(`attributes`) AS __lh_text, {exact} AS __lh_exact "  # noqa: S608
            f"FROM {quote_identifier(self.dist)} WHERE toDate(timestamp) = toDate({{d:String}}) "
            f"AND {exact} != ''", {"d": day})
        rest = b""
        for chunk in chunks:
            rest += chunk
            *lines, rest = rest.split(b"\n")
            for line in lines:
                if line:
                    page.append(new_row(exactjson.loads(line)))
                    size += len(page[-1])
            if size >= _PAGE_BYTES:
                self.store.load_rows(quote_identifier(self.copy_dist), b"\n".join(page))
                page, size = [], 0
        if rest.strip():
            page.append(new_row(exactjson.loads(rest)))
        if page:
            self.store.load_rows(quote_identifier(self.copy_dist), b"\n".join(page))

    def _verify(self) -> tuple[int, str]:
        before, after = self._total(self.dist), self._total(self.copy_dist)
        if before != after:
            raise StoreError(f"the copy holds {after[0]} rows ({after[1]}) where {self.local!r} holds "
                             f"{before[0]} ({before[1]}); the old table is left as it was (run this again)")
        self.store.execute(f"ALTER TABLE {quote_identifier(self.copy_local)}{self.on} MODIFY COMMENT "
                           f"{quote_string(f'{VERIFIED} {before[0]} {before[1]}')}")
        self.say(f"{self.copy_local}: {before[0]} rows, the same as {self.local} (hash {before[1]})")
        return before

    def _drop_old(self) -> None:
        store = self.store
        store.execute(f"DROP VIEW IF EXISTS {quote_identifier(store.patterns_local + '_mv')}{self.on} SYNC")
        store.execute(f"DROP TABLE IF EXISTS {quote_identifier(self.dist)}{self.on} SYNC")
        store.execute(f"DROP TABLE IF EXISTS {quote_identifier(self.local)}{self.on} SYNC")
        self.say(f"{self.local}: the old layout's table dropped")

    def _put_back(self, verified: tuple[int, str]) -> None:
        store, cluster = self.store, quote_string(self.store.cluster or "")
        for statement in store.local_logs_ddl(self.local):
            store.execute(statement)
        rows = store.query(
            f"SELECT DISTINCT partition_id AS p FROM cluster({cluster}, system.parts) WHERE active "  # noqa: S608
            "AND database = {db:String} AND table = {t:String} ORDER BY p",
            {"db": store.database, "t": self.copy_local})
        for row in rows:
            partition = quote_string(_checked_id(str(row["p"])))
            store.execute(f"ALTER TABLE {quote_identifier(self.local)}{self.on} REPLACE PARTITION ID "
                          f"{partition} FROM {quote_identifier(self.copy_local)}")
        store.execute(f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.dist)}{self.on} AS "
                      f"{quote_identifier(self.local)} ENGINE = Distributed({cluster}, "
                      f"{quote_string(store.database)}, {quote_string(self.local)}, {store.sharding_key})")
        got = self._total(self.dist)
        if got != verified:
            raise StoreError(f"{self.local!r} holds {got[0]} rows ({got[1]}) after the partitions were put "
                             f"back, the verified copy {verified[0]} ({verified[1]}); the copy "
                             f"{self.copy_local!r} is kept: run this again")
        store.execute(f"DROP TABLE IF EXISTS {quote_identifier(self.copy_dist)}{self.on} SYNC")
        store.execute(f"DROP TABLE IF EXISTS {quote_identifier(self.copy_local)}{self.on} SYNC")
        self.say(f"{self.local}: {got[0]} rows in the text layout; the copy dropped")


def _partition_id(day: str) -> str:
    if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
        raise StoreError(f"not a day: {day!r}")
    return day.replace("-", "")


def _checked_id(partition: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", partition):
        raise StoreError(f"unexpected partition id {partition!r}")
    return partition
