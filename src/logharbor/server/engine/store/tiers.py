"""The three tiers as SQL: the hot table, the warm table, the cold Parquet files, and their union.

Warm is a second MergeTree table (``<logs>_warm``) with the same columns and heavier codecs
(ZSTD(9) instead of ZSTD(1)/ZSTD(3)), plus a ``move_id`` column naming the move that wrote each
row, so a move that crashed half-way is undone by deleting its ``move_id`` and done again. A
separate table rather than ``TTL … RECOMPRESS``: TTLs run on the engine's wall clock on whole
parts (which mix services and levels), while rules are per service/level and the mover runs on an
injectable clock; moving rows also merges them into large, well-compressed parts.

Queries read the view ``<logs>_all`` = hot ∪ warm ∪ cold (the cold branch only once cold files
exist); the store's ``table`` names it, so the compiled SQL is the same whatever tiers exist.
"""

# SQL here is built from identifiers quoted by store/sqlsafe.py and conditions whose values are
# all parameters; nothing a user sends is formatted into the text.
# ruff: noqa: S608
from __future__ import annotations

import logging
import re
from collections.abc import Mapping
from typing import Any

from logharbor.server.engine.store.attrmigrate import TableAccess, migrate_attributes, migrate_cold_files
from logharbor.server.engine.store.base import ERASURE_SETTINGS, Store, StoreError, schema_sql
from logharbor.server.engine.store.coldstore import ColdStore
from logharbor.server.engine.store.freetext import fill, is_complete
from logharbor.server.engine.store.migrations import add_column, ensure_settings, logs_migrations, missing
from logharbor.server.engine.store.sqlsafe import quote_identifier, quote_string
from logharbor.types import Row, SqlParams

__all__ = ["Tiers"]

log = logging.getLogger("logharbor.retention")

#: a record's identity across tiers: enough columns that two different records never share it
#: (the attributes are their stored text, the same in every tier and cold file)
IDENTITY = ("sipHash64(timestamp, observed_timestamp, service, level, message, trace_id, span_id, "
            "request_id, host, instance, attributes)")


class Tiers:
    """SQL for each tier, and the moves between them, over one store and one cold store."""

    def __init__(self, store: Store, cold: ColdStore | None) -> None:
        self.store = store
        self.cold = cold
        self.hot = store.hot_table
        self.warm_name = f"{store.table_name}_warm"
        self.warm = quote_identifier(self.warm_name)
        self.view_name = f"{store.table_name}_all"
        self.moving = quote_identifier(f"{store.table_name}_moving")
        #: the stored columns (what a move copies and a cold file holds), in table order
        self.columns: list[tuple[str, str]] = []
        #: the promoted attribute columns, computed from ``attributes`` in each tier
        self.promoted: list[tuple[str, str]] = []
        self.promoted_sql: dict[str, str] = {}
        #: the view could not take a tier that holds rows (a short disk): the next tick refreshes
        self.view_behind = False

    def open(self) -> None:
        """Create the warm table, the set of rows being moved and the read view.

        This runs at start only: every table retention uses exists before ingest begins (a table
        created later, on a full disk, was left with an empty metadata file, issue #20).
        """
        self.store.execute(self._warm_ddl(self.warm_name)[0])
        migrations = [add_column(self.warm_name, "move_id String CODEC(ZSTD(9))"),
                      *logs_migrations(self.warm_name, heavier=True)]  # a warm table of an older release
        for migration in missing(self.store.query, migrations):  # a needless ALTER rewrites metadata
            self.store.execute(migration.sql)
        # a warm table of an older release (attributes JSON): rewritten as text, crash-safe
        migrate_attributes(TableAccess(read=self.store.query, run=self.store.execute,
                                       insert=self.store.load_rows, create=self._warm_ddl,
                                       ), self.warm_name)
        # the identities of the rows a move copied (filled and emptied by each move, kept)
        self.store.execute(f"CREATE TABLE IF NOT EXISTS {self.moving} (id UInt64) ENGINE = Set")
        rows = self.store.query(
            "SELECT name, type FROM system.columns WHERE database = currentDatabase() "
            "AND table = {t:String} AND default_kind NOT IN ('MATERIALIZED', 'ALIAS') "
            "ORDER BY position", {"t": self.store.table_name})
        self.columns = [(r["name"], r["type"]) for r in rows]
        # the promoted attributes (store/attributes.py: a MATERIALIZED Tuple and its ALIAS columns):
        # every tier shows them, so a query compiled against them reads the view as it reads hot
        rows = self.store.query(
            "SELECT name, type, default_expression AS e FROM system.columns "
            "WHERE database = currentDatabase() AND table = {t:String} "
            "AND default_kind IN ('MATERIALIZED', 'ALIAS') AND startsWith(name, 'attr_') ORDER BY position",
            {"t": self.store.table_name})
        self.promoted = [(str(r["name"]), str(r["type"])) for r in rows]
        #: how a cold file computes them: the table's own expressions (the engine's text of schema.sql)
        self.promoted_sql = {str(r["name"]): str(r["e"]) for r in rows}
        self._erasure_settings()
        migrate_cold_files(self)  # files of an older release with patched rows: exact text again
        self._fill_free_text()
        self.refresh_view()

    def _fill_free_text(self) -> None:
        """Read every tier's free-text values in, once (store/freetext.py): a data directory of
        an older release holds rows stored before the view that feeds the table existed; until
        this is done, searches read every field term of a bare word, as before."""
        name = self.store.free_text_name
        if name is None or is_complete(self.store.query, name):
            return
        sources = [self.hot, self.warm]
        if self.cold is not None and self.cold.keys():
            sources.append(f"({self.cold_select()})")
        fill(self.store.execute, name, sources)

    def _warm_ddl(self, name: str) -> list[str]:
        """The warm table ``name``: the logs table with heavier codecs and the move id."""
        # an encrypted store keeps warm rows on the same encrypted disk as hot ones; the erasure
        # settings at CREATE (store/base.py ERASURE_SETTINGS), but not on a cluster (no erasure)
        settings = None if self.store.cluster else ERASURE_SETTINGS
        return [schema_sql(name, storage_policy=self.store.storage_policy, settings=settings).replace(
                    "ZSTD(1)", "ZSTD(9)").replace("ZSTD(3)", "ZSTD(9)"),
                add_column(name, "move_id String CODEC(ZSTD(9))").sql]

    def _erasure_settings(self) -> None:
        """Table settings a delete-by-query relies on (server/engine/store/erase.py).

        The engine removes the parts a rewrite replaced in a cleanup whose period backs off to
        five minutes while a table is quiet; at most 2 s here (store/base.py ERASURE_SETTINGS,
        given at CREATE as well), so a delete is off the disk within seconds (plus
        ``old_parts_lifetime``: 0 in chDB, 480 s on a ClickHouse server).
        One finished mutation is kept: older mutation texts (from lightweight deletes made
        before erasure existed, with their values written in) go at the next one.
        """
        if self.store.cluster:
            return  # replicated tables: delete-by-query is refused there (delete.py)
        tables = [self.store.table_name, self.warm_name]
        tables.append(self.store.patterns_name)
        # set where missing only: changing a setting rewrites the table's metadata file
        ensure_settings(self.store, tables, ERASURE_SETTINGS)

    # -- reading ---------------------------------------------------------------------------

    @property
    def column_list(self) -> str:
        return ", ".join(quote_identifier(name) for name, _ in self.columns)

    @property
    def view_list(self) -> str:
        """What the read view shows of a table tier: the stored columns and the promoted ones."""
        return ", ".join(quote_identifier(name) for name, _ in [*self.columns, *self.promoted])

    @property
    def structure(self) -> str:
        """The cold files' columns: the hot table's, plain strings for LowCardinality and JSON."""
        parts = []
        for name, sql_type in self.columns:
            if sql_type == "JSON" or sql_type.startswith("JSON("):
                sql_type = "String"
            elif sql_type.startswith("LowCardinality("):
                sql_type = sql_type[len("LowCardinality("):-1]
            parts.append(f"{name} {sql_type}")
        return ", ".join(parts)

    def export_list(self) -> str:
        """Columns as written to Parquet (JSON as its text)."""
        out = []
        for name, sql_type in self.columns:
            quoted = quote_identifier(name)
            out.append(f"toString({quoted}) AS {quoted}" if sql_type.startswith("JSON") else quoted)
        return ", ".join(out)

    def cold_select(self, key: str | None = None, *, with_path: bool = False) -> str:
        """SELECT of cold rows with the hot table's column types (JSON parsed back).

        ``with_path`` adds ``_cold_path``, the file each row comes from (the engine's ``_path``).
        """
        assert self.cold is not None
        out = []
        for name, sql_type in self.columns:
            quoted = quote_identifier(name)
            out.append(f"CAST({quoted}, 'JSON') AS {quoted}" if sql_type.startswith("JSON") else quoted)
        for name, sql_type in self.promoted:  # as the tables compute them (schema.sql, in order)
            expression = self.promoted_sql[name]
            out.append(f"CAST({expression}, {quote_string(sql_type)}) AS {quote_identifier(name)}")
        if with_path:
            out.append("_path AS _cold_path")
        return f"SELECT {', '.join(out)} FROM {self.cold.table_function(key, self.structure)}"

    def cold_matches(self, cond: str, params: Mapping[str, Any]) -> dict[str, int]:
        """Matching rows per cold file, in one pass over every file (row groups pruned by stats)."""
        assert self.cold is not None
        keys = self.cold.keys()
        if not keys:
            return {}
        source = self.cold_select(with_path=True)
        rows = self.store.query(f"SELECT _cold_path AS path, count() AS n FROM ({source}) "
                                f"WHERE {cond} GROUP BY path", dict(params))
        found = {}
        for row in rows:
            path = str(row["path"])
            key = next((k for k in keys if path.endswith("/" + k)), None)
            if key is not None:
                found[key] = int(row["n"])
        return found

    def source(self, tier: str, key: str | None = None) -> str:
        """A table expression (in parentheses where needed) reading one tier."""
        if tier == "hot":
            return self.hot
        if tier == "warm":
            return f"(SELECT {self.column_list} FROM {self.warm})"
        return f"({self.cold_select(key)})"

    def refresh_view(self) -> None:
        """Point the store's ``table`` at hot ∪ warm (∪ cold once cold files exist), or at the
        hot table alone while warm and cold hold nothing.

        A ``UNION ALL`` view keeps the engine from reading only ``timestamp`` before it picks a
        page's rows (at 100k records a first page read 80 MB through it, 3.45 MB through a view
        of the hot table alone: bench/README.md). Going back to hot alone is a view change, which
        :meth:`TierView.schema_change` refuses on a short disk: the view then stays as it was
        (every tier; the same rows, read slower). Widening it is refused the same way: the rows
        moved meanwhile are then not searched until a refresh finds room (said in the log), and
        the caller (a tick, the disk guard's relief that just freed the disk) goes on."""
        try:
            widened = self._widen_if_needed()
        except StoreError as exc:
            self.view_behind = True
            log.error("retention: the read view cannot take the warm and cold tiers yet, so the rows "
                      "moved there are not searched until it can; each tick tries again (%s)", exc)
            return
        self.view_behind = False
        if widened:
            return
        try:
            self.store.expose_view(self.view_name, f"SELECT {self.view_list} FROM {self.hot}")
        except StoreError as exc:
            log.warning("retention: the read view keeps every tier (%s)", exc)
            return
        # The look at warm and cold and the change of the view are two statements: another
        # server's move may have copied rows (and removed them from hot) between them. Looking
        # again after the change means the view is never left narrower than the data.
        self._widen_if_needed()

    def _widen_if_needed(self) -> bool:
        """Read every tier if warm or cold holds rows; whether it did."""
        with_cold = self.cold is not None and bool(self.cold.keys())
        if with_cold or self.count("warm"):
            self._expose_all_tiers(with_cold)
            return True
        return False

    def _expose_all_tiers(self, with_cold: bool) -> None:
        parts = [f"SELECT {self.view_list} FROM {self.hot}",
                 f"SELECT {self.view_list} FROM {self.warm}"]
        if with_cold:
            parts.append(self.cold_select())
        self.store.expose_view(self.view_name, " UNION ALL ".join(parts))

    # -- moving ----------------------------------------------------------------------------

    def copy_to_warm(self, move_id: str, source: str, cond: str, params: Mapping[str, Any]) -> int:
        """Copy matching rows of hot into warm under ``move_id`` (a retry first undoes a partial copy).

        The read view includes warm before a row is copied there (a view of the hot table alone
        would lose the rows once the move removes them from hot); a query that started earlier
        read hot, which still has them."""
        self._expose_all_tiers(self.cold is not None and bool(self.cold.keys()))
        if self.count_warm_move(move_id):  # a retry: undo the partial copy first
            self.store.execute(f"DELETE FROM {self.warm} WHERE move_id = {{move_id:String}}",
                               {"move_id": move_id})
        self.store.execute(
            f"INSERT INTO {self.warm} ({self.column_list}, move_id) "
            f"SELECT {self.column_list}, {{move_id:String}} FROM {self.source(source)} WHERE {cond}",
            {**params, "move_id": move_id})
        return self.count_warm_move(move_id)

    def count_warm_move(self, move_id: str) -> int:
        rows = self.store.query(f"SELECT count() AS n FROM {self.warm} WHERE move_id = {{m:String}}",
                                {"m": move_id})
        return int(rows[0]["n"])

    def copy_to_cold(self, key: str, source: str, cond: str, params: Mapping[str, Any]) -> int:
        """Write matching rows of ``source`` to the cold file ``key`` and count what it holds."""
        assert self.cold is not None
        select = (f"SELECT {self.export_list()} FROM {self.source(source)} WHERE {cond} "
                  "ORDER BY service, level, timestamp")
        self.cold.write(self.store, key, select, params)
        return self.count_cold(key)

    def count_cold(self, key: str, cond: str = "1", params: Mapping[str, Any] | None = None) -> int:
        rows = self.store.query(f"SELECT count() AS n FROM ({self.cold_select(key)}) WHERE {cond}",
                                dict(params or {}))
        return int(rows[0]["n"])

    def remove_copied(self, source: str, moves: list[tuple[str, str, str | None, str | None]]) -> None:
        """Delete from ``source`` the rows whose copies are confirmed (idempotent).

        ``moves`` are (dest, move id, cold key, day). A row goes when its identity is among a
        copy's: the copy was made from exactly those rows, so nothing else can match, and a retry
        after a crash finds nothing left to delete. The identities go into a ``Set`` table first:
        a mutation would otherwise evaluate an ``IN (subquery)`` again for every part.
        """
        parts: list[str] = []
        params: SqlParams = {}
        days: set[str] = set()
        for i, (dest, move_id, key, day) in enumerate(moves):
            if day is not None:
                days.add(day)
            if dest == "warm":
                parts.append(f"SELECT {IDENTITY} FROM {self.warm} WHERE move_id = {{m{i}:String}}")
                params[f"m{i}"] = move_id
            else:
                assert key is not None
                parts.append(f"SELECT {IDENTITY} FROM ({self.cold_select(key)})")
        if not parts:
            return
        # Rows leave ``source`` only once the view reads where they went: a first cold file (or a
        # narrowing by another server since the copy began) would otherwise hide them until the
        # next refresh. On a disk too short for a view change the removal still runs (it is what
        # frees the disk); the rows are then found again at the next refresh.
        try:
            self._widen_if_needed()
        except StoreError as exc:
            log.warning("retention: the read view could not take the moved rows' tier yet (%s)", exc)
        table = self.hot if source == "hot" else self.warm
        moving = self.moving
        self.store.execute(f"TRUNCATE TABLE {moving}")
        self.store.execute(f"INSERT INTO {moving} {' UNION ALL '.join(parts)}", params)
        day_filter = ""
        if days and all(d is not None for _, _, _, d in moves):  # prune to the moves' partitions
            names = {f"d{i}": day for i, day in enumerate(sorted(days))}
            listed = ", ".join(f"toDate({{{n}:String}})" for n in names)
            day_filter = f"toDate(timestamp) IN ({listed}) AND "
            params = names
        else:
            params = {}
        self.store.execute(f"DELETE FROM {table} WHERE {day_filter}{IDENTITY} IN {moving}", params)
        self.store.execute(f"TRUNCATE TABLE {moving}")

    def apply_masks(self) -> int:
        """Rewrite, in the background, the partitions where a lightweight delete only masked rows.

        Moves and expiry delete with ``DELETE FROM``, which masks rows; an old day's partition is
        seldom merged again, so the moved or expired rows would stay on disk for good (and the disk
        would not shrink). ``APPLY DELETED MASK`` drops them; the engine runs it as a mutation in
        the background. Returns the partitions asked for.
        """
        if self.store.cluster:
            return 0
        asked = 0
        for name in (self.store.table_name, self.warm_name):
            rows = self.store.query(
                "SELECT DISTINCT partition_id AS p FROM system.parts WHERE active AND has_lightweight_delete "
                "AND database = currentDatabase() AND table = {t:String} ORDER BY p", {"t": name})
            ids = [str(r["p"]) for r in rows if re.fullmatch(r"[A-Za-z0-9_-]{1,64}", str(r["p"]))]
            if ids:
                commands = ", ".join(f"APPLY DELETED MASK IN PARTITION ID '{p}'" for p in ids)
                self.store.execute(f"ALTER TABLE {quote_identifier(name)} {commands} "
                                   "SETTINGS mutations_sync = 0")
                asked += len(ids)
        return asked

    def compact_day(self, tier: str, day: str) -> None:
        """Rewrite one day's partition so rows a delete masked leave the active parts now."""
        if not re.fullmatch(r"\d{4}-\d{2}-\d{2}", day):
            raise ValueError(f"not a day: {day!r}")
        table = self.hot if tier == "hot" else self.warm
        self.store.execute(f"OPTIMIZE TABLE {table} PARTITION ID '{day.replace('-', '')}' FINAL")

    # -- deleting --------------------------------------------------------------------------

    def delete_where(self, tier: str, cond: str, params: Mapping[str, Any]) -> int:
        """Delete matching rows from one tier; the number of rows deleted."""
        if tier in ("hot", "warm"):
            table = self.hot if tier == "hot" else self.warm
            source = self.source(tier)
            rows = self.store.query(f"SELECT count() AS n FROM {source} WHERE {cond}", dict(params))
            n = int(rows[0]["n"])
            if n:
                self.store.execute(f"DELETE FROM {table} WHERE {cond}", params)
            return n
        if self.cold is None:
            return 0
        total = 0
        for key in self.cold_matches(cond, params):
            total += self.delete_in_cold_file(key, cond, params)
        return total

    def delete_in_cold_file(self, key: str, cond: str, params: Mapping[str, Any]) -> int:
        """Rewrite one cold file without the matching rows (or remove it when all match)."""
        assert self.cold is not None
        n = self.count_cold(key, cond, params)
        if n == 0:
            return 0
        if n == self.count_cold(key):
            self.cold.remove(key)
            return n
        # keep every row the condition is not true of: an absent attribute makes it NULL, and
        # NOT NULL is NULL, which WHERE drops (a delete emptied a whole cold file that way)
        select = (f"SELECT {self.export_list()} FROM ({self.cold_select(key)}) "
                  f"WHERE NOT ifNull(({cond}), 0) ORDER BY service, level, timestamp")
        self.cold.write(self.store, key, select, params)
        return n

    # -- figures (the mover's days, the disk guard, the storage page) ----------------------

    def days(self, tier: str, cond: str, params: Mapping[str, Any], *, limit: int) -> list[str]:
        """The oldest ``limit`` days (``YYYY-MM-DD``) of ``tier`` that hold rows matching ``cond``."""
        rows = self.store.query(
            f"SELECT toString(toDate(timestamp)) AS day FROM {self.source(tier)} "
            f"WHERE {cond} GROUP BY day ORDER BY day LIMIT {int(limit)}", params)
        return [str(row["day"]) for row in rows]

    def count(self, tier: str, cond: str | None = None, params: Mapping[str, Any] | None = None) -> int:
        """Rows of ``tier`` (matching ``cond``): a lightweight delete's masked rows do not count."""
        where = f" WHERE {cond}" if cond is not None else ""
        return int(self.store.query(f"SELECT count() AS n FROM {self.source(tier)}{where}",
                                    dict(params or {}))[0]["n"])

    def part_figures(self, tier: str) -> tuple[int, int, int]:
        """Rows, bytes on disk and uncompressed bytes of the active parts of ``hot`` or ``warm``."""
        table = self.store.table_name if tier == "hot" else self.warm_name
        rows = self.store.query(
            "SELECT sum(rows) AS rows, sum(bytes_on_disk) AS disk, sum(data_uncompressed_bytes) AS raw "
            "FROM system.parts WHERE active AND database = currentDatabase() AND table = {t:String}",
            {"t": table})
        row = rows[0] if rows else {}
        return int(row.get("rows") or 0), int(row.get("disk") or 0), int(row.get("raw") or 0)

    def groups(self, tier: str, cond: str | None = None, params: Mapping[str, Any] | None = None
               ) -> list[Row]:
        """``service``, ``level`` and ``n`` of the 1000 largest groups of ``tier`` (matching ``cond``)."""
        where = f"WHERE {cond} " if cond is not None else ""
        return self.store.query(f"SELECT service, level, count() AS n FROM {self.source(tier)} {where}"
                                "GROUP BY service, level ORDER BY n DESC LIMIT 1000", dict(params or {}))

    def active_bytes(self) -> int:
        """Bytes of every active part of the store's database: what is left once replaced parts
        are cleaned up (parts a delete or merge replaced stay on disk a few minutes)."""
        rows = self.store.query("SELECT sum(bytes_on_disk) AS b FROM system.parts "
                                "WHERE active AND database = currentDatabase()", {})
        return int(rows[0]["b"] or 0) if rows else 0

    def distinct_messages(self, cond: str, params: Mapping[str, Any], *, limit: int) -> list[str]:
        """Up to ``limit`` distinct messages of the rows matching ``cond``, in every tier."""
        rows = self.store.query(f"SELECT DISTINCT message AS m FROM {self.store.table} WHERE {cond} "
                                f"LIMIT {int(limit)}", params)
        return [str(row["m"]) for row in rows]
