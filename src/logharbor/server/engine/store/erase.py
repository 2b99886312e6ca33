"""Physical erasure for delete-by-query: the parts holding a match are rewritten without it.

The engine's lightweight ``DELETE FROM`` only masks rows (they stay in the part until a merge,
which may never come for an old day), and any ``ALTER … DELETE WHERE <condition>`` keeps its
condition, with the user's values written in, in the table's ``mutation_N.txt``. So an erasure:

1. hashes every matching row of a table (the whole row: ``sipHash128`` over every column) into
   a ``Set`` table kept in memory only (``persistent = 0``); masked rows that still match (copies
   a move or an earlier lightweight delete left in a part) are found with
   ``apply_deleted_mask = 0`` and counted too;
2. rewrites, in one ``ALTER`` per table, each partition that holds a match: ``APPLY DELETED
   MASK`` (drops every masked row of the partition for good) and ``DELETE IN PARTITION ID …
   WHERE <row hash> IN <set>``, synchronously. The mutation text names the set, never a value;
3. waits until the parts the rewrite replaced have left the disk (the engine removes replaced
   parts ``old_parts_lifetime`` after they stop being active, 0 in chDB and 480 s by default
   on a ClickHouse server, at its next cleanup: Tiers.open holds that period to 2 s at most).

The helper tables belong to one job and are dropped only when it is over: a mutation whose
table is gone fails for ever and blocks the ones after it, so a mutation left unfinished by an
error is killed first (after a restart a pending one finds its memory-only table empty and
deletes nothing; the resumed job fills it again). ``finished_mutations_to_keep = 1`` on every
table erased (set by Tiers.open) keeps no older mutation text (a lightweight delete made before
this module existed, its values written in) beyond the next erasure.
"""

# SQL here is built from identifiers quoted by store/sqlsafe.py, partition ids checked against a
# strict pattern, and conditions whose values are all parameters.
# ruff: noqa: S608
from __future__ import annotations

import logging
import os
import re
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from logharbor.server.engine.store.base import StoreError
from logharbor.server.engine.store.sqlsafe import quote_identifier
from logharbor.server.engine.store.tiers import Tiers

__all__ = ["Erased", "Eraser"]

log = logging.getLogger("logharbor.retention")

_PARTITION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DATABASE = re.compile(r"^[A-Za-z0-9_]{1,64}$")
_SAMPLE_CHARS = 512  # the miner's sample is the head of a message (server/engine/mining.py)


@dataclass
class Erased:
    """What one table's erasure did: rows (visible) and masked copies removed, partitions rewritten,
    and the parts the rewrite replaced (which still hold the values until the engine removes them)."""

    rows: int = 0
    masked: int = 0
    partitions: list[str] = field(default_factory=list)
    replaced: list[list[str]] = field(default_factory=list)  # [table/part, its directory]


class Eraser:
    """Erasure over one store's tiers (hot and warm tables, and the patterns table)."""

    def __init__(self, tiers: Tiers, job_id: str) -> None:
        if not re.fullmatch(r"[a-z0-9]{1,32}", job_id):
            raise ValueError(f"bad job id {job_id!r}")
        self.tiers = tiers
        self.store = tiers.store
        # one set of helper tables per job: two jobs (or two servers on one ClickHouse) never
        # fill each other's
        base = f"{self.store.table_name}_erase_{job_id}"
        self.set_name = f"{base}_rows"
        self.ids_name = f"{base}_patterns"
        self.samples_name = f"{base}_samples"
        self.patterns_name: str | None = self.store.patterns_name
        self._database: str | None = None

    # -- set-up ----------------------------------------------------------------------------

    def prepare(self) -> None:
        """Create the helper tables (memory only; the tables' own settings are Tiers.open's).

        With the tiers' view, the only schema changes after start (``TierView.schema_change``):
        refused with a no-space error when the disk is short; their tables hold no data, so a
        damaged metadata file of theirs is harmless to set aside.
        """
        store = self.store
        with store.schema_change("a delete's helper tables"):
            store.execute(f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.set_name)} "
                          "(h FixedString(16)) ENGINE = Set SETTINGS persistent = 0")
            store.execute(f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.ids_name)} "
                          "(pattern_id String) ENGINE = Set SETTINGS persistent = 0")
            store.execute(f"CREATE TABLE IF NOT EXISTS {quote_identifier(self.samples_name)} "
                          "(pattern_id String, sample String) ENGINE = Join(ANY, LEFT, pattern_id) "
                          "SETTINGS persistent = 0")

    def drop_helpers(self) -> None:
        """Drop the helper tables once no mutation can still read them (the job is over)."""
        with self.store.schema_change("dropping a delete's helper tables"):
            for name in (self.set_name, self.ids_name, self.samples_name):
                self.store.execute(f"DROP TABLE IF EXISTS {quote_identifier(name)}")

    @property
    def database(self) -> str:
        if self._database is None:
            name = str(self.store.query("SELECT currentDatabase() AS db", {})[0]["db"])
            if not _DATABASE.match(name):
                raise StoreError(f"database name {name!r} cannot be named inside joinGet")
            self._database = name
        return self._database

    def _row_hash(self) -> str:
        return "sipHash128((" + ", ".join(quote_identifier(n) for n, _ in self.tiers.columns) + "))"

    def _table(self, tier: str) -> str:
        return self.store.table_name if tier == "hot" else self.tiers.warm_name

    # -- rows ------------------------------------------------------------------------------

    def pattern_ids(self, cond: str, params: Mapping[str, Any]) -> list[str]:
        """Pattern ids of every match in hot and warm (masked copies too) and in cold."""
        ids: set[str] = set()
        for tier in ("hot", "warm"):
            table = quote_identifier(self._table(tier))
            rows = self.store.query(f"SELECT DISTINCT pattern_id AS p FROM {table} WHERE ({cond}) "
                                    "AND pattern_id != ''", dict(params), settings={"apply_deleted_mask": 0})
            ids.update(str(r["p"]) for r in rows)
        if self.tiers.cold is not None and self.tiers.cold.keys():
            rows = self.store.query(f"SELECT DISTINCT pattern_id AS p FROM {self.tiers.source('cold')} "
                                    f"WHERE ({cond}) AND pattern_id != ''", dict(params))
            ids.update(str(r["p"]) for r in rows)
        return sorted(ids)

    def erase(self, tier: str, cond: str, params: Mapping[str, Any]) -> Erased:
        """Rewrite the partitions of hot or warm that hold a match, without the matches."""
        name = self._table(tier)
        table = quote_identifier(name)
        found = self.store.query(
            f"SELECT _partition_id AS p, count() AS n, countIf(_row_exists) AS visible FROM {table} "
            f"WHERE {cond} GROUP BY p ORDER BY p", dict(params), settings={"apply_deleted_mask": 0})
        done = Erased()
        if not found:
            return done
        for row in found:
            if not _PARTITION_ID.match(str(row["p"])):
                raise StoreError(f"unexpected partition id {row['p']!r}")
        done.partitions = [str(r["p"]) for r in found]
        done.rows = sum(int(r["visible"]) for r in found)
        done.masked = sum(int(r["n"]) - int(r["visible"]) for r in found)
        rows_set = quote_identifier(self.set_name)
        self.store.execute(f"TRUNCATE TABLE {rows_set}")
        self.store.execute(f"INSERT INTO {rows_set} SELECT {self._row_hash()} FROM {table} WHERE {cond} "
                           "SETTINGS apply_deleted_mask = 0", params)
        commands = []
        for pid in done.partitions:
            commands.append(f"APPLY DELETED MASK IN PARTITION ID '{pid}'")
            commands.append(f"DELETE IN PARTITION ID '{pid}' WHERE {self._row_hash()} IN {rows_set}")
        self._mutate(name, ", ".join(commands))
        self.store.execute(f"TRUNCATE TABLE {rows_set}")
        done.replaced = self._inactive(name, done.partitions)
        return done

    def _mutate(self, name: str, commands: str) -> None:
        """Run one ALTER synchronously; on failure kill what it left queued (it would block the table)."""
        try:
            self.store.execute(f"ALTER TABLE {quote_identifier(name)} {commands} "
                               "SETTINGS mutations_sync = 2")
        except StoreError:
            self.store.execute("KILL MUTATION WHERE database = currentDatabase() AND table = {t:String} "
                               "AND NOT is_done SYNC", {"t": name})
            raise

    def _inactive(self, name: str, partitions: list[str] | None) -> list[list[str]]:
        """[table/part, directory] of the table's inactive parts (in ``partitions``, or all)."""
        where = "" if partitions is None else " AND partition_id IN {p:Array(String)}"
        rows = self.store.query(
            "SELECT name, path FROM system.parts WHERE database = currentDatabase() AND table = {t:String} "
            f"AND NOT active{where}", {"t": name, "p": partitions or []})
        return [[f"{name}/{r['name']}", str(r["path"])] for r in rows]

    # -- patterns --------------------------------------------------------------------------

    def survivors(self, ids: list[str]) -> dict[str, str]:
        """A remaining record's message (its head, as the miner keeps) per pattern id that has one."""
        if not ids:
            return {}
        rows = self.store.query(
            f"SELECT pattern_id AS p, any(substringUTF8(message, 1, {_SAMPLE_CHARS})) AS m "
            f"FROM {self.store.table} WHERE pattern_id IN {{ids:Array(String)}} GROUP BY p",
            {"ids": ids})
        return {str(r["p"]): str(r["m"]) for r in rows}

    def fix_patterns(self, ids: list[str], survivors: Mapping[str, str]) -> Erased:
        """Patterns whose records were all erased go; the others get a remaining record's message as
        their sample (a template keeps only tokens every member shares, so a remaining member's
        tokens are all it can show)."""
        done = Erased()
        if not ids or not self.patterns_name:
            return done
        name = self.patterns_name
        found = self.store.query(f"SELECT count() AS n FROM {quote_identifier(name)} "
                                 "WHERE pattern_id IN {ids:Array(String)}", {"ids": ids})
        if not int(found[0]["n"]):
            return done
        dead_set = quote_identifier(self.ids_name)
        samples = quote_identifier(self.samples_name)
        qualified = f"{self.database}.{self.samples_name}"
        if not re.fullmatch(r"[A-Za-z0-9_.]+", qualified):
            raise StoreError(f"table name {qualified!r} cannot be named inside joinGet")
        self.store.execute(f"TRUNCATE TABLE {dead_set}")
        self.store.execute(f"TRUNCATE TABLE {samples}")
        dead = [i for i in ids if i not in survivors]
        live = [i for i in ids if i in survivors]
        commands = []
        if dead:
            self.store.execute(f"INSERT INTO {dead_set} SELECT arrayJoin({{ids:Array(String)}})",
                               {"ids": dead})
            commands.append(f"DELETE WHERE pattern_id IN {dead_set}")
        if live:
            self.store.execute(f"INSERT INTO {samples} SELECT kv.1 AS pattern_id, kv.2 AS sample FROM "
                               "(SELECT arrayJoin(arrayZip({k:Array(String)}, {v:Array(String)})) AS kv)",
                               {"k": live, "v": [survivors[i] for i in live]})
            commands.append(f"UPDATE sample = joinGet('{qualified}', 'sample', pattern_id) "
                            f"WHERE pattern_id IN (SELECT pattern_id FROM {quote_identifier(self.database)}."
                            f"{samples})")
        self._mutate(name, ", ".join(commands))
        self.store.execute(f"TRUNCATE TABLE {dead_set}")
        self.store.execute(f"TRUNCATE TABLE {samples}")
        done.rows = int(found[0]["n"])
        done.partitions = ["all"]
        done.replaced = self._inactive(name, None)
        return done

    # -- waiting for the disk --------------------------------------------------------------

    def remaining(self, replaced: list[list[str]]) -> list[list[str]]:
        """Which of ``replaced`` the engine still lists, or whose directory is still here.

        The engine forgets a part a moment before its directory is gone; on the embedded store
        (and a ClickHouse server on this host) the directory itself is checked too.
        """
        if not replaced:
            return []
        tables = sorted({name.split("/", 1)[0] for name, _ in replaced})
        rows = self.store.query(
            "SELECT concat(table, '/', name) AS part FROM system.parts WHERE database = currentDatabase() "
            "AND table IN {t:Array(String)}", {"t": tables})
        present = {str(r["part"]) for r in rows}
        return [[name, path] for name, path in replaced
                if name in present or (path and os.path.isdir(path))]

    def wait_gone(self, replaced: list[list[str]], timeout_s: float, *, poll_s: float = 1.0,
                  stop: threading.Event | None = None) -> list[list[str]]:
        """Wait (bounded, or until ``stop`` is set) until the engine has removed every replaced
        part; those left at the end."""
        deadline = time.monotonic() + timeout_s
        left = self.remaining(replaced)
        while left and time.monotonic() < deadline:
            if stop is not None and stop.wait(poll_s):
                break
            if stop is None:
                time.sleep(poll_s)
            left = self.remaining(left)
        return left
